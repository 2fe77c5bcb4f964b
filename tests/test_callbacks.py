"""RobustScoring: robust figures in skorch's history, usable by EarlyStopping/Checkpoint."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import EarlyStopping
from skorch.dataset import ValidSplit

from sklearn_robust import NaturalClassifier, TRADESClassifier
from sklearn_robust.callbacks import AttackStepsSchedule, RobustScoring


@pytest.fixture(scope="module")
def data(digits_flat):
    X_train, _, y_train, _ = digits_flat
    return X_train[:400], y_train[:400]


def test_records_robust_accuracy_not_cached_clean_accuracy(data):
    X, y = data
    clf = NaturalClassifier(
        max_epochs=4, train_split=ValidSplit(4, stratified=True), random_state=0,
        callbacks=[RobustScoring(eps=0.2, steps=10, random_state=0)],
    ).fit(X, y)
    robust = np.array(clf.history[:, "valid_robust_acc"])
    clean = np.array(clf.history[:, "valid_acc"])
    assert robust.shape == (4,)
    assert np.all(robust <= clean)
    assert np.all(robust < clean - 0.1)  # a naturally trained net is not robust at eps 0.2
    assert any(clf.history[:, "valid_robust_acc_best"])


def test_does_not_disturb_training(data):
    """Same seed with and without the callback: identical weights (RNG and modes kept)."""
    X, y = data
    params = dict(max_epochs=2, attack_steps=2, random_state=0,
                  module=torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.BatchNorm1d(32),
                                             torch.nn.ReLU(), torch.nn.Dropout(0.3),
                                             torch.nn.Linear(32, 10)))
    plain = TRADESClassifier(**params).fit(X, y)
    scored = TRADESClassifier(**params, callbacks=[
        RobustScoring(eps=0.1, on_train=True, steps=3, lipschitz=True, random_state=0)]).fit(X, y)
    for a, b in zip(plain.module_.state_dict().values(), scored.module_.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    assert all(v > 0 for v in scored.history[:, "valid_robust_acc_lipschitz"])


def test_early_stopping_follows_robust_accuracy(data):
    X, y = data
    clf = NaturalClassifier(
        max_epochs=30, random_state=0, train_split=ValidSplit(4, stratified=True),
        callbacks=[RobustScoring(eps=0.3, steps=5, every=1, random_state=0),
                   EarlyStopping(monitor="valid_robust_acc", lower_is_better=False, patience=2)],
    ).fit(X, y)
    assert len(clf.history) < 30


def test_every_n_epochs_repeats_last_value(data):
    X, y = data
    clf = NaturalClassifier(max_epochs=4, random_state=0, callbacks=[
        RobustScoring(eps=0.1, on_train=True, every=2, steps=3, random_state=0)]).fit(X, y)
    values = clf.history[:, "valid_robust_acc"]
    assert values[0] == values[1] and values[2] == values[3]


def test_needs_a_split_or_on_train(data):
    X, y = data
    with pytest.raises(ValueError, match="on_train=True"):
        NaturalClassifier(max_epochs=1, callbacks=[RobustScoring(eps=0.1)]).fit(X, y)


def test_best_score_restored_on_warm_start(data):
    X, y = data
    scoring = RobustScoring(eps=0.2, steps=3, random_state=0)
    clf = NaturalClassifier(max_epochs=3, random_state=0, callbacks=[("robust", scoring)],
                            train_split=ValidSplit(4, stratified=True)).fit(X, y)
    before = clf.history[:, "valid_robust_acc"]
    assert scoring.best_score_ == max(before)
    # Fresh callbacks (as after set_params or unpickling): EpochScoring reads the best
    # score back from the history when training resumes.
    clf.initialize_callbacks()
    fresh = dict(clf.callbacks_)["robust"]
    assert fresh.best_score_ == -np.inf
    clf.set_params(max_epochs=1).partial_fit(X, y)
    robust = clf.history[:, "valid_robust_acc"]
    assert len(robust) == 4
    assert fresh.best_score_ == max(robust)
    assert clf.history[-1, "valid_robust_acc_best"] == (robust[-1] > max(before))


def test_clone_keeps_score_params():
    scoring = RobustScoring(eps=0.1, attack=["fgsm", "pgd"], every=2, steps=3, random_state=0)
    copy = clone(scoring)
    assert copy.score_params == {"steps": 3, "random_state": 0}
    assert copy.get_params()["attack"] == ["fgsm", "pgd"] and copy.every == 2
    copy.set_params(steps=5, eps=0.2)
    assert copy.score_params["steps"] == 5 and copy.eps == 0.2


def test_attack_steps_schedule_swaps_the_objective(data):
    X, y = data
    clf = TRADESClassifier(max_epochs=3, attack_steps=2, random_state=0,
                           callbacks=[AttackStepsSchedule({2: 4, 3: 1})]).fit(X, y)
    assert clf.history[:, "attack_steps"] == [2, 4, 1]
    assert clf.objective_.steps == 2  # the estimator's own objective is back
    with pytest.raises(ValueError, match="searches in steps"):
        NaturalClassifier(max_epochs=1, callbacks=[AttackStepsSchedule({1: 2})]).fit(X, y)
    with pytest.raises(ValueError, match="schedule steps"):
        TRADESClassifier(max_epochs=1, callbacks=[AttackStepsSchedule({1: 0})]).fit(X, y)
