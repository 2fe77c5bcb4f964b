"""The public classifiers: each is a base plus the choice of an objective.

Each classifier exposes only the parameters that change what it trains: the threat
(``eps``, ``norm``, ``bounds``) when its objective uses one, the attack schedule
(``attack_steps``, ``step_size``) when its objective searches, and the method's own.
Here are the natural baseline and the methods that train on attacks; those that
regularise the loss instead (GR, LLR) are in :mod:`._regularisers`, certified training
(IBP) in :mod:`._certified`.
"""

from ..objectives import RST, SCORE, TRADES, FastAdversarial, Natural, PGDAdversarial
from ._adversarial import AdversarialNetClassifier, ThreatNetClassifier
from ._base import RobustNetClassifier
from ._docs import fill_doc


@fill_doc
class NaturalClassifier(RobustNetClassifier):
    """Plain (non-adversarial) training with the same defaults: the fair baseline.

    Parameters
    ----------
    %(network)s

    See Also
    --------
    ATClassifier, TRADESClassifier, SCOREClassifier

    Examples
    --------
    %(digits)s
    >>> clf = NaturalClassifier(max_epochs=2, random_state=0).fit(X_train, y_train)
    >>> clf.score(X_test, y_test) > 0.75
    True
    """

    objective_class = Natural


@fill_doc
class ATClassifier(AdversarialNetClassifier):
    """PGD adversarial training (Madry et al. 2018): minimise the loss at the worst point.

    Each batch is replaced by PGD adversarial points (uniform random start,
    ``attack_steps`` steps of cross-entropy ascent) and the network is trained on them;
    see :class:`~sklearn_robust.objectives.PGDAdversarial`. The attack uses the hard
    labels.

    Parameters
    ----------
    %(ls)s
    %(threat)s
    %(schedule)s
    %(network)s

    See Also
    --------
    TRADESClassifier, SCOREClassifier, NaturalClassifier

    References
    ----------
    A. Madry et al. "Towards Deep Learning Models Resistant to Adversarial Attacks",
    ICLR 2018.

    Examples
    --------
    %(digits)s
    >>> clf = ATClassifier(eps=0.1, max_epochs=2, attack_steps=2, random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.75
    True
    """

    objective_class, objective_params = PGDAdversarial, ("ls",)

    def __init__(self, module=None, *, ls=0.0, **kwargs):
        super().__init__(module, **kwargs)
        self.ls = ls


@fill_doc
class TRADESClassifier(AdversarialNetClassifier):
    """TRADES (Zhang et al. 2019): clean cross-entropy plus ``beta`` times a KL boundary term.

    See :class:`~sklearn_robust.objectives.TRADES`.

    Parameters
    ----------
    beta : float, default=6.0
        Weight of ``KL(p(x) || p(x'))``; larger is more robust and less accurate.
    %(ls)s
    %(threat)s
    %(schedule)s
    %(network)s

    See Also
    --------
    SCOREClassifier, ATClassifier, NaturalClassifier

    References
    ----------
    H. Zhang et al. "Theoretically Principled Trade-off between Robustness and Accuracy",
    ICML 2019.

    Examples
    --------
    %(digits)s
    >>> clf = TRADESClassifier(eps=0.1, beta=6.0, max_epochs=2, attack_steps=2, random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.75
    True
    """

    objective_class, objective_params = TRADES, ("beta", "ls")

    def __init__(self, module=None, *, beta=6.0, ls=0.0, **kwargs):
        super().__init__(module, **kwargs)
        self.beta = beta
        self.ls = ls


