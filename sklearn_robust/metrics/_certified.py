"""Certified and exact robust accuracy: the lower bound under every attack."""

import time
from contextlib import nullcontext
from numbers import Real

import numpy as np
import torch
from sklearn.utils import column_or_1d
from sklearn.utils.validation import check_is_fitted

from .. import verify
from ..bridge import input_rounding, predict_like, verification_chain
from ..utils import NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, Interval, StrOptions, seed_from
from ._base import PIPELINE_EXAMPLE, bridge_inputs, check_params, n_samples_of, untouched
from ._certificates import Certificates
from ._exact import exact_certificates
from ._robust import _check_label_types, _labels_equal
from ._scorer import EstimatorScorer, scorer_settings

METHODS = ("ibp", "crown", "exact", "smoothing")
#: The norms each method certifies.
METHOD_NORMS = {"ibp": ("linf", "l2", "l1"), "crown": ("linf", "l2", "l1"),
                "exact": ("linf", "l1"), "smoothing": ("l2",)}

_CONSTRAINTS = {
    "method": [StrOptions(set(METHODS))],
    "intermediate": [StrOptions({"crown", "ibp"})],
    "time_limit": [None, *POSITIVE],
    "alpha_steps": NON_NEGATIVE_INT,
    "sigma": [None, *POSITIVE],
    "n0": POSITIVE_INT,
    "n": POSITIVE_INT,
    "alpha": [Interval(Real, 0, 1, closed="neither")],
    "return_certificates": ["boolean"],
}


def _check_method(method, norm, sigma, intermediate="crown"):
    if norm not in METHOD_NORMS[method]:
        raise ValueError(
            f"method={method!r} certifies the norms {list(METHOD_NORMS[method])}, not "
            f"norm={norm!r}."
        )
    if method == "smoothing" and sigma is None:
        raise ValueError("method='smoothing' needs sigma, the std of its Gaussian noise.")
    if method != "smoothing" and sigma is not None:
        raise ValueError(f"sigma is smoothing's parameter; method={method!r} takes none.")
    if method != "crown" and intermediate != "crown":
        raise ValueError(f"intermediate={intermediate!r} chooses CROWN's pre-activation "
                         f"bounds: it takes method='crown', not method={method!r}.")


