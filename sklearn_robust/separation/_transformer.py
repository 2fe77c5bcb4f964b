"""Distances to each class as a scikit-learn transformer (Yang et al. 2020, Theorem 3.2)."""

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._distances import class_matrix, train_train
from ._validation import (
    PARAMETER_CONSTRAINTS,
    check_options,
    cites_yang,
    encode_labels,
    point_dtype,
)

__all__ = ["RSeparation"]


def _flatten_images(X):
    """Reshape arrays and tensors with more than two dimensions to ``(N, d)``."""
    ndim = getattr(X, "ndim", None)
    if ndim is not None and ndim > 2 and not sp.issparse(X):
        X = np.asarray(X)
        X = X.reshape(X.shape[0], -1)
    return X


@cites_yang
class RSeparation(TransformerMixin, BaseEstimator):
    """Distances to the nearest training point of each class; the astute classifier.

    ``fit`` memorises the training points by class and measures their separation;
    ``transform`` maps each point ``x`` to ``(dist(x, X^(1)), ..., dist(x, X^(C)))``, the
    function ``r * f(x)`` of Yang et al.'s constructive proof. ``predict`` returns the
    class at the smallest distance, ``g(x) = argmin_c f(x)_c``: when the training
    classes are ``2r``-separated, ``f`` is ``1/r``-locally Lipschitz and ``g`` is astute
    with radius ``r`` at every training point (correct on the open ``r``-ball around
    it). ``g`` is the 1-nearest-neighbour classifier, read as a certificate: each column
    of ``transform`` is 1-Lipschitz, so a prediction whose margin (second-smallest minus
    smallest distance) exceeds ``2 * eps`` cannot change within ``eps``.

    Parameters
    ----------
    norm : {'linf', 'l2', 'l1'}, default='linf'
        Distance.
    eps : float or None, default=None
        Perturbation radius. When given, ``fit`` sets ``separated_`` and ``score``
        returns the certified robust accuracy at ``eps`` instead of the accuracy.
    chunk_bytes : int or None, default=None
        Working-memory budget of one block of distances in bytes (128 MiB if None).
    device : str, torch.device or None, default=None
        Where blocks are computed (CPU if None).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels; the columns of ``transform`` follow this order.
    n_features_in_ : int
        Number of features seen in ``fit`` (images are flattened first).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen in ``fit``, when ``X`` has string column names.
    train_distances_ : ndarray of shape (n_samples,)
        For each training point, the distance to the nearest training point of another
        class (Yang et al.'s Train-Train separation).
    r_ : float
        Half the smallest of ``train_distances_``: the classes are ``2 r_``-separated.
    separated_ : bool or None
        ``2 * r_ > 2 * eps`` (None without ``eps``).

    See Also
    --------
    r_separation : The separation report (Train-Train and Test-Train).

    Notes
    -----
    The training points are kept (like a nearest-neighbour model), and ``fit`` costs
    one exact pass over all pairs of training points of different classes; memory
    stays bounded by ``chunk_bytes``. Arrays with more than two dimensions (images) are
    flattened to ``(N, d)``. Ties in ``predict`` go to the first class in ``classes_``.

    %(references)s

    Examples
    --------
    Two points per class on a line, 2 apart: ``r = 1``.

    >>> from sklearn_robust.separation import RSeparation
    >>> X, y = [[0.0], [1.0], [3.0], [4.0]], ["a", "a", "b", "b"]
    >>> sep = RSeparation(eps=0.5).fit(X, y)
    >>> sep.r_, sep.separated_
    (1.0, True)
    >>> sep.transform([[1.5], [5.0]])
    array([[0.5, 1.5],
           [4. , 1. ]])
    >>> sep.predict([[1.5], [5.0]]).tolist()
    ['a', 'b']
    >>> sep.score([[1.5], [5.0]], ["a", "b"])  # margins 1 and 3 against 2 eps = 1
    0.5

    On the digits, the classifier is the 1-nearest-neighbour rule under l_inf (with
    integer pixels, ties between classes are frequent; they go to the first class):

    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> sep = RSeparation().fit(X[:1500], y[:1500])
    >>> sep.r_
    3.5
    >>> round(sep.score(X[1500:], y[1500:]), 3)
    0.923
    """

    _parameter_constraints = dict(PARAMETER_CONSTRAINTS)

    def __init__(self, norm="linf", eps=None, chunk_bytes=None, device=None):
        self.norm = norm
        self.eps = eps
        self.chunk_bytes = chunk_bytes
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    def _options(self):
        return {"norm": self.norm, "chunk_bytes": self.chunk_bytes, "device": self.device}

    def fit(self, X, y):
        """Memorise the training points by class and measure their separation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Training points; no NaN or inf.
        y : array-like of shape (n_samples,)
            Class labels; at least two classes.

        Returns
        -------
        self : RSeparation
            Fitted transformer.
        """
        check_options(self.norm, self.eps, self.chunk_bytes, type(self).__name__)
        X = _flatten_images(X)
        X, y = validate_data(self, X, y, dtype=point_dtype(X), order="C")
        check_classification_targets(y)
        classes, codes, _ = encode_labels(y)
        if len(classes) < 2:
            raise ValueError(
                f"RSeparation needs at least 2 classes in y, got 1 class ({classes[0]!r})."
            )
        self.classes_ = classes
        self._fit_X = X
        self._fit_codes = codes
        self.train_distances_ = train_train(X, self._fit_codes, **self._options())
        self.r_ = float(self.train_distances_.min()) / 2.0
        self.separated_ = None if self.eps is None else bool(self.r_ > float(self.eps))
        return self

    def transform(self, X):
        """Distance from each point to the nearest training point of each class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Points; no NaN or inf.

        Returns
        -------
        distances : ndarray of shape (n_samples, n_classes)
            Exact distances, columns ordered as ``classes_``.
        """
        check_is_fitted(self)
        X = _flatten_images(X)
        X = validate_data(self, X, reset=False, dtype=point_dtype(X), order="C")
        return class_matrix(X, self._fit_X, self._fit_codes, len(self.classes_), **self._options())

    def predict(self, X):
        """Class of the nearest training point (the astute classifier of the proof).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Points.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            ``classes_[argmin(transform(X), axis=1)]``.
        """
        D = self.transform(X)  # checks that the transformer is fitted
        return self.classes_[np.argmin(D, axis=1)]

    def score(self, X, y, sample_weight=None):
        """Accuracy, or with ``eps`` the certified robust accuracy at ``eps``.

        A point counts as certified when it is predicted correctly and the margin
        between its two smallest class distances exceeds ``2 * eps``: every column of
        ``transform`` is 1-Lipschitz, so no perturbation of norm ``<= eps`` can change
        the prediction. This is a lower bound on the robust accuracy of ``predict``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Points.
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Share of (weighted) points predicted correctly, and certified if ``eps``.
        """
        D = self.transform(X)
        y = column_or_1d(y, warn=True)
        check_consistent_length(D, y, sample_weight)
        correct = self.classes_[np.argmin(D, axis=1)] == y
        if self.eps is not None:
            two = np.partition(D, 1, axis=1)[:, :2]
            correct &= two[:, 1] - two[:, 0] > 2.0 * float(self.eps)
        return float(np.average(correct, weights=sample_weight))

    def get_feature_names_out(self, input_features=None):
        """Output feature names: ``dist_<class>`` for each class in ``classes_``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Checked against the names seen in ``fit``; not used otherwise.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per column of ``transform``.
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features)
        return np.asarray([f"dist_{c}" for c in self.classes_], dtype=object)
