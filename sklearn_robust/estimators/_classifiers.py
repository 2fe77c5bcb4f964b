"""The public classifiers: each is a base plus the choice of an objective.

Each classifier exposes only the parameters that change what it trains: the threat
(``eps``, ``norm``, ``bounds``) when its objective uses one, the attack schedule
(``attack_steps``, ``step_size``) when its objective searches, and the method's own.
"""

from ..objectives import (
    LLR,
    RST,
    SCORE,
    TRADES,
    FastAdversarial,
    GradientRegularization,
    Natural,
    PGDAdversarial,
)
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
class GRClassifier(RobustNetClassifier):
    """Gradient regularisation (GR / TULIP): penalise a finite-difference input gradient.

    No attack: the loss of a batch is ``mean_i [CE_i + lam * ((CE_i(x + h d_i) - CE_i(x)) /
    h)^2]`` with ``d_i`` the input gradient of the cross-entropy normalised in l_2, as in
    the reference code; see :class:`~sklearn_robust.objectives.GradientRegularization`.
    There is no ball, so no ``eps``, ``norm``, ``bounds`` or attack schedule, and
    ``threat_model_`` is ``None``.

    ``weighting='yang2020'`` reads ``lam`` on the scale of the code behind Yang et al.
    2020's table (the penalty summed and halved next to a summed cross-entropy counted
    twice): a Yang ``lam`` is 4 times a ``'mean'`` one, so ``lam=1.0,
    weighting='yang2020'`` trains exactly as the default ``lam=0.25``.

    Parameters
    ----------
    lam : float, default=0.25
        Weight of the squared finite difference (``>= 0``). The default is Yang et al.'s
        ``lambda = 1`` (they use 1, 0.1 and 0.01) in the ``'mean'`` weighting.
    h : float, default=1.0
        Finite-difference step (``> 0``) along the unit-l_2 direction.
    weighting : {'mean', 'yang2020'}, default='mean'
        Scale of ``lam``: means over the batch, or the reference code's weighting.
    %(network)s

    See Also
    --------
    LLRClassifier, ATClassifier, NaturalClassifier

    References
    ----------
    C. Finlay, A. M. Oberman. "Scaleable input gradient regularization for adversarial
    robustness", Machine Learning with Applications, 2021 (arXiv:1905.11468).

    Y.-Y. Yang et al. "A Closer Look at Accuracy vs. Robustness", NeurIPS 2020.

    Examples
    --------
    %(digits)s
    >>> clf = GRClassifier(lam=0.25, h=1.0, max_epochs=2, random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.75
    True
    """

    objective_class = GradientRegularization
    objective_params = ("lam", "h", "weighting")

    def __init__(self, module=None, *, lam=0.25, h=1.0, weighting="mean", **kwargs):
        super().__init__(module, **kwargs)
        self.lam = lam
        self.h = h
        self.weighting = weighting


@fill_doc
class LLRClassifier(AdversarialNetClassifier):
    """Local linearity regularisation (Qin et al. 2019).

    The loss of a batch is ``mean_i [l(x) + lam * g(delta*) + mu * |delta* . grad_x l(x)|]``
    with ``l`` the cross-entropy, ``g(delta) = |l(x + delta) - l(x) - delta . grad_x l(x)|``
    and ``delta*`` maximising ``g`` over the ``eps``-ball by ``attack_steps`` steps of
    projected ascent from a uniform start; see :class:`~sklearn_robust.objectives.LLR`.
    Training needs double back-propagation (the outer loss differentiates ``grad_x l``),
    so an epoch costs about as much as PGD training with ``attack_steps + 2`` steps.

    ``form='yang2020'`` trains with the loss of the code behind Yang et al. 2020's table
    instead (batch-level linear term, no ``l(x)`` in ``g``, no parameter gradient through
    the linear and ``mu`` terms, normalised-gradient search from ``x + 0.001 N(0, 1)``,
    default step ``eps / 2``); the differences are listed in
    :class:`~sklearn_robust.objectives.LLR`.

    Parameters
    ----------
    lam : float, default=4.0
        Weight of the local-linearity term ``g(delta*)`` (``>= 0``).
    mu : float, default=3.0
        Weight of the gradient term ``|delta* . grad_x l(x)|`` (``>= 0``).
    attack_steps : int, default=2
        Ascent steps of the search for ``delta*`` (``>= 1``; the method's default is 2).
    %(threat)s
    step_size : float or None, default=None
        Step of the search; ``None`` is ``2.5 * eps / attack_steps`` (``'qin'``) or
        ``eps / 2`` (``'yang2020'``).
    form : {'qin', 'yang2020'}, default='qin'
        Qin et al.'s loss, or that of Yang et al.'s reference code.
    %(awp)s
    %(network)s

    See Also
    --------
    GRClassifier, ATClassifier, NaturalClassifier

    References
    ----------
    C. Qin et al. "Adversarial Robustness through Local Linearization", NeurIPS 2019.

    Examples
    --------
    %(digits)s
    >>> clf = LLRClassifier(eps=0.1, lam=4.0, mu=3.0, attack_steps=2, max_epochs=2,
    ...                     random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.75
    True
    """

    objective_class, objective_params = LLR, ("lam", "mu", "form")

    def __init__(self, module=None, *, lam=4.0, mu=3.0, attack_steps=2, form="qin",
                 **kwargs):
        super().__init__(module, attack_steps=attack_steps, **kwargs)
        self.lam = lam
        self.mu = mu
        self.form = form


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

