"""The estimators: threat-model parameters, skorch parameters, data handling, devices."""

import copy
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from _nets import BNDropoutNet
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from skorch.callbacks import Callback
from skorch.dataset import ValidSplit
from skorch.exceptions import SkorchAttributeError

import sklearn_robust
from sklearn_robust import (
    ATClassifier,
    FastATClassifier,
    GRClassifier,
    LLRClassifier,
    NaturalClassifier,
    RSTClassifier,
    SCOREClassifier,
    ThreatModel,
    TRADESClassifier,
)
from sklearn_robust.attacks import PGD
from sklearn_robust.estimators import MLP, SmallCNN
from sklearn_robust.metrics import robust_accuracy_score

ALL = [NaturalClassifier, ATClassifier, TRADESClassifier, SCOREClassifier]
ROBUST = [ATClassifier, TRADESClassifier, SCOREClassifier]
FAST = dict(max_epochs=2, random_state=0)


def fast(cls, **kw):
    params = dict(FAST, **kw)
    if cls is not NaturalClassifier:
        params.setdefault("attack_steps", 2)
    return cls(**params)


@pytest.fixture(scope="module")
def small_digits(digits_flat):
    X_train, X_test, y_train, y_test = digits_flat
    return X_train[:400], X_test[:200], y_train[:400], y_test[:200]


# ---------------------------------------------------------------- public API and params
def test_public_names_importable():
    for name in ["TRADESClassifier", "SCOREClassifier", "ATClassifier", "NaturalClassifier"]:
        assert name in sklearn_robust.__all__
        assert issubclass(getattr(sklearn_robust, name), sklearn_robust.RobustNetClassifier)


@pytest.mark.parametrize("cls", ROBUST)
def test_threat_parameters_reach_threat_model(cls, small_digits):
    X, _, y, _ = small_digits
    clf = fast(cls, eps=0.2, norm="l2", attack_steps=3, step_size=None, bounds=(0.0, 1.0))
    clf.fit(X, y)
    threat = clf.threat_model_
    assert threat == ThreatModel(eps=0.2, norm="l2", bounds=(0.0, 1.0))
    # the schedule is the objective's
    assert (clf.objective_.steps, clf.objective_.step_size) == (3, None)
    assert clf.get_params()["eps"] == 0.2



SEARCH = {"eps", "norm", "bounds", "attack_steps", "step_size", "awp_gamma"}
METHOD_PARAMS = {  # what each classifier adds to the network parameters of the base
    NaturalClassifier: set(),
    ATClassifier: SEARCH | {"ls"},
    TRADESClassifier: SEARCH | {"beta", "ls"},
    SCOREClassifier: SEARCH | {"beta", "distance", "ls", "clip"},
    RSTClassifier: SEARCH | {"lam"},
    LLRClassifier: SEARCH | {"lam", "mu", "form"},
    FastATClassifier: {"eps", "norm", "bounds", "step_size"},
    GRClassifier: {"lam", "h", "weighting"},  # always the l_2 direction (reference code)
}


@pytest.mark.parametrize("cls", list(METHOD_PARAMS), ids=lambda c: c.__name__)
def test_get_params_lists_only_parameters_that_change_the_estimator(cls, small_digits):
    base = set(NaturalClassifier().get_params())
    added = set(cls().get_params()) - base
    assert added == METHOD_PARAMS[cls]
    assert set(cls._parameter_constraints) >= added  # every one is validated
    if cls in (GRClassifier, FastATClassifier):
        X, _, y, _ = small_digits
        # a parameter that would change nothing is refused (by skorch, before training)
        clf = cls(attack_steps=3, max_epochs=1)
        with pytest.raises(ValueError, match="unexpected argument.*attack_steps"):
            clf.fit(X, y)
        assert not clf.initialized_