@PIPELINE_EXAMPLE
def certified_accuracy_score(estimator, X, y, *, eps, norm="linf", bounds=None,
                             method="crown", intermediate="crown", return_certificates=False,
                             random_state=None, time_limit=None, alpha_steps=0, sigma=None,
                             n0=100, n=10000, alpha=0.001, batch_size=256):
    """Certified robust accuracy: correct at ``x`` and proven robust in the whole ball.

    The share of points the estimator classifies correctly and that a verifier proves
    robust in the ``norm`` ball of radius ``eps`` intersected with ``bounds``: a lower
    bound of the robust accuracy under every attack (:func:`robust_accuracy_score` gives
    the upper bound), or its exact value with ``method='exact'`` where every point is
    decided.

    Parameters
    ----------
    estimator : fitted classifier
        One of the library's classifiers, or a Pipeline of scalers ending in one, for
        ``'ibp'``, ``'crown'`` and ``'exact'`` (the scalers are folded in: the ball is in
        the raw input space). Any classifier with ``predict`` for ``'smoothing'``, which
        certifies the smoothed version of it (see
        :class:`~sklearn_robust.verify.SmoothedClassifier`).
    X : array-like of shape (n_samples, ...)
        Points, as ``predict`` takes them.
    y : array-like of shape (n_samples,)
        Their labels.
    eps : float
        Radius of the ball (``>= 0``). ``eps=0`` gives the clean accuracy (``'ibp'``,
        ``'crown'``, ``'exact'``).
    norm : {'linf', 'l2', 'l1'}, default='linf'
        The ball's norm: ``'ibp'`` and ``'crown'`` take all three, ``'exact'`` linf and
        l1, ``'smoothing'`` l2.
    bounds : None, 'estimator' or (low, high), default=None
        Valid input range in raw units (scalars or per-feature arrays); the ball is
        intersected with it, which can only help. None: the whole ball. ``'estimator'``:
        the estimator's training bounds, as :func:`robust_accuracy_score` takes them.
    method : {'ibp', 'crown', 'exact', 'smoothing'}, default='crown'
        ``'ibp'``: interval bound propagation with the margins bounded directly.
        ``'crown'``: backward linear bounds (CROWN, adaptive slopes; with
        ``alpha_steps > 0`` alpha-CROWN). ``'exact'``: complete verification by one MILP
        per point and wrong class (HiGHS), pre-activation bounds from CROWN.
        ``'smoothing'``: randomized smoothing's CERTIFY (Cohen et al. 2019), l2, holding
        with probability ``1 - alpha`` per point.
    intermediate : {'crown', 'ibp'}, default='crown'
        ``'crown'`` only: where the bounds of every ReLU and max pool's input come from.
        ``'crown'``: CROWN itself, layer by layer (full CROWN: the tightest, one backward
        pass per unstable unit; about a minute per 100 points on the default SmallCNN
        on digits, one thread). ``'ibp'``: interval bound propagation (CROWN-IBP: one
        backward pass, for the margins; under a second there, but looser, so fewer
        points certified on networks not trained for it). Both are sound.
    return_certificates : bool, default=False
        Also return the :class:`Certificates` of every point.
    random_state : int, RandomState instance or None, default=None
        Seeds smoothing's noise (the same integer gives the same radii on every call).
    time_limit : float or None, default=None
        ``'exact'``: seconds per point; a point not decided in time is ``'unknown'``.
    alpha_steps : int, default=0
        ``'crown'``: steps of alpha-CROWN's slope optimisation (0: plain CROWN).
    sigma : float or None, default=None
        ``'smoothing'``: std of the Gaussian noise (required there).
    n0, n : int, default=100, 10000
        ``'smoothing'``: samples to select the class, then to estimate its probability.
    alpha : float, default=0.001
        ``'smoothing'``: failure probability of each certificate.
    batch_size : int, default=256
        Points bounded at once (noisy samples at once for ``'smoothing'``).

    Returns
    -------
    score : float
        Fraction of the points certified.
    certificates : Certificates
        Only with ``return_certificates=True``.

    Raises
    ------
    ValueError
        For a negative ``eps``, an unknown ``method`` or ``norm``, a norm the method does
        not certify, smoothing without ``sigma``, ``intermediate='ibp'`` with another
        method than ``'crown'``, a layer no verifier bounds (the message
        names it), X and y of different lengths; all before any bound is computed.
    TypeError
        For ``'ibp'``, ``'crown'`` or ``'exact'`` on a classifier without a torch network.

    See Also
    --------
    robust_accuracy_score : The attacked accuracy, an upper bound.
    make_certified_scorer : This metric as a scorer.

    Notes
    -----
    A certificate holds for the model as it computes, in float32: the bounds are
    computed in float64 and a bound on the float32 rounding of the forward pass is
    subtracted (see :mod:`sklearn_robust.verify`); a pipeline's scaled input, rounded to
    float32 on its way to the network, is covered by enlarging the ball by that
    rounding. The model is left as it was (modes, parameters, gradients).

    Examples
    --------
    %(pipeline_example)s
    >>> from sklearn_robust.metrics import certified_accuracy_score, robust_accuracy_score
    >>> pipe = pipe.fit(X, y)
    >>> certified = certified_accuracy_score(pipe, X, y, eps=0.01)
    >>> attacked = robust_accuracy_score(pipe, X, y, eps=0.01, random_state=0)
    >>> certified <= attacked <= pipe.score(X, y)
    True
    >>> certified_accuracy_score(pipe, X, y, eps=0.0) == pipe.score(X, y)
    True
    """
    params = check_params("certified_accuracy_score", {
        "eps": eps, "norm": norm, "bounds": bounds, "method": method,
        "intermediate": intermediate, "return_certificates": return_certificates,
        "random_state": random_state, "time_limit": time_limit, "alpha_steps": alpha_steps,
        "sigma": sigma, "n0": n0, "n": n, "alpha": alpha, "batch_size": batch_size},
        _CONSTRAINTS)
    _check_method(method, norm, sigma, intermediate)
    y = column_or_1d(y, warn=True)
    if n_samples_of(X) != y.shape[0]:
        raise ValueError(f"X and y have different lengths: {n_samples_of(X)} != {y.shape[0]}.")
    check_is_fitted(estimator)
    if method == "smoothing":
        certificates = _smoothing(estimator, X, y, params)
    else:
        certificates = _bounded(estimator, X, y, params)
    score = float(certificates.certified.mean()) if y.shape[0] else 0.0
    return (score, certificates) if return_certificates else score