@fill_doc
class SCOREClassifier(AdversarialNetClassifier):
    """SCORE (Pang et al. 2022): TRADES with KL replaced by a distance, squared error by default.

    The loss is ``mean ||p(x) - y_ls||^2 + beta * mean D(p(x), p(x'))``, ``x'`` maximising
    ``D`` from a uniform point of the ball (as the SCORE reference code does); see
    :class:`~sklearn_robust.objectives.SCORE`.

    Parameters
    ----------
    beta : float, default=4.0
        Weight of the robust term ``mean D(p(x), p(x'))``.
    distance : {'se', 'kl', 'js', 'l1', 'l2'}, default='se'
        Distance ``D`` between the probability vectors ``p = p(x)`` and ``q = p(x')``:
        ``'se'`` ``||p - q||_2^2``; ``'kl'`` ``KL(p || q)``; ``'js'`` the Jensen-Shannon
        divergence ``KL(p || m) / 2 + KL(q || m) / 2`` with ``m = (p + q) / 2``; ``'l1'``
        ``||p - q||_1``; ``'l2'`` ``||p - q||_2`` (not squared).
    %(ls)s
    clip : float, None or 'auto', default='auto'
        If set to ``c >= 0``, each sample's robust term becomes ``relu(D - c)`` (in the
        outer loss; the attack maximises the unclipped ``D``). ``None`` disables it.
        ``'auto'``: no clip for ``'se'``, ``'kl'`` and ``'js'``; for ``'l1'`` and
        ``'l2'``, whose kink at ``p = q`` otherwise traps training at the constant
        predictor, the reference code's bound ``D(one-hot, one-hot smoothed by 0.1)``.
    %(threat)s
    %(schedule)s
    %(network)s

    See Also
    --------
    TRADESClassifier, ATClassifier, NaturalClassifier

    References
    ----------
    T. Pang et al. "Robustness and Accuracy Could Be Reconcilable by (Proper) Definition",
    ICML 2022.

    Examples
    --------
    %(digits)s
    >>> clf = SCOREClassifier(eps=0.1, beta=4.0, distance="se", max_epochs=2, attack_steps=2,
    ...                       random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.75
    True
    """

    objective_class, objective_params = SCORE, ("beta", "distance", "ls", "clip")

    def __init__(self, module=None, *, beta=4.0, distance="se", ls=0.0, clip="auto",
                 **kwargs):
        super().__init__(module, **kwargs)
        self.beta = beta
        self.distance = distance
        self.ls = ls
        self.clip = clip


@fill_doc
class RSTClassifier(AdversarialNetClassifier):
    """RST / "advbeta" (Yang et al. 2020): clean loss plus ``lam`` times the PGD loss.

    The loss of a batch is ``CE(f(x), y) + lam * CE(f(x'), y)`` with ``x'`` found as in
    :class:`ATClassifier` (uniform start, ``attack_steps`` steps of cross-entropy ascent).

    Parameters
    ----------
    lam : float, default=1.0
        Weight of the adversarial term (``>= 0``; Yang et al. use 0.5, 1 and 2).
    %(threat)s
    %(schedule)s
    %(network)s

    See Also
    --------
    ATClassifier, TRADESClassifier, NaturalClassifier

    References
    ----------
    Y.-Y. Yang, C. Rashtchian, H. Zhang, R. Salakhutdinov, K. Chaudhuri. "A Closer Look at
    Accuracy vs. Robustness", NeurIPS 2020.

    A. Raghunathan, S. M. Xie, F. Yang, J. Duchi, P. Liang. "Understanding and Mitigating
    the Tradeoff Between Robustness and Accuracy", ICML 2020.

    Examples
    --------
    %(digits)s
    >>> clf = RSTClassifier(eps=0.1, lam=1.0, max_epochs=2, attack_steps=2, random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.75
    True
    """

    objective_class, objective_params = RST, ("lam",)

    def __init__(self, module=None, *, lam=1.0, **kwargs):
        super().__init__(module, **kwargs)
        self.lam = lam


@fill_doc
class FastATClassifier(ThreatNetClassifier):
    """Fast adversarial training (Wong et al. 2020): FGSM from a random start.

    Each batch is replaced by one FGSM step of length ``1.25 * eps`` from a uniform random
    point of the ball (projected back onto the ball and the bounds) and the network is
    trained on it; see :class:`~sklearn_robust.objectives.FastAdversarial`. One step is
    the method, so there is no ``attack_steps``.

    Parameters
    ----------
    %(threat)s
    step_size : float or None, default=None
        Length of the FGSM step; ``None`` is ``1.25 * eps``.
    %(network)s

    See Also
    --------
    ATClassifier, NaturalClassifier

    References
    ----------
    E. Wong, L. Rice, J. Z. Kolter. "Fast is better than free: Revisiting adversarial
    training", ICLR 2020.

    Examples
    --------
    %(digits)s
    >>> clf = FastATClassifier(eps=0.1, max_epochs=2, random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.75
    True
    """

    objective_class, objective_params = FastAdversarial, ("step_size",)

    def __init__(self, module=None, *, step_size=None, **kwargs):
        super().__init__(module, **kwargs)
        self.step_size = step_size

