"""Validation for the separation package, in one place: options, points, labels, budget.

Every entry point (:func:`r_separation`, :class:`RSeparation`, the array-level distance
functions) checks its arguments here, on :mod:`sklearn_robust.utils` and
scikit-learn's validation, before any distance is computed.
"""

import math
from numbers import Integral, Real

import numpy as np
from sklearn.utils import assert_all_finite
from sklearn.utils.validation import check_array, check_consistent_length, column_or_1d

from ..utils import (
    NORMS,
    Interval,
    InvalidParameterError,
    StrOptions,
    Substitution,
    check_eps,
    check_int,
    check_norm,
    check_scalar_param,
)

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "PARAMETER_CONSTRAINTS",
    "block_size",
    "cites_yang",
    "check_chunk_bytes",
    "check_labels",
    "check_n_features",
    "check_options",
    "check_percentiles",
    "check_points",
    "encode_labels",
    "point_dtype",
]

DEFAULT_CHUNK_BYTES = 128 * 2**20
"""Default working-memory budget of one block (128 MiB)."""

#: ``_parameter_constraints`` of the options shared by every entry point; ``eps`` and
#: ``chunk_bytes`` are further checked (finite, not boolean) by :func:`check_options`.
PARAMETER_CONSTRAINTS = {
    "norm": [StrOptions(set(NORMS))],
    "eps": [None, Interval(Real, 0, None, closed="left")],
    "chunk_bytes": [None, Interval(Integral, 1, None, closed="left")],
    "device": "no_validation",
}

# Worst-case bytes per (query, reference) pair of a block: the distance block (8), the
# same-label mask (1), candidate masks (3), a gathered threshold matrix (4) and the
# int64 indices of candidates (16).
PAIR_BYTES = 32
# Bytes per feature of one loaded row: the gathered copy and its converted copies;
# for l_inf, the differences to the per-feature extremes and the 0/1 certificate rows.
ROW_FEATURE_BYTES = 24
# Share of the budget kept for blocks; the rest bounds the exact re-check buffers.
BLOCK_SHARE = 0.75

#: Decorator adding the paper's reference to a docstring (``%(references)s``).
cites_yang = Substitution(references="""
    References
    ----------
    .. [1] Y.-Y. Yang, C. Rashtchian, H. Zhang, R. Salakhutdinov, K. Chaudhuri,
       "A Closer Look at Accuracy vs. Robustness", NeurIPS 2020.
""")

_PERCENTILE = [Interval(Real, 0, 100, closed="both")]


def check_chunk_bytes(chunk_bytes, caller="sklearn_robust.separation"):
    """The byte budget: :data:`DEFAULT_CHUNK_BYTES` for ``None``, else an int >= 1."""
    if chunk_bytes is None:
        return DEFAULT_CHUNK_BYTES
    return check_int(chunk_bytes, "chunk_bytes", caller, low=1)


def check_options(norm, eps, chunk_bytes, caller):
    """Validate the shared options; return ``(norm, eps as float or None, budget)``."""
    check_norm(norm, "norm", caller)
    if eps is not None:
        eps = check_eps(eps, "eps", caller)
    return norm, eps, check_chunk_bytes(chunk_bytes, caller)


def check_percentiles(percentiles, caller):
    """``list(percentiles)`` if it is a sequence of numbers in [0, 100]."""
    try:
        qs = list(percentiles)
    except TypeError:
        raise InvalidParameterError(
            f"The 'percentiles' parameter of {caller} must be a sequence of numbers in "
            f"[0, 100]. Got {percentiles!r} instead."
        ) from None
    for q in qs:
        check_scalar_param(q, "percentiles", _PERCENTILE, caller)
    return qs


def point_dtype(X):
    """The float dtype(s) points are converted to.

    float32 stays float32, and small integers (e.g. uint8 images) become float32: they
    are exact in it, at half the memory; anything else becomes float64.
    """
    dtype = getattr(X, "dtype", None)
    try:
        dtype = np.dtype(object if dtype is None else dtype)
    except TypeError:  # e.g. a torch dtype
        dtype = np.dtype(object)
    if dtype.kind in "iub" and dtype.itemsize <= 2:
        return np.float32
    return [np.float64, np.float32]


def check_points(X, name):
    """Points as a C-ordered float array of shape ``(n, d)``; images are flattened."""
    X = check_array(X, dtype=point_dtype(X), order="C", allow_nd=True, input_name=name)
    return X.reshape(X.shape[0], -1)


def check_labels(y, X, name):
    """Labels as a 1-d array with one label per row of ``X``, finite if numeric."""
    if y is None:
        raise ValueError(f"{name} is required.")
    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    if y.dtype.kind in "fc":
        assert_all_finite(y, input_name=name)
    return y


def check_n_features(X, X_ref, name, ref_name):
    """Raise ``ValueError`` unless queries and references have as many features."""
    if X.shape[1] != X_ref.shape[1]:
        raise ValueError(
            f"{name} has {X.shape[1]} features but {ref_name} has {X_ref.shape[1]}."
        )


def encode_labels(y_ref, y=None):
    """Integer codes of labels: ``classes`` sorted, ``y_ref`` and ``y`` as indices into it.

    Labels of ``y`` absent from ``y_ref`` get code ``-1``: every reference class is
    "another class" for them. Returns ``(classes, ref_codes, codes)`` (``codes`` is None
    without ``y``).
    """
    classes, ref_codes = np.unique(y_ref, return_inverse=True)
    ref_codes = ref_codes.reshape(-1).astype(np.int64)
    if y is None:
        return classes, ref_codes, None
    try:
        pos = np.searchsorted(classes, y)
        pos = np.clip(pos, 0, len(classes) - 1)
        known = classes[pos] == y
    except TypeError as exc:
        raise ValueError(
            f"labels of the queries ({np.asarray(y).dtype}) cannot be compared with the "
            f"reference labels ({classes.dtype})."
        ) from exc
    codes = np.where(np.asarray(known, dtype=bool), pos, -1).astype(np.int64)
    return classes, ref_codes, codes


def block_size(n_features, chunk_bytes=None):
    """Rows per chunk so that one square block of distances fits the byte budget.

    A block holds ``s`` query rows, ``s`` reference rows and the ``s x s`` pairs
    between them; ``s`` is the largest integer with
    ``32 s^2 + 2 * 24 * n_features * s <= 0.75 * chunk_bytes`` (worst-case bytes per
    pair and per loaded feature), and at least 1. The remaining quarter of the budget
    bounds the exact re-check of ``'l2'`` candidates.

    Parameters
    ----------
    n_features : int
        Number of features of each point.
    chunk_bytes : int or None, default=None
        Working-memory budget in bytes; ``None`` means :data:`DEFAULT_CHUNK_BYTES`.

    Returns
    -------
    s : int
        Rows per query chunk and per reference chunk.

    Examples
    --------
    >>> from sklearn_robust.separation._validation import block_size
    >>> s = block_size(784)
    >>> s
    1280
    >>> 32 * s**2 + 48 * 784 * s <= 0.75 * 128 * 2**20
    True
    >>> block_size(784, chunk_bytes=1)
    1
    """
    budget = BLOCK_SHARE * check_chunk_bytes(chunk_bytes, "block_size")
    a = float(PAIR_BYTES)
    b = 2.0 * ROW_FEATURE_BYTES * max(int(n_features), 1)
    s = int((-b + math.sqrt(b * b + 4.0 * a * budget)) / (2.0 * a))
    while s > 1 and a * s * s + b * s > budget:  # guard against rounding up
        s -= 1
    return max(1, s)