@pytest.mark.parametrize("cls,default", [
    (ATClassifier, 10), (TRADESClassifier, 10), (SCOREClassifier, 10), (RSTClassifier, 10),
    (LLRClassifier, 2),
])
def test_attack_steps_and_step_size_reach_the_objective(cls, default):
    assert cls().make_objective().steps == default
    objective = cls(attack_steps=3, step_size=0.02).make_objective()
    assert (objective.steps, objective.step_size) == (3, 0.02)
    assert FastATClassifier(step_size=0.02).make_objective().step_size == 0.02


def test_gr_has_no_threat_model(small_digits):
    X, _, y, _ = small_digits
    clf = GRClassifier(max_epochs=1, random_state=0).fit(X, y)
    assert clf.threat_model_ is None  # GR searches nothing: its probe is always l_2
    assert set(clf.objective_.get_params()) >= {"lam", "h"}
    assert NaturalClassifier(max_epochs=1).fit(X, y).threat_model_ is None


def test_bounds_variants(small_digits):
    X, _, y, _ = small_digits
    auto = fast(TRADESClassifier).fit(X, y).threat_model_
    assert auto.bounds == (float(X.min()), float(X.max()))
    none = fast(TRADESClassifier, bounds=None).fit(X, y).threat_model_
    assert none.bounds is None
    low, high = np.zeros(64, np.float32), np.ones(64, np.float32)
    per_feature = fast(TRADESClassifier, bounds=(low, high)).fit(X, y).threat_model_
    np.testing.assert_array_equal(per_feature.bounds[0], low)


def test_beta_on_trades_and_score():
    assert TRADESClassifier().beta == 6.0
    assert SCOREClassifier(beta=3).beta == 3
    assert SCOREClassifier(beta=3).make_objective().beta == 3.0


def test_skorch_parameters_still_work(small_digits):
    X, _, y, _ = small_digits
    calls = []

    class Count(Callback):
        def on_epoch_end(self, net, **kwargs):
            calls.append(len(net.history))

    clf = TRADESClassifier(
        max_epochs=3, lr=5e-3, batch_size=32, attack_steps=1, optimizer=torch.optim.SGD,
        optimizer__momentum=0.9, callbacks=[Count()], train_split=ValidSplit(4, stratified=True),
        module__hidden_units=(32,), module__dropout=0.1, random_state=0,
    ).fit(X, y)
    assert calls == [1, 2, 3]
    assert len(clf.history) == 3 and "valid_loss" in clf.history[-1]
    assert isinstance(clf.optimizer_, torch.optim.SGD)
    assert clf.optimizer_.param_groups[0]["momentum"] == 0.9
    assert clf.module_.net[0].out_features == 32
    assert any(isinstance(m, torch.nn.Dropout) for m in clf.module_.modules())


# ---------------------------------------------------------------- default networks
def test_default_network_mlp_for_tabular(small_digits):
    X, _, y, _ = small_digits
    assert isinstance(fast(NaturalClassifier).fit(X, y).module_, MLP)


@pytest.mark.parametrize("shape", [(1, 8, 8), (8, 8)])
def test_default_network_cnn_for_images(shape, small_digits):
    X, X_test, y, _ = small_digits
    clf = fast(NaturalClassifier).fit(X.reshape(-1, *shape), y)
    assert isinstance(clf.module_, SmallCNN)
    assert clf.predict(X_test.reshape(-1, *shape)).shape == (200,)


