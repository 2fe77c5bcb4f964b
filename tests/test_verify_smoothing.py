"""Randomized smoothing (Cohen et al. 2019): PREDICT, CERTIFY, SmoothedClassifier, noise_std."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import beta, binom, norm
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_robust import NaturalClassifier
from sklearn_robust.utils import InvalidParameterError
from sklearn_robust.verify._smoothed import SmoothedClassifier
from sklearn_robust.verify._smoothing import (
    ABSTAIN,
    clopper_pearson_lower,
    smoothed_certify,
    smoothed_predict,
)

FAST = dict(n0=10, n=100, alpha=0.001)


def constant(label):
    return lambda Z: np.full(len(Z), label)


def coin(seed=0):
    """A base classifier that answers 0 or 1 at random: the smoothed one cannot decide."""
    rng = np.random.default_rng(seed)
    return lambda Z: rng.integers(0, 2, len(Z))


def half_space(w, b):
    w = np.asarray(w, dtype=np.float64)
    return lambda Z: (Z.reshape(len(Z), -1) @ w + b > 0).astype(int)


class Recorder:
    """A base classifier that keeps every batch it is asked about."""

    def __init__(self, base):
        self.base, self.batches = base, []

    def __call__(self, Z):
        self.batches.append(Z.copy())
        return self.base(Z)


def never_called(Z):
    raise AssertionError("the base classifier must not run")


# ---------------------------------------------------------------- CERTIFY and PREDICT
@pytest.mark.parametrize("sigma, n, alpha", [(0.25, 100, 0.001), (0.5, 1000, 0.01),
                                             (1.0, 37, 0.2)])
def test_constant_classifier_radius_is_the_formula(sigma, n, alpha):
    X = np.zeros((3, 2))
    pred, radius = smoothed_certify(constant(2), X, sigma=sigma, n0=5, n=n, alpha=alpha,
                                    random_state=0)
    p_lower = beta.ppf(alpha, n, 1)  # nA = n: the Clopper-Pearson bound is alpha ** (1/n)
    assert math.isclose(p_lower, alpha ** (1 / n), rel_tol=1e-12)
    np.testing.assert_array_equal(pred, [2, 2, 2])
    np.testing.assert_allclose(radius, sigma * norm.ppf(p_lower), rtol=1e-12)
    np.testing.assert_array_equal(smoothed_predict(constant(2), X, sigma=sigma, n=n,
                                                   alpha=alpha, random_state=0), [2, 2, 2])


def test_clopper_pearson_lower_bound_is_the_exact_tail():
    n = 50
    n_a = np.arange(1, n + 1)
    p = clopper_pearson_lower(n_a, n, 0.01)
    # P(Binomial(n, p) >= nA) = alpha at the one-sided lower bound.
    np.testing.assert_allclose(binom.sf(n_a - 1, n, p), 0.01, rtol=1e-6)
    assert clopper_pearson_lower(0, n, 0.01) == 0.0


def test_coin_flip_classifier_abstains():
    X = np.zeros((5, 3))
    pred, radius = smoothed_certify(coin(), X, sigma=0.5, n0=20, n=500, random_state=0)
    np.testing.assert_array_equal(pred, ABSTAIN)
    np.testing.assert_array_equal(radius, 0.0)
    np.testing.assert_array_equal(
        smoothed_predict(coin(), X, sigma=0.5, n=500, random_state=0), ABSTAIN)


def test_predict_binomial_test():
    sign = half_space([1.0], 0.0)
    pred = smoothed_predict(sign, [[-3.0], [0.0], [3.0]], sigma=1.0, n=200, random_state=0)
    np.testing.assert_array_equal(pred, [0, ABSTAIN, 1])


def test_half_space_radius_is_sound_and_tight():
    """f(x) = [w.x + b > 0] smooths to itself; its exact l2 radius is |w.x + b| / ||w||."""
    rng = np.random.default_rng(1)
    w, b, sigma = np.array([3.0, -4.0]), 0.5, 0.5
    X = rng.uniform(-1, 1, size=(40, 2))
    side = (X @ w + b > 0).astype(int)
    distance = np.abs(X @ w + b) / np.linalg.norm(w)
    f = half_space(w, b)
    pred, radius = smoothed_certify(f, X, sigma=sigma, n0=50, n=2000, alpha=1e-4,
                                    random_state=0)
    certified = pred != ABSTAIN
    assert certified.sum() >= 30
    np.testing.assert_array_equal(pred[certified], side[certified])
    assert np.all(radius <= distance)
    assert np.all(radius[~certified] == 0.0) and np.all(radius[certified] > 0)
    # Many samples: pA_lower -> Phi(distance / sigma), the radius -> the distance.
    pred, radius = smoothed_certify(f, X, sigma=sigma, n0=50, n=100_000, alpha=1e-4,
                                    batch_size=20_000, random_state=0)
    inner = distance < 2 * sigma  # far points saturate at sigma * Phi^-1(alpha ** (1/n))
    assert np.all(radius <= distance)
    assert np.all(distance[inner] - radius[inner] < 0.05 * sigma + 0.01 * distance[inner])


def test_images_keep_their_shape():
    recorder = Recorder(constant(0))
    X = np.random.default_rng(0).random((3, 1, 4, 4))
    smoothed_certify(recorder, X, sigma=0.1, n0=5, n=20, batch_size=16, random_state=0)
    assert all(batch.shape[1:] == (1, 4, 4) and batch.dtype == np.float32
               for batch in recorder.batches)
    assert max(len(batch) for batch in recorder.batches) == 16


def test_n0_selection_samples_are_not_reused():
    recorder = Recorder(half_space([1.0, 1.0], 0.0))
    X = np.random.default_rng(0).normal(size=(7, 2))
    smoothed_certify(recorder, X, sigma=0.3, n0=13, n=29, batch_size=10, random_state=0)
    drawn = np.concatenate(recorder.batches)
    assert len(drawn) == 7 * (13 + 29)  # n0 + n fresh samples per point
    assert len(np.unique(drawn, axis=0)) == len(drawn)  # none used twice
    assert all(len(batch) <= 10 for batch in recorder.batches)


def test_noise_is_gaussian_with_std_sigma_and_unclipped():
    recorder = Recorder(constant(0))
    X = np.full((2, 3), 0.5)
    smoothed_certify(recorder, X, sigma=2.0, n0=10, n=5000, random_state=0)
    noise = np.concatenate(recorder.batches) - 0.5
    assert abs(noise.mean()) < 0.05 and abs(noise.std() - 2.0) < 0.05
    assert noise.min() < -0.5 and noise.max() > 0.5  # far outside [0, 1]: no clipping


def test_same_seed_same_radii_whatever_else_runs():
    f = half_space([1.0, -2.0], 0.1)
    X = np.random.default_rng(0).normal(scale=0.3, size=(20, 2))
    kwargs = dict(sigma=0.5, n0=20, n=300)
    first = smoothed_certify(f, X, random_state=3, **kwargs)
    np.random.seed(1)
    torch.manual_seed(1)
    again = smoothed_certify(f, X, random_state=3, batch_size=7, **kwargs)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    # Each point draws from a stream keyed by its values: subsets and order do not matter.
    head = smoothed_certify(f, X[:5], random_state=3, **kwargs)
    np.testing.assert_array_equal(head[1], first[1][:5])
    order = np.random.default_rng(0).permutation(len(X))
    shuffled = smoothed_certify(f, X[order], random_state=3, **kwargs)
    np.testing.assert_array_equal(shuffled[1], first[1][order])
    np.testing.assert_array_equal(smoothed_predict(f, X[order], sigma=0.5, n=300,
                                                   random_state=3),
                                  smoothed_predict(f, X, sigma=0.5, n=300,
                                                   random_state=3)[order])
    other = smoothed_certify(f, X, random_state=4, **kwargs)
    assert not np.array_equal(other[1], first[1])
    fresh = [smoothed_certify(f, X, random_state=None, **kwargs)[1] for _ in range(2)]
    assert not np.array_equal(*fresh)
    # A Generator is advanced: two calls, two draws; the same seed, the same two.
    rng, rng_again = np.random.default_rng(5), np.random.default_rng(5)
    a = [smoothed_certify(f, X, random_state=rng, **kwargs)[1] for _ in range(2)]
    b = [smoothed_certify(f, X, random_state=rng_again, **kwargs)[1] for _ in range(2)]
    assert not np.array_equal(a[0], a[1])
    np.testing.assert_array_equal(a[1], b[1])
    p1 = smoothed_predict(f, X, sigma=0.5, n=300, random_state=3)
    np.testing.assert_array_equal(p1, smoothed_predict(f, X, sigma=0.5, n=300,
                                                       random_state=3, batch_size=64))


@pytest.mark.parametrize("name, value", [
    ("sigma", 0.0), ("sigma", -1.0), ("sigma", float("inf")), ("n0", 0), ("n", 0),
    ("n", 2.5), ("alpha", 0.0), ("alpha", 1.0), ("batch_size", 0), ("batch_size", True),
])
def test_bad_parameters_are_refused_before_any_sampling(name, value):
    kwargs = dict(sigma=0.5, n0=10, n=10, alpha=0.01, batch_size=10, random_state=0)
    kwargs[name] = value
    with pytest.raises(InvalidParameterError, match=name):
        smoothed_certify(never_called, np.zeros((2, 2)), **kwargs)
    if name != "n0":
        kwargs.pop("n0")
        with pytest.raises(InvalidParameterError, match=name):
            smoothed_predict(never_called, np.zeros((2, 2)), **kwargs)


def test_bad_inputs_and_labels():
    with pytest.raises(ValueError, match="n_points"):
        smoothed_certify(constant(0), np.zeros(3), sigma=1.0, **FAST)
    with pytest.raises(ValueError, match="finite"):
        smoothed_certify(constant(0), [[np.nan]], sigma=1.0, **FAST)
    with pytest.raises(ValueError, match="random_state"):
        smoothed_certify(constant(0), [[0.0]], sigma=1.0, random_state=-1, **FAST)
    with pytest.raises(ValueError, match="one class index per input"):
        smoothed_certify(lambda Z: np.zeros((len(Z), 2), int), [[0.0]], sigma=1.0, **FAST)
    with pytest.raises(ValueError, match="non-negative integer"):
        smoothed_certify(constant(-1), [[0.0]], sigma=1.0, **FAST)
    with pytest.raises(ValueError, match="non-negative integer"):
        smoothed_certify(constant(0.5), [[0.0]], sigma=1.0, **FAST)
    pred, radius = smoothed_certify(constant(0), np.zeros((0, 2)), sigma=1.0, **FAST)
    assert pred.shape == radius.shape == (0,)


# ---------------------------------------------------------------- SmoothedClassifier
@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


class Refuses(ClassifierMixin, BaseEstimator):
    """An estimator whose fit must never run."""

    def fit(self, X, y):
        raise AssertionError("fit must not run")

    def predict(self, X):
        raise AssertionError("predict must not run")


class Coin(ClassifierMixin, BaseEstimator):
    """Predicts one of the training labels at random."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.rng_ = np.random.default_rng(0)
        return self

    def predict(self, X):
        return self.classes_[self.rng_.integers(0, len(self.classes_), len(X))]


