"""CIFAR-10-style training options (issue 33): crops and flips as the papers do them,
learning-rate schedules by name, torch datasets as input, bf16 and channels_last.

Everything runs on small slices of the 8x8 digits, so the file stays fast on one core.
"""

import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from skorch.callbacks import Callback, LRScheduler
from skorch.dataset import ValidSplit
from torch.utils.data import Dataset, IterableDataset, TensorDataset

from sklearn_robust import IBPClassifier, NaturalClassifier, TRADESClassifier
from sklearn_robust.callbacks import FixedLengthLRScheduler
from sklearn_robust.datasets import load_digits_images
from sklearn_robust.estimators._augment import random_flip, random_shift
from sklearn_robust.metrics import robust_accuracy_score
from sklearn_robust.persistence import load_model, save_model
from sklearn_robust.utils import InvalidParameterError


@pytest.fixture(scope="module")
def digits():
    """300 training and 100 test digits as (N, 1, 8, 8) images in [0, 1]."""
    X_train, X_test, y_train, y_test = load_digits_images()
    return X_train[:300], X_test[:100], y_train[:300], y_test[:100]


def dataset_of(X, y):
    return TensorDataset(torch.as_tensor(X), torch.as_tensor(y))


def cnn(cls=NaturalClassifier, **kw):
    params = dict(max_epochs=2, batch_size=32, random_state=0, device="cpu")
    params.update(kw)
    return cls(**params)


class EpochRates(Callback):
    """The optimizer's rate as each epoch starts: read from torch, not from the history."""

    def initialize(self):
        self.rates = []
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.rates.append(net.optimizer_.param_groups[0]["lr"])


# ------------------------------------------------------------------ crops and flips
def test_random_shift_is_exactly_a_random_crop_of_the_zero_padded_image():
    """``max_shift=s``: pad s zeros per side, crop at offsets uniform in [0, 2s]."""
    x = torch.rand(2000, 3, 6, 5)
    shift = 2
    shifted = random_shift(x, shift, generator=torch.Generator().manual_seed(7))
    # The same draws, read as the crop corner of torchvision's RandomCrop(padding=s).
    offsets = torch.randint(0, 2 * shift + 1, (2, len(x)),
                            generator=torch.Generator().manual_seed(7))
    padded = F.pad(x, (shift,) * 4)
    crops = torch.stack([padded[i, :, r:r + 6, c:c + 5]
                         for i, (r, c) in enumerate(offsets.T.tolist())])
    assert torch.equal(shifted, crops)
    # every corner of [0, 2s]^2 is drawn, the extremes included
    assert len(set(map(tuple, offsets.T.tolist()))) == (2 * shift + 1) ** 2


def test_flip_mirrors_each_image_with_probability_one_half():
    x = torch.rand(4000, 2, 4, 5)
    flipped = random_flip(x, generator=torch.Generator().manual_seed(0))
    same = (flipped == x).flatten(1).all(dim=1)
    mirrored = (flipped == x.flip(-1)).flatten(1).all(dim=1)
    assert bool((same ^ mirrored).all())  # each image whole, one or the other
    assert 0.46 < mirrored.float().mean() < 0.54
    # flat rows are flipped as the images they reshape to, not reversed as rows
    rows = x.reshape(len(x), -1)
    flat = random_flip(rows, (2, 4, 5), generator=torch.Generator().manual_seed(0))
    assert torch.equal(flat, flipped.reshape(len(x), -1))


def _training_batches(clf, X, y):
    """The batches the objective sees in one training step (after augmentation)."""
    seen = []
    objective = clf.objective_

    def spy(module, X, y, threat, **kwargs):
        seen.append(X.detach().clone())
        return objective(module, X, y, threat, **kwargs)

    clf.objective_ = spy
    try:
        clf.objective_loss(torch.as_tensor(X), torch.as_tensor(y))
    finally:
        clf.objective_ = objective
    return seen[0]


