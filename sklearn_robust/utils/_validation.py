"""One validation module for the package, on scikit-learn's parameter-validation tools.

Estimators declare ``_parameter_constraints`` and call :func:`validate_params_of`;
functions and small objects validate single values with the ``check_*`` helpers below.
Either way the error is scikit-learn's ``InvalidParameterError`` (a ``ValueError`` and a
``TypeError``), whose message names the parameter, what it must be and what it got.
"""

import math
from numbers import Integral, Real

import numpy as np

# scikit-learn's parameter validation is private API: this is the package's one import of
# it (every other module takes these names from sklearn_robust.utils). Tested with
# scikit-learn 1.6.1 (pyproject.toml's lower bound) and 1.9.1 (constraints.txt).
from sklearn.utils._param_validation import (
    HasMethods,
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    validate_parameter_constraints,
)

__all__ = [
    "BOUNDS",
    "FRACTION",
    "HasMethods",
    "Hidden",
    "Interval",
    "InvalidParameterError",
    "NON_NEGATIVE",
    "NON_NEGATIVE_INT",
    "NORMS",
    "Options",
    "POSITIVE",
    "POSITIVE_INT",
    "POSITIVE_INT_OR_AUTO",
    "StrOptions",
    "check_bounds",
    "check_bounds_contain",
    "check_eps",
    "check_fraction",
    "check_int",
    "check_norm",
    "check_positive",
    "check_scalar_param",
    "validate_params_of",
]

# Who a message names when the caller does not say.
_CALLER = "sklearn_robust"

#: The norms of the threat balls.
NORMS = ("linf", "l2", "l1")

# Reusable constraints (lists of accepted kinds, as ``_parameter_constraints`` takes them).
NON_NEGATIVE = [Interval(Real, 0, None, closed="left")]
POSITIVE = [Interval(Real, 0, None, closed="neither")]
POSITIVE_INT = [Interval(Integral, 1, None, closed="left")]
NON_NEGATIVE_INT = [Interval(Integral, 0, None, closed="left")]
FRACTION = [Interval(Real, 0, 1, closed="right")]
POSITIVE_INT_OR_AUTO = [*POSITIVE_INT, StrOptions({"auto"})]
BOUNDS = [None, tuple, list, np.ndarray]


def _numeric_only(constraints):
    # Numbers are expected when every constraint but None is an interval.
    kinds = [c for c in constraints if c is not None]
    return bool(kinds) and all(isinstance(c, Interval) for c in kinds)


def validate_params_of(constraints, params, caller):
    """Validate ``params`` (a dict) against ``constraints`` on behalf of ``caller``.

    scikit-learn's ``validate_parameter_constraints``, plus two rules it leaves out:
    booleans are not numbers here (``steps=True`` is a mistake), and numeric values must
    be finite (``eps=inf`` is not a radius). Parameters absent from ``constraints`` are
    not checked.

    Examples
    --------
    >>> from numbers import Real
    >>> validate_params_of({"eps": [Interval(Real, 0, None, closed="left")]},
    ...                    {"eps": -1.0}, "ThreatModel")
    Traceback (most recent call last):
    ...
    sklearn.utils._param_validation.InvalidParameterError: The 'eps' parameter of \
ThreatModel must be a float in the range [0.0, inf). Got -1.0 instead.
    """
    checked = {k: v for k, v in params.items() if k in constraints}
    for name, value in checked.items():
        kinds = constraints[name]
        if kinds == "no_validation" or not _numeric_only(kinds):
            continue
        if value is None:
            continue
        if isinstance(value, (bool, np.bool_)):
            raise InvalidParameterError(
                f"The {name!r} parameter of {caller} must be a number, not a boolean. "
                f"Got {value!r} instead."
            )
        if isinstance(value, Real) and not math.isfinite(value):
            raise InvalidParameterError(
                f"The {name!r} parameter of {caller} must be finite. Got {value!r} instead."
            )
    validate_parameter_constraints(constraints, checked, caller_name=caller)


def check_scalar_param(value, name, constraints, caller):
    """Validate one value against a list of constraints; return it unchanged."""
    validate_params_of({name: constraints}, {name: value}, caller)
    return value