def test_parameters_follow_the_sklearn_contract(cancer):
    base = LogisticRegression(C=2.0)
    clf = SmoothedClassifier(base, sigma=0.3, **FAST)
    assert clf.get_params()["estimator__C"] == 2.0 and clf.estimator is base
    clf.set_params(estimator__C=0.5, sigma=0.4)
    assert base.C == 0.5 and clf.sigma == 0.4
    copy = clone(clf)
    assert copy.get_params()["estimator__C"] == 0.5 and copy.estimator is not base
    assert SmoothedClassifier(base).get_params(deep=False) == dict(
        estimator=base, sigma=0.25, n0=100, n=10000, alpha=0.001, abstain=-1,
        batch_size=1000, noise_copies=1, random_state=None)
    assert SmoothedClassifier(base).__sklearn_tags__().non_deterministic
    assert not SmoothedClassifier(base, random_state=0).__sklearn_tags__().non_deterministic


def test_logistic_regression_fit_predict_certify_score(cancer):
    X, y = cancer
    clf = SmoothedClassifier(LogisticRegression(), sigma=0.5, random_state=0, **FAST)
    clf.fit(X, y)
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    assert clf.n_features_in_ == X.shape[1]
    pred, radius = clf.certify(X[:30])
    assert pred.shape == radius.shape == (30,) and radius.dtype == np.float64
    assert np.all((radius > 0) == (pred != -1))
    assert clf.score(X, y) > 0.9
    np.testing.assert_array_equal(clf.predict(X[:30]), clf.predict(X[:30]))
    # Linear base: the certified radii are lower bounds of the distance to its boundary.
    base = clf.estimator_
    distance = np.abs(base.decision_function(X[:30])) / np.linalg.norm(base.coef_)
    assert np.all(radius <= distance + 1e-9)


