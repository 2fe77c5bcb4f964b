"""The valid input range, in raw input units: the estimator's and the metrics' argument.

An estimator's training bounds (:func:`training_bounds`) mapped back through the scalers
in front of it (:func:`bounds_through`) are the bridge's ``bounds``; the ``bounds``
argument of the metrics (:func:`check_bounds_arg`, :func:`resolve_bounds`) reads them.
"""

import numpy as np

from ..utils import check_bounds, check_bounds_contain

#: The ``bounds`` value meaning "the estimator's own training bounds".
ESTIMATOR_BOUNDS = "estimator"


class _UnknownBounds:
    """The training bounds of a net initialised without data (skorch's restore idiom)."""

    def __repr__(self):
        return "UNKNOWN_BOUNDS"


#: ``bridge.bounds`` of an estimator whose training range is unknown: ``'estimator'``
#: bounds are then an error naming the way out, never a silent unbounded attack.
UNKNOWN_BOUNDS = _UnknownBounds()


def check_bounds_arg(bounds):
    """Validate a ``bounds`` argument: ``'estimator'``, None or ``(low, high)``.

    Examples
    --------
    >>> check_bounds_arg("estimator")
    'estimator'
    >>> check_bounds_arg((0, 1))
    (array(0., dtype=float32), array(1., dtype=float32))
    """
    if isinstance(bounds, str):
        if bounds != ESTIMATOR_BOUNDS:
            raise ValueError(f"bounds must be 'estimator', None or (low, high), got {bounds!r}.")
        return bounds
    return check_bounds(bounds)


def resolve_bounds(bounds, bridge, X):
    """The attack's bounds in raw space from a ``bounds`` argument.

    ``'estimator'``: the bridge's translated training bounds widened to contain ``X`` (a
    test point outside the training range is still a valid input), or None. ``None``: no
    bounds. A pair: validated, broadcastable to one sample, and ``X`` must lie inside.

    Parameters
    ----------
    bounds : 'estimator', None or (low, high)
        The argument.
    bridge : TorchClassifier
        The bridged estimator (its ``bounds`` serve ``'estimator'``).
    X : torch.Tensor of shape (n_samples, ...)
        The points to attack, in raw units.

    Returns
    -------
    None or (ndarray, ndarray)
        float32 bounds.

    Examples
    --------
    >>> import torch
    >>> from types import SimpleNamespace
    >>> bridge = SimpleNamespace(bounds=(0.0, 1.0))
    >>> low, high = resolve_bounds("estimator", bridge, torch.tensor([[0.5, 1.5]]))
    >>> float(low), float(high)  # widened to contain X
    (0.0, 1.5)
    >>> resolve_bounds(None, bridge, torch.zeros(1, 2)) is None
    True
    """
    X_np = X.detach().cpu().numpy()
    if not isinstance(check_bounds_arg(bounds), str):
        return check_bounds_contain(bounds, X_np)
    if bridge.bounds is None:
        return None
    if bridge.bounds is UNKNOWN_BOUNDS:
        raise ValueError(
            "bounds='estimator' needs the estimator's training range, which a net "
            "initialised without data (initialize() then load_params) does not know: pass "
            "bounds=(low, high) (or None) here, or give the estimator explicit bounds."
        )
    low, high = (np.asarray(b) for b in bridge.bounds)
    if low.ndim == 0 and high.ndim == 0:
        return (np.float32(min(low, X_np.min())), np.float32(max(high, X_np.max())))
    sample_shape = tuple(X.shape[1:])
    low = np.minimum(np.broadcast_to(low, sample_shape), X_np.min(axis=0))
    high = np.maximum(np.broadcast_to(high, sample_shape), X_np.max(axis=0))
    return low.astype(np.float32), high.astype(np.float32)


def training_bounds(estimator):
    """The valid input range of one of our estimators, in its own input space, or None.

    One rule for every estimator, so that Natural and TRADES are attacked in the same box:
    the bounds it trained with if its threat model has them; otherwise its ``bounds``
    parameter, where an estimator without one (Natural, GR) follows ``'auto'``, the global
    range of its training data (``input_range_``). ``bounds=None`` means unbounded.
    """
    threat = getattr(estimator, "threat_model_", None)
    if threat is not None and threat.bounds is not None:
        return check_bounds(threat.bounds)
    declared = estimator.get_params(deep=False).get("bounds", "auto")
    if not isinstance(declared, str):
        return None if declared is None else check_bounds(declared)
    data_range = getattr(estimator, "input_range_", None)
    if data_range is None:
        return UNKNOWN_BOUNDS
    return check_bounds(data_range)


def bounds_through(bounds, affines, n_features):
    """Training bounds of the network mapped back through the scalers to raw units."""
    if bounds is None or bounds is UNKNOWN_BOUNDS or not affines:
        return bounds
    # Every scaler is increasing per feature: map the box back step by step.
    low, high = (np.broadcast_to(b.astype(np.float64), (n_features,)) for b in bounds)
    for affine in reversed(affines):
        a, b = affine.inverse(low), affine.inverse(high)
        low, high = np.minimum(a, b), np.maximum(a, b)
    return low.astype(np.float32), high.astype(np.float32)
