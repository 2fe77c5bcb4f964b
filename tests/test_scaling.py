"""Scaling out and GPU readiness, tested on CPU.

- Hyperparameter searches under joblib's Dask backend give the n_jobs=1 results exactly.
- ``sklearn_robust.estimators.AccelerateMixin`` (skorch's, with our training step)
  composes with every estimator; the objective still trains.
- ``precision`` (bf16/fp16 autocast, fp16 loss scaling), pinned memory and non-blocking
  copies: their logic, with CUDA faked where the code only asks whether it exists.
"""

import warnings
from types import SimpleNamespace

import accelerate
import joblib
import numpy as np
import pytest
import skorch.callbacks
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from skorch.callbacks import Callback
from skorch.dataset import Dataset
from skorch.hf import AccelerateMixin as SkorchAccelerateMixin

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
from sklearn_robust.callbacks import RobustScoring
from sklearn_robust.estimators import AccelerateMixin
from sklearn_robust.metrics import make_robust_scorer

ALL = [
    NaturalClassifier, ATClassifier, TRADESClassifier, SCOREClassifier, RSTClassifier,
    GRClassifier, LLRClassifier, FastATClassifier,
]


def tiny(cls, **kw):
    params = dict(max_epochs=2, random_state=0, lr=1e-2)
    if "module" not in kw:
        params["module__hidden_units"] = (16,)
    # only the parameters the class has (GR has no eps, FastAT no attack_steps)
    params.update({k: v for k, v in dict(eps=0.1, attack_steps=2).items()
                   if k in cls._parameter_constraints})
    params.update(kw)
    return cls(**params)


@pytest.fixture(scope="module")
def data(cancer_scaled):
    X_train, X_test, y_train, y_test = cancer_scaled
    return (X_train[:160].astype(np.float32), X_test[:100].astype(np.float32),
            y_train[:160], y_test[:100])


# ------------------------------------------------------------------ Dask
@pytest.fixture(scope="module")
def dask_client():
    import distributed

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dashboard / port notices
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
        client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _scores(search):
    keys = sorted(k for k in search.cv_results_ if k.startswith("split") or k == "params")
    return {k: list(search.cv_results_[k]) for k in keys}


@pytest.mark.slow  # test_randomized_search_on_dask_equals_serial checks the same, fast
def test_grid_search_on_dask_equals_serial(data, dask_client):
    X, _, y, _ = data
    est = tiny(TRADESClassifier, max_epochs=1)
    grid = {"beta": [1.0, 6.0], "lr": [1e-3, 1e-2]}
    scoring = {"acc": "accuracy", "robust": make_robust_scorer(eps=0.1, steps=3, random_state=0)}
    serial = GridSearchCV(est, grid, cv=2, scoring=scoring, refit="acc", n_jobs=1).fit(X, y)
    with joblib.parallel_backend("dask", scatter=[X, y]):
        parallel = GridSearchCV(est, grid, cv=2, scoring=scoring, refit="acc",
                                n_jobs=-1).fit(X, y)
    assert _scores(parallel) == _scores(serial)
    assert parallel.best_params_ == serial.best_params_
    np.testing.assert_array_equal(parallel.predict_proba(X), serial.predict_proba(X))
    # the work really ran on the cluster's workers
    assert any(dask_client.run(lambda: __import__("sys").modules.get("sklearn_robust")
                               is not None).values())


def test_randomized_search_on_dask_equals_serial(data, dask_client):
    X, _, y, _ = data
    est = tiny(ATClassifier, max_epochs=1)
    space = {"eps": [0.05, 0.1, 0.2], "lr": [1e-3, 3e-3, 1e-2], "batch_size": [32, 64]}
    serial = RandomizedSearchCV(est, space, n_iter=3, cv=2, random_state=0, n_jobs=1).fit(X, y)
    with joblib.parallel_backend("dask"):
        parallel = RandomizedSearchCV(est, space, n_iter=3, cv=2, random_state=0,
                                      n_jobs=-1).fit(X, y)
    assert _scores(parallel) == _scores(serial)


# ------------------------------------------------------------------ Accelerate


def accelerated(cls):
    return type(f"Accelerated{cls.__name__}", (AccelerateMixin, cls), {})


def _reset_accelerate_state():
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(scope="module", autouse=True)
def leave_no_accelerate_state():
    """Accelerate keeps one process-wide state: do not hand ours to other test modules."""
    yield
    _reset_accelerate_state()


