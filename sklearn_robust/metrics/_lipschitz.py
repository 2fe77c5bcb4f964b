"""Empirical local Lipschitz constant of the logits (Yang et al. 2020), and its scorer."""

from __future__ import annotations

import inspect
import numbers

import torch
from sklearn.utils.validation import check_is_fitted

from .._threat import ThreatModel, check_eps, check_norm
from ..attacks import frozen, make_generator
from ._bridge import as_torch_classifier, check_bounds_arg, preserved_state, resolve_bounds
from ._robust import _check_positive_int, _EstimatorScorer


def local_lipschitz_score(estimator, X, *, eps, norm="linf", steps=10, step_size=None,
                          bounds="estimator", batch_size=256, random_state=None):
    """Empirical local Lipschitz constant of the logits around the points of ``X``.

    Yang et al. (2020)'s measure of smoothness::

        (1/n) sum_i  max_{x' in B(x_i, eps)}  ||f(x_i) - f(x')||_1 / ||x_i - x'||

    with ``f`` the logits and ``||.||`` the l_inf norm (the l_2 norm with ``norm='l2'``;
    the numerator stays l_1). The inner maximum is estimated by ``steps`` steps of
    sign-gradient ascent (normalised-gradient ascent for l_2) on the ratio, from
    ``x + 0.001 * N(0, 1)``, with the model in eval mode and every iterate projected onto
    the ball and clamped to ``bounds``. The largest ratio over all iterates of a sample is
    kept (the last iterate need not be the best). An estimate from below of each local
    maximum; smaller is smoother. Published MNIST values at ``eps=0.1``: natural training
    67.25, PGD-AT 8.84, TRADES (beta 6) 2.87.

    Parameters
    ----------
    estimator : estimator or Pipeline
        A fitted classifier of this library, or a :class:`~sklearn.pipeline.Pipeline` of
        scalers ending in one (the constant is then in raw input units: see
        :func:`as_torch_classifier`). Models without input gradients are refused.
    X : array-like of shape (n_samples, ...)
        Inputs, as given to ``estimator.predict``.
    eps : float
        Radius of the ball, ``> 0``.
    norm : {'linf', 'l2'}, default='linf'
        Norm of the ball and of the denominator.
    steps : int, default=10
        Ascent steps (``0`` evaluates the starting point only).
    step_size : float or None, default=None
        Ascent step; ``None`` is ``2.5 * eps / steps``.
    bounds : 'estimator', None or (low, high), default='estimator'
        Valid input range in raw units, as in :func:`robust_accuracy_score`.
    batch_size : int, default=256
        Points processed at once.
    random_state : int, RandomState instance or None, default=None
        Seeds the Gaussian start (the global torch RNG is not touched).

    Returns
    -------
    float
        The mean over samples of the best ratio found.

    Raises
    ------
    ValueError
        For ``eps <= 0``, an unknown ``norm``, invalid ``steps`` or ``step_size``, or a
        model without input gradients (the message names the step).
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
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_robust import NaturalClassifier
    >>> from sklearn_robust.metrics import local_lipschitz_score
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), NaturalClassifier(max_epochs=2, random_state=0))
    >>> pipe = pipe.fit(X, y)
    >>> lip = local_lipschitz_score(pipe, X[:100], eps=0.1, random_state=0)
    >>> lip > 0
    True
    """
    eps = check_eps(eps)
    if eps == 0:
        raise ValueError("eps must be > 0 for the local Lipschitz constant, got 0.")
    check_norm(norm)
    check_bounds_arg(bounds)
    if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}.")
    ThreatModel(eps=eps, norm=norm, steps=steps, step_size=step_size)  # validates
    batch_size = _check_positive_int(batch_size, "batch_size")
    check_is_fitted(estimator)
    model = as_torch_classifier(estimator, gradients=True)
    X_tensor = model.to_tensor(X)
    threat = ThreatModel(eps=eps, norm=norm, steps=steps, step_size=step_size,
                         bounds=resolve_bounds(bounds, model, X_tensor))
    generator = make_generator(random_state, X_tensor.device)

    total = 0.0
    with preserved_state(estimator), frozen(model), torch.inference_mode(False):
        for start in range(0, X_tensor.shape[0], batch_size):
            x = X_tensor[start:start + batch_size]
            total += float(_best_ratios(model, x, threat, generator).sum())
    return total / X_tensor.shape[0]


def _best_ratios(model, x, threat, generator):
    """Per sample, the largest ``||f(x) - f(x')||_1 / ||x - x'||`` over the ascent iterates."""
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

    last = threat.ascend(ratio, x, start="gaussian", generator=generator)
    with torch.no_grad():
        ratio(last)
    return best


class _LipschitzScorer(_EstimatorScorer):
    _score_func = staticmethod(local_lipschitz_score)
    _sign = -1
    name = "neg_local_lipschitz"

    def _score(self, estimator, X, y):
        return local_lipschitz_score(estimator, X, **self._kwargs)


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
    norm : {'linf', 'l2'}, default='linf'
        Norm of the ball and of the denominator.
    **kwargs
        Other keyword arguments of :func:`local_lipschitz_score` (``steps``,
        ``step_size``, ``bounds``, ``batch_size``, ``random_state``).

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
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_robust import NaturalClassifier
    >>> from sklearn_robust.metrics import make_lipschitz_scorer
    >>> scorer = make_lipschitz_scorer(eps=0.1, steps=5)
    >>> scorer
    make_scorer(local_lipschitz_score, greater_is_better=False, eps=0.1, norm='linf', steps=5)
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), NaturalClassifier(max_epochs=2, random_state=0))
    >>> scorer(pipe.fit(X, y), X[:100], y[:100]) < 0
    True
    """
    eps = check_eps(eps)
    if eps == 0:
        raise ValueError("eps must be > 0 for the local Lipschitz constant, got 0.")
    check_norm(norm)
    allowed = set(inspect.signature(local_lipschitz_score).parameters) - {
        "estimator", "X", "eps", "norm"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(
            f"make_lipschitz_scorer got unexpected keyword arguments {unknown}; allowed: "
            f"{sorted(allowed)}."
        )
    return _LipschitzScorer(eps=eps, norm=norm, **kwargs)
