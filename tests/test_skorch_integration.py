"""skorch's own callbacks (ProgressBar, Checkpoint, EarlyStopping, LRScheduler) on every
estimator, and RobustScoring driving Checkpoint."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    LoadInitState,
    LRScheduler,
    ProgressBar,
)
from skorch.dataset import ValidSplit

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

ALL = [
    NaturalClassifier, ATClassifier, TRADESClassifier, SCOREClassifier, RSTClassifier,
    GRClassifier, LLRClassifier, FastATClassifier,
]


def tiny(cls, **kw):
    """A cheap estimator: one hidden layer of 16 units, 3 epochs, 2 attack steps."""
    params = dict(max_epochs=3, random_state=0, module__hidden_units=(16,), lr=1e-2)
    # only the parameters the class has (GR has no eps, FastAT no attack_steps)
    params.update({k: v for k, v in dict(eps=0.1, attack_steps=2).items()
                   if k in cls._parameter_constraints})
    params.update(kw)
    return cls(**params)


@pytest.fixture(scope="module")
def data(cancer_scaled):
    X_train, _, y_train, _ = cancer_scaled
    return X_train[:200].astype(np.float32), y_train[:200]


class Snapshot(Callback):
    """Keep ``predict_proba(X)`` as it is at the end of epoch ``epoch``."""

    def __init__(self, X, epoch):
        self.X, self.epoch = X, epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            self.proba_ = net.predict_proba(self.X)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_progress_bar(cls, data, capsys):
    X, y = data
    clf = tiny(cls, callbacks=[ProgressBar(detect_notebook=False)]).fit(X, y)
    assert len(clf.history) == 3
    err = capsys.readouterr().err
    assert err.count("/4 [") >= 3  # a bar of 4 batches (200 rows / 64) per epoch, on stderr


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_checkpoint_restores_the_saved_epoch(cls, data, tmp_path):
    X, y = data
    # Save at epoch 2 only, then train on: loading must bring back epoch 2's network.
    checkpoint = Checkpoint(monitor=lambda net: len(net.history) == 2, dirname=tmp_path)
    snapshot = Snapshot(X, epoch=2)
    clf = tiny(cls, callbacks=[checkpoint, snapshot]).fit(X, y)
    assert clf.history[:, "event_cp"] == [False, True, False]
    assert (tmp_path / "params.pt").exists()
    assert not np.allclose(clf.predict_proba(X), snapshot.proba_)

    clf.load_params(checkpoint=checkpoint)
    np.testing.assert_array_equal(clf.predict_proba(X), snapshot.proba_)
    assert len(clf.history) == 2  # the history is restored with the parameters

    # Another fitted instance (other seed) takes the checkpoint over as well.
    other = clone(clf).set_params(callbacks=None, random_state=1).fit(X, y)
    other.load_params(checkpoint=checkpoint)
    np.testing.assert_array_equal(other.predict(X), clf.predict(X))
    np.testing.assert_array_equal(other.predict_proba(X), snapshot.proba_)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_early_stopping_on_train_loss(cls, data):
    X, y = data
    # Improving means falling by more than 1000: only the first epoch does.
    stopper = EarlyStopping(monitor="train_loss", patience=2, threshold=1e3,
                            threshold_mode="abs", sink=lambda *a: None)
    clf = tiny(cls, max_epochs=20, callbacks=[stopper]).fit(X, y)
    assert len(clf.history) == 3
    assert clf.score(X, y) > 0.5  # stopped, not broken


@pytest.mark.parametrize("cls", [TRADESClassifier, LLRClassifier], ids=lambda c: c.__name__)
def test_early_stopping_on_valid_loss_loads_best(cls, data):
    X, y = data
    stopper = EarlyStopping(monitor="valid_loss", patience=2, threshold=1e3,
                            threshold_mode="abs", load_best=True, sink=lambda *a: None)
    snapshot = Snapshot(X, epoch=1)
    clf = tiny(cls, max_epochs=20, train_split=ValidSplit(4, stratified=True),
               callbacks=[stopper, snapshot]).fit(X, y)
    assert len(clf.history) == 3
    assert all(np.isfinite(clf.history[:, "valid_loss"]))
    # load_best puts back the weights of epoch 1, the only "improvement".
    np.testing.assert_allclose(clf.predict_proba(X), snapshot.proba_, rtol=0, atol=1e-6)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_lr_scheduler_step_lr(cls, data):
    X, y = data
    scheduler = LRScheduler(policy=torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    clf = tiny(cls, lr=0.01, callbacks=[scheduler]).fit(X, y)
    np.testing.assert_allclose(clf.history[:, "event_lr"], [0.01, 0.005, 0.0025])
    assert clf.optimizer_.param_groups[0]["lr"] == pytest.approx(0.01 * 0.5**3)


def test_lr_scheduler_one_cycle_per_batch(data):
    X, y = data
    batches = int(np.ceil(len(X) / 64))
    scheduler = LRScheduler(policy=torch.optim.lr_scheduler.OneCycleLR, max_lr=0.05,
                            total_steps=3 * batches, step_every="batch")
    clf = tiny(TRADESClassifier, callbacks=[scheduler]).fit(X, y)
    lrs = [b["event_lr"] for epoch in clf.history for b in epoch["batches"]]
    assert len(lrs) == 3 * batches
    peak = int(np.argmax(lrs))
    assert 0 < peak < len(lrs) - 1  # warms up, then anneals
    assert max(lrs) == pytest.approx(0.05, rel=0.05)
    assert clf.optimizer_.param_groups[0]["lr"] < 0.05 / 10


def test_checkpoint_follows_robust_scoring(data, tmp_path):
    X, y = data
    checkpoint = Checkpoint(monitor="valid_robust_acc_best", dirname=tmp_path)
    clf = tiny(
        NaturalClassifier, max_epochs=4, train_split=ValidSplit(4, stratified=True),
        callbacks=[RobustScoring(eps=0.2, steps=3, random_state=0), checkpoint],
    ).fit(X, y)
    assert clf.history[:, "event_cp"] == clf.history[:, "valid_robust_acc_best"]
    best = int(np.argmax(clf.history[:, "valid_robust_acc"]))  # first maximum
    clf.load_params(checkpoint=checkpoint)
    assert len(clf.history) == best + 1


def test_early_stopping_and_checkpoint_on_robust_accuracy(data, tmp_path):
    X, y = data
    checkpoint = Checkpoint(monitor="valid_robust_acc_best", dirname=tmp_path)
    stopper = EarlyStopping(monitor="valid_robust_acc", lower_is_better=False, patience=1,
                            threshold=1.0, threshold_mode="abs", sink=lambda *a: None)
    clf = tiny(
        TRADESClassifier, max_epochs=20, train_split=ValidSplit(4, stratified=True),
        callbacks=[RobustScoring(eps=0.1, steps=2, random_state=0), checkpoint, stopper],
    ).fit(X, y)
    assert len(clf.history) == 2  # no accuracy can rise by 1.0
    assert clf.history[:, "event_cp"] == clf.history[:, "valid_robust_acc_best"]
    assert (tmp_path / "params.pt").exists()


def test_load_init_state_resumes_from_a_checkpoint(data, tmp_path):
    X, y = data
    checkpoint = Checkpoint(monitor=lambda net: True, dirname=tmp_path)
    first = tiny(TRADESClassifier, max_epochs=2, callbacks=[checkpoint]).fit(X, y)
    resumed = tiny(TRADESClassifier, max_epochs=1, random_state=1,
                   callbacks=[LoadInitState(checkpoint)]).fit(X, y)
    assert len(resumed.history) == 3  # two epochs loaded, one trained
    assert resumed.history[:2, "train_loss"] == first.history[:, "train_loss"]
    assert resumed.history[-1, "train_loss"] < first.history[0, "train_loss"]