def test_grid_search_over_sigma(cancer):
    X, y = cancer
    search = GridSearchCV(
        SmoothedClassifier(LogisticRegression(), random_state=0, **FAST),
        {"sigma": [0.1, 1.0], "estimator__C": [1.0]}, cv=3,
    ).fit(X, y)
    assert search.best_params_["sigma"] in (0.1, 1.0)
    assert search.best_estimator_.sigma == search.best_params_["sigma"]
    assert search.score(X, y) > 0.8


def test_pipeline_gets_noise_on_its_raw_input(cancer):
    X, y = cancer
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    clf = SmoothedClassifier(pipe, sigma=0.5, noise_copies=5, random_state=0, **FAST)
    clf.fit(X, y)
    scaler = clf.estimator_[0]
    assert scaler.n_samples_seen_ == 5 * len(X)  # noisy copies, not the noise_std hook
    # The scaler saw the noise: each feature's variance grew by sigma^2.
    assert abs(np.mean(scaler.var_ - X.var(axis=0)) - 0.25) < 0.03
    assert pipe.get_params()["standardscaler"] is not scaler  # the original is untouched
    assert clf.score(X, y) > 0.9
    again = SmoothedClassifier(pipe, sigma=0.5, noise_copies=5, random_state=0, **FAST)
    np.testing.assert_array_equal(again.fit(X, y).estimator_[1].coef_,
                                  clf.estimator_[1].coef_)


