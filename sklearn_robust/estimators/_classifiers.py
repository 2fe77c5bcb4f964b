"""The public classifiers: each is the base plus the choice of an objective."""

from __future__ import annotations

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
from ._base import AdversarialNetClassifier, RobustNetClassifier

_DOCTEST_FLAT = """
    >>> from sklearn_robust.datasets import load_digits_images
    >>> X_train, X_test, y_train, y_test = load_digits_images(flat=True)"""


class NaturalClassifier(RobustNetClassifier):
    """Plain (non-adversarial) training with the same defaults: the fair baseline.

    Parameters
    ----------
    module, input_shape, random_state, max_shift, precision, **kwargs
        See :class:`RobustNetClassifier`; ``precision='bf16'`` or ``'fp16'`` trains in
        mixed precision, the inner maximisation included (off by default).

    See Also
    --------
    ATClassifier, TRADESClassifier, SCOREClassifier

    Examples
    --------{flat}
    >>> clf = NaturalClassifier(max_epochs=2, random_state=0).fit(X_train, y_train)
    >>> clf.score(X_test, y_test) > 0.75
    True
    """

    def make_objective(self):
        return Natural()


class ATClassifier(AdversarialNetClassifier):
    """PGD adversarial training (Madry et al. 2018): minimise the loss at the worst point.

    Each batch is replaced by PGD adversarial points (uniform random start,
    ``attack_steps`` steps of cross-entropy ascent) and the network is trained on them.

    Parameters
    ----------
    ls : float, default=0.0
        Label smoothing of the training cross-entropy, in ``[0, 1)`` (true class ``1 - ls``,
        each other class ``ls / (C - 1)``); the attack uses the hard labels.
    eps, norm, attack_steps, step_size, bounds
        The threat model; see :class:`AdversarialNetClassifier`.
    module, input_shape, random_state, max_shift, precision, **kwargs
        See :class:`RobustNetClassifier`; ``precision='bf16'`` or ``'fp16'`` trains in
        mixed precision, the inner maximisation included (off by default).

    See Also
    --------
    TRADESClassifier, SCOREClassifier, NaturalClassifier

    References
    ----------
    A. Madry et al. "Towards Deep Learning Models Resistant to Adversarial Attacks",
    ICLR 2018.

    Examples
    --------{flat}
    >>> clf = ATClassifier(eps=0.1, max_epochs=2, attack_steps=2, random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.75
    True
    """

    def __init__(self, module=None, *, ls=0.0, **kwargs):
        super().__init__(module, **kwargs)
        self.ls = ls

    def make_objective(self):
        return PGDAdversarial(ls=self.ls)


class TRADESClassifier(AdversarialNetClassifier):
    """TRADES (Zhang et al. 2019): clean cross-entropy plus ``beta`` times a KL boundary term.

    Parameters
    ----------
    beta : float, default=6.0
        Weight of ``KL(p(x) || p(x'))``; larger is more robust and less accurate.
    ls : float, default=0.0
        Label smoothing of the clean cross-entropy, in ``[0, 1)`` (true class ``1 - ls``,
        each other class ``ls / (C - 1)``).
    eps, norm, attack_steps, step_size, bounds
        The threat model; see :class:`AdversarialNetClassifier`.
    module, input_shape, random_state, max_shift, precision, **kwargs
        See :class:`RobustNetClassifier`; ``precision='bf16'`` or ``'fp16'`` trains in
        mixed precision, the inner maximisation included (off by default).

    See Also
    --------
    SCOREClassifier, ATClassifier, NaturalClassifier

    References
    ----------
    H. Zhang et al. "Theoretically Principled Trade-off between Robustness and Accuracy",
    ICML 2019.

    Examples
    --------{flat}
    >>> clf = TRADESClassifier(eps=0.1, beta=6.0, max_epochs=2, attack_steps=2, random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.75
    True
    """

    def __init__(self, module=None, *, beta=6.0, ls=0.0, **kwargs):
        super().__init__(module, **kwargs)
        self.beta = beta
        self.ls = ls

    def make_objective(self):
        return TRADES(beta=self.beta, ls=self.ls)


