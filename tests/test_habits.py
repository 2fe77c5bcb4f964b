"""Everyday scikit-learn and skorch idioms (issue 28): threads, set_params after fit,
criterion, partial_fit's classes, skorch's AccelerateMixin.

Threads: ``random_state`` makes a fit reproducible whatever runs beside it, so a search
run with joblib's threading backend (or a Dask worker's threads) scores as the serial
one, to the last bit here (the assertion allows 1e-6).
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_wine
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from sklearn_robust import (
    ATClassifier,
    FastATClassifier,
    GRClassifier,
    LLRClassifier,
    NaturalClassifier,
    RSTClassifier,
    SCOREClassifier,
    TRADESClassifier,
)
from sklearn_robust.metrics import robust_accuracy_score
from sklearn_robust.objectives import Objective

ALL = [NaturalClassifier, ATClassifier, TRADESClassifier, SCOREClassifier, RSTClassifier,
       GRClassifier, LLRClassifier, FastATClassifier]
#: Every method with a cross-entropy term the criterion replaces (SCORE has none).
WITH_CRITERION = [cls for cls in ALL if cls is not SCOREClassifier]


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def small(cls, **kw):
    params = dict(random_state=0, max_epochs=2, batch_size=16, module__hidden_units=(16,))
    params.update({k: v for k, v in dict(attack_steps=2, eps=0.3).items()
                   if k in cls._parameter_constraints})
    params.update(kw)
    return cls(**params)


# ------------------------------------------------------------------ 1. threads
def cv_scores(make, X, y, backend):
    with joblib.parallel_backend(backend, n_jobs=2 if backend == "threading" else 1):
        return cross_val_score(make(), X, y, cv=4, scoring="neg_log_loss")


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_threaded_cross_validation_scores_as_the_serial_one(cls, wine):
    X, y = wine

    def make():
        return make_pipeline(StandardScaler(), small(cls))

    serial = cv_scores(make, X, y, "sequential")
    for _ in range(2):  # repeated: the threads interleave differently each time
        np.testing.assert_allclose(cv_scores(make, X, y, "threading"), serial, rtol=0,
                                   atol=1e-6)


def test_threaded_fits_with_dropout_and_shifts_are_reproducible(digits_images):
    """The library networks' dropout and the random shifts draw from the fit's streams."""
    X, _, y, _ = digits_images
    X, y = X[:240], y[:240]

    def make():
        return TRADESClassifier(random_state=0, max_epochs=2, attack_steps=2, max_shift=1,
                                module__dropout=0.5, module__channels=(4, 8),
                                module__hidden_units=16)

    serial = cv_scores(make, X, y, "sequential")
    for _ in range(2):
        np.testing.assert_allclose(cv_scores(make, X, y, "threading"), serial, rtol=0,
                                   atol=1e-6)


def test_threaded_cascade_evaluations_match_serial_ones(wine):
    X, y = wine
    clf = small(TRADESClassifier, max_epochs=3).fit(X, y)
    seeds = [0, 1, 2, 3]

    def evaluate(seed):
        _, adversarial = robust_accuracy_score(
            clf, X, y, eps=0.5, attack=["pgd", "apgd-ce"], steps=5, random_state=seed,
            return_adversarial=True)
        return adversarial

    serial = [evaluate(seed) for seed in seeds]
    for _ in range(2):
        with ThreadPoolExecutor(max_workers=4) as pool:
            threaded = list(pool.map(evaluate, seeds))
        for a, b in zip(threaded, serial, strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert not np.allclose(serial[0], serial[1])  # the seeds matter: the test can fail


def test_concurrent_fits_never_see_each_others_device(wine):
    """device='auto' is never swapped for a concrete device while a fit works."""
    X, y = wine
    seen = []

    class Watch(Callback):
        def on_batch_end(self, net, **kwargs):
            seen.append((net.get_params()["device"], vars(net)["device"]))

    nets = [small(NaturalClassifier, callbacks=[Watch()]) for _ in range(2)]
    threads = [threading.Thread(target=net.fit, args=(X, y)) for net in nets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen and set(seen) == {("auto", "auto")}
    assert all(net.device in ("cpu", "cuda") and net.get_params()["device"] == "auto"
               for net in nets)


def test_a_fit_leaves_the_global_stream_alone(wine):
    X, y = wine
    torch.manual_seed(123)
    before = torch.get_rng_state()
    small(TRADESClassifier).fit(X, y)
    small(TRADESClassifier, module__dropout=0.5).fit(X, y)
    assert torch.equal(before, torch.get_rng_state())


def test_a_users_module_is_built_from_the_fits_seed(wine):
    """A user's network draws its initial weights from torch's global stream: it is built
    under a lock from the fit's seed, so two seeded fits start from the same weights."""
    X, y = wine

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(13, 3)

        def forward(self, x):
            return self.linear(x)

    first = NaturalClassifier(Net, random_state=0, max_epochs=1).fit(X, y)
    torch.rand(5)  # moves the global stream: the seeded fit must not care
    second = NaturalClassifier(Net, random_state=0, max_epochs=1).fit(X, y)
    assert torch.equal(first.module_.linear.weight, second.module_.linear.weight)