def test_noise_copies_repeat_sample_weight(cancer):
    X, y = cancer
    clf = SmoothedClassifier(LogisticRegression(), sigma=0.5, noise_copies=3, **FAST)
    clf.fit(X, y, sample_weight=np.ones(len(y)))
    assert clf.score(X, y, sample_weight=np.ones(len(y))) > 0.8


def test_library_classifier_trains_with_noise_std(digits_flat):
    X, X_test, y, y_test = digits_flat
    base = NaturalClassifier(max_epochs=3, random_state=0)
    clf = SmoothedClassifier(base, sigma=0.3, random_state=0, **FAST).fit(X, y)
    assert clf.estimator_.noise_std == 0.3 and base.noise_std == 0.0
    assert "estimator__noise_std" in clf.get_params()
    # The hook, not copies: one pass over the data per epoch.
    assert len(clf.estimator_.history[-1]["batches"]) == math.ceil(len(X) / 64)
    pred, radius = clf.certify(X_test[:10])
    assert pred.shape == radius.shape == (10,)
    assert set(pred) <= {-1, *range(10)}
    assert clf.score(X_test[:50], y_test[:50]) > 0.5


def test_abstain_label(cancer):
    X, y = cancer
    labels = np.where(y == 1, "benign", "malignant")
    clf = SmoothedClassifier(Coin(), abstain="undecided", random_state=0, **FAST)
    clf.fit(X, labels)
    pred, radius = clf.certify(X[:5])
    assert pred.tolist() == ["undecided"] * 5 and np.all(radius == 0.0)
    assert clf.predict(X[:5]).tolist() == ["undecided"] * 5
    assert clf.score(X, labels) == 0.0  # abstentions are errors
    # A number as abstain with string labels: an object array.
    clf.set_params(abstain=-1)
    assert clf.predict(X[:2]).tolist() == [-1, -1]
    clf.set_params(abstain="benign")
    with pytest.raises(ValueError, match="abstain='benign' is one of the classes"):
        clf.predict(X[:2])
    with pytest.raises(ValueError, match="abstain=0 is one of the classes"):
        SmoothedClassifier(Refuses(), abstain=0).fit(X, y)


