"""Persistence, interruption, continued training and numerical failure."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from skorch.callbacks import Callback

from sklearn_robust import NaturalClassifier, TRADESClassifier


@pytest.fixture(scope="module")
def data(digits_flat):
    X_train, X_test, y_train, _ = digits_flat
    return X_train[:300], y_train[:300], X_test[:100]


def test_save_and_load_params_round_trip(data, tmp_path):
    X, y, X_test = data
    clf = TRADESClassifier(max_epochs=2, attack_steps=1, random_state=0).fit(X, y)
    clf.save_params(f_params=tmp_path / "params.pt", f_history=tmp_path / "history.json")
    other = TRADESClassifier(max_epochs=2, attack_steps=1, random_state=1).fit(X, y)
    assert not np.array_equal(other.predict_proba(X_test), clf.predict_proba(X_test))
    other.load_params(f_params=tmp_path / "params.pt", f_history=tmp_path / "history.json")
    np.testing.assert_array_equal(other.predict_proba(X_test), clf.predict_proba(X_test))
    assert len(other.history) == 2
    assert other.device == "auto"


def test_keyboard_interrupt_leaves_usable_model(data):
    X, y, X_test = data

    class Interrupt(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                raise KeyboardInterrupt

    clf = NaturalClassifier(max_epochs=10, callbacks=[Interrupt()], random_state=0).fit(X, y)
    assert len(clf.history) == 2
    assert clf.predict(X_test).shape == (100,)


def test_warm_start_and_partial_fit_continue(data):
    X, y, _ = data
    clf = NaturalClassifier(max_epochs=2, warm_start=True, random_state=0).fit(X, y)
    first = [p.detach().clone() for p in clf.module_.parameters()]
    clf.fit(X, y)
    assert len(clf.history) == 4
    assert any(not torch.equal(a, b) for a, b in zip(first, clf.module_.parameters(), strict=True))
    clf2 = NaturalClassifier(max_epochs=1, random_state=0)
    clf2.partial_fit(X, y).partial_fit(X, y)
    assert len(clf2.history) == 2


def test_nan_loss_stops_with_clear_error(data):
    X, y, _ = data

    class Explodes(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(64, 10)

        def forward(self, x):
            return self.linear(x) * float("nan")

    with pytest.raises(FloatingPointError, match="epoch 1"):
        NaturalClassifier(module=Explodes, max_epochs=3).fit(X, y)


@pytest.mark.parametrize("dtype", [np.int64, np.float64, np.float16, np.float32])
def test_input_dtypes_are_converted(data, dtype):
    X, y, X_test = data
    clf = NaturalClassifier(max_epochs=1, random_state=0).fit((X * 16).astype(dtype), y)
    assert clf.predict((X_test * 16).astype(dtype)).shape == (100,)


def test_sparse_input_is_a_clear_error(data):
    X, y, _ = data
    with pytest.raises(TypeError, match="[Ss]parse"):
        NaturalClassifier(max_epochs=1).fit(sp.csr_matrix(X), y)


def test_eps_zero_is_natural_training_in_effect(data):
    X, y, X_test = data
    clf = TRADESClassifier(eps=0.0, max_epochs=1, attack_steps=2, random_state=0).fit(X, y)
    assert clf.predict(X_test).shape == (100,)
