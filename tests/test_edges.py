"""Users' habits at the edges (issue 17): skorch's restore idiom, the baseline's threat
model, continuing a recipe. Tiny networks: every fit here takes a fraction of a second."""

import numpy as np
import pytest

from sklearn_robust import GRClassifier, NaturalClassifier, TRADESClassifier
from sklearn_robust.bridge import UNKNOWN_BOUNDS, as_torch_classifier
from sklearn_robust.estimators import MLP, SmallCNN
from sklearn_robust.metrics import local_lipschitz_score, robust_accuracy_score
from sklearn_robust.recipes import robust_recipe

TINY_CNN = dict(module__channels=(4, 8), module__hidden_units=16)
CLASSES = list(range(10))


@pytest.fixture(scope="module")
def images(digits_images):
    X_train, X_test, y_train, y_test = digits_images
    return X_train[:200], y_train[:200], X_test[:60], y_test[:60]


@pytest.fixture(scope="module")
def flat(digits_flat):
    X_train, X_test, y_train, y_test = digits_flat
    return X_train[:200], y_train[:200], X_test[:60], y_test[:60]


# ---------------------------------------------------------------- 1. restore idiom
def test_restore_idiom_with_a_named_network(images, tmp_path):
    X, y, X_test, y_test = images
    fitted = TRADESClassifier(max_epochs=1, attack_steps=1, random_state=0, **TINY_CNN)
    fitted.fit(X, y).save_params(f_params=tmp_path / "w.pt")
    net = TRADESClassifier(module=SmallCNN, module__image_shape=(1, 8, 8),
                           module__n_classes=10, classes=CLASSES, **TINY_CNN)
    net.initialize()
    net.load_params(f_params=tmp_path / "w.pt")
    np.testing.assert_array_equal(net.predict_proba(X_test), fitted.predict_proba(X_test))
    np.testing.assert_array_equal(net.predict(X_test), fitted.predict(X_test))
    assert net.score(X_test, y_test) == fitted.score(X_test, y_test)
    assert net.objective_.steps == 10 and net.threat_model_ is None


def test_restore_idiom_without_classes_still_predicts_probabilities(images, tmp_path):
    X, y, X_test, _ = images
    fitted = NaturalClassifier(max_epochs=1, random_state=0, **TINY_CNN).fit(X, y)
    fitted.save_params(f_params=tmp_path / "w.pt")
    net = NaturalClassifier(module=SmallCNN, module__image_shape=(1, 8, 8),
                            module__n_classes=10, **TINY_CNN).initialize()
    net.load_params(f_params=tmp_path / "w.pt")
    np.testing.assert_array_equal(net.predict_proba(X_test), fitted.predict_proba(X_test))


@pytest.mark.parametrize("kind", ["flat-mlp", "flat-as-images"])
def test_default_network_rebuilt_without_data(flat, tmp_path, kind):
    """The documented way to rebuild what module=None built, for flat rows."""
    X, y, X_test, _ = flat
    if kind == "flat-mlp":
        fit_params = dict(module__hidden_units=(16,))
        restore = dict(module=MLP, module__n_features=64, module__n_classes=10, **fit_params)
    else:
        fit_params = dict(input_shape=(1, 8, 8), **TINY_CNN)
        restore = dict(module=SmallCNN, module__image_shape=(1, 8, 8), module__n_classes=10,
                       **fit_params)
    fitted = NaturalClassifier(max_epochs=1, random_state=0, **fit_params).fit(X, y)
    fitted.save_params(f_params=tmp_path / "w.pt")
    net = NaturalClassifier(classes=CLASSES, **restore).initialize()
    net.load_params(f_params=tmp_path / "w.pt")
    np.testing.assert_array_equal(net.predict(X_test), fitted.predict(X_test))


def test_module_none_without_data_names_the_way_out():
    with pytest.raises(ValueError, match="module=SmallCNN, module__image_shape"):
        TRADESClassifier().initialize()