@pytest.mark.parametrize("name, value", [
    ("sigma", 0.0), ("n0", 0), ("n", -3), ("alpha", 1.5), ("batch_size", 0),
    ("noise_copies", 0), ("random_state", "zero"), ("estimator", object()),
])
def test_smoothed_classifier_refuses_bad_parameters_before_any_work(cancer, name, value):
    X, y = cancer
    params = {"estimator": Refuses(), name: value}
    with pytest.raises(InvalidParameterError, match=name):
        SmoothedClassifier(**params).fit(X, y)


def test_smoothed_classifier_reproducible_with_random_state(cancer):
    X, y = cancer
    near = np.argsort(np.abs(LogisticRegression().fit(X, y).decision_function(X)))[:20]
    seeded = SmoothedClassifier(LogisticRegression(), sigma=0.5, random_state=0, **FAST)
    seeded.fit(X, y)
    first = seeded.certify(X[near])
    np.testing.assert_array_equal(first[1], seeded.certify(X[near])[1])
    np.testing.assert_array_equal(first[1], clone(seeded).fit(X, y).certify(X[near])[1])
    unseeded = clone(seeded).set_params(random_state=None).fit(X, y)
    assert not np.array_equal(unseeded.certify(X[near])[1], unseeded.certify(X[near])[1])


# The default abstain label -1 is one of the classes of check_classifiers_classes: refused.
@parametrize_with_checks(
    [SmoothedClassifier(LogisticRegression(), sigma=0.1, n0=10, n=100, random_state=0)],
    expected_failed_checks=lambda est: {
        "check_classifiers_classes": "its labels include -1, the default abstain label"},
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ---------------------------------------------------------------- noise_std
def test_noise_std_zero_trains_as_before_and_noise_changes_training(digits_flat):
    X, X_test, y, y_test = digits_flat
    kwargs = dict(max_epochs=2, random_state=0)
    default = NaturalClassifier(**kwargs).fit(X, y).predict_proba(X_test)
    zero = NaturalClassifier(noise_std=0.0, **kwargs).fit(X, y).predict_proba(X_test)
    np.testing.assert_array_equal(default, zero)
    state = torch.get_rng_state()
    noisy = NaturalClassifier(noise_std=0.3, **kwargs).fit(X, y)
    assert torch.equal(state, torch.get_rng_state())  # drawn from the fit's own stream
    again = NaturalClassifier(noise_std=0.3, **kwargs).fit(X, y)
    assert not np.array_equal(noisy.predict_proba(X_test), default)
    np.testing.assert_array_equal(noisy.predict_proba(X_test), again.predict_proba(X_test))
    assert noisy.score(X_test, y_test) > 0.8


@pytest.mark.parametrize("value", [-0.1, float("inf"), True, "0.1"])
def test_bad_noise_std_is_refused(digits_flat, value):
    X, _, y, _ = digits_flat
    clf = NaturalClassifier(noise_std=value, max_epochs=1)
    with pytest.raises(ValueError, match="noise_std"):
        clf.fit(X, y)
    assert not clf.initialized_
