"""Read-only arrays (pandas' copy-on-write buffers) reach torch without its warning (issue 28).

Pandas 3 hands out read-only views of a DataFrame's data; ``torch.as_tensor`` on one warns
"The given NumPy array is not writable". The bridge copies such an array, and only such an
array: a writeable float32 one still becomes a tensor sharing its memory.

Torch gives that warning once per process, so the in-process tests spy on the numpy arrays
handed to torch (deterministic whatever ran before), and one test checks the warning itself
in a fresh interpreter.
"""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_robust import TRADESClassifier
from sklearn_robust.bridge import as_torch_classifier
from sklearn_robust.metrics import local_lipschitz_score, robust_accuracy_score

pd = pytest.importorskip("pandas")

LOADERS = {"wine": load_wine, "breast_cancer": load_breast_cancer}
NOT_WRITABLE = "not writable"


def _frame(name, dtype):
    X, y = LOADERS[name](return_X_y=True)
    return pd.DataFrame(X.astype(dtype)), y


def _pipeline():
    return make_pipeline(StandardScaler(),
                         TRADESClassifier(max_epochs=1, attack_steps=1, random_state=0))


@pytest.fixture
def read_only_to_torch(monkeypatch):
    """Records every read-only numpy array given to ``torch.as_tensor`` or ``from_numpy``."""
    seen = []
    for name in ("as_tensor", "from_numpy"):
        original = getattr(torch, name)

        def spy(data, *args, _original=original, **kwargs):
            if isinstance(data, np.ndarray) and not data.flags.writeable:
                seen.append(data.shape)
            return _original(data, *args, **kwargs)

        monkeypatch.setattr(torch, name, spy)
    return seen


@pytest.mark.parametrize("name", sorted(LOADERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scoring_a_dataframe_fed_pipeline_gives_torch_no_read_only_array(
        name, dtype, read_only_to_torch):
    df, y = _frame(name, dtype)
    pipe = _pipeline().fit(df, y)
    if dtype is np.float32:  # the case that warned: pandas' own float32 buffer, read-only
        assert not np.asarray(df).flags.writeable
    read_only_to_torch.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert 0.0 <= robust_accuracy_score(pipe, df, y, eps=0.1) <= 1.0
        assert robust_accuracy_score(pipe, df, y, eps=0.1, attack="square",
                                     attack_params={"n_queries": 5}) <= 1.0
        assert local_lipschitz_score(pipe, df, eps=0.1) >= 0.0
    assert read_only_to_torch == []
    assert not [w for w in caught if NOT_WRITABLE in str(w.message)]


def test_the_issue_example_prints_no_warning_in_a_fresh_process():
    # torch warns once per process: a fresh interpreter sees the first (and only) one.
    script = textwrap.dedent("""
        import warnings
        import numpy as np
        import pandas as pd
        from sklearn.datasets import load_wine
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn_robust import TRADESClassifier
        from sklearn_robust.metrics import local_lipschitz_score, robust_accuracy_score

        X, y = load_wine(return_X_y=True)
        df = pd.DataFrame(X.astype(np.float32))
        pipe = make_pipeline(StandardScaler(),
                             TRADESClassifier(max_epochs=1, attack_steps=1, random_state=0))
        pipe.fit(df, y)
        warnings.simplefilter("error", UserWarning)
        robust_accuracy_score(pipe, df, y, eps=0.1)
        local_lipschitz_score(pipe, df, eps=0.1)
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert NOT_WRITABLE not in result.stderr, result.stderr
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


@pytest.fixture(scope="module")
def fitted_pipeline():
    df, y = _frame("wine", np.float32)
    return _pipeline().fit(df.to_numpy(copy=True), y), df


def test_a_writeable_float32_array_is_not_copied(fitted_pipeline):
    pipe, df = fitted_pipeline
    X = df.to_numpy(copy=True)
    assert X.flags.writeable and X.dtype == np.float32
    tensor = as_torch_classifier(pipe).to_tensor(X)
    assert tensor.data_ptr() == X.ctypes.data
    assert np.shares_memory(tensor.numpy(), X)


def test_a_read_only_array_is_copied_not_shared(fitted_pipeline, read_only_to_torch):
    pipe, df = fitted_pipeline
    X = np.asarray(df)
    assert not X.flags.writeable
    tensor = as_torch_classifier(pipe).to_tensor(X)
    assert read_only_to_torch == []
    assert not np.shares_memory(tensor.numpy(), X)
    np.testing.assert_array_equal(tensor.numpy(), X)
    tensor += 1  # the copy is the tensor's own: the frame's data stays as it was
    np.testing.assert_array_equal(np.asarray(df), X)
