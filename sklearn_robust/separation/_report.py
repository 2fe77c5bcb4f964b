"""The r-separation report of a labelled data set (Yang et al. 2020, Section 3)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from ._distances import test_train, train_train
from ._validation import (
    check_labels,
    check_n_features,
    check_options,
    check_percentiles,
    check_points,
    cites_yang,
    encode_labels,
)

__all__ = ["SeparationReport", "r_separation"]


@cites_yang
@dataclass(frozen=True, eq=False, repr=False)
class SeparationReport:
    """Train-Train and Test-Train separation of a data set, compared with ``2 * eps``.

    Returned by :func:`r_separation`; printing it shows a small table. Distances are
    exact nearest-neighbour distances restricted to points of another label.

    Parameters
    ----------
    norm : {'linf', 'l2', 'l1'}
        Norm of every distance.
    n_train, n_test, n_classes : int
        Number of training points, test points (0 without test data) and training
        classes.
    train_train_min, train_train_mean : float
        Minimum and mean over training points of the distance to the nearest training
        point of another label.
    train_train_percentiles : dict
        ``{q: q-th percentile}`` of the same distances.
    r : float
        ``train_train_min / 2``: the classes are ``2r``-separated, so a classifier that
        is astute with radius ``r`` exists (Yang et al., Theorem 3.2).
    test_train_min, test_train_mean : float or None
        The same for test points against the training set (None without test data).
    test_train_percentiles : dict or None
        Percentiles of the test-train distances.
    eps : float or None
        The perturbation radius compared with, if given.
    two_eps : float or None
        ``2 * eps``.
    separated : bool or None
        ``train_train_min > 2 * eps``: the training classes are ``2 eps``-separated.
    train_share_within_2eps, test_share_within_2eps : float or None
        Share of training (test) points whose distance to the nearest training point
        of another label is ``<= 2 * eps``. The closed ``eps``-balls of such a point and
        of that neighbour intersect, so no classifier is astute at both.
    robust_accuracy_ceiling : float or None
        ``1 - test_share_within_2eps``: an upper bound on the robust test accuracy at
        ``eps`` of any classifier that is also astute at every training point.
    train_train_distances : ndarray of shape (n_train,)
        Per-point train-train distances (read-only; not shown in the repr).
    test_train_distances : ndarray of shape (n_test,) or None
        Per-point test-train distances (read-only; not shown in the repr).

    See Also
    --------
    r_separation : Build this report.
    RSeparation : The constructive classifier of the proof, as a transformer.

    %(references)s

    Examples
    --------
    >>> from sklearn_robust.separation import r_separation
    >>> report = r_separation([[0.0], [1.0], [3.0], [4.0]], [0, 0, 1, 1], eps=0.5)
    >>> report.train_train_min, report.r, report.separated
    (2.0, 1.0, True)
    >>> report.to_dict()["train_share_within_2eps"]
    0.0
    """

    norm: str
    n_train: int
    n_test: int
    n_classes: int
    train_train_min: float
    train_train_mean: float
    train_train_percentiles: dict
    r: float
    test_train_min: float | None = None
    test_train_mean: float | None = None
    test_train_percentiles: dict | None = None
    eps: float | None = None
    two_eps: float | None = None
    separated: bool | None = None
    train_share_within_2eps: float | None = None
    test_share_within_2eps: float | None = None
    robust_accuracy_ceiling: float | None = None
    train_train_distances: np.ndarray | None = field(default=None, repr=False)
    test_train_distances: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self):
        """The scalar fields as a plain dict (per-point arrays left out)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.repr}

    def __repr__(self):
        def num(value):
            return "-" if value is None else f"{value:.4g}"

        qs = list(self.train_train_percentiles)
        head = ["", "n", "min", "mean"] + [f"p{q:g}" for q in qs]
        rows = [
            ["train-train", str(self.n_train), num(self.train_train_min)]
            + [num(self.train_train_mean)]
            + [num(self.train_train_percentiles[q]) for q in qs]
        ]
        if self.test_train_min is not None:
            rows.append(
                ["test-train", str(self.n_test), num(self.test_train_min)]
                + [num(self.test_train_mean)]
                + [num(self.test_train_percentiles[q]) for q in qs]
            )
        widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
        lines = [
            f"SeparationReport(norm={self.norm!r}, n_classes={self.n_classes})",
            *(
                "  ".join(
                    cell.ljust(w) if i == 0 else cell.rjust(w)
                    for i, (cell, w) in enumerate(zip(row, widths, strict=True))
                ).rstrip()
                for row in [head, *rows]
            ),
            f"r = train-train min / 2 = {num(self.r)}",
        ]
        if self.eps is not None:
            lines.append(
                f"eps = {num(self.eps)}, 2 eps = {num(self.two_eps)}: separated = {self.separated}"
            )
            share = f"share within 2 eps: train {self.train_share_within_2eps:.2%}"
            if self.test_share_within_2eps is not None:
                share += (
                    f", test {self.test_share_within_2eps:.2%}"
                    f" -> robust accuracy ceiling {self.robust_accuracy_ceiling:.2%}"
                )
            lines.append(share)
        return "\n".join(lines)

    __str__ = __repr__