def test_restored_net_trains_on_and_records_its_data(images, tmp_path):
    X, y, _, _ = images
    net = NaturalClassifier(module=SmallCNN, module__image_shape=(1, 8, 8),
                            module__n_classes=10, classes=CLASSES, max_epochs=1,
                            **TINY_CNN).initialize()
    net.partial_fit(X, y)
    assert net.sample_shape_ == (1, 8, 8) and net.input_range_ == (0.0, 1.0)


def test_restored_net_evaluation_asks_for_bounds(images, tmp_path):
    X, y, X_test, y_test = images
    fitted = TRADESClassifier(max_epochs=1, attack_steps=1, random_state=0, **TINY_CNN)
    fitted.fit(X, y).save_params(f_params=tmp_path / "w.pt")
    net = TRADESClassifier(module=SmallCNN, module__image_shape=(1, 8, 8),
                           module__n_classes=10, classes=CLASSES, **TINY_CNN).initialize()
    net.load_params(f_params=tmp_path / "w.pt")
    assert as_torch_classifier(net).bounds is UNKNOWN_BOUNDS
    with pytest.raises(ValueError, match="pass bounds=\\(low, high\\)"):
        robust_accuracy_score(net, X_test, y_test, eps=0.1, steps=2)
    given = robust_accuracy_score(net, X_test, y_test, eps=0.1, steps=2, bounds=(0.0, 1.0),
                                  random_state=0)
    assert given == robust_accuracy_score(fitted, X_test, y_test, eps=0.1, steps=2,
                                          random_state=0)


# ---------------------------------------------------------------- 4. the same threat model
@pytest.mark.parametrize("cls", [NaturalClassifier, GRClassifier])
def test_baselines_are_attacked_in_the_data_bounds(flat, cls):
    X, y, X_test, y_test = flat
    est = cls(max_epochs=2, random_state=0, module__hidden_units=(32,)).fit(X, y)
    assert est.input_range_ == (float(X.min()), float(X.max()))
    low, high = as_torch_classifier(est).bounds
    assert (float(low), float(high)) == (0.0, 1.0)
    kwargs = dict(eps=0.3, steps=5, random_state=0, return_adversarial=True)
    default, X_adv = robust_accuracy_score(est, X_test, y_test, **kwargs)
    given, X_given = robust_accuracy_score(est, X_test, y_test, bounds=(0.0, 1.0), **kwargs)
    assert default == given and np.array_equal(X_adv, X_given)
    assert X_adv.min() >= 0.0 and X_adv.max() <= 1.0
    _, X_free = robust_accuracy_score(est, X_test, y_test, bounds=None, **kwargs)
    assert X_free.min() < 0.0 or X_free.max() > 1.0  # unbounded: leaves the box
    lipschitz = dict(eps=0.3, steps=3, random_state=0)
    assert local_lipschitz_score(est, X_test, **lipschitz) == local_lipschitz_score(
        est, X_test, bounds=(0.0, 1.0), **lipschitz)


# ---------------------------------------------------------------- 5. recipe + partial_fit
def test_partial_fit_after_a_recipe_is_a_clear_error(images):
    X, y, _, _ = images
    clf = robust_recipe(max_epochs=2, attack_steps=1, ema_decay=None, random_state=0,
                        **TINY_CNN).fit(X, y)
    with pytest.raises(ValueError, match="'lr_schedule' learning-rate schedule spans 2"):
        clf.partial_fit(X, y)
    assert len(clf.history) == 2  # refused before any epoch
    clf.set_params(callbacks__lr_schedule=None, max_epochs=1).initialize_callbacks()
    clf.partial_fit(X, y)
    assert len(clf.history) == 3


def test_recipe_within_its_schedule_continues(images):
    X, y, _, _ = images
    clf = robust_recipe(max_epochs=2, attack_steps=1, ema_decay=None, random_state=0,
                        **TINY_CNN).set_params(max_epochs=1).fit(X, y)
    clf.partial_fit(X, y)  # epochs 1 and 2 of a 2-epoch schedule
    assert len(clf.history) == 2