def test_cnn_batch_norm_trains_and_attacks_leave_its_statistics(small_digits):
    X, X_test, y, y_test = small_digits
    images = X.reshape(-1, 1, 8, 8)
    clf = fast(TRADESClassifier, module__batch_norm=True, bounds=(0.0, 1.0)).fit(images, y)
    norms = [m for m in clf.module_.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 4 and all(int(m.num_batches_tracked) > 0 for m in norms)
    before = {k: v.clone() for k, v in clf.module_.state_dict().items()}
    robust_accuracy_score(clf, X_test.reshape(-1, 1, 8, 8), y_test, eps=0.1, steps=3)
    for key, value in clf.module_.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_input_shape_reshapes_flat_rows(small_digits):
    X, X_test, y, _ = small_digits
    clf = fast(SCOREClassifier, input_shape=(1, 8, 8)).fit(X, y)
    assert isinstance(clf.module_[1], SmallCNN)
    assert clf.predict_proba(X_test).shape == (200, 10)


def test_input_shape_must_match_features(small_digits):
    X, _, y, _ = small_digits
    with pytest.raises(ValueError, match="input_shape"):
        fast(NaturalClassifier, input_shape=(1, 7, 7)).fit(X, y)


def test_module_and_criterion_instances_are_stored_as_given(small_digits):
    """skorch refuses torch modules set outside initialize(), except while constructing."""
    X, _, y, _ = small_digits
    net = torch.nn.Sequential(torch.nn.Linear(64, 10))
    loss = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    clf = fast(TRADESClassifier, module=net, criterion=loss)
    assert clf.module is net and clf.criterion is loss
    assert clf.get_params()["module"] is net
    cloned = clone(clf)  # clone builds a new one through __init__, with deep copies
    assert isinstance(cloned.module, torch.nn.Sequential) and cloned.module is not net
    assert cloned.criterion.label_smoothing == 0.1 and not cloned.initialized_
    cloned.fit(X, y)
    assert cloned.module_ is cloned.module and cloned.criterion_ is cloned.criterion
    with pytest.raises(SkorchAttributeError, match="outside of an initialize method"):
        TRADESClassifier().set_params(module=torch.nn.Linear(64, 10))  # skorch's own rule


def test_user_module_with_input_shape(small_digits):
    X, _, y, _ = small_digits
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    clf = fast(NaturalClassifier, module=net, input_shape=(1, 8, 8)).fit(X, y)
    assert clf.predict(X[:5]).shape == (5,)


# ---------------------------------------------------------------- devices
def test_cuda_requested_without_cuda_is_a_clear_error(monkeypatch, small_digits):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    X, _, y, _ = small_digits
    with pytest.raises(ValueError, match="CUDA is not available"):
        fast(NaturalClassifier, device="cuda").fit(X, y)
    with pytest.raises(ValueError, match="device must be"):
        fast(NaturalClassifier, device="tpu").fit(X, y)


def test_device_auto_survives_fit_pickle_and_clone(small_digits):
    X, X_test, y, _ = small_digits
    clf = fast(NaturalClassifier).fit(X, y)
    assert clf.get_params()["device"] == "auto" and clf.device == "cpu"
    restored = pickle.loads(pickle.dumps(clf))
    assert restored.get_params()["device"] == "auto"
    np.testing.assert_array_equal(restored.predict(X_test), clf.predict(X_test))
    assert clone(clf).get_params()["device"] == "auto"


def test_cuda_pickle_loads_on_cpu_only_machine(small_digits):
    """A model pickled with device='cuda' maps to CPU where CUDA is absent (skorch logic)."""
    X, X_test, y, _ = small_digits
    clf = fast(NaturalClassifier, device="cpu").fit(X, y)
    state = clf.__getstate__()
    state["device"] = "cuda"
    loaded = NaturalClassifier.__new__(NaturalClassifier)
    with pytest.warns(Warning, match="CUDA|cuda"):
        loaded.__setstate__(state)
    assert str(loaded.device) == "cpu"
    np.testing.assert_array_equal(loaded.predict(X_test), clf.predict(X_test))


# ---------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("cls", ALL)
def test_random_state_reproducible(cls, small_digits):
    X, X_test, y, _ = small_digits
    a = fast(cls).fit(X, y).predict_proba(X_test)
    b = fast(cls).fit(X, y).predict_proba(X_test)
    np.testing.assert_array_equal(a, b)
    c = fast(cls, random_state=1).fit(X, y).predict_proba(X_test)
    assert not np.array_equal(a, c)


def test_fit_with_random_state_leaves_global_rng(small_digits):
    X, _, y, _ = small_digits
    before = torch.get_rng_state()
    fast(TRADESClassifier).fit(X, y)
    assert torch.equal(before, torch.get_rng_state())


# ---------------------------------------------------------------- sklearn compatibility
@pytest.mark.parametrize("cls", ALL)
def test_clone_params_pickle_joblib(cls, small_digits, tmp_path):
    X, X_test, y, _ = small_digits
    clf = fast(cls, module__hidden_units=(64,))
    params = clf.get_params()
    assert clone(clf).get_params().keys() == params.keys()
    assert clf.set_params(lr=0.01).lr == 0.01
    clf.fit(X, y)
    expected = clf.predict_proba(X_test)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X_test), expected)
    joblib.dump(clf, tmp_path / "m.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "m.joblib").predict_proba(X_test),
                                  expected)
    np.testing.assert_allclose(expected.sum(axis=1), 1.0, rtol=1e-5)


