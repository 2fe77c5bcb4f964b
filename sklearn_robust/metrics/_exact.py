"""The exact method of :func:`certified_accuracy_score`: one MILP per point, every
counterexample moved into the ball and confirmed by the model and by ``predict``."""

import numpy as np
import torch

from .. import verify
from ..bridge import predict_like


def exact_certificates(layers, bridged, estimator, X, x, targets, eps, norm, low, high, params,
           counter_shape):
    """One MILP per point; every counterexample is confirmed by the model and ``predict``."""
    dense = verify.dense_layers(layers)
    status, margin, counter = [], [], []
    for i in range(x.shape[0]):
        lo = None if low is None else low[i].reshape(-1).numpy()
        hi = None if high is None else high[i].reshape(-1).numpy()
        box = dict(eps=eps, norm=norm, lower=_row(low, i), upper=_row(high, i))
        preact = verify.preactivation_bounds(layers, x[i:i + 1], **box)
        # The MILP decides the network in exact arithmetic: robust for the float32 model
        # once every margin exceeds the rounding slack of its forward pass.
        slack = float(verify.rounding_slack(layers, x[i:i + 1], targets[i:i + 1], **box).max())
        result = verify.exact_verify(
            dense, x[i].reshape(-1).numpy(), int(targets[i]), eps=eps, norm=norm, lower=lo,
            upper=hi, preact=preact, time_limit=params["time_limit"], margin_target=slack)
        point = np.full(counter_shape, np.nan)
        verdict, bound = result.status, result.min_margin
        if verdict == "counterexample":
            candidate = _confirmed_in_ball(result, bridged, estimator, X, x[i], targets[i],
                                           dense, norm, params, counter_shape)
            if candidate is None:
                verdict = "unknown"
            else:
                point = candidate
            bound = np.nan
        status.append("certified" if verdict == "robust" else verdict)
        margin.append(bound - slack if verdict == "robust" else np.nan)
        counter.append(point)
    return np.asarray(status, dtype=object), np.asarray(margin, float), np.asarray(counter)


def _confirmed_in_ball(result, bridged, estimator, X, x, target, dense, norm, params,
                      shape):
    """A counterexample in the ball itself, confirmed by the model, or None.

    The MILP searched the ball enlarged by the input rounding; its point is moved into
    the ball. If the model does not misclassify it there, the MILP searches the ball
    itself (without the rounding slack) once more.
    """
    eps, bounds = float(params["eps"]), params["bounds_raw"]
    centre = x.reshape(-1).numpy()
    for attempt in range(2):
        candidate = _into_ball(np.asarray(result.counterexample, float), centre, eps, norm,
                               bounds)
        candidate = candidate.astype(np.float32).reshape(shape)
        if _confirmed(bridged, estimator, X, candidate, int(target)):
            return candidate
        if attempt:
            return None
        low, high = (None, None) if bounds is None else (
            np.broadcast_to(np.asarray(bounds[0], float).reshape(-1), centre.shape),
            np.broadcast_to(np.asarray(bounds[1], float).reshape(-1), centre.shape))
        result = verify.exact_verify(dense, centre, int(target), eps=eps, norm=norm,
                                     lower=low, upper=high, time_limit=params["time_limit"])
        if result.status != "counterexample":
            return None
    return None


def _into_ball(point, x, eps, norm, bounds):
    """``point`` moved into the ball of radius ``eps`` around ``x`` and the box.

    The MILP searched the ball enlarged by the input rounding; a counterexample must lie
    in the ball itself (up to float32 rounding of each coordinate). Shrinking towards
    ``x`` keeps it in the box, which holds both.
    """
    delta = point - x
    if norm == "linf":
        delta = np.clip(delta, -eps, eps)
    else:
        size = np.abs(delta).sum()
        delta = delta * min(1.0, eps / size) if size > 0 else delta
    moved = x + delta
    if bounds is not None:
        moved = np.clip(moved, np.asarray(bounds[0], float).reshape(-1),
                        np.asarray(bounds[1], float).reshape(-1))
    return moved


def _row(array, i):
    return None if array is None else array[i:i + 1]


def _confirmed(bridged, estimator, X, candidate, target):
    """Whether the real model, in float32, and ``predict`` both misclassify ``candidate``."""
    with torch.no_grad():
        scores = bridged.model(torch.as_tensor(candidate[None], device=bridged.model.device))
    if int(scores.argmax(dim=1)) == target:
        return False
    label = np.asarray(predict_like(estimator, candidate[None], X))[0]
    return label != bridged.model.classes_[target]