# ------------------------------------------------------------------ 2. set_params after fit
def test_set_params_of_a_fitted_estimators_module_criterion_and_optimizer(wine):
    X, y = wine
    clf = small(TRADESClassifier).fit(X, y)
    clf.set_params(module__hidden_units=(8,))  # skorch re-initialises the module here
    assert clf.module_.net[0].out_features == 8 and clf.get_params()["device"] == "auto"
    clf.fit(X, y)
    assert clf.module_.net[0].out_features == 8
    clf.set_params(criterion__weight=torch.ones(3), optimizer__weight_decay=1e-4)
    clf.fit(X, y)
    assert clf.score(X, y) > 0.5
    clf.initialize()  # by hand, with device='auto'
    assert clf.get_params()["device"] == "auto"


# ------------------------------------------------------------------ 3. criterion
def trained(cls, **kw):
    return small(cls, max_epochs=8, lr=1e-2, **kw)


@pytest.fixture(scope="module")
def noise():
    """Labels independent of the input: the weighted-optimal prediction is the prior,
    ``w_c n_c / sum_k w_k n_k`` (0.96 for class 0 at weights 50, 1, 1), unweighted 1/3."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(150, 4)).astype(np.float32), np.arange(150) % 3


def mean_proba_of_first_class(cls, data, **kw):
    X, y = data
    clf = trained(cls, **kw).fit(X, y)
    return clf.predict_proba(X)[:, 0].mean(), clf


@pytest.mark.parametrize("cls", WITH_CRITERION, ids=lambda c: c.__name__)
def test_class_weights_move_probability_mass_to_the_heavy_class(cls, noise):
    plain, _ = mean_proba_of_first_class(cls, noise)
    heavy, clf = mean_proba_of_first_class(
        cls, noise, criterion__weight=torch.tensor([50.0, 1.0, 1.0]))
    assert plain < 0.5 < heavy, (plain, heavy)
    # the validation loss is the criterion's too (weighted: 50 on class 0)
    logits, labels = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), torch.tensor([1, 0])
    weighted = F.cross_entropy(logits, labels, weight=torch.tensor([50.0, 1.0, 1.0]))
    assert float(clf.get_loss(logits, labels)) == pytest.approx(float(weighted))
    assert float(weighted) != pytest.approx(float(F.cross_entropy(logits, labels)))


@pytest.mark.parametrize("cls", WITH_CRITERION, ids=lambda c: c.__name__)
def test_label_smoothing_of_the_criterion_lowers_confidence(cls, wine):
    X, y = wine
    sharp = trained(cls).fit(X, y).predict_proba(X).max(axis=1).mean()
    smooth = trained(cls, criterion__label_smoothing=0.3).fit(X, y)
    assert smooth.predict_proba(X).max(axis=1).mean() < sharp - 0.02


def test_the_criterion_reaches_the_objective_inside_weight_perturbation(noise):
    plain, _ = mean_proba_of_first_class(TRADESClassifier, noise, awp_gamma=0.01)
    heavy, _ = mean_proba_of_first_class(TRADESClassifier, noise, awp_gamma=0.01,
                                         criterion__weight=torch.tensor([50.0, 1.0, 1.0]))
    assert plain < 0.5 < heavy, (plain, heavy)


def test_the_default_criterion_trains_as_before(wine):
    """criterion=CrossEntropyLoss without parameters is the plain cross-entropy path."""
    X, y = wine
    default = small(TRADESClassifier).fit(X, y).predict_proba(X)
    named = small(TRADESClassifier, criterion=torch.nn.CrossEntropyLoss).fit(X, y)
    np.testing.assert_array_equal(named.predict_proba(X), default)
    uniform = small(TRADESClassifier, criterion__weight=torch.ones(3)).fit(X, y)
    np.testing.assert_allclose(uniform.predict_proba(X), default, atol=1e-5)


def test_a_criterion_without_a_place_is_refused_before_any_work(wine):
    X, y = wine
    clf = small(SCOREClassifier, criterion__weight=torch.ones(3))
    with pytest.raises(ValueError, match=r"criterion__weight .*SCORE"):
        clf.fit(X, y)
    assert not clf.initialized_
    with pytest.raises(ValueError, match=r"criterion\b.*SCORE"):
        small(SCOREClassifier, criterion=torch.nn.NLLLoss).fit(X, y)

    class Noise(Objective):  # a user's objective that declares no criterion term
        adversarial = False

        def __call__(self, module, x, y, threat):
            return module(x).logsumexp(1).mean(), module(x)

    class NoiseClassifier(NaturalClassifier):
        objective_class = Noise

    with pytest.raises(ValueError, match="criterion__label_smoothing.*Noise"):
        NoiseClassifier(criterion__label_smoothing=0.1, max_epochs=1).fit(X, y)


def test_label_smoothing_asked_for_twice_is_refused(wine):
    X, y = wine
    with pytest.raises(ValueError, match="label smoothing was asked for twice"):
        small(TRADESClassifier, ls=0.1, criterion__label_smoothing=0.1).fit(X, y)


# ------------------------------------------------------------------ 4. partial_fit's classes
def test_partial_fit_takes_every_class_on_the_first_call(wine):
    X, y = wine
    first, later = y != 2, y == 2
    clf = small(NaturalClassifier, max_epochs=1)
    clf.partial_fit(X[first], y[first], classes=[0, 1, 2])
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.predict_proba(X).shape == (len(X), 3)
    clf.partial_fit(X[later], y[later])  # a class the first batch lacked
    clf.partial_fit(X, y, classes=np.array([2, 1, 0]))  # the same set, any order
    assert clf.score(X, y) > 0.5
    with pytest.raises(ValueError, match="classes=.*is not the same as classes_"):
        clf.partial_fit(X, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"outside classes_ \[0, 1, 2\]"):
        clf.partial_fit(X[:3], [0, 1, 7])


def test_partial_fit_without_classes_learns_them_from_the_first_batch(wine):
    X, y = wine
    first = y != 2
    clf = small(NaturalClassifier, max_epochs=1).partial_fit(X[first], y[first])
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    with pytest.raises(ValueError, match="name every class of the stream"):
        clf.partial_fit(X, y)
    with pytest.raises(ValueError, match="repeat"):
        small(NaturalClassifier).partial_fit(X, y, classes=[0, 1, 1, 2])
    with pytest.raises(ValueError, match="at least 2 classes"):
        small(NaturalClassifier).partial_fit(X[y == 0], y[y == 0], classes=[0])