def test_string_and_non_contiguous_labels(small_digits):
    X, X_test, y, _ = small_digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])
    clf = fast(TRADESClassifier).fit(X, names[y])
    assert set(clf.predict(X_test)) <= set(names)
    assert list(clf.classes_) == sorted(names)
    sparse_labels = y * 7 + 3
    clf2 = fast(NaturalClassifier).fit(X, sparse_labels)
    assert set(clf2.predict(X_test)) <= set(sparse_labels)


def test_pandas_dataframe(small_digits):
    X, X_test, y, _ = small_digits
    cols = [f"px{i}" for i in range(64)]
    clf = fast(SCOREClassifier).fit(pd.DataFrame(X, columns=cols), pd.Series(y))
    assert list(clf.feature_names_in_) == cols
    proba = clf.predict_proba(pd.DataFrame(X_test, columns=cols))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


# n_jobs=2 (worker processes): slow here; test_reliability.py compares n_jobs 1 and 2 fast.
@pytest.mark.parametrize("n_jobs", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_grid_search_over_beta(n_jobs, small_digits):
    X, _, y, _ = small_digits
    search = GridSearchCV(
        SCOREClassifier(max_epochs=1, attack_steps=1, random_state=0),
        {"beta": [3, 4, 6]}, cv=2, n_jobs=n_jobs,
    ).fit(X, y)
    assert search.best_params_["beta"] in (3, 4, 6)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_pipeline_on_breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), TRADESClassifier(max_epochs=5, attack_steps=2,
                                                            random_state=0))
    pipe.fit(X[:400], y[:400])
    assert pipe.score(X[400:], y[400:]) > 0.85


def test_pipeline_on_digits_with_input_shape():
    X, y = load_digits(return_X_y=True)
    pipe = make_pipeline(MinMaxScaler(), SCOREClassifier(input_shape=(1, 8, 8), max_epochs=3,
                                                         attack_steps=2, random_state=0))
    pipe.fit(X[:1200], y[:1200])
    assert pipe.score(X[1200:], y[1200:]) > 0.7


# ---------------------------------------------------------------- the training step
BNNet = BNDropoutNet


@pytest.mark.parametrize("cls", ROBUST)
def test_inner_maximisation_leaves_bn_stats_grads_and_modes(cls, small_digits):
    """The attack inside the objective must not touch BN statistics or parameter grads."""
    X, _, y, _ = small_digits
    clf = fast(cls, module=BNNet).fit(X, y)
    module = clf.module_
    module.train()
    for p in module.parameters():
        p.grad = torch.ones_like(p)
    from sklearn_robust.objectives import inner_maximise

    stats = copy.deepcopy(module.state_dict())
    x = torch.as_tensor(X[:32])
    inner_maximise(module, x, clf.threat_model_, lambda logits: logits.sum(dim=1), steps=2)
    for key, value in module.state_dict().items():
        assert torch.equal(value, stats[key]), key
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in module.parameters())
    assert all(m.training for m in module.modules())
    assert all(p.requires_grad for p in module.parameters())


def _tiny_net():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 3)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 1.0, 1.0], [2.0, 0.0, -1.0]]))
        net.bias.copy_(torch.tensor([0.1, -0.2, 0.0]))
    return net


