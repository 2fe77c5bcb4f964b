"""Empirical local Lipschitz constant of the logits (Yang et al. 2020), and its scorer."""

import torch

from ..threat import ThreatModel, ascend
from ..utils import POSITIVE, StrOptions, frozen, make_generator
from ._base import PIPELINE_EXAMPLE, bridge_inputs, check_params, untouched
from ._scorer import EstimatorScorer, scorer_settings

#: How the inner maximum is read: the best iterate (ours) or the paper's protocol.
PROTOCOLS = ("best", "yang2020")
# The fixed ascent step of Yang et al.'s published figures, whatever eps.
_YANG_STEP = 0.003

# The ratio is 0/0 at eps=0: the radius must be positive.
_CONSTRAINTS = {"eps": POSITIVE, "protocol": [StrOptions(set(PROTOCOLS))]}


@PIPELINE_EXAMPLE
def local_lipschitz_score(estimator, X, *, eps, norm="linf", steps=10, step_size=None,
                          bounds="estimator", batch_size=256, random_state=None,
                          protocol="best"):
    """Empirical local Lipschitz constant of the logits around the points of ``X``.

    Yang et al. (2020)'s measure of smoothness::

        (1/n) sum_i  max_{x' in B(x_i, eps)}  ||f(x_i) - f(x')||_1 / ||x_i - x'||

    with ``f`` the logits and ``||.||`` the l_inf norm (the l_2 or l_1 norm with
    ``norm='l2'`` or ``'l1'``; the numerator stays l_1). The inner maximum is estimated by
    ``steps`` steps of sign-gradient ascent (normalised-gradient ascent for l_2, sparse
    sign steps for l_1: see :class:`~sklearn_robust.ThreatModel`) on the ratio, from
    ``x + 0.001 * N(0, 1)``, with the model in eval mode and every iterate projected onto
    the ball and clamped to ``bounds``. The largest ratio over all iterates of a sample is
    kept (the last iterate need not be the best). An estimate from below of each local
    maximum; smaller is smoother.

    ``protocol='yang2020'`` is the protocol of the published figures instead: a fixed step
    of 0.003 (``step_size=None``; 10 steps then reach at most 0.03 from ``x``, whatever
    ``eps``) and the ratio at the last iterate, not the best over iterates. It gives
    lower values than ``'best'`` (never higher, on the same start); use it to set a figure
    beside the published ones (MNIST at ``eps=0.1``: natural training 67.25, PGD-AT 8.84,
    TRADES (beta 6) 2.87).

    Parameters
    ----------
    estimator : estimator or Pipeline
        A fitted classifier of this library, or a :class:`~sklearn.pipeline.Pipeline` of
        scalers ending in one (the constant is then in raw input units: see
        :func:`~sklearn_robust.bridge.as_torch_classifier`). Models without input
        gradients are refused.
    X : array-like of shape (n_samples, ...)
        Inputs, as given to ``estimator.predict``.
    eps : float
        Radius of the ball, ``> 0``.
    norm : {'linf', 'l2', 'l1'}, default='linf'
        Norm of the ball and of the denominator.
    steps : int, default=10
        Ascent steps (``0`` evaluates the starting point only).
    step_size : float or None, default=None
        Ascent step; ``None`` is ``2.5 * eps / steps`` (``'best'``) or 0.003
        (``'yang2020'``).
    bounds : 'estimator', None or (low, high), default='estimator'
        Valid input range in raw units, as in :func:`robust_accuracy_score`.
    batch_size : int, default=256
        Points processed at once.
    random_state : int, RandomState instance or None, default=None
        Seeds the Gaussian start (the global torch RNG is not touched).
    protocol : {'best', 'yang2020'}, default='best'
        Best ratio over the iterates with Madry's step, or Yang et al.'s protocol (fixed
        step 0.003, ratio at the last iterate).

    Returns
    -------
    float
        The mean over samples of the best ratio found (of the last ratio, for
        ``'yang2020'``).

    Raises
    ------
    ValueError
        For ``eps <= 0``, an unknown ``norm``, invalid ``steps`` or ``step_size``, or a
        model without input gradients (the message names the step), before any work.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.

    See Also
    --------
    make_lipschitz_scorer : The negated value as a scorer.
    robust_accuracy_score

    Notes
    -----
    The model is left exactly as it was: parameters, buffers, gradients, the train/eval
    mode of every submodule and the global torch RNG state.

    References
    ----------
    .. [1] Y.-Y. Yang, C. Rashtchian, H. Zhang, R. Salakhutdinov and K. Chaudhuri, "A
       Closer Look at Accuracy vs. Robustness", NeurIPS 2020.

    Examples
    --------
    %(pipeline_example)s
    >>> from sklearn_robust.metrics import local_lipschitz_score
    >>> pipe = pipe.fit(X, y)
    >>> lip = local_lipschitz_score(pipe, X[:100], eps=0.1, random_state=0)
    >>> lip > 0
    True
    """
    check_params("local_lipschitz_score", {
        "eps": eps, "norm": norm, "steps": steps, "step_size": step_size, "bounds": bounds,
        "batch_size": batch_size, "random_state": random_state, "protocol": protocol},
        _CONSTRAINTS)
    bridged = bridge_inputs(estimator, X, gradients=True, bounds=bounds)
    model, X_tensor = bridged.model, bridged.X
    threat = ThreatModel(eps=float(eps), norm=norm, bounds=bridged.bounds)
    generator = make_generator(random_state, X_tensor.device)
    last_only = protocol == "yang2020"
    if last_only and step_size is None:
        step_size = _YANG_STEP

    total = 0.0
    with untouched(estimator), frozen(model):
        for start in range(0, X_tensor.shape[0], batch_size):
            x = X_tensor[start:start + batch_size]
            total += float(_ratios(model, x, threat, generator, steps=steps,
                                   step_size=step_size, last_only=last_only).sum())
    return total / X_tensor.shape[0]


