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
    assert other.get_params()["device"] == "auto"


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


# ------------------------------------------------ model files without code (issue 17)
def test_model_file_round_trip_keeps_predictions_and_threat(data, tmp_path):
    from sklearn_robust.persistence import load_model, save_model

    X, y, X_test = data
    labels = np.array(["cat", "dog", "eel", "fox", "gnu"])[y % 5]
    clf = TRADESClassifier(max_epochs=1, attack_steps=1, random_state=0,
                           module__hidden_units=(16,)).fit(X, labels)
    save_model(clf, tmp_path / "m.srm")
    state = torch.get_rng_state()
    loaded = load_model(tmp_path / "m.srm")
    assert torch.equal(state, torch.get_rng_state())  # loading draws no random numbers
    np.testing.assert_array_equal(loaded.predict_proba(X_test), clf.predict_proba(X_test))
    np.testing.assert_array_equal(loaded.predict(X_test), clf.predict(X_test))
    assert repr(loaded.threat_model_) == repr(clf.threat_model_)
    assert loaded.input_range_ == clf.input_range_ and len(loaded.history) == 1
    assert loaded.module__hidden_units == (16,)


def test_model_file_of_a_scaler_pipeline(data, tmp_path):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn_robust.metrics import robust_accuracy_score
    from sklearn_robust.persistence import load_model, save_model

    X, y, X_test = data
    pipe = make_pipeline(StandardScaler(), NaturalClassifier(
        max_epochs=1, random_state=0, input_shape=(1, 8, 8), module__channels=(4, 8),
        module__hidden_units=16)).fit(X * 16, y)
    save_model(pipe, tmp_path / "p.srm")
    loaded = load_model(tmp_path / "p.srm")
    np.testing.assert_array_equal(loaded.predict_proba(X_test * 16),
                                  pipe.predict_proba(X_test * 16))
    kwargs = dict(eps=1.0, steps=2, random_state=0)
    assert robust_accuracy_score(loaded, X_test[:40] * 16, y[:40], **kwargs) == \
        robust_accuracy_score(pipe, X_test[:40] * 16, y[:40], **kwargs)


def test_model_file_refuses_what_is_not_data(data, tmp_path):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from sklearn_robust.persistence import save_model

    X, y, _ = data

    class Custom(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(64, 10)

        def forward(self, x):
            return self.linear(x)

    with pytest.raises(ValueError, match="cannot be saved as data"):
        save_model(NaturalClassifier(module=Custom, max_epochs=1).fit(X, y), tmp_path / "a")
    pipe = make_pipeline(FunctionTransformer(), NaturalClassifier(max_epochs=1)).fit(X, y)
    with pytest.raises(ValueError, match="FunctionTransformer"):
        save_model(pipe, tmp_path / "b")
    with pytest.raises(ValueError, match="not fitted"):
        save_model(NaturalClassifier(), tmp_path / "c")


def test_loading_a_pickle_executes_nothing(tmp_path):
    import pickle

    from sklearn_robust.persistence import ModelFileError, load_model

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "evil.joblib").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ModelFileError, match="not a sklearn-robust model file"):
        load_model(tmp_path / "evil.joblib")
    assert not marker.exists()
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="not a sklearn-robust model file"):
        load_model(tmp_path / "other.pt")