def _summary(d, qs):
    values = np.percentile(d, qs) if qs else []
    return float(d.min()), float(d.mean()), {q: float(v) for q, v in zip(qs, values, strict=True)}


@cites_yang
def r_separation(
    X_train,
    y_train,
    X_test=None,
    y_test=None,
    *,
    norm="linf",
    eps=None,
    percentiles=(1, 5, 50),
    chunk_bytes=None,
    device=None,
    verbose=False,
):
    """Measure how far apart the classes of a data set are (Yang et al.'s r-separation).

    For every training point, the exact distance to the nearest training point of
    another label ("Train-Train"); with test data, for every test point the distance
    to the nearest training point of another label ("Test-Train"). Classes are
    ``2r``-separated with ``r = min(Train-Train) / 2``, and then the classifier
    ``x -> argmin_c dist(x, X^(c))`` is astute with radius ``r`` (see
    :class:`RSeparation`). Comparing with ``2 * eps`` tells whether accuracy and
    robustness at ``eps`` can coexist on this data.

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_features) or (n_train, ...)
        Training points. Arrays with more than two dimensions (images ``(N, C, H, W)``
        or ``(N, H, W)``) are flattened to ``(N, d)``. float32 stays float32, small
        integer types (uint8 images) become float32, anything else float64.
    y_train : array-like of shape (n_train,)
        Training labels; at least two classes.
    X_test : array-like of shape (n_test, n_features) or (n_test, ...), default=None
        Test points, flattened like ``X_train``; same number of features.
    y_test : array-like of shape (n_test,), default=None
        Test labels; required with ``X_test``. A test label absent from ``y_train``
        makes every training point "another label".
    norm : {'linf', 'l2', 'l1'}, default='linf'
        Distance; the paper reports ``'linf'``.
    eps : float or None, default=None
        Perturbation radius to compare with; adds ``two_eps``, ``separated``, the
        shares within ``2 * eps`` and ``robust_accuracy_ceiling``.
    percentiles : sequence of float, default=(1, 5, 50)
        Percentiles (in [0, 100]) of the per-point distances to report.
    chunk_bytes : int or None, default=None
        Working-memory budget of one block of distances in bytes (128 MiB if None);
        the full distance matrix is never built.
    device : str, torch.device or None, default=None
        Where blocks are computed (CPU if None).
    verbose : bool, default=False
        Show progress bars (one per pass: train-train, test-train) on stderr.

    Returns
    -------
    report : SeparationReport
        Summary table with the per-point distances attached.

    Raises
    ------
    ValueError
        NaN or inf in the data, a non-finite or negative ``eps``, an unknown norm,
        inconsistent lengths, fewer than two classes in ``y_train``, ``X_test``
        without ``y_test`` (or the reverse), or test and training points with
        different numbers of features.

    See Also
    --------
    RSeparation : The distances to each class as a transformer, and the astute
        classifier built on them.

    Notes
    -----
    Distances are exact (brute force over blocks, no approximation): ``'linf'`` on
    float32 data is correctly rounded to float32, ``'l1'`` is float64, ``'l2'`` is
    re-measured in float64. A point is never its own neighbour; duplicates carrying
    different labels give 0 (such data is not separated at any ``eps``). The Test-Train
    share counts test points within ``2 * eps`` of a training point of another label:
    the closed balls intersect, so a classifier can be astute at the test point only by
    giving up the training point; hence ``robust_accuracy_ceiling`` bounds the robust
    accuracy of classifiers that are also astute on the training set.

    %(references)s

    Examples
    --------
    The digits (pixel values 0 to 16) are far apart in l_inf:

    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import train_test_split
    >>> from sklearn_robust.separation import r_separation
    >>> X, y = load_digits(return_X_y=True)
    >>> X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    >>> report = r_separation(X_train, y_train, X_test, y_test, eps=3.5)
    >>> report.train_train_min, report.test_train_min, report.r
    (7.0, 7.0, 3.5)
    >>> report.separated, round(report.robust_accuracy_ceiling, 4)
    (False, 0.9933)
    >>> print(report)
    SeparationReport(norm='linf', n_classes=10)
                    n  min   mean  p1  p5  p50
    train-train  1347    7  11.34   8   9   11
    test-train    450    7  11.36   8   9   11
    r = train-train min / 2 = 3.5
    eps = 3.5, 2 eps = 7: separated = False
    share within 2 eps: train 0.45%, test 0.67% -> robust accuracy ceiling 99.33%
    """
    norm, eps, _ = check_options(norm, eps, chunk_bytes, "r_separation")
    qs = check_percentiles(percentiles, "r_separation")
    X_train = check_points(X_train, "X_train")
    y_train = check_labels(y_train, X_train, "y_train")
    if (X_test is None) != (y_test is None):
        raise ValueError("X_test and y_test must be given together.")
    if X_test is not None:
        X_test = check_points(X_test, "X_test")
        y_test = check_labels(y_test, X_test, "y_test")
        check_n_features(X_test, X_train, "X_test", "X_train")
    # One encoding for both sets: test labels absent from training get code -1.
    classes, codes, q_codes = encode_labels(y_train, y_test)
    if len(classes) < 2:
        raise ValueError(
            f"y_train must contain at least 2 classes to measure separation, "
            f"got {len(classes)} class."
        )

    kw = {"norm": norm, "chunk_bytes": chunk_bytes, "device": device, "verbose": verbose}
    d_train = train_train(X_train, codes, **kw)
    d_train.setflags(write=False)
    tt_min, tt_mean, tt_pct = _summary(d_train, qs)
    values = {
        "norm": norm,
        "n_train": int(X_train.shape[0]),
        "n_test": 0,
        "n_classes": len(classes),
        "train_train_min": tt_min,
        "train_train_mean": tt_mean,
        "train_train_percentiles": tt_pct,
        "r": tt_min / 2.0,
        "train_train_distances": d_train,
    }
    d_test = None
    if X_test is not None:
        d_test = test_train(X_test, q_codes, X_train, codes, **kw)
        d_test.setflags(write=False)
        te_min, te_mean, te_pct = _summary(d_test, qs)
        values.update(
            n_test=int(X_test.shape[0]),
            test_train_min=te_min,
            test_train_mean=te_mean,
            test_train_percentiles=te_pct,
            test_train_distances=d_test,
        )
    if eps is not None:
        two_eps = 2.0 * eps
        values.update(
            eps=eps,
            two_eps=two_eps,
            separated=bool(tt_min > two_eps),
            train_share_within_2eps=float(np.mean(d_train <= two_eps)),
        )
        if d_test is not None:
            share = float(np.mean(d_test <= two_eps))
            values.update(test_share_within_2eps=share, robust_accuracy_ceiling=1.0 - share)
    return SeparationReport(**values)