@pytest.fixture
def fresh_accelerate_state():
    """Let a test choose its own mixed precision (the state fixes it per process)."""
    _reset_accelerate_state()
    yield
    _reset_accelerate_state()


def silent():
    return lambda *args, **kwargs: None


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_accelerate_mixin_trains_with_the_objective(cls, data):
    """Same seed with and without the mixin: same losses, so the objective still runs."""
    X, X_test, y, y_test = data
    net = accelerated(cls)
    clf = tiny(net, accelerator=accelerate.Accelerator(cpu=True), device=None,
               callbacks__print_log__sink=silent())
    assert clf.device is None
    clf.fit(X, y)
    plain = tiny(cls).fit(X, y)
    np.testing.assert_allclose(clf.history[:, "train_loss"], plain.history[:, "train_loss"],
                               rtol=1e-6)
    np.testing.assert_allclose(clf.predict_proba(X_test), plain.predict_proba(X_test),
                               atol=1e-6)
    assert clf.score(X_test, y_test) == plain.score(X_test, y_test)


def test_accelerate_mixin_predict_score_robust_scorer_and_callbacks(data, tmp_path):
    X, X_test, y, y_test = data
    AcceleratedTRADES = accelerated(TRADESClassifier)
    clf = tiny(AcceleratedTRADES, accelerator=accelerate.Accelerator(cpu=True), max_epochs=3,
               callbacks=[RobustScoring(eps=0.1, on_train=True, steps=2, random_state=0)],
               callbacks__print_log__sink=silent()).fit(X, y)
    assert set(clf.predict(X_test)) <= set(clf.classes_)
    assert 0.5 < clf.score(X_test, y_test) <= 1.0
    robust = make_robust_scorer(eps=0.1, steps=5, random_state=0)(clf, X_test, y_test)
    assert 0.0 <= robust <= clf.score(X_test, y_test)
    assert len(clf.history[:, "valid_robust_acc"]) == 3
    # skorch's persistence goes through the mixin's save/load hooks
    clf.save_params(f_params=tmp_path / "params.pt")
    other = tiny(AcceleratedTRADES, accelerator=accelerate.Accelerator(cpu=True),
                 random_state=1, callbacks__print_log__sink=silent()).fit(X, y)
    other.load_params(f_params=tmp_path / "params.pt")
    np.testing.assert_array_equal(other.predict_proba(X_test), clf.predict_proba(X_test))


def test_accelerate_needs_device_none_and_its_own_mixed_precision(data):
    X, _, y, _ = data
    AcceleratedAT = accelerated(ATClassifier)
    with pytest.raises(ValueError, match="device=None"):
        tiny(AcceleratedAT, accelerator=accelerate.Accelerator(cpu=True), device="auto",
             callbacks__print_log__sink=silent()).fit(X, y)
    with pytest.raises(ValueError, match="precision='bf16' cannot be combined"):
        tiny(AcceleratedAT, accelerator=accelerate.Accelerator(cpu=True), precision="bf16",
             callbacks__print_log__sink=silent()).fit(X, y)


@pytest.mark.parametrize("mixin", [AccelerateMixin, SkorchAccelerateMixin],
                         ids=["ours", "skorch"])
def test_accelerate_mixins_train_the_objective(data, monkeypatch, mixin):
    """skorch's own AccelerateMixin and ours run the objective in skorch's step, whose loss
    goes through the accelerator; both train exactly the plain estimator's model."""
    X, _, y, _ = data
    Accelerated = type(f"Accelerated{mixin.__module__.split('.')[0]}",
                       (mixin, TRADESClassifier), {})
    assert Accelerated.train_step_single is SkorchAccelerateMixin.train_step_single
    predictions = []

    class Predictions(skorch.callbacks.Callback):
        def on_batch_end(self, net, batch=None, training=None, y_pred=None, **kwargs):
            if training:
                predictions.append((len(batch[0]), y_pred.detach().clone()))

    clf = tiny(Accelerated, accelerator=accelerate.Accelerator(cpu=True), max_epochs=1,
               iterator_train__shuffle=False, callbacks__print_log__sink=silent(),
               callbacks=[Predictions()])
    calls, backward = [], []
    objective_loss = TRADESClassifier.objective_loss

    def spy(self, X, y):
        calls.append(type(self.objective_).__name__)
        return objective_loss(self, X, y)

    monkeypatch.setattr(TRADESClassifier, "objective_loss", spy)
    accelerator_backward = clf.accelerator.backward
    monkeypatch.setattr(clf.accelerator, "backward",
                        lambda loss, **kw: backward.append(1) or accelerator_backward(loss, **kw))
    clf.fit(X, y)
    n_batches = -(-len(X) // clf.batch_size)
    assert calls == ["TRADES"] * n_batches
    assert len(backward) == n_batches  # the loss went through the accelerator
    plain = tiny(TRADESClassifier, max_epochs=1, iterator_train__shuffle=False,
                 device="cpu").fit(X, y)
    for ours, theirs in zip(clf.module_.state_dict().values(),
                            plain.module_.state_dict().values(), strict=True):
        assert torch.equal(ours, theirs)
    # the step's predictions are the objective's logits: one row of 2 per point, finite
    assert len(predictions) == n_batches
    for n_points, y_pred in predictions:
        assert y_pred.shape == (n_points, 2) and torch.isfinite(y_pred).all()


class AutocastProbe(torch.nn.Module):
    """An MLP recording, per forward, (training mode, autocast on, autocast dtype)."""

    def __init__(self, n_features=30, n_classes=2):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(n_features, 16), torch.nn.ReLU(),
                                       torch.nn.Linear(16, n_classes))
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_autocast_enabled("cpu"),
                           torch.get_autocast_dtype("cpu")))
        return self.net(x)