def test_trades_loss_matches_hand_computation():
    from sklearn_robust.objectives import TRADES

    net = _tiny_net()
    x = torch.tensor([[0.2, 0.4, 0.6], [0.9, 0.1, 0.3]])
    y = torch.tensor([0, 2])
    threat = ThreatModel(eps=0.1, bounds=(0, 1))
    torch.manual_seed(3)
    loss, _ = TRADES(beta=2.0, steps=1, step_size=0.05)(net, x, y, threat)
    # by hand: start x + 0.001 N(0,1) (same seed), one signed KL-ascent step, project
    torch.manual_seed(3)
    x0 = (x + 0.001 * torch.randn(x.shape)).clamp(0, 1)
    p = torch.softmax(net(x), 1).detach()
    x0.requires_grad_(True)
    kl = (p * (p.log() - torch.log_softmax(net(x0), 1))).sum()
    (g,) = torch.autograd.grad(kl, x0)
    x_adv = torch.min(torch.max(x0.detach() + 0.05 * g.sign(), x - 0.1), x + 0.1).clamp(0, 1)
    p_clean = torch.softmax(net(x), 1)
    expected = torch.nn.functional.cross_entropy(net(x), y) + 2.0 * (
        p_clean * (p_clean.log() - torch.log_softmax(net(x_adv), 1))
    ).sum() / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_score_loss_matches_hand_computation():
    from sklearn_robust.objectives import SCORE

    net = _tiny_net()
    x = torch.tensor([[0.2, 0.4, 0.6], [0.9, 0.1, 0.3]])
    y = torch.tensor([0, 2])
    threat = ThreatModel(eps=0.1, bounds=(0, 1))
    torch.manual_seed(5)
    loss, _ = SCORE(beta=3.0, ls=0.1, steps=1, step_size=0.05)(net, x, y, threat)
    torch.manual_seed(5)  # SCORE starts uniformly in the ball, as its reference code
    x0 = (x + 0.1 * (2 * torch.rand(x.shape) - 1)).clamp(0, 1)
    p = torch.softmax(net(x), 1).detach()
    x0.requires_grad_(True)
    se = (torch.softmax(net(x0), 1) - p).pow(2).sum()
    (g,) = torch.autograd.grad(se, x0)
    x_adv = torch.min(torch.max(x0.detach() + 0.05 * g.sign(), x - 0.1), x + 0.1).clamp(0, 1)
    y_ls = torch.tensor([[0.9, 0.05, 0.05], [0.05, 0.05, 0.9]])
    p = torch.softmax(net(x), 1)
    expected = (p - y_ls).pow(2).sum(1).mean() + 3.0 * (
        torch.softmax(net(x_adv), 1) - p
    ).pow(2).sum(1).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_at_loss_matches_hand_computation():
    from sklearn_robust.objectives import PGDAdversarial

    net = _tiny_net()
    x = torch.tensor([[0.2, 0.4, 0.6], [0.9, 0.1, 0.3]])
    y = torch.tensor([0, 2])
    threat = ThreatModel(eps=0.1, bounds=(0, 1))
    torch.manual_seed(7)
    loss, _ = PGDAdversarial(steps=1, step_size=0.05)(net, x, y, threat)
    torch.manual_seed(7)
    x0 = (x + (2 * torch.rand(x.shape) - 1) * 0.1).clamp(0, 1)
    x0.requires_grad_(True)
    ce = torch.nn.functional.cross_entropy(net(x0), y, reduction="sum")
    (g,) = torch.autograd.grad(ce, x0)
    x_adv = torch.min(torch.max(x0.detach() + 0.05 * g.sign(), x - 0.1), x + 0.1).clamp(0, 1)
    expected = torch.nn.functional.cross_entropy(net(x_adv), y)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


