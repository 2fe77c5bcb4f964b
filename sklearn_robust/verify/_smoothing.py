"""Randomized smoothing (Cohen et al. 2019): PREDICT and CERTIFY for the l2 norm.

The smoothed classifier of a base classifier ``f`` is
``g(x) = argmax_c P(f(x + N(0, sigma^2 I)) = c)``. Neither ``g`` nor its robustness can
be computed exactly; both are estimated from noisy samples, with a guarantee that holds
with probability ``1 - alpha`` per point over the sampling:

- :func:`smoothed_predict` (PREDICT): ``n`` samples, counts ``nA >= nB`` of the two most
  frequent classes; the top class is returned when the two-sided binomial test of ``nA``
  out of ``nA + nB`` against 1/2 rejects at level ``alpha``, else the point abstains.
  A returned class differs from ``g(x)`` with probability at most ``alpha``.
- :func:`smoothed_certify` (CERTIFY): ``n0`` samples choose the candidate class ``cA``;
  ``n`` fresh samples count ``nA`` (the selection samples are never reused: counting on
  them would bias ``nA`` upwards); ``pA_lower``, the one-sided ``1 - alpha``
  Clopper-Pearson lower bound of ``P(f(x + noise) = cA)``, gives the radius
  ``R = sigma * Phi^{-1}(pA_lower)`` when ``pA_lower > 1/2``, else the point abstains.
  With probability at least ``1 - alpha``, ``g(x + delta) = cA`` for every
  ``||delta||_2 < R`` (Cohen et al.'s Theorem 1: an open ball, so a point is certified
  at radius ``eps`` when its prediction is right and ``R > eps``).

The base classifier is any function ``predict_labels(X_batch) -> class indices`` (numpy
in and out: float32 inputs of the original sample shape, non-negative integers out). The
noise is added to every input coordinate and never clipped to the data's bounds: the
certificate is about the smoothed classifier of the unclipped noise, whatever the base
classifier does with inputs outside the data range.

Randomness: each point draws its noise from its own streams, derived from
``random_state`` and the point's float32 values (numpy ``SeedSequence``; separate streams
for selection, estimation and prediction), so a given integer ``random_state`` gives a
point the same result on every call, whatever ran before, whatever else is in ``X`` and
in which order, and whatever ``batch_size`` is.
"""

import hashlib
from numbers import Integral, Real

import numpy as np
from scipy.stats import beta, binomtest, norm

from ..utils import (
    POSITIVE,
    POSITIVE_INT,
    Interval,
    validate_params_of,
)

__all__ = ["ABSTAIN", "smoothed_certify", "smoothed_predict"]

#: The class index of an abstention.
ABSTAIN = -1

#: Constraints shared with :class:`~sklearn_robust.verify._smoothed.SmoothedClassifier`.
SMOOTHING_CONSTRAINTS = {
    "sigma": POSITIVE,
    "n0": POSITIVE_INT,
    "n": POSITIVE_INT,
    "alpha": [Interval(Real, 0, 1, closed="neither")],
    "batch_size": POSITIVE_INT,
}

# Stream keys below one point's key: CERTIFY's selection and estimation, PREDICT.
_SELECTION, _ESTIMATION, _PREDICTION = 0, 1, 2


def check_smoothing_params(caller, **params):
    """Validate smoothing parameters by name (``sigma > 0``, ``n0 >= 1``, ...)."""
    validate_params_of(SMOOTHING_CONSTRAINTS, params, caller)


def root_seed(random_state):
    """A ``numpy.random.SeedSequence`` for ``random_state``.

    ``None`` draws fresh entropy; an integer (``>= 0``) or a ``SeedSequence`` is used as
    given (the same value, the same streams, on every call); a ``numpy.random.Generator``
    or ``RandomState`` is advanced to draw the seed (two calls, different streams).

    Examples
    --------
    >>> root_seed(0).entropy
    0
    """
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2**63)))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(2**63, dtype=np.int64)))
    if isinstance(random_state, Integral) and not isinstance(random_state, bool) \
            and random_state >= 0:
        return np.random.SeedSequence(int(random_state))
    raise ValueError(
        "random_state must be None, an int >= 0, a numpy SeedSequence, Generator or "
        f"RandomState; got {random_state!r}."
    )