def test_accelerate_bf16_autocast_reaches_inner_maximisation(data, fresh_accelerate_state):
    X, _, y, _ = data
    AcceleratedTRADES = accelerated(TRADESClassifier)
    probe = AutocastProbe()
    clf = tiny(AcceleratedTRADES, module=probe, max_epochs=1,
               accelerator=accelerate.Accelerator(cpu=True, mixed_precision="bf16"),
               callbacks__print_log__sink=silent()).fit(X, y)
    attack_calls = [c for c in probe.calls if not c[0]]
    assert attack_calls and all(on and dtype == torch.bfloat16 for _, on, dtype in probe.calls)
    assert np.isfinite(clf.history[-1, "train_loss"])


# ------------------------------------------------------------------ precision
@pytest.mark.parametrize("value", ["bf32", "FP16", 16, torch.bfloat16])
def test_precision_is_validated_in_fit(value, data):
    X, _, y, _ = data
    clf = tiny(NaturalClassifier, precision=value)
    assert clf.precision is value  # stored unchanged
    with pytest.raises(ValueError, match="'precision' parameter of NaturalClassifier must be"):
        clf.fit(X, y)


def test_precision_is_a_plain_parameter():
    clf = TRADESClassifier(precision="bf16")
    assert clf.get_params()["precision"] == "bf16"
    assert clone(clf).precision == "bf16"
    assert TRADESClassifier().precision is None
    assert clf.set_params(precision=None).precision is None


@pytest.mark.parametrize("cls", [TRADESClassifier, ATClassifier, LLRClassifier],
                         ids=lambda c: c.__name__)
def test_bf16_trains_on_cpu(cls, data):
    X, X_test, y, y_test = data
    clf = tiny(cls, precision="bf16", max_epochs=5).fit(X, y)
    assert clf.grad_scaler_ is None
    assert all(np.isfinite(clf.history[:, "train_loss"]))
    assert clf.history[-1, "train_loss"] < clf.history[0, "train_loss"]
    assert clf.score(X_test, y_test) > 0.85
    fp32 = tiny(cls, precision="fp32", max_epochs=5).fit(X, y)
    assert abs(clf.score(X_test, y_test) - fp32.score(X_test, y_test)) < 0.1


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_autocast_covers_training_and_inner_maximisation_only(precision, dtype, data):
    X, _, y, _ = data
    probe = AutocastProbe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fp16 on CPU
        clf = tiny(TRADESClassifier, module=probe, precision=precision, max_epochs=1).fit(X, y)
    train_calls = list(probe.calls)
    assert any(not training for training, _, _ in train_calls)  # the attack's forwards
    assert all(on and d == dtype for _, on, d in train_calls)
    probe.calls.clear()
    clf.predict_proba(X)
    assert probe.calls and not any(on for _, on, _ in probe.calls)  # prediction in fp32
    default = AutocastProbe()
    tiny(TRADESClassifier, module=default, max_epochs=1).fit(X, y)  # precision=None: off
    assert default.calls and not any(on for _, on, _ in default.calls)


