"""IBPClassifier and its objective: certified training (IBP, CROWN-IBP)."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from skorch.callbacks import Callback

from sklearn_robust import IBPClassifier, NaturalClassifier, ThreatModel, TRADESClassifier
from sklearn_robust.datasets import load_digits_images
from sklearn_robust.estimators._certified import ramp
from sklearn_robust.metrics import certified_accuracy_score, robust_accuracy_score
from sklearn_robust.objectives import IntervalBoundTraining


@pytest.fixture(scope="module")
def digits():
    return load_digits_images(flat=True)


class Recorder(Callback):
    """The objective each training step runs with (the net's own hook runs first)."""

    def initialize(self):
        self.seen = []
        return self

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.seen.append(net.objective_)


# ---------------------------------------------------------------- the schedule
def test_ramp_is_zero_then_linear_then_one():
    assert ramp(0.05, 0.1, 0.5) == 0.0
    assert ramp(0.1, 0.1, 0.5) == 0.0
    assert ramp(0.35, 0.1, 0.5) == pytest.approx(0.5)
    assert ramp(0.6, 0.1, 0.5) == 1.0
    assert ramp(0.3, 0.3, 0.0) == 0.0 and ramp(0.31, 0.3, 0.0) == 1.0


def test_schedule_per_step_reaches_the_target_within_the_fit(digits):
    X_train, _, y_train, _ = digits
    X, y = X_train[:640], y_train[:640]  # 10 batches of 64 per epoch
    recorder = Recorder()
    clf = IBPClassifier(eps=0.1, bound="crown-ibp", train_eps=0.2, kappa_end=0.4,
                        max_epochs=10, eps_warmup=0.2, eps_ramp=0.4, random_state=0,
                        callbacks=[("rec", recorder)]).fit(X, y)
    seen = recorder.seen
    assert len(seen) == 100 == clf.schedule_steps_ == clf.steps_trained_
    eps = np.array([o.eps for o in seen])
    kappa = np.array([o.kappa for o in seen])
    beta = np.array([o.crown_weight for o in seen])
    assert (eps[:21] == 0).all() and (kappa[:21] == 1).all()  # warm-up: natural training
    assert (np.diff(eps) >= -1e-12).all() and (np.diff(kappa) <= 1e-12).all()
    assert eps[40] == pytest.approx(0.1) and kappa[40] == pytest.approx(0.7)  # mid-ramp
    assert beta[40] == pytest.approx(0.5)  # CROWN-IBP's beta falls from 1 to 0
    assert (eps[60:] == 0.2).all() and (kappa[60:] == 0.4).all() and (beta[60:] == 0).all()
    assert clf.objective_ == seen[-1] or repr(clf.objective_) == repr(seen[-1])
    assert clf.threat_model_.eps == 0.1  # the threat stays the certified radius


def test_bound_ibp_never_uses_crown(digits):
    X_train, _, y_train, _ = digits
    recorder = Recorder()
    IBPClassifier(bound="ibp", max_epochs=2, random_state=0,
                  callbacks=[("rec", recorder)]).fit(X_train[:256], y_train[:256])
    assert all(o.crown_weight == 0 for o in recorder.seen)


def test_partial_fit_continues_at_the_target(digits):
    X_train, _, y_train, _ = digits
    X, y = X_train[:256], y_train[:256]
    clf = IBPClassifier(eps=0.1, max_epochs=2, random_state=0).fit(X, y)
    assert clf.steps_trained_ == clf.schedule_steps_ == 8
    recorder = Recorder()
    clf.set_params(callbacks=[("rec", recorder)])
    clf.initialize_callbacks()
    clf.partial_fit(X, y)
    assert clf.steps_trained_ == 16
    # train_eps=None: 1.5 eps, wider than the certified radius, as IBP papers train
    assert all(o.eps == pytest.approx(0.15) and o.kappa == 0.5 for o in recorder.seen)


# ---------------------------------------------------------------- what it trains
@pytest.fixture(scope="module")
def trained(digits):
    X_train, X_test, y_train, y_test = digits
    common = dict(max_epochs=20, random_state=0)
    models = {
        "ibp": IBPClassifier(eps=0.1, bound="ibp", **common),
        "crown-ibp": IBPClassifier(eps=0.1, bound="crown-ibp", **common),
        "natural": NaturalClassifier(**common),
    }
    return {name: m.fit(X_train, y_train) for name, m in models.items()}


def test_certified_training_is_what_certifies(trained, digits):
    _, X_test, _, y_test = digits
    X, y = X_test[:150], y_test[:150]
    score = {name: certified_accuracy_score(m, X, y, eps=0.1, method="ibp")
             for name, m in trained.items()}
    assert score["natural"] < 0.05  # a network not trained for it: nothing provable
    assert score["ibp"] > 0.3 and score["crown-ibp"] > 0.3  # certified training certifies
    for name in ("ibp", "crown-ibp"):
        assert trained[name].score(X, y) > 0.75
        crown = certified_accuracy_score(trained[name], X, y, eps=0.1, method="crown")
        attacked = robust_accuracy_score(trained[name], X, y, eps=0.1, attack="auto",
                                         bounds=(0, 1), random_state=0)
        assert score[name] <= crown + 1e-12 <= attacked + 1e-12  # lower <= upper bound


def test_seeded_fit_is_reproducible(digits):
    X_train, X_test, y_train, _ = digits
    fits = [IBPClassifier(eps=0.1, max_epochs=3, random_state=3).fit(X_train[:300],
                                                                    y_train[:300])
            for _ in range(2)]
    np.testing.assert_array_equal(fits[0].predict_proba(X_test), fits[1].predict_proba(X_test))


@pytest.mark.slow  # fast: the example's digits smoke run (CNN, both bounds, one epoch)
def test_image_cnn_trains_with_crown_ibp(digits):
    X_train, X_test, y_train, y_test = digits
    clf = IBPClassifier(eps=0.1, bound="crown-ibp", input_shape=(1, 8, 8), max_epochs=20,
                        random_state=0,
                        module__channels=(8, 8), module__hidden_units=32)
    clf.fit(X_train, y_train)
    assert [type(m).__name__ for m in clf.module_] == ["Reshape", "SmallCNN"]
    assert np.isfinite(clf.history[:, "train_loss"]).all()
    assert clf.score(X_test, y_test) > 0.25  # 36%: certified training costs accuracy
    assert certified_accuracy_score(clf, X_test, y_test, eps=0.05, method="ibp") > 0.1


def test_tabular_pipeline_and_grid_search():
    X, y = load_breast_cancer(return_X_y=True)
    pipe = make_pipeline(MinMaxScaler(), IBPClassifier(eps=0.02, max_epochs=5, bounds=None,
                                                       random_state=0))
    search = GridSearchCV(pipe, {"ibpclassifier__kappa_end": [0.5, 0.8]}, cv=2)
    search.fit(X, y)
    assert search.best_score_ > 0.8


def test_class_weights_reach_both_terms(digits):
    X_train, X_test, y_train, _ = digits
    X, y = X_train[:400], y_train[:400]
    weight = torch.ones(10)
    weight[3] = 20.0
    common = dict(eps=0.05, max_epochs=4, random_state=0)
    plain = IBPClassifier(**common).fit(X, y)
    weighted = IBPClassifier(criterion__weight=weight, **common).fit(X, y)
    share = [(m.predict(X_test) == 3).mean() for m in (plain, weighted)]
    assert share[1] > share[0]


# ---------------------------------------------------------------- the objective
def test_objective_loss_grows_with_eps_and_kappa_one_is_clean():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    x, y = torch.rand(32, 4), torch.randint(0, 3, (32,))
    threat = ThreatModel(eps=0.1, bounds=(0, 1))
    clean, _ = IntervalBoundTraining(kappa=1.0)(model, x, y, threat)
    assert clean.item() == pytest.approx(torch.nn.functional.cross_entropy(model(x), y).item())
    losses = [IntervalBoundTraining(kappa=0.0, eps=e)(model, x, y, threat)[0].item()
              for e in (0.0, 0.05, 0.1, 0.2)]
    assert losses[0] == pytest.approx(clean.item())
    assert np.all(np.diff(losses) > 0)
    mixed, _ = IntervalBoundTraining(kappa=0.0, crown_weight=1.0)(model, x, y, threat)
    ibp, _ = IntervalBoundTraining(kappa=0.0, crown_weight=0.0)(model, x, y, threat)
    assert mixed.item() != ibp.item()
    ibp.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_objective_parameters_are_checked():
    with pytest.raises(ValueError, match="kappa"):
        IntervalBoundTraining(kappa=1.5)
    with pytest.raises(ValueError, match="crown_weight"):
        IntervalBoundTraining(crown_weight=-0.1)
    assert IntervalBoundTraining().replace(eps=0.3).eps == 0.3


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("params, message", [
    (dict(eps_warmup=0.6, eps_ramp=0.5), "eps_warmup \\+ eps_ramp"),
    (dict(norm="l1"), "l_inf and l_2"),
    (dict(bound="crown"), "bound"),
    (dict(kappa_end=2.0), "kappa_end"),
    (dict(train_eps=-0.1), "train_eps"),
    (dict(eps_ramp=-0.1), "eps_ramp"),
])
def test_bad_parameters_are_refused_before_training(params, message, digits):
    X_train, _, y_train, _ = digits
    clf = IBPClassifier(max_epochs=1, **params)
    with pytest.raises(ValueError, match=message):
        clf.fit(X_train[:64], y_train[:64])
    assert not clf.initialized_


def test_unsupported_network_is_refused(digits):
    X_train, _, y_train, _ = digits
    net = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.Tanh(), torch.nn.Linear(16, 10))
    with pytest.raises((TypeError, ValueError), match="Tanh"):
        IBPClassifier(module=net, max_epochs=1, random_state=0).fit(X_train[:64], y_train[:64])


def test_clone_keeps_parameters():
    clf = IBPClassifier(bound="ibp", kappa_end=0.3, eps_warmup=0.0, eps_ramp=0.8,
                        train_eps=0.15)
    params = clone(clf).get_params()
    assert (params["bound"], params["kappa_end"], params["eps_warmup"], params["eps_ramp"],
            params["train_eps"]) == ("ibp", 0.3, 0.0, 0.8, 0.15)
    assert TRADESClassifier().get_params()["eps"] == clf.get_params()["eps"]