def check_eps(eps, name="eps", caller=None, *, positive=False):
    """``float(eps)`` for a finite real radius ``>= 0`` (``> 0`` with ``positive``)."""
    return float(check_scalar_param(eps, name, POSITIVE if positive else NON_NEGATIVE,
                                    caller or _CALLER))


def check_positive(value, name, caller=None):
    """``float(value)`` for a finite real number ``> 0``."""
    return float(check_scalar_param(value, name, POSITIVE, caller or _CALLER))


def check_int(value, name, caller=None, *, low=1):
    """``int(value)`` for an integer ``>= low`` (booleans refused)."""
    constraint = [Interval(Integral, low, None, closed="left")]
    return int(check_scalar_param(value, name, constraint, caller or _CALLER))


def check_fraction(value, name, caller=None):
    """``float(value)`` for a number in ``(0, 1]``."""
    return float(check_scalar_param(value, name, FRACTION, caller or _CALLER))


def check_norm(norm, name="norm", caller=None, norms=NORMS):
    """``norm`` if it is one of ``norms``, else ``InvalidParameterError`` naming it."""
    return check_scalar_param(norm, name, [StrOptions(set(norms))], caller or _CALLER)


def check_bounds(bounds, name="bounds"):
    """Validate ``bounds``: None or a ``(low, high)`` pair of scalars or arrays.

    Returns ``None`` or a pair of float32 numpy arrays (0-d for scalars). Raises
    ``ValueError`` when an entry is not finite or when ``low > high`` anywhere.

    Examples
    --------
    >>> check_bounds((0, 1))
    (array(0., dtype=float32), array(1., dtype=float32))
    >>> check_bounds((1, 0))
    Traceback (most recent call last):
    ...
    ValueError: bounds must satisfy low <= high everywhere, got low > high.
    """
    if bounds is None:
        return None
    if isinstance(bounds, str) or not hasattr(bounds, "__len__") or len(bounds) != 2:
        raise ValueError(f"{name} must be None, 'auto' or a (low, high) pair, got {bounds!r}.")
    try:
        low, high = (np.asarray(b, dtype=np.float64) for b in bounds)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must hold numbers, got {bounds!r}.") from exc
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError(f"{name} must be finite, got {bounds!r}.")
    try:
        np.broadcast_shapes(low.shape, high.shape)
    except ValueError as exc:
        raise ValueError(
            f"{name}: low and high have incompatible shapes {low.shape} and {high.shape}."
        ) from exc
    if np.any(low > high):
        raise ValueError(f"{name} must satisfy low <= high everywhere, got low > high.")
    return low.astype(np.float32), high.astype(np.float32)


def check_bounds_contain(bounds, X, name="bounds"):
    """:func:`check_bounds`, then check the bounds fit one sample of ``X`` and contain ``X``.

    Returns ``None`` or the ``(low, high)`` pair; raises ``ValueError`` naming the problem
    (shapes that do not broadcast to one sample, or data outside the bounds: values are
    never clipped silently).

    Examples
    --------
    >>> import numpy as np
    >>> check_bounds_contain((0.0, 1.0), np.array([[0.2, 0.9]]))
    (array(0., dtype=float32), array(1., dtype=float32))
    >>> check_bounds_contain((0.0, 0.5), np.array([[0.2, 0.9]]))
    Traceback (most recent call last):
    ...
    ValueError: X has values outside the declared bounds (0.0, 0.5); widen them.
    """
    checked = check_bounds(bounds, name)
    if checked is None:
        return None
    low, high = checked
    sample_shape = tuple(np.shape(X)[1:])
    for b in (low, high):
        try:
            np.broadcast_shapes(b.shape, sample_shape)
        except ValueError:
            raise ValueError(
                f"{name} must be scalars or broadcast to one sample's shape {sample_shape}, "
                f"got shape {b.shape}."
            ) from None
    if np.any(X < low - 1e-6) or np.any(X > high + 1e-6):
        raise ValueError(f"X has values outside the declared {name} {bounds!r}; widen them.")
    return low, high