def _bounded(estimator, X, y, params):
    """IBP, CROWN or the MILP on the bridged network."""
    start = time.perf_counter()
    eps, norm, method = float(params["eps"]), params["norm"], params["method"]
    bridged = bridge_inputs(estimator, X, gradients=False, bounds=params["bounds"])
    _check_label_types(y, bridged.model.classes_)
    chain, scales = verification_chain(bridged.model)
    sample_shape = tuple(bridged.X.shape[1:])
    layers = verify.network_layers(chain, sample_shape)  # refuses unknown layers first
    n_points = y.shape[0]
    status = np.full(n_points, "misclassified", dtype=object)
    margin = np.full(n_points, np.nan)
    counter = np.full((n_points, *sample_shape), np.nan)
    with untouched(estimator):
        pred = np.asarray(estimator.predict(X))
        correct = _labels_equal(pred, y)
        idx = np.flatnonzero(correct)
        if idx.size:
            index = {label: i for i, label in enumerate(bridged.model.classes_.tolist())}
            targets = torch.as_tensor([index[label] for label in pred[idx].tolist()])
            x = bridged.X[torch.as_tensor(idx)].detach().cpu().to(torch.float64)
            low, high, eps_eff = _input_set(bridged.bounds, scales, x, eps, norm)
            if method == "exact":
                params = {**params, "bounds_raw": bridged.bounds}
                found = exact_certificates(layers, bridged, estimator, X, x, targets,
                                           eps_eff, norm, low, high, params,
                                           counter_shape=sample_shape)
                status[idx], margin[idx], counter[idx] = found
            else:
                for start_at in range(0, idx.size, params["batch_size"]):
                    part = slice(start_at, start_at + params["batch_size"])
                    bound = _margins(layers, x[part], targets[part], eps_eff, norm,
                                     _part(low, part), _part(high, part), params)
                    margin[idx[part]] = bound
                status[idx] = np.where(margin[idx] > 0, "certified", "unknown")
    return Certificates(status.astype(str), margin, counter, np.full(n_points, np.nan),
                        method, eps, norm, time.perf_counter() - start)


def _part(array, part):
    return None if array is None else array[part]


def _input_set(bounds, scales, x, eps, norm):
    """Box and radius of the set to certify: the ball and ``bounds``, enlarged to cover
    the float32 rounding of a pipeline's scaled input (zero without scalers).

    The rounding moves each coordinate by at most its own radius ``r_i``: the set is
    within the ball of radius ``eps + ||r||`` and the box ``x +- (eps + r)`` (and
    ``bounds`` widened by ``r``); for l_inf the box is the set itself.
    """
    flat = x.reshape(x.shape[0], -1).numpy()
    if bounds is None:
        low = high = None
        reach_low, reach_high = flat - eps, flat + eps
    else:
        low = np.broadcast_to(np.asarray(bounds[0], float).reshape(-1), flat.shape)
        high = np.broadcast_to(np.asarray(bounds[1], float).reshape(-1), flat.shape)
        reach_low, reach_high = np.maximum(flat - eps, low), np.minimum(flat + eps, high)
    rounding = input_rounding(scales, reach_low, reach_high)
    if not rounding.any():
        return _as_box(low, x), _as_box(high, x), eps
    order = {"linf": np.inf, "l2": 2, "l1": 1}[norm]
    eps_eff = eps + float(np.linalg.norm(rounding, ord=order, axis=1).max())
    low = flat - eps - rounding if low is None else np.maximum(flat - eps, low) - rounding
    high = flat + eps + rounding if high is None else np.minimum(flat + eps, high) + rounding
    return _as_box(low, x), _as_box(high, x), eps_eff