def _point_generators(root, X, key):
    """One generator per point of ``X``: the stream ``(root, the point's bytes, key)``.

    Keyed by the point's value, not its position: a point draws the same noise whatever
    else is in ``X`` and wherever it is (so results are invariant to subsets and order).
    """
    generators = []
    for point in X:
        digest = hashlib.blake2b(point.tobytes(), digest_size=16).digest()
        words = np.frombuffer(digest, dtype=np.uint32).tolist()
        sequence = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, *words,
                                                                   key),
                                          pool_size=root.pool_size)
        generators.append(np.random.default_rng(sequence))
    return generators


def _as_points(X):
    """``X`` as a float32 array of points ``(n_points, *sample_shape)``."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim < 2:
        raise ValueError(
            f"X must be an array of points of shape (n_points, *sample_shape); got shape "
            f"{X.shape}."
        )
    if not np.all(np.isfinite(X)):
        raise ValueError("X must be finite (no NaN or infinity).")
    return X


def _check_labels(labels, size):
    labels = np.asarray(labels)
    if labels.shape != (size,):
        raise ValueError(
            f"predict_labels must return one class index per input, shape ({size},); got "
            f"shape {labels.shape}."
        )
    if size and not (np.issubdtype(labels.dtype, np.integer) and labels.min() >= 0):
        raise ValueError(
            "predict_labels must return non-negative integer class indices; got "
            f"{labels.dtype} values from {labels.min()} to {labels.max()}."
        )
    return labels.astype(np.intp, copy=False)


def noise_counts(predict_labels, X, num, generators, *, sigma, batch_size):
    """Class counts of ``f(x + noise)`` over ``num`` noisy copies of each point.

    The copies of all points form one sequence cut into batches of at most
    ``batch_size`` inputs (several points per call when ``num < batch_size``); each
    point's noise comes from its own generator, in order, so the counts do not depend on
    ``batch_size``. Returns an ``int64`` array ``(n_points, n_labels)``, ``n_labels`` one
    more than the largest index seen.
    """
    n_points, shape = len(X), X.shape[1:]
    counts = np.zeros((n_points, 0), dtype=np.int64)
    total = n_points * num
    for start in range(0, total, batch_size):
        stop = min(start + batch_size, total)
        first, last = start // num, (stop - 1) // num
        batch = np.empty((stop - start, *shape), dtype=np.float32)
        for p in range(first, last + 1):
            lo, hi = max(start, p * num) - start, min(stop, (p + 1) * num) - start
            generators[p].standard_normal((hi - lo, *shape), dtype=np.float32,
                                          out=batch[lo:hi])
        owner = np.arange(start, stop) // num
        batch *= np.float32(sigma)
        batch += X[owner]
        labels = _check_labels(predict_labels(batch), stop - start)
        width = max(counts.shape[1], int(labels.max()) + 1)
        if width > counts.shape[1]:
            counts = np.pad(counts, ((0, 0), (0, width - counts.shape[1])))
        span = last - first + 1
        counts[first:last + 1] += np.bincount(
            (owner - first) * width + labels, minlength=span * width
        ).reshape(span, width)
    return counts


def clopper_pearson_lower(n_a, n, alpha):
    """One-sided ``1 - alpha`` Clopper-Pearson lower bound of a binomial proportion.

    ``Beta(alpha; n_a, n - n_a + 1)``, and 0 where ``n_a == 0``.

    Examples
    --------
    >>> float(clopper_pearson_lower(10, 10, 0.05)) == 0.05 ** (1 / 10)
    True
    >>> float(clopper_pearson_lower(0, 10, 0.05))
    0.0
    """
    n_a = np.asarray(n_a)
    bound = beta.ppf(alpha, np.maximum(n_a, 1), n - n_a + 1)
    return np.where(n_a > 0, bound, 0.0)


def smoothed_certify(predict_labels, X, *, sigma, n0=100, n=10000, alpha=0.001,
                     batch_size=1000, random_state=None):
    """Cohen et al.'s CERTIFY: the smoothed prediction and its certified l2 radius.

    Parameters
    ----------
    predict_labels : callable
        The base classifier: float32 array ``(m, *sample_shape)`` -> ``m`` non-negative
        integer class indices.
    X : array-like of shape (n_points, ...)
        The points, converted to float32.
    sigma : float
        Standard deviation of the Gaussian noise (``> 0``), on every coordinate,
        unclipped.
    n0 : int, default=100
        Noisy samples per point that choose the candidate class (``>= 1``).
    n : int, default=10000
        Further noisy samples per point that estimate its probability (``>= 1``).
    alpha : float, default=0.001
        Failure probability per point, in ``(0, 1)``.
    batch_size : int, default=1000
        Noisy inputs per call of ``predict_labels`` (bounds the memory).
    random_state : None, int, numpy SeedSequence, Generator or RandomState, default=None
        Seeds the noise (see the module's notes); ``None`` draws fresh noise.

    Returns
    -------
    prediction : ndarray of shape (n_points,)
        The class index ``cA``, or ``-1`` (:data:`ABSTAIN`) where ``pA_lower <= 1/2``.
    radius : ndarray of shape (n_points,)
        ``sigma * Phi^{-1}(pA_lower)`` (always ``> 0``), and ``0.0`` where the point
        abstains (Cohen et al.'s code does the same; abstentions are exactly the zeros).
        With probability ``1 - alpha`` the smoothed classifier predicts ``prediction``
        on the open l2 ball of this radius: a point is certified at ``eps`` when its
        prediction is right and ``radius > eps``.

    Examples
    --------
    A base classifier that always says 1: ``nA = n``, ``pA_lower = alpha ** (1 / n)``.

    >>> import numpy as np
    >>> always_one = lambda Z: np.ones(len(Z), dtype=int)
    >>> pred, radius = smoothed_certify(always_one, np.zeros((2, 3)), sigma=0.5, n0=10,
    ...                                 n=100, alpha=0.001, random_state=0)
    >>> pred, radius.round(4)
    (array([1, 1]), array([0.7502, 0.7502]))
    """
    check_smoothing_params("smoothed_certify", sigma=sigma, n0=n0, n=n, alpha=alpha,
                           batch_size=batch_size)
    X = _as_points(X)
    root = root_seed(random_state)
    options = dict(sigma=sigma, batch_size=batch_size)
    selection = noise_counts(predict_labels, X, n0,
                             _point_generators(root, X, _SELECTION), **options)
    candidate = selection.argmax(axis=1) if len(X) else np.zeros(0, dtype=np.intp)
    estimation = noise_counts(predict_labels, X, n,
                              _point_generators(root, X, _ESTIMATION), **options)
    n_a = np.zeros(len(X), dtype=np.int64)
    seen = candidate < estimation.shape[1]
    n_a[seen] = estimation[np.flatnonzero(seen), candidate[seen]]
    p_lower = clopper_pearson_lower(n_a, n, alpha)
    certified = p_lower > 0.5
    radius = np.zeros(len(X))
    radius[certified] = sigma * norm.ppf(p_lower[certified])
    return np.where(certified, candidate, ABSTAIN), radius


def smoothed_predict(predict_labels, X, *, sigma, n=10000, alpha=0.001, batch_size=1000,
                     random_state=None):
    """Cohen et al.'s PREDICT: the smoothed classifier's class, or an abstention.

    Parameters are those of :func:`smoothed_certify` (without ``n0``).

    Returns
    -------
    prediction : ndarray of shape (n_points,)
        The most frequent class ``cA`` where ``binomtest(nA, nA + nB, 0.5).pvalue <=
        alpha`` (``nA``, ``nB``: the counts of the two most frequent classes), else
        ``-1`` (:data:`ABSTAIN`). Returned classes differ from the smoothed classifier's
        with probability at most ``alpha`` per point.

    Examples
    --------
    >>> import numpy as np
    >>> sign = lambda Z: (Z[:, 0] > 0).astype(int)
    >>> smoothed_predict(sign, [[-3.0], [0.0], [3.0]], sigma=1.0, n=200, random_state=0)
    array([ 0, -1,  1])
    """
    check_smoothing_params("smoothed_predict", sigma=sigma, n=n, alpha=alpha,
                           batch_size=batch_size)
    X = _as_points(X)
    counts = noise_counts(predict_labels, X, n,
                          _point_generators(root_seed(random_state), X, _PREDICTION),
                          sigma=sigma, batch_size=batch_size)
    prediction = np.full(len(X), ABSTAIN)
    if counts.shape[1] < 2:
        counts = np.pad(counts, ((0, 0), (0, 2 - counts.shape[1])))
    order = np.argsort(-counts, axis=1, kind="stable")
    for i, (top, second) in enumerate(order[:, :2]):
        n_a, n_b = int(counts[i, top]), int(counts[i, second])
        if binomtest(n_a, n_a + n_b, 0.5).pvalue <= alpha:
            prediction[i] = top
    return prediction
