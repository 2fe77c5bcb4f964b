"""Randomized smoothing as a scikit-learn meta-estimator (Cohen et al. 2019)."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ..utils import POSITIVE_INT, HasMethods, validate_params_of
from ._smoothing import (
    ABSTAIN,
    SMOOTHING_CONSTRAINTS,
    root_seed,
    smoothed_certify,
    smoothed_predict,
)

__all__ = ["SmoothedClassifier"]


class SmoothedClassifier(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Randomized smoothing of any classifier, with certified l2 radii.

    The smoothed classifier of a base classifier ``f`` predicts the class ``f`` returns
    most often under Gaussian noise, ``g(x) = argmax_c P(f(x + N(0, sigma^2 I)) = c)``,
    and is provably robust in l2: wherever the top class has probability ``pA > 1/2``,
    ``g`` is constant on the l2 ball of radius ``sigma * Phi^{-1}(pA)`` (Cohen et al.
    2019). ``fit`` trains a clone of ``estimator`` on noisy data (Cohen et al.'s
    training); :meth:`predict` is their PREDICT and :meth:`certify` their CERTIFY, both
    Monte Carlo estimates that hold with probability ``1 - alpha`` per point and abstain
    when the noise does not single out one class.

    Parameters
    ----------
    estimator : estimator object
        The base classifier (anything with ``fit`` and ``predict``: a library classifier,
        a scikit-learn classifier, a ``Pipeline``). It is cloned by ``fit``.
    sigma : float, default=0.25
        Standard deviation of the Gaussian noise, in input units (``> 0``): the noise of
        training and of smoothing. It is added to the raw input ``estimator`` receives,
        on every coordinate and without clipping to the data's bounds (the certificate is
        about the smoothed classifier of unclipped noise). For a ``Pipeline`` the noise
        comes before its first step: a scaler in it sees noisy data, and ``sigma`` and
        the radii are in the units of ``X`` as given.
    n0 : int, default=100
        Noisy samples per point that choose the candidate class in :meth:`certify`.
    n : int, default=10000
        Noisy samples per point that estimate the class probabilities (fresh ones in
        :meth:`certify`: the ``n0`` selection samples are never reused). The cost of
        :meth:`predict` and :meth:`certify` is ``n`` (and ``n0``) base predictions per
        point; the radius grows with ``n`` towards ``sigma * Phi^{-1}(pA)``.
    alpha : float, default=0.001
        Failure probability per point, in ``(0, 1)``: a returned class or radius is
        wrong with probability at most ``alpha`` over the noise.
    abstain : object, default=-1
        The label returned where the smoothed classifier abstains. It must not be one of
        the classes (refused by ``fit``, :meth:`predict` and :meth:`certify`); with
        string labels, pass a string (or ``None``).
    batch_size : int, default=1000
        Noisy inputs per call of the base classifier's ``predict`` (bounds the memory).
    noise_copies : int, default=1
        How ``fit`` adds noise when ``estimator`` has no ``noise_std`` parameter: it is
        trained on ``noise_copies`` noisy copies of the training data (``noise_copies``
        times the memory), one draw per copy. Estimators with a ``noise_std`` parameter
        (this library's classifiers) get ``noise_std=sigma`` instead: fresh noise in
        every batch of every epoch, as Cohen et al. train; copies only approximate that.
        A ``Pipeline`` always gets copies, so that the noise reaches its raw input.
    random_state : int, RandomState instance or None, default=None
        Seeds the noise of :meth:`predict`, :meth:`certify` and of the ``noise_copies``
        training data: an integer gives the same predictions and radii on every call
        (each point draws from a stream keyed by its values, so its answer does not
        depend on the other points, their order or ``batch_size``); ``None`` or a
        ``RandomState`` draws fresh noise on every call. The base estimator's own
        ``random_state`` (which seeds its ``noise_std`` training) is left as given.

    Attributes
    ----------
    estimator_ : estimator object
        The fitted clone of ``estimator``.
    classes_ : ndarray of shape (n_classes,)
        The labels, from ``estimator_``.
    n_features_in_ : int
        Number of features (``X.shape[1]``).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen in ``fit``, when ``X`` has string column names.

    See Also
    --------
    sklearn_robust.verify._smoothing.smoothed_certify : CERTIFY for any labelling function.

    Notes
    -----
    :meth:`certify` returns radii ``R`` with the guarantee that, with probability at
    least ``1 - alpha``, the smoothed classifier predicts the returned class for every
    ``x + delta`` with ``||delta||_2 < R`` (an open ball): a point is certified at
    radius ``eps`` when its prediction is right and ``R > eps``. The largest radius
    ``n`` samples can certify is ``sigma * Phi^{-1}(alpha ** (1 / n))`` (about
    ``3.2 * sigma`` at the defaults). :meth:`predict` and :meth:`certify` are separate
    estimates and may disagree on points near the margin. ``sigma`` may be changed after
    ``fit`` (to certify at another noise level), but the base classifier was trained at
    the ``sigma`` of the fit.

    References
    ----------
    Cohen, Rosenfeld and Kolter, "Certified Adversarial Robustness via Randomized
    Smoothing", ICML 2019.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_robust.verify._smoothed import SmoothedClassifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> clf = SmoothedClassifier(LogisticRegression(), sigma=0.5, n0=20, n=500,
    ...                          random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    >>> prediction, radius = clf.certify(X[[0, 5, 10, 13]])
    >>> prediction.tolist(), radius.round(2).tolist()
    ([0, 0, 0, 0], [1.1, 0.4, 0.18, 0.13])

    The smoothed classifier of a linear one is the same half-space, so the radii are
    lower bounds of the distances to its boundary:

    >>> import numpy as np
    >>> base = clf.estimator_
    >>> distance = np.abs(base.decision_function(X[[0, 5, 10, 13]])) / np.linalg.norm(base.coef_)
    >>> distance.round(2).tolist()
    [5.39, 0.53, 0.26, 0.16]

    ``1.1`` is ``sigma * Phi^{-1}(alpha ** (1 / n))``, the most that 500 samples certify
    (every one of them in the class). A point abstains (label ``-1``, radius ``0.0``)
    where ``pA`` cannot be shown to exceed 1/2.
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"])],
        **SMOOTHING_CONSTRAINTS,
        "abstain": "no_validation",
        "noise_copies": POSITIVE_INT,
        "random_state": ["random_state"],
    }

    def __init__(self, estimator, *, sigma=0.25, n0=100, n=10000, alpha=0.001, abstain=-1,
                 batch_size=1000, noise_copies=1, random_state=None):
        self.estimator = estimator
        self.sigma = sigma
        self.n0 = n0
        self.n = n
        self.alpha = alpha
        self.abstain = abstain
        self.batch_size = batch_size
        self.noise_copies = noise_copies
        self.random_state = random_state

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        validate_params_of(self._parameter_constraints, self.get_params(deep=False),
                           type(self).__name__)

    def _check_abstain(self, classes):
        classes = np.asarray(classes).tolist()
        if any(_same_label(c, self.abstain) for c in classes):
            raise ValueError(
                f"abstain={self.abstain!r} is one of the classes {classes}; choose a label "
                "that is not a class."
            )

    def _validate_X(self, X, reset):
        return validate_data(self, X, reset=reset, allow_nd=True, dtype=np.float32)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, **fit_params):
        """Train a clone of ``estimator`` on Gaussian-noise-augmented data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Training inputs, converted to float32 (images may keep their shape).
        y : array-like of shape (n_samples,)
            Labels.
        **fit_params
            Passed to the estimator's ``fit``; those of length ``n_samples`` (such as
            ``sample_weight``) are repeated along with the ``noise_copies``.

        Returns
        -------
        self
        """
        self._check_params()
        X, y = validate_data(self, X, y, reset=True, allow_nd=True, dtype=np.float32)
        check_classification_targets(y)
        self._check_abstain(unique_labels(y))
        estimator = clone(self.estimator)
        if "noise_std" in estimator.get_params(deep=False):
            estimator.set_params(noise_std=self.sigma)
        else:
            X, y, fit_params = self._noisy_copies(X, y, fit_params)
        self.estimator_ = estimator.fit(X, y, **fit_params)
        self.classes_ = np.asarray(self.estimator_.classes_)
        self._check_abstain(self.classes_)
        return self

    def _noisy_copies(self, X, y, fit_params):
        """``noise_copies`` noisy copies of the data (and the sample-aligned fit params)."""
        rng = np.random.default_rng(root_seed(self.random_state))
        sigma, copies, n_samples = np.float32(self.sigma), self.noise_copies, len(X)
        noisy = np.concatenate([
            X + sigma * rng.standard_normal(X.shape, dtype=np.float32) for _ in range(copies)
        ])
        params = {
            key: np.concatenate([np.asarray(value)] * copies)
            if hasattr(value, "__len__") and not isinstance(value, str)
            and len(value) == n_samples else value
            for key, value in fit_params.items()
        }
        return noisy, np.concatenate([y] * copies), params

    # ------------------------------------------------------------------ smoothing
    def _base_indices(self, Z):
        """The base classifier's labels of ``Z`` as indices into ``classes_``."""
        labels = np.asarray(self.estimator_.predict(Z))
        order = np.argsort(self.classes_, kind="stable")
        position = np.searchsorted(self.classes_, labels, sorter=order)
        index = order[np.minimum(position, len(order) - 1)]
        if not np.array_equal(self.classes_[index], labels):
            raise ValueError("the base estimator predicted a label outside classes_.")
        return index

    def _options(self):
        return dict(sigma=self.sigma, n=self.n, alpha=self.alpha,
                    batch_size=self.batch_size, random_state=self.random_state)

    def _prepare(self, X):
        check_is_fitted(self)
        self._check_params()
        self._check_abstain(self.classes_)
        return self._validate_X(X, reset=False)

    def _labels(self, index):
        """Class indices as labels, with ``abstain`` at the abstentions."""
        kinds = self.classes_.dtype.kind + np.asarray(self.abstain).dtype.kind
        numbers, strings = set(kinds) <= set("iuf"), set(kinds) == {"U"}
        dtype = (np.result_type(self.classes_, np.asarray(self.abstain))
                 if numbers or strings else object)
        labels = np.full(len(index), self.abstain, dtype=dtype)
        kept = index != ABSTAIN
        labels[kept] = self.classes_[index[kept]]
        return labels

    def _predict_index(self, X):
        return smoothed_predict(self._base_indices, self._prepare(X), **self._options())

    def predict(self, X):
        """Cohen et al.'s PREDICT: the smoothed class, or ``abstain``.

        ``n`` noisy samples per point; the most frequent class is returned when a
        two-sided binomial test of its count against the runner-up's rejects at level
        ``alpha``, else ``abstain``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Inputs.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Labels from ``classes_``, ``abstain`` where the test does not reject.
        """
        return self._labels(self._predict_index(X))

    def certify(self, X):
        """Cohen et al.'s CERTIFY: the smoothed class and its certified l2 radius.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Inputs.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            The class chosen by ``n0`` samples, ``abstain`` where it is not certified.
        radius : ndarray of shape (n_samples,)
            The certified l2 radius (``> 0``) from ``n`` further samples, ``0.0`` where
            the point abstains: with probability ``1 - alpha`` the smoothed classifier
            predicts ``y_pred`` for every input closer than ``radius``.
        """
        index, radius = smoothed_certify(self._base_indices, self._prepare(X), n0=self.n0,
                                         **self._options())
        return self._labels(index), radius

    def score(self, X, y, sample_weight=None):
        """Accuracy of :meth:`predict`; an abstention counts as an error.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, ...)
            Inputs.
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples.

        Returns
        -------
        score : float
            The (weighted) fraction of points predicted right.
        """
        index = self._predict_index(X)
        y = column_or_1d(y)
        kept = index != ABSTAIN
        correct = np.zeros(len(index), dtype=bool)
        correct[kept] = self.classes_[index[kept]] == y[kept]
        return float(np.average(correct, weights=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        tags.non_deterministic = not isinstance(self.random_state, Integral)
        return tags


def _same_label(a, b):
    """``a == b`` for two labels, ``False`` where they do not compare."""
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False