def _as_box(side, x):
    return None if side is None else torch.as_tensor(np.array(side, float)).reshape(x.shape)


def _margins(layers, x, y, eps, norm, low, high, params):
    if params["method"] == "ibp":
        bounds = verify.ibp_margin_bounds(layers, x, y, eps=eps, norm=norm, lower=low,
                                          upper=high)
    else:
        bounds = verify.crown_margin_bounds(
            layers, x, y, eps=eps, norm=norm, lower=low, upper=high,
            intermediate=params["intermediate"], alpha_steps=params["alpha_steps"])
    bounds = torch.as_tensor(bounds, dtype=torch.float64).clone()
    bounds[torch.arange(bounds.shape[0]), y] = torch.inf
    return bounds.min(dim=1).values.numpy()


def _smoothing(estimator, X, y, params):
    """Cohen et al.'s CERTIFY of the estimator smoothed with Gaussian noise."""
    start = time.perf_counter()
    data = np.asarray(X, dtype=np.float32)
    classes = np.asarray(estimator.classes_)
    _check_label_types(y, classes)
    index = {label: i for i, label in enumerate(classes.tolist())}

    def predict_labels(batch):
        labels = np.asarray(predict_like(estimator, batch.astype(np.float32), X))
        return np.asarray([index[label] for label in labels.tolist()])

    with untouched_if_torch(estimator):
        prediction, radius = verify.smoothed_certify(
            predict_labels, data, sigma=params["sigma"], n0=params["n0"], n=params["n"],
            alpha=params["alpha"], batch_size=params["batch_size"],
            random_state=seed_from(params["random_state"]))
    prediction = np.asarray(prediction)
    radius = np.asarray(radius, dtype=float)
    abstain = prediction < 0
    predicted = np.where(abstain, None, classes[np.where(abstain, 0, prediction)])
    correct = ~abstain & _labels_equal(predicted, y)
    eps = float(params["eps"])
    status = np.where(abstain, "abstain", np.where(
        ~correct, "misclassified", np.where(radius > eps if eps else correct, "certified",
                                            "unknown")))
    n_points = y.shape[0]
    return Certificates(status.astype(str), np.full(n_points, np.nan),
                        np.full(data.shape, np.nan), np.where(abstain, np.nan, radius),
                        "smoothing", eps, params["norm"], time.perf_counter() - start)


def untouched_if_torch(estimator):
    """:func:`untouched` for the library's classifiers; nothing to restore for others."""
    return untouched(estimator) if hasattr(estimator, "module_") else nullcontext()


def make_certified_scorer(**kwargs):
    """A scorer ``scorer(estimator, X, y)`` of :func:`certified_accuracy_score`.

    Parameters
    ----------
    **kwargs
        Keyword arguments of :func:`certified_accuracy_score` (``eps`` required), checked
        now.

    Returns
    -------
    scorer : callable
        For ``scoring=`` in ``GridSearchCV`` and ``cross_validate``.

    Examples
    --------
    >>> from sklearn_robust.metrics import make_certified_scorer
    >>> make_certified_scorer(eps=0.05, method="ibp")
    make_scorer(certified_accuracy_score, eps=0.05, norm='linf', bounds=None, method='ibp', ...)
    """
    if "eps" not in kwargs:
        raise TypeError("make_certified_scorer needs eps, the radius to certify.")
    settings = scorer_settings(certified_accuracy_score, kwargs, "make_certified_scorer",
                               fixed=("return_certificates",))
    check_params("make_certified_scorer", {k: v for k, v in settings.items()},
                 _CONSTRAINTS)
    _check_method(settings["method"], settings["norm"], settings["sigma"],
                  settings["intermediate"])
    ordered = {name: settings[name] for name in (
        "eps", "norm", "bounds", "method", "intermediate", "random_state", "time_limit",
        "alpha_steps", "sigma", "n0", "n", "alpha", "batch_size")}
    return EstimatorScorer(certified_accuracy_score, ordered, name="certified_accuracy")