# ---------------------------------------------------------------- bad input
BAD_FIT = [
    ("nan", lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 3, np.nan, X), y),
     "NaN"),
    ("inf", lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 3, np.inf, X), y),
     "infinity"),
    ("1-d X", lambda X, y: (X[:, 0], y), "2D array"),
    ("one class", lambda X, y: (X, np.zeros_like(y)), "one class"),
    ("y length", lambda X, y: (X, y[:-1]), "inconsistent numbers of samples"),
]


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("case,make,match", BAD_FIT, ids=[c[0] for c in BAD_FIT])
def test_bad_data_rejected_before_training(cls, case, make, match, small_digits):
    X, _, y, _ = small_digits
    clf = fast(cls)
    Xb, yb = make(X, y)
    with pytest.raises(ValueError, match=match):
        clf.fit(Xb, yb)
    assert not clf.initialized_


BAD_PARAMS = [
    (dict(eps=-0.1), r"The 'eps' parameter of TRADESClassifier must be a float in the range "
                     r"\[0.0, inf\)\. Got -0.1 instead\."),
    (dict(eps="0.1"), "'eps' parameter of TRADESClassifier must be a float"),
    (dict(eps=float("inf")), "'eps' parameter of TRADESClassifier must be finite"),
    (dict(norm="l3"), "'norm' parameter of TRADESClassifier must be a str among"),
    (dict(bounds=(1.0, 0.0)), "low <= high"),
    (dict(bounds="minmax"), "'bounds' parameter of TRADESClassifier"),
    (dict(beta=-1.0), "'beta' parameter of TRADESClassifier"),
    (dict(attack_steps=-1), "'attack_steps' parameter of TRADESClassifier"),
    (dict(attack_steps=True), "'attack_steps' parameter of TRADESClassifier must be a number"),
    (dict(step_size=0), "'step_size' parameter of TRADESClassifier"),
    (dict(lr=0.0), "'lr' parameter of TRADESClassifier"),
    (dict(max_epochs=0), "'max_epochs' parameter of TRADESClassifier"),
    (dict(batch_size=0), "'batch_size' parameter of TRADESClassifier"),
    (dict(precision="fp8"), "'precision' parameter of TRADESClassifier"),
    (dict(bounds=(0.0, 0.5)), "outside the declared bounds"),
]


@pytest.mark.parametrize("params,match", BAD_PARAMS)
def test_bad_parameters_rejected_before_training(params, match, small_digits):
    X, _, y, _ = small_digits
    clf = fast(TRADESClassifier, **params)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)
    assert not clf.initialized_


def test_wrong_features_at_predict(small_digits):
    X, _, y, _ = small_digits
    clf = fast(NaturalClassifier).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :10])
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(np.full_like(X[:3], np.nan))


def test_sample_weight_is_refused_not_ignored(small_digits):
    X, _, y, _ = small_digits
    with pytest.raises(TypeError, match="sample_weight"):
        fast(NaturalClassifier).fit(X, y, sample_weight=np.ones(len(y)))


def test_predict_before_fit_raises_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        NaturalClassifier().predict(np.zeros((2, 3)))


# ---------------------------------------------------------------- acceptance (reduced epochs)
@pytest.mark.slow  # the CNN on all of digits; test_objectives.py checks it fast on an MLP
def test_robust_training_beats_natural_under_pgd(digits_images):
    """TRADES and SCORE at reduced epochs: PGD-20 robust accuracy far above natural's."""
    X_train, X_test, y_train, y_test = digits_images
    threat = ThreatModel(eps=0.1, bounds=(0.0, 1.0))

    def robust_acc(clf):
        y_idx = np.searchsorted(clf.classes_, y_test)
        X_adv = PGD(threat, steps=20, random_state=0)(clf.module_, X_test, y_idx)
        correct_adv = clf.predict(X_adv.numpy()) == y_test
        return np.mean(correct_adv & (clf.predict(X_test) == y_test))

    natural = NaturalClassifier(max_epochs=8, random_state=0).fit(X_train, y_train)
    trades = TRADESClassifier(max_epochs=8, attack_steps=5, random_state=0).fit(X_train, y_train)
    score = SCOREClassifier(max_epochs=8, attack_steps=5, random_state=0).fit(X_train, y_train)
    nat = robust_acc(natural)
    assert robust_acc(trades) >= nat + 0.25
    assert robust_acc(score) >= nat + 0.25
    assert trades.score(X_test, y_test) > 0.9