class SCOREClassifier(AdversarialNetClassifier):
    """SCORE (Pang et al. 2022): TRADES with KL replaced by a distance, squared error by default.

    The loss is ``mean ||p(x) - y_ls||^2 + beta * mean D(p(x), p(x'))``, ``x'`` maximising
    ``D`` from ``x + 0.001 N(0, 1)``; see :class:`~sklearn_robust.objectives.SCORE`.

    Parameters
    ----------
    beta : float, default=4.0
        Weight of the robust term ``mean D(p(x), p(x'))``.
    distance : {'se', 'kl', 'js', 'l1', 'l2'}, default='se'
        Distance ``D`` between the probability vectors ``p = p(x)`` and ``q = p(x')``:
        ``'se'`` ``||p - q||_2^2``; ``'kl'`` ``KL(p || q)``; ``'js'`` the Jensen-Shannon
        divergence ``KL(p || m) / 2 + KL(q || m) / 2`` with ``m = (p + q) / 2``; ``'l1'``
        ``||p - q||_1``; ``'l2'`` ``||p - q||_2`` (not squared).
    ls : float, default=0.0
        Label smoothing of the natural term, in ``[0, 1)``.
    clip : float or None, default=None
        If set to ``c >= 0``, each sample's robust term becomes ``relu(D - c)`` (in the
        outer loss; the attack maximises the unclipped ``D``). ``None`` disables it.
    eps, norm, attack_steps, step_size, bounds
        The threat model; see :class:`AdversarialNetClassifier`.
    module, input_shape, random_state, max_shift, precision, **kwargs
        See :class:`RobustNetClassifier`; ``precision='bf16'`` or ``'fp16'`` trains in
        mixed precision, the inner maximisation included (off by default).

    See Also
    --------
    TRADESClassifier, ATClassifier, NaturalClassifier

    References
    ----------
    T. Pang et al. "Robustness and Accuracy Could Be Reconcilable by (Proper) Definition",
    ICML 2022.

    Examples
    --------{flat}
    >>> clf = SCOREClassifier(eps=0.1, beta=4.0, distance="se", max_epochs=2, attack_steps=2,
    ...                       random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.75
    True
    """

    def __init__(self, module=None, *, beta=4.0, distance="se", ls=0.0, clip=None, **kwargs):
        super().__init__(module, **kwargs)
        self.beta = beta
        self.distance = distance
        self.ls = ls
        self.clip = clip

    def make_objective(self):
        return SCORE(beta=self.beta, distance=self.distance, ls=self.ls, clip=self.clip)


class RSTClassifier(AdversarialNetClassifier):
    """RST / "advbeta" (Yang et al. 2020): clean loss plus ``lam`` times the PGD loss.

    The loss of a batch is ``CE(f(x), y) + lam * CE(f(x'), y)`` with ``x'`` found as in
    :class:`ATClassifier` (uniform start, ``attack_steps`` steps of cross-entropy ascent).

    Parameters
    ----------
    lam : float, default=1.0
        Weight of the adversarial term (``>= 0``; Yang et al. use 0.5, 1 and 2).
    eps, norm, attack_steps, step_size, bounds
        The threat model; see :class:`AdversarialNetClassifier`.
    module, input_shape, random_state, max_shift, precision, **kwargs
        See :class:`RobustNetClassifier`; ``precision='bf16'`` or ``'fp16'`` trains in
        mixed precision, the inner maximisation included (off by default).

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
    --------{flat}
    >>> clf = RSTClassifier(eps=0.1, lam=1.0, max_epochs=2, attack_steps=2, random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.75
    True
    """

    def __init__(self, module=None, *, lam=1.0, **kwargs):
        super().__init__(module, **kwargs)
        self.lam = lam

    def make_objective(self):
        return RST(lam=self.lam)


class GRClassifier(AdversarialNetClassifier):
    """Gradient regularisation (GR / TULIP): penalise a finite-difference input gradient.

    No attack: the loss of a batch is ``mean_i [CE_i + lam * ((CE_i(x + h d) - CE_i(x)) /
    h)^2]`` with ``d`` the input gradient of the cross-entropy normalised in ``norm``
    (``sign(g)`` for ``'linf'``, ``g / ||g||_2`` for ``'l2'``); see
    :class:`~sklearn_robust.objectives.GradientRegularization`.

    Of the threat-model parameters only ``norm`` is used, to normalise the direction;
    ``eps``, ``attack_steps``, ``step_size`` and ``bounds`` are accepted (so every robust
    classifier shares one interface) but do not affect training. ``norm='l2'`` with ``h=1``
    is the reference recipe. With ``norm='linf'`` the probe ``x + h sign(g)`` moves every
    feature by ``h`` and the penalty estimates ``||g||_1^2``, which grows with the number
    of features: lower ``lam`` on wide inputs.

    Parameters
    ----------
    lam : float, default=0.1
        Weight of the squared finite difference (``>= 0``; Yang et al. use 1, 0.1, 0.01).
    h : float, default=1.0
        Finite-difference step (``> 0``) along the unit-norm direction.
    eps, norm, attack_steps, step_size, bounds
        See :class:`AdversarialNetClassifier`; only ``norm`` is used.
    module, input_shape, random_state, max_shift, precision, **kwargs
        See :class:`RobustNetClassifier`; ``precision='bf16'`` or ``'fp16'`` trains in
        mixed precision, the inner maximisation included (off by default).

    See Also
    --------
    LLRClassifier, ATClassifier, NaturalClassifier

    References
    ----------
    C. Finlay, A. M. Oberman. "Scaleable input gradient regularization for adversarial
    robustness", Machine Learning with Applications, 2021 (arXiv:1905.11468).

    Y.-Y. Yang et al. "A Closer Look at Accuracy vs. Robustness", NeurIPS 2020.

    Examples
    --------{flat}
    >>> clf = GRClassifier(norm="l2", lam=0.1, h=1.0, max_epochs=2, random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.75
    True
    """

    def __init__(self, module=None, *, lam=0.1, h=1.0, **kwargs):
        super().__init__(module, **kwargs)
        self.lam = lam
        self.h = h

    def make_objective(self):
        return GradientRegularization(lam=self.lam, h=self.h)