def test_fp16_on_cpu_warns_and_scales_the_loss(data):
    X, X_test, y, y_test = data
    norms = {}

    class GradNorm(Callback):
        def __init__(self, key):
            self.key = key

        def on_grad_computed(self, net, named_parameters, **kwargs):
            grads = [p.grad.norm() for _, p in named_parameters if p.grad is not None]
            norms.setdefault(self.key, []).append(float(torch.stack(grads).norm()))

    with pytest.warns(UserWarning, match="precision='fp16' on a 'cpu' device"):
        clf = tiny(TRADESClassifier, precision="fp16", max_epochs=5,
                   callbacks=[GradNorm("fp16")]).fit(X, y)
    assert isinstance(clf.grad_scaler_, torch.amp.GradScaler)
    assert clf.grad_scaler_.get_scale() > 1.0
    assert all(np.isfinite(clf.history[:, "train_loss"]))
    assert clf.score(X_test, y_test) > 0.85
    tiny(TRADESClassifier, max_epochs=5, callbacks=[GradNorm("fp32")]).fit(X, y)
    # callbacks see unscaled gradients (GradientNormClipping stays meaningful)
    fp16 = [n for n in norms["fp16"] if np.isfinite(n)]  # overflowing steps are skipped
    ratio = np.median(fp16) / np.median(norms["fp32"])
    assert 0.5 < ratio < 2.0
    # warm start keeps the scaler and its scale
    scaler = clf.grad_scaler_
    with pytest.warns(UserWarning, match="fp16"):
        clf.partial_fit(X, y)
    assert clf.grad_scaler_ is scaler
    assert clf.set_params(precision=None).partial_fit(X, y).grad_scaler_ is None


def test_bf16_on_a_gpu_without_bf16_is_a_clear_error(monkeypatch, data):
    X, _, y, _ = data
    clf = tiny(NaturalClassifier, precision="bf16").fit(X, y)
    gpu_param = SimpleNamespace(device=torch.device("cuda"))
    on_gpu = SimpleNamespace(parameters=lambda: iter([gpu_param]))
    monkeypatch.setattr(clf, "module_", on_gpu)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(ValueError, match="does not support bfloat16"):
        clf._initialize_precision(keep=False)


# ------------------------------------------------------------------ pinned memory, copies
@pytest.fixture
def fake_cuda(monkeypatch):
    """Make the code believe one GPU exists (nothing is allocated on it)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def _loaders(net, X, y):
    dataset = Dataset(X, y)
    return net.get_iterator(dataset, training=True), net.get_iterator(dataset, training=False)


def test_data_loaders_pin_memory_on_cuda_only(fake_cuda, data, monkeypatch):
    X, _, y, _ = data
    for device in ("auto", "cuda", "cuda:0"):
        train, valid = _loaders(TRADESClassifier(device=device), X, y)
        assert train.pin_memory and valid.pin_memory
    # the user's choice wins
    net = TRADESClassifier(iterator_train__pin_memory=False, iterator_valid__pin_memory=False)
    train, valid = _loaders(net, X, y)
    assert not train.pin_memory and not valid.pin_memory
    # CPU and device=None (Accelerate places data itself): no pinning
    for net in (TRADESClassifier(device="cpu"), TRADESClassifier(device=None)):
        train, valid = _loaders(net, X, y)
        assert not train.pin_memory and not valid.pin_memory
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    train, _ = _loaders(TRADESClassifier(device="auto"), X, y)
    assert not train.pin_memory


@pytest.mark.filterwarnings("ignore:'pin_memory' argument is set as true")
def test_batches_are_copied_non_blocking_to_cuda(fake_cuda, data, monkeypatch):
    X, _, y, _ = data
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    clf = tiny(TRADESClassifier, max_epochs=1).fit(X, y)  # a real fit, on CPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    clf.device = "cuda"

    copies, to = [], torch.Tensor.to

    def fake_to(self, *args, **kwargs):  # record copies to CUDA, keep the data on CPU
        target = args[0] if args else kwargs.get("device")
        if isinstance(target, (str, torch.device)) and str(target).startswith("cuda"):
            copies.append(kwargs.get("non_blocking", False))
            return self
        return to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", fake_to)
    batch = next(iter(clf.get_iterator(Dataset(X, np.asarray(y, dtype=np.int64)),
                                       training=True)))
    step = clf.train_step_single(batch)
    assert torch.isfinite(step["loss"])
    assert copies == [True, True]  # X and y, each copied once, non-blocking
    copies.clear()
    with torch.no_grad():
        clf.infer(batch[0])
    assert copies[0] is True  # the copy; skorch's later .to("cuda") is a no-op on GPU