def test_flip_acts_on_training_batches_only_and_follows_random_state(digits):
    X, X_test, y, _ = digits
    rows = X.reshape(len(X), -1)
    clf = cnn(flip=True, input_shape=(1, 8, 8)).fit(rows, y)
    seen = _training_batches(clf, rows, y)
    images = X.reshape(len(X), 1, 8, 8)
    mirrored = torch.as_tensor(images).flip(-1).reshape(len(X), -1)
    is_same = (seen == torch.as_tensor(rows)).all(dim=1)
    is_mirror = (seen == mirrored).all(dim=1)
    asymmetric = ~(torch.as_tensor(rows) == mirrored).all(dim=1)
    assert bool((is_same | is_mirror).all())
    assert 0.3 < is_mirror[asymmetric].float().mean() < 0.7
    # a seeded fit flips the same way again, and differently from no flip
    proba = clf.predict_proba(X_test.reshape(len(X_test), -1))
    again = cnn(flip=True, input_shape=(1, 8, 8)).fit(rows, y)
    np.testing.assert_array_equal(again.predict_proba(X_test.reshape(len(X_test), -1)), proba)
    plain = cnn(input_shape=(1, 8, 8)).fit(rows, y)
    assert not np.allclose(plain.predict_proba(X_test.reshape(len(X_test), -1)), proba)
    # prediction never flips: it is the network on the inputs as given
    with torch.no_grad():
        direct = torch.softmax(clf.module_(torch.as_tensor(rows[:50])), dim=1).numpy()
    np.testing.assert_allclose(clf.predict_proba(rows[:50]), direct, rtol=1e-5, atol=1e-6)


def test_flip_and_channels_last_on_tabular_rows_are_refused_before_any_work():
    X, y = load_breast_cancer(return_X_y=True)
    for option in ("flip", "channels_last"):
        clf = NaturalClassifier(**{option: True})
        with pytest.raises(ValueError, match=f"{option}=True acts on images"):
            clf.fit(X, y)
        assert not clf.initialized_
        with pytest.raises(InvalidParameterError, match=option):
            NaturalClassifier(**{option: "yes"}).fit(X, y)


# ------------------------------------------------------------------ schedules
def _rates(clf):
    return [round(r / clf.lr, 9) for r in clf.history[:, "event_lr"]]


def test_piecewise_schedule_is_trades_100_epochs(digits):
    X, _, y, _ = digits
    rows = X[:32].reshape(32, -1)
    recorder = EpochRates()
    clf = NaturalClassifier(lr_schedule="piecewise", max_epochs=100, batch_size=32, lr=0.1,
                            optimizer=torch.optim.SGD, random_state=0, device="cpu",
                            callbacks=[recorder]).fit(rows, y[:32])
    expected = [1.0] * 75 + [0.1] * 15 + [0.01] * 10
    assert _rates(clf) == expected  # recorded in the history per epoch
    np.testing.assert_allclose(np.array(recorder.rates) / 0.1, expected, rtol=1e-9)
    # shorter runs drop at ceil(0.75 E) and ceil(0.9 E)
    clf.set_params(max_epochs=10).fit(rows, y[:32])
    assert _rates(clf) == [1.0] * 8 + [0.1, 0.01]


def test_cosine_schedule_decays_to_about_zero_per_epoch(digits):
    X, _, y, _ = digits
    clf = NaturalClassifier(lr_schedule="cosine", max_epochs=20, batch_size=64,
                            random_state=0, device="cpu").fit(X[:64].reshape(64, -1), y[:64])
    epochs = np.arange(20)
    np.testing.assert_allclose(clf.history[:, "event_lr"],
                               1e-3 * (1 + np.cos(np.pi * epochs / 20)) / 2, rtol=1e-6)
    assert clf.history[-1, "event_lr"] < 0.01 * clf.lr


def test_each_call_runs_the_whole_schedule_and_leaves_lr(digits):
    X, _, y, _ = digits
    rows, labels = X[:64].reshape(64, -1), y[:64]
    clf = NaturalClassifier(lr_schedule="piecewise", max_epochs=4, random_state=0,
                            device="cpu").fit(rows, labels)
    assert clf.optimizer_.param_groups[0]["lr"] == clf.lr
    assert "initial_lr" not in clf.optimizer_.param_groups[0]
    clf.partial_fit(rows, labels)
    assert _rates(clf) == [1.0, 1.0, 1.0, 0.1] * 2
    # a warm-start fit restarts too; a new lr is the next call's base
    clf.set_params(warm_start=True, lr=1e-2).fit(rows, labels)
    assert [round(r, 9) for r in clf.history[-4:, "event_lr"]] == [1e-2] * 3 + [1e-3]
    # lr_schedule=None between calls: the callback goes, the rate stays
    clf.set_params(lr_schedule=None).partial_fit(rows, labels)
    assert "lr_schedule" not in dict(clf.callbacks_)
    assert clf.optimizer_.param_groups[0]["lr"] == 1e-2
    assert "event_lr" not in clf.history[-1]


