"""Exact nearest-other-class distances, computed in memory-bounded blocks.

The quantities behind r-separation (Yang et al. 2020) are nearest-neighbour distances
restricted by label: for a query point, the distance to the closest reference point of
a *different* label, or the distance to the closest point of *each* class. They are
computed exactly (every pair is measured, or, for ``'linf'``, proven unable to lower a
minimum), without ever building the full distance matrix: blocks are sized from a byte
budget (``chunk_bytes``), so a 60,000 x 784 problem needs a few hundred MiB at most.

Two engines do the work, with the same two jobs (``other`` and ``per_class``):
:class:`~._linf.LinfSearch` for ``'linf'`` (a candidate index, then 0/1 certificates
as int8 products) and :class:`~._pairwise.PairwiseSearch` for ``'l1'``/``'l2'`` (on
scikit-learn's ``pairwise_distances_chunked``, with a float64 re-check for ``'l2'``).
For the training set against itself, only pairs of different labels count, so a point
is never its own neighbour; exact duplicates carrying different labels give distance 0.
"""

import numpy as np
from tqdm.auto import tqdm

from ..utils import check_norm
from ._linf import LinfSearch
from ._pairwise import PairwiseSearch
from ._validation import (
    check_chunk_bytes,
    check_labels,
    check_n_features,
    check_points,
    cites_yang,
    encode_labels,
)

__all__ = [
    "class_distances",
    "class_matrix",
    "nearest_other_class_distances",
    "test_train",
    "train_train",
]


def _search(XQ, XR, q_codes, r_codes, n_classes, *, norm, chunk_bytes, device, verbose,
            desc):
    """The one driver: the engine of ``norm``, its job, a progress bar (rows done).

    With ``q_codes``, each query against the references of another code (``XR is XQ``:
    the training set against itself, each unordered pair once where the engine can);
    without, each query against every class (``n_classes`` columns).
    """
    budget = check_chunk_bytes(chunk_bytes)
    if norm == "linf":
        engine = LinfSearch(XQ, XR, budget, device)
        total = XQ.shape[0] * (1 if q_codes is not None else n_classes)
    else:
        engine = PairwiseSearch(XQ, XR, norm, budget)
        total = None  # rows are counted once per tile of references
    with tqdm(total=total, desc=desc, disable=not verbose, leave=False) as bar:
        if q_codes is None:
            return engine.per_class(r_codes, n_classes, bar)
        return engine.other(q_codes, r_codes, XR is XQ, bar)


def train_train(X, codes, *, norm="linf", chunk_bytes=None, device=None, verbose=False):
    """Array-level train-train distances: ``X`` validated, ``codes`` integer labels."""
    return _search(X, X, codes, codes, None, norm=norm, chunk_bytes=chunk_bytes,
                   device=device, verbose=verbose, desc="train-train")


def test_train(X, q_codes, X_ref, r_codes, *, norm="linf", chunk_bytes=None, device=None,
               verbose=False):
    """Array-level test-train distances (query code -1: label absent from the references)."""
    return _search(X, X_ref, q_codes, r_codes, None, norm=norm, chunk_bytes=chunk_bytes,
                   device=device, verbose=verbose, desc="test-train")


def class_matrix(X, X_ref, r_codes, n_classes, *, norm="linf", chunk_bytes=None, device=None,
                 verbose=False):
    """Array-level per-class distances, columns indexed by the codes ``0..n_classes-1``."""
    return _search(X, X_ref, None, r_codes, n_classes, norm=norm, chunk_bytes=chunk_bytes,
                   device=device, verbose=verbose, desc="per class")