def _ratios(model, x, threat, generator, *, steps, step_size=None, last_only=False):
    """Per sample, ``||f(x) - f(x')||_1 / ||x - x'||``: the largest over the ascent
    iterates, or at the last iterate when ``last_only``."""
    with torch.no_grad():
        reference = model(x).flatten(1)
    best = torch.zeros(x.shape[0], device=x.device)

    def ratio(x_adv):
        numerator = (model(x_adv).flatten(1) - reference).abs().sum(dim=1)
        distance = threat.distance(x_adv, x)
        value = torch.where(
            distance > 0, numerator / distance.clamp_min(1e-12), torch.zeros_like(numerator)
        )
        best.copy_(torch.maximum(best, value.detach()))
        return value

    last = ascend(threat, ratio, x, steps=steps, step_size=step_size, start="gaussian",
                  generator=generator)
    with torch.no_grad():
        final = ratio(last)
    return final if last_only else best


@PIPELINE_EXAMPLE
def make_lipschitz_scorer(*, eps, norm="linf", **kwargs):
    """A scorer returning the NEGATED :func:`local_lipschitz_score` (greater is better).

    Named like scikit-learn's losses (``neg_log_loss``): its ``name`` is
    ``'neg_local_lipschitz'`` and its repr reads
    ``make_scorer(local_lipschitz_score, greater_is_better=False, eps=...)``. The labels
    passed by ``cross_validate`` or ``GridSearchCV`` are ignored.

    Parameters
    ----------
    eps : float
        Radius of the ball, ``> 0``.
    norm : {'linf', 'l2', 'l1'}, default='linf'
        Norm of the ball and of the denominator.
    **kwargs
        Other keyword arguments of :func:`local_lipschitz_score` (``steps``,
        ``step_size``, ``bounds``, ``batch_size``, ``random_state``, ``protocol``).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None) -> -local_lipschitz_score(estimator, X, ...)``.

    Raises
    ------
    ValueError
        For an invalid ``eps`` or ``norm``, at construction.
    TypeError
        For a keyword that :func:`local_lipschitz_score` does not take.

    See Also
    --------
    local_lipschitz_score, make_robust_scorer

    References
    ----------
    .. [1] Y.-Y. Yang et al., "A Closer Look at Accuracy vs. Robustness", NeurIPS 2020.

    Examples
    --------
    >>> from sklearn_robust.metrics import make_lipschitz_scorer
    >>> scorer = make_lipschitz_scorer(eps=0.1, steps=5)
    >>> scorer
    make_scorer(local_lipschitz_score, greater_is_better=False, eps=0.1, norm='linf', steps=5)
    %(pipeline_example)s
    >>> scorer(pipe.fit(X, y), X[:100], y[:100]) < 0
    True
    """
    settings = scorer_settings(local_lipschitz_score, kwargs, "make_lipschitz_scorer",
                               fixed=("eps", "norm"))
    check_params("make_lipschitz_scorer", {"eps": eps, "norm": norm, **settings},
                 _CONSTRAINTS)
    return EstimatorScorer(local_lipschitz_score, {"eps": float(eps), "norm": norm, **kwargs},
                           name="neg_local_lipschitz", sign=-1, needs_y=False)