def test_skorch_lr_scheduler_works_without_lr_schedule_and_is_refused_beside_it(digits):
    X, _, y, _ = digits
    rows, labels = X[:64].reshape(64, -1), y[:64]
    step = LRScheduler(policy=torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    clf = NaturalClassifier(max_epochs=3, lr=0.1, random_state=0, device="cpu",
                            callbacks=[step]).fit(rows, labels)
    np.testing.assert_allclose(clf.history[:, "event_lr"], [0.1, 0.05, 0.025])
    for callbacks in ([step], [LRScheduler], [("lr", FixedLengthLRScheduler(
            torch.optim.lr_scheduler.OneCycleLR, total_steps=3, max_lr=0.1))]):
        clf = NaturalClassifier(max_epochs=3, lr_schedule="cosine", callbacks=callbacks)
        with pytest.raises(ValueError, match="would both set the learning rate"):
            clf.fit(rows, labels)
        assert not clf.initialized_
    with pytest.raises(InvalidParameterError, match="lr_schedule"):
        NaturalClassifier(lr_schedule="linear").fit(rows, labels)


# ------------------------------------------------------------------ datasets
def test_a_dataset_trains_as_the_same_arrays(digits):
    """Labels mapped through classes_, shapes and range found, the same seeded weights."""
    X, X_test, y, _ = digits
    labels = y + 10  # not 0..C-1: the dataset's labels are mapped like an array's
    kw = dict(eps=0.1, attack_steps=2, max_shift=1, flip=True)
    on_arrays = cnn(TRADESClassifier, **kw).fit(X, labels)
    on_dataset = cnn(TRADESClassifier, **kw).fit(dataset_of(X, labels))
    np.testing.assert_array_equal(on_dataset.classes_, np.arange(10, 20))
    assert on_dataset.sample_shape_ == (1, 8, 8) and on_dataset.n_features_in_ == 1
    assert on_dataset.input_range_ == on_arrays.input_range_ == (0.0, 1.0)
    assert on_dataset.threat_model_ == on_arrays.threat_model_
    np.testing.assert_array_equal(on_dataset.predict_proba(X_test),
                                  on_arrays.predict_proba(X_test))
    again = cnn(TRADESClassifier, **kw).fit(dataset_of(X, labels))
    for a, b in zip(again.module_.parameters(), on_dataset.module_.parameters(), strict=True):
        assert torch.equal(a, b)


def test_predict_and_score_take_a_dataset(digits):
    X, X_test, y, y_test = digits
    clf = cnn(max_epochs=6).fit(dataset_of(X, y + 10))
    test = dataset_of(X_test, y_test + 10)
    np.testing.assert_array_equal(clf.predict(test), clf.predict(X_test))
    assert set(clf.predict(test)) <= set(range(10, 20))
    np.testing.assert_array_equal(clf.predict_proba(test), clf.predict_proba(X_test))
    np.testing.assert_array_equal(clf.decision_function(test), clf.decision_function(X_test))
    assert clf.score(test) == clf.score(X_test, y_test + 10) > 0.5
    with pytest.raises(ValueError, match="pass y=None with a dataset"):
        clf.score(test, y_test)
    with pytest.raises(ValueError, match="fitted on samples of shape"):
        clf.predict(TensorDataset(torch.zeros(3, 64), torch.zeros(3, dtype=torch.long)))


def test_a_validation_split_of_a_dataset_is_scored_on_encoded_labels(digits):
    X, _, y, _ = digits
    clf = cnn(max_epochs=4, lr=5e-3, train_split=ValidSplit(4)).fit(dataset_of(X, y + 10))
    # skorch's split holds out the first quarter; predictions of 0..9 against labels
    # 10..19 (or of 10..19 against 0..9) would score 0
    held_out = clf.score(dataset_of(X[:75], y[:75] + 10))
    assert clf.history[-1, "valid_acc"] == pytest.approx(held_out)
    assert held_out > 0.3


class Items(Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class Stream(IterableDataset):
    def __iter__(self):
        yield torch.zeros(2), 0


@pytest.mark.parametrize("dataset,y,match", [
    (TensorDataset(torch.zeros(4, 3)), None, r"\(tensor, int\) pairs.*item 0 is a tuple of"),
    (Items([(torch.zeros(3), 0.5)] * 4), None, "the label of item 0 is 0.5"),
    (Items([([0.0, 1.0], 0)] * 4), None, "the input of item 0 is a list"),
    (Items([(torch.zeros(3), 0), (torch.zeros(4), 1)]), None, "differ in shape"),
    (Items([(torch.zeros(3), 0), (torch.full((3,), np.nan), 1)]), None,
     "item 1 of the dataset contains NaN"),
    (Items([(torch.zeros(3), 1)] * 4), None, "only one class"),
    (Items([]), None, "empty"),
    (Stream(), None, "not a map-style dataset"),
    (TensorDataset(torch.zeros(4, 3), torch.tensor([0, 1, 0, 1])), np.array([0, 1, 0, 1]),
     "pass y=None with a dataset"),
])
def test_bad_datasets_are_clear_errors_before_training(dataset, y, match):
    clf = NaturalClassifier(max_epochs=1)
    with pytest.raises(ValueError, match=match):
        clf.fit(dataset, y)
    assert not clf.initialized_


def test_dataset_partial_fit_classes_bounds_and_workers(digits):
    X, _, y, _ = digits
    with_nine = dataset_of(X, y)
    without = dataset_of(X[y != 9], y[y != 9])
    clf = cnn(max_epochs=1).partial_fit(without, classes=np.arange(10))
    clf.partial_fit(with_nine)
    with pytest.raises(ValueError, match="outside classes_"):
        cnn(max_epochs=1).partial_fit(without).partial_fit(with_nine)
    # bounds given must contain the data, read from the first pass's extremes
    with pytest.raises(ValueError, match="outside the declared bounds"):
        cnn(TRADESClassifier, bounds=(0.0, 0.5), attack_steps=1).fit(with_nine)
    # the loaders' workers read the dataset (and its first pass); same seeded result
    workers = cnn(max_epochs=1, iterator_train__num_workers=1).fit(with_nine)
    np.testing.assert_allclose(workers.predict_proba(X[:20]),
                               cnn(max_epochs=1).fit(with_nine).predict_proba(X[:20]))
    # certified training reads its first input from the dataset
    IBPClassifier(max_epochs=1, random_state=0, eps=0.05, device="cpu").fit(with_nine)


def test_data_loaders_pin_memory_for_a_dataset_on_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    dataset = TensorDataset(torch.zeros(4, 3), torch.tensor([0, 1, 0, 1]))
    net = NaturalClassifier(device="cuda", iterator_train__num_workers=2)
    train = net.get_iterator(dataset, training=True)
    assert train.pin_memory and train.num_workers == 2
    assert net.get_iterator(dataset, training=False).pin_memory
    assert not NaturalClassifier(device="cpu").get_iterator(dataset, training=True).pin_memory


# ------------------------------------------------------------------ bf16, channels_last
def test_bf16_trains_a_cnn_on_cpu(digits):
    X, X_test, y, y_test = digits
    clf = cnn(max_epochs=4, precision="bf16").fit(X, y)
    losses = clf.history[:, "train_loss"]
    assert all(math.isfinite(loss) for loss in losses) and losses[-1] < losses[0]
    assert clf.score(X_test, y_test) > 0.6
    assert clf.predict_proba(X_test).dtype == np.float32  # prediction stays float32


def test_channels_last_trains_as_the_default_format(digits):
    X, X_test, y, y_test = digits
    kw = dict(eps=0.1, attack_steps=2)
    default = cnn(TRADESClassifier, **kw).fit(X, y)
    clf = cnn(TRADESClassifier, channels_last=True, **kw).fit(X, y)
    convs = [m for m in clf.module_.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last)
                         for m in convs)
    assert _training_batches(clf, X[:8], y[:8]).is_contiguous(
        memory_format=torch.channels_last)
    np.testing.assert_allclose(clf.predict_proba(X_test), default.predict_proba(X_test),
                               atol=1e-3)
    # evaluation attacks run on it, in float32, as on the default format
    robust = robust_accuracy_score(clf, X_test, y_test, eps=0.1, steps=3, random_state=0)
    reference = robust_accuracy_score(default, X_test, y_test, eps=0.1, steps=3,
                                      random_state=0)
    assert abs(robust - reference) <= 0.02
    # with bf16, as on a GPU
    cnn(channels_last=True, precision="bf16", max_epochs=1).fit(X, y).predict(X_test)


def test_new_parameters_survive_clone_pickle_and_model_files(digits, tmp_path):
    X, X_test, y, _ = digits
    params = dict(flip=True, channels_last=True, lr_schedule="cosine", max_shift=1)
    clf = cnn(max_epochs=2, **params).fit(X, y)
    assert {k: clf.get_params()[k] for k in params} == params
    assert {k: clone(clf).get_params()[k] for k in params} == params
    assert clone(clf).set_params(lr_schedule=None).lr_schedule is None
    proba = clf.predict_proba(X_test)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X_test), proba)
    save_model(clf, tmp_path / "m.srm")
    loaded = load_model(tmp_path / "m.srm")
    assert {k: loaded.get_params()[k] for k in params} == params
    np.testing.assert_allclose(loaded.predict_proba(X_test), proba, rtol=1e-5, atol=1e-6)