@cites_yang
def nearest_other_class_distances(
    X, y, X_ref=None, y_ref=None, *, norm="linf", chunk_bytes=None, device=None
):
    """Exact distance from each point to the nearest reference point of another label.

    Without references, the training set is measured against itself (Yang et al.'s
    "Train-Train" separation): only pairs with different labels count, so a point is
    never its own neighbour, and duplicates with different labels give 0. With
    references (``X_ref``, ``y_ref``), each row of ``X`` is measured against them
    ("Test-Train"); a query whose label does not occur in ``y_ref`` has every
    reference as "another label".

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or (n_samples, ...)
        Query points; images ``(n, ...)`` are flattened to ``(n, d)``. float32 input
        (and small integers) is computed as float32, anything else as float64. No NaN
        or inf.
    y : array-like of shape (n_samples,)
        Labels of ``X``.
    X_ref : array-like of shape (n_ref, n_features), default=None
        Reference points; ``None`` measures ``X`` against itself.
    y_ref : array-like of shape (n_ref,), default=None
        Labels of ``X_ref``; required with ``X_ref``.
    norm : {'linf', 'l2', 'l1'}, default='linf'
        Distance.
    chunk_bytes : int or None, default=None
        Working-memory budget of one block in bytes (see
        :func:`~sklearn_robust.separation._validation.block_size`); ``None`` means
        128 MiB.
    device : str, torch.device or None, default=None
        Where ``'linf'`` blocks are computed (``None``: CPU).

    Returns
    -------
    distances : ndarray of shape (n_samples,), float64
        ``distances[i] = min{ ||X[i] - X_ref[j]|| : y_ref[j] != y[i] }``.

    Raises
    ------
    ValueError
        Unknown norm, NaN or inf in the data, inconsistent lengths or feature counts,
        or no reference point with another label (e.g. one class only).

    %(references)s

    Examples
    --------
    Two points per class on a line:

    >>> from sklearn_robust.separation._distances import nearest_other_class_distances
    >>> X, y = [[0.0], [1.0], [3.0], [4.0]], [0, 0, 1, 1]
    >>> nearest_other_class_distances(X, y)
    array([3., 2., 2., 3.])
    >>> nearest_other_class_distances([[2.5], [-1.0]], [0, 1], X, y, norm="l2")
    array([0.5, 2. ])
    """
    caller = "nearest_other_class_distances"
    check_norm(norm, "norm", caller)
    check_chunk_bytes(chunk_bytes, caller)
    X = check_points(X, "X")
    y = check_labels(y, X, "y")
    kw = {"norm": norm, "chunk_bytes": chunk_bytes, "device": device}
    if X_ref is None:
        if y_ref is not None:
            raise ValueError("y_ref was given without X_ref.")
        classes, codes, _ = encode_labels(y)
        if len(classes) < 2:
            raise ValueError(
                f"need at least 2 classes to measure separation, got {len(classes)} class."
            )
        return train_train(X, codes, **kw)
    if y_ref is None:
        raise ValueError("X_ref was given without y_ref.")
    X_ref = check_points(X_ref, "X_ref")
    y_ref = check_labels(y_ref, X_ref, "y_ref")
    check_n_features(X, X_ref, "X", "X_ref")
    classes, r_codes, q_codes = encode_labels(y_ref, y)
    if len(classes) < 2 and np.any(q_codes == 0):
        raise ValueError("some queries have no reference point of another label.")
    return test_train(X, q_codes, X_ref, r_codes, **kw)


@cites_yang
def class_distances(X, X_ref, y_ref, *, norm="linf", chunk_bytes=None, device=None):
    """Exact distance from each point to the nearest reference point of each class.

    Row ``i`` is ``(dist(X[i], X_ref[y_ref == c]) for c in classes)``, the function
    ``r * f(x)`` of Yang et al.'s constructive proof: ``classes[argmin]`` is the
    classifier that is astute with radius ``r`` when the classes are ``2r``-separated.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or (n_samples, ...)
        Query points; images are flattened. No NaN or inf.
    X_ref : array-like of shape (n_ref, n_features)
        Reference points.
    y_ref : array-like of shape (n_ref,)
        Labels of the reference points.
    norm : {'linf', 'l2', 'l1'}, default='linf'
        Distance.
    chunk_bytes : int or None, default=None
        Working-memory budget of one block in bytes; ``None`` means 128 MiB.
    device : str, torch.device or None, default=None
        Where ``'linf'`` blocks are computed (``None``: CPU).

    Returns
    -------
    distances : ndarray of shape (n_samples, n_classes), float64
        Columns ordered as ``np.unique(y_ref)``.

    %(references)s

    Examples
    --------
    >>> from sklearn_robust.separation._distances import class_distances
    >>> X_ref, y_ref = [[0.0], [1.0], [3.0], [4.0]], ["a", "a", "b", "b"]
    >>> class_distances([[2.0], [5.0]], X_ref, y_ref, norm="l1")
    array([[1., 1.],
           [4., 1.]])
    """
    caller = "class_distances"
    check_norm(norm, "norm", caller)
    check_chunk_bytes(chunk_bytes, caller)
    X = check_points(X, "X")
    X_ref = check_points(X_ref, "X_ref")
    y_ref = check_labels(y_ref, X_ref, "y_ref")
    check_n_features(X, X_ref, "X", "X_ref")
    classes, r_codes, _ = encode_labels(y_ref)
    return class_matrix(
        X, X_ref, r_codes, len(classes), norm=norm, chunk_bytes=chunk_bytes, device=device
    )
