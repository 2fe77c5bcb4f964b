"""The classifiers that regularise the local smoothness of the loss instead of training
on attacks: gradient regularisation (GR) and local linearity regularisation (LLR).

GR needs no ball (no threat, no attack schedule); LLR searches the ball for the point
where the loss is least linear, with the attack schedule of the searching classifiers.
"""

from ..objectives import LLR, GradientRegularization
from ._adversarial import AdversarialNetClassifier
from ._base import RobustNetClassifier
from ._docs import fill_doc


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