class LLRClassifier(AdversarialNetClassifier):
    """Local linearity regularisation (Qin et al. 2019).

    The loss of a batch is ``mean_i [l(x) + lam * g(delta*) + mu * |delta* . grad_x l(x)|]``
    with ``l`` the cross-entropy, ``g(delta) = |l(x + delta) - l(x) - delta . grad_x l(x)|``
    and ``delta*`` maximising ``g`` over the ``eps``-ball by ``inner_steps`` steps of
    projected ascent from a uniform start; see :class:`~sklearn_robust.objectives.LLR`.

    ``inner_steps`` replaces ``attack_steps`` (which LLR does not use); the inner step is
    ``step_size`` when set, else ``2.5 * eps / inner_steps``. Training needs double
    back-propagation (the outer loss differentiates ``grad_x l``), so an epoch costs about
    as much as PGD training with ``inner_steps + 2`` steps.

    Parameters
    ----------
    lam : float, default=4.0
        Weight of the local-linearity term ``g(delta*)`` (``>= 0``).
    mu : float, default=3.0
        Weight of the gradient term ``|delta* . grad_x l(x)|`` (``>= 0``).
    inner_steps : int, default=2
        Ascent steps of the search for ``delta*`` (``>= 1``).
    eps, norm, attack_steps, step_size, bounds
        The threat model; see :class:`AdversarialNetClassifier` (``attack_steps`` unused).
    module, input_shape, random_state, max_shift, precision, **kwargs
        See :class:`RobustNetClassifier`; ``precision='bf16'`` or ``'fp16'`` trains in
        mixed precision, the inner maximisation included (off by default).

    See Also
    --------
    GRClassifier, ATClassifier, NaturalClassifier

    References
    ----------
    C. Qin et al. "Adversarial Robustness through Local Linearization", NeurIPS 2019.

    Examples
    --------{flat}
    >>> clf = LLRClassifier(eps=0.1, lam=4.0, mu=3.0, inner_steps=2, max_epochs=2,
    ...                     random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.75
    True
    """

    def __init__(self, module=None, *, lam=4.0, mu=3.0, inner_steps=2, **kwargs):
        super().__init__(module, **kwargs)
        self.lam = lam
        self.mu = mu
        self.inner_steps = inner_steps

    def make_objective(self):
        return LLR(lam=self.lam, mu=self.mu, inner_steps=self.inner_steps)


class FastATClassifier(AdversarialNetClassifier):
    """Fast adversarial training (Wong et al. 2020): FGSM from a random start.

    Each batch is replaced by one FGSM step of length ``1.25 * eps`` from a uniform random
    point of the ball (projected back onto the ball and the bounds) and the network is
    trained on it; see :class:`~sklearn_robust.objectives.FastAdversarial`. One step is the
    method, so ``attack_steps`` is not used; ``step_size``, when set, replaces
    ``1.25 * eps``.

    Parameters
    ----------
    eps, norm, attack_steps, step_size, bounds
        The threat model; see :class:`AdversarialNetClassifier` (``attack_steps`` unused).
    module, input_shape, random_state, max_shift, precision, **kwargs
        See :class:`RobustNetClassifier`; ``precision='bf16'`` or ``'fp16'`` trains in
        mixed precision, the inner maximisation included (off by default).

    See Also
    --------
    ATClassifier, NaturalClassifier

    References
    ----------
    E. Wong, L. Rice, J. Z. Kolter. "Fast is better than free: Revisiting adversarial
    training", ICLR 2020.

    Examples
    --------{flat}
    >>> clf = FastATClassifier(eps=0.1, max_epochs=2, random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.75
    True
    """

    def make_objective(self):
        return FastAdversarial()


for _cls in (
    NaturalClassifier, ATClassifier, TRADESClassifier, SCOREClassifier, RSTClassifier,
    GRClassifier, LLRClassifier, FastATClassifier,
):
    _cls.__doc__ = _cls.__doc__.replace("{flat}", _DOCTEST_FLAT)
del _cls
