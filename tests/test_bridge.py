"""The bridge (``sklearn_robust.bridge``): fitted estimators seen as torch modules.

A pipeline of scalers ending in one of our classifiers becomes a differentiable module on
raw inputs (the scalers as float64 affine maps, the training bounds mapped back to raw
units); anything else with ``predict_proba`` a black box. Around it: the ``bounds``
argument, predictions in the caller's format, the model left as it was found, the chain
of layers the verifiers read, and read-only arrays (pandas' copy-on-write buffers,
issue 28) reaching torch without its "not writable" warning.
"""

import subprocess
import sys
import textwrap
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from sklearn_robust import ATClassifier, NaturalClassifier, TRADESClassifier
from sklearn_robust.bridge import (
    ESTIMATOR_BOUNDS,
    INPUT_ROUNDING,
    UNKNOWN_BOUNDS,
    AffineMap,
    ProbaModule,
    TorchClassifier,
    as_torch_classifier,
    check_bounds_arg,
    input_rounding,
    predict_like,
    preserved_state,
    resolve_bounds,
    scaler_to_affine,
    torch_modules,
    verification_chain,
    with_feature_names,
    work_dtype,
)
from sklearn_robust.metrics import local_lipschitz_score, robust_accuracy_score

# The scalers a pipeline may put before the network (fitted by each test on its own).
SCALERS = [
    StandardScaler(),
    StandardScaler(with_mean=False),
    StandardScaler(with_std=False),
    MinMaxScaler(),
    MinMaxScaler(feature_range=(-1, 2), clip=True),
    MaxAbsScaler(),
    RobustScaler(),
    RobustScaler(with_centering=False, quantile_range=(10.0, 90.0)),
]
CLIPPING_MAX_ABS = ([MaxAbsScaler(clip=True)] if "clip" in MaxAbsScaler().get_params()
                    else [])  # scikit-learn >= 1.7


@pytest.fixture(scope="module")
def scaled_pipe(cancer_raw):
    X, y, _, _ = cancer_raw
    return make_pipeline(StandardScaler(), NaturalClassifier(
        max_epochs=2, random_state=0, module__hidden_units=(8,))).fit(X, y)


# ---------------------------------------------------------------- scalers as affine maps
@pytest.mark.parametrize("scaler", SCALERS + CLIPPING_MAX_ABS, ids=repr)
def test_scaler_to_affine_is_the_scalers_transform(scaler, cancer_raw):
    X, _, X_test, _ = cancer_raw
    scaler = clone(scaler).fit(X)
    affine = scaler_to_affine("s", scaler, X.shape[1])
    X_eval = np.vstack([X_test, 1.5 * X_test])  # beyond the training range: clips clip
    with torch.no_grad():
        out = affine(torch.as_tensor(X_eval, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(out, scaler.transform(X_eval), rtol=1e-12, atol=1e-12)
    assert affine.name == f"s: {type(scaler).__name__}"
    if affine.clip is None:  # the inverse maps the scaled values back to the raw ones
        np.testing.assert_allclose(affine.inverse(out), X_eval, rtol=1e-9, atol=1e-9)


def test_affine_map_clips_and_refuses_what_is_not_a_scaler(cancer_raw):
    affine = AffineMap("half", [0.5, 2.0], [0.0, -1.0], clip=(-1.0, 1.0))
    x = torch.tensor([[4.0, 0.75]], dtype=torch.float64)
    assert affine(x).tolist() == [[1.0, 0.5]]  # 2.0 clipped to 1.0
    assert "half, clip=(-1.0, 1.0)" in repr(affine)
    assert affine.mult.dtype == work_dtype("cpu") == torch.float64
    assert work_dtype("mps") == torch.float32  # MPS has no float64
    X, _, _, _ = cancer_raw
    with pytest.raises(ValueError, match="PCA is not one of the scalers"):
        scaler_to_affine("pca", PCA(2).fit(X), X.shape[1])
    with pytest.raises(NotFittedError):
        scaler_to_affine("std", StandardScaler(), X.shape[1])


# ---------------------------------------------------------------- as_torch_classifier
@pytest.mark.parametrize("scaler", SCALERS, ids=repr)
def test_bridge_matches_pipeline(scaler, cancer_raw):
    X, y, X_test, y_test = cancer_raw
    pipe = make_pipeline(clone(scaler), NaturalClassifier(max_epochs=2, random_state=0)).fit(X, y)
    model = as_torch_classifier(pipe)
    assert model.differentiable and model.output == "logits"
    np.testing.assert_array_equal(model.classes_, pipe.classes_)
    # Outside the training range too, where MinMaxScaler(clip=True) clips.
    X_eval = np.vstack([X_test, X_test * 1.5])
    with torch.no_grad():
        logits = model(model.to_tensor(X_eval))
    np.testing.assert_allclose(
        logits.softmax(dim=1).numpy(), pipe.predict_proba(X_eval), atol=1e-5
    )
    np.testing.assert_allclose(
        (logits[:, 1] - logits[:, 0]).numpy(), pipe.decision_function(X_eval),
        rtol=1e-4, atol=1e-4,
    )
    # Adversarial points are returned in raw units, within eps of the raw inputs.
    eps = 0.02
    score, X_adv = robust_accuracy_score(
        pipe, X_test, y_test, eps=eps, random_state=0, return_adversarial=True
    )
    float32_slack = 2.5e-7 * (np.abs(X_test) + np.abs(X_adv))  # x, x + delta in float32
    assert (np.abs(X_adv - X_test) <= eps + float32_slack).all()
    assert np.abs(X_adv - X_test).max() > eps / 2  # and actually moved
    assert score <= pipe.score(X_test, y_test)


def test_bridge_image_estimator(natural_digits_cnn):
    clf, X, _ = natural_digits_cnn
    model = as_torch_classifier(clf)
    assert model.steps == []
    x = model.to_tensor(X)
    assert tuple(x.shape) == X.shape
    with torch.no_grad():
        proba = model(x).softmax(dim=1).numpy()
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-5)
    with pytest.raises(ValueError, match="features|shape"):
        model.to_tensor(X.reshape(len(X), -1))


def test_bridge_nested_pipeline_and_passthrough(cancer_raw):
    X, y, X_test, _ = cancer_raw
    pipe = Pipeline([
        ("pre", Pipeline([("skip", "passthrough"), ("std", StandardScaler())])),
        ("mm", MinMaxScaler()),
        ("clf", NaturalClassifier(max_epochs=1, random_state=0)),
    ]).fit(X, y)
    model = as_torch_classifier(pipe)
    assert model.steps == ["pre__std: StandardScaler", "mm: MinMaxScaler"]
    with torch.no_grad():
        proba = model(model.to_tensor(X_test)).softmax(dim=1).numpy()
    np.testing.assert_allclose(proba, pipe.predict_proba(X_test), atol=1e-5)


def test_bounds_translated_through_scalers(cancer_raw):
    X, y, X_test, y_test = cancer_raw
    pipe = make_pipeline(
        StandardScaler(), ATClassifier(eps=0.1, attack_steps=2, max_epochs=1, random_state=0)
    ).fit(X, y)
    scaler, clf = pipe[0], pipe[-1]
    low, high = clf.threat_model_.bounds  # 'auto': global range of the scaled data
    model = as_torch_classifier(pipe)
    n = X.shape[1]
    np.testing.assert_allclose(
        model.bounds[0], scaler.inverse_transform(np.full((1, n), low))[0], rtol=1e-5
    )
    np.testing.assert_allclose(
        model.bounds[1], scaler.inverse_transform(np.full((1, n), high))[0], rtol=1e-5
    )
    # A huge eps: the adversarial points end up against the translated (widened) bounds.
    _, X_adv = robust_accuracy_score(
        pipe, X_test, y_test, eps=1e5, random_state=0, return_adversarial=True
    )
    slack = 1e-3 * np.abs(model.bounds[1]).max()
    lower = np.minimum(model.bounds[0], X_test.min(axis=0))
    upper = np.maximum(model.bounds[1], X_test.max(axis=0))
    assert (X_adv >= lower - slack).all() and (X_adv <= upper + slack).all()
    # bounds=None lets them leave the box.
    _, X_free = robust_accuracy_score(
        pipe, X_test, y_test, eps=1e5, bounds=None, random_state=0, return_adversarial=True
    )
    assert (X_free > upper + 1.0).any() or (X_free < lower - 1.0).any()
    # Explicit bounds must contain X.
    with pytest.raises(ValueError, match="outside the declared bounds"):
        robust_accuracy_score(pipe, X_test, y_test, eps=0.1, bounds=(0.0, 1.0))


@pytest.fixture(scope="module")
def flat_digits(digits_flat):
    X_train, _, y_train, _ = digits_flat
    return X_train[:200], y_train[:200]


def test_natural_and_trades_share_the_default_box(flat_digits):
    X, y = flat_digits
    kwargs = dict(max_epochs=1, random_state=0, module__hidden_units=(16,))
    natural = NaturalClassifier(**kwargs).fit(X, y)
    trades = TRADESClassifier(attack_steps=1, **kwargs).fit(X, y)
    nb, tb = as_torch_classifier(natural).bounds, as_torch_classifier(trades).bounds
    assert [float(b) for b in nb] == [float(b) for b in tb] == [0.0, 1.0]


def test_explicitly_unbounded_estimator_stays_unbounded(flat_digits):
    X, y = flat_digits
    est = TRADESClassifier(bounds=None, max_epochs=1, attack_steps=1, random_state=0,
                           module__hidden_units=(16,)).fit(X, y)
    assert as_torch_classifier(est).bounds is None


def test_black_box_scores_are_floored_log_probabilities(cancer_raw):
    X, y, X_test, _ = cancer_raw
    logreg = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    model = as_torch_classifier(logreg, gradients=False)
    assert isinstance(model, TorchClassifier) and isinstance(model.network, ProbaModule)
    assert not model.differentiable and model.output == "log_proba"
    assert model.bounds is None and model.device == torch.device("cpu")
    with torch.no_grad():
        scores = model(model.to_tensor(X_test))
    np.testing.assert_allclose(scores.exp().numpy(), logreg.predict_proba(X_test), atol=1e-6)
    with pytest.raises(ValueError, match="expects samples of shape \\(30,\\)"):
        model.to_tensor(X_test[:, :3])
    # probabilities of 0 and 1 (a tree): the log is floored at log(1e-12), never -inf
    tree = DecisionTreeClassifier(random_state=0).fit(X, y)
    with torch.no_grad():
        tree_scores = as_torch_classifier(tree, gradients=False)(
            torch.as_tensor(X_test, dtype=torch.float32))
    assert float(tree_scores.min()) == pytest.approx(np.log(1e-12))
    assert float(tree_scores.max()) == 0.0


def test_what_cannot_be_bridged_is_refused_naming_it(cancer_raw):
    X, y, _, _ = cancer_raw
    with pytest.raises(NotFittedError):
        as_torch_classifier(LogisticRegression())
    logreg = LogisticRegression(max_iter=500).fit(X / X.max(axis=0), y)
    with pytest.raises(ValueError, match="LogisticRegression is not a torch classifier"):
        as_torch_classifier(logreg)
    pca_pipe = make_pipeline(PCA(5), NaturalClassifier(
        max_epochs=1, random_state=0, module__hidden_units=(8,))).fit(X, y)
    with pytest.raises(ValueError, match="step 'pca' \\(PCA\\) cannot be differentiated"):
        as_torch_classifier(pca_pipe)
    ending = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    with pytest.raises(ValueError, match="final step 'logisticregression'"):
        as_torch_classifier(ending)
    assert not as_torch_classifier(ending, gradients=False).differentiable
    with pytest.raises(ValueError, match="LinearSVC has no predict_proba"):
        as_torch_classifier(LinearSVC().fit(X / X.max(axis=0), y), gradients=False)


# ---------------------------------------------------------------- the bounds argument
def test_check_bounds_arg():
    assert check_bounds_arg(ESTIMATOR_BOUNDS) == "estimator"
    assert check_bounds_arg(None) is None
    low, high = check_bounds_arg((0, [1, 2]))
    assert low.dtype == high.dtype == np.float32 and high.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="bounds must be 'estimator', None or"):
        check_bounds_arg("auto")
    with pytest.raises(ValueError, match="low <= high"):
        check_bounds_arg((1, 0))


def test_resolve_bounds():
    # resolve_bounds reads only the bridge's translated training bounds
    X = torch.tensor([[0.5, 2.0], [0.1, 0.3]])
    per_feature = SimpleNamespace(bounds=(np.zeros(2, np.float32), np.ones(2, np.float32)))
    low, high = resolve_bounds("estimator", per_feature, X)
    assert low.tolist() == [0.0, 0.0]
    assert high.tolist() == [1.0, 2.0]  # widened to the test point beyond the training range
    assert low.dtype == high.dtype == np.float32
    unbounded = SimpleNamespace(bounds=None)
    assert resolve_bounds("estimator", unbounded, X) is None
    assert resolve_bounds(None, per_feature, X) is None  # the argument wins
    low, high = resolve_bounds((0.0, 3.0), unbounded, X)
    assert (float(low), float(high)) == (0.0, 3.0)
    with pytest.raises(ValueError, match="outside the declared bounds"):
        resolve_bounds((0.0, 1.0), unbounded, X)
    unknown = SimpleNamespace(bounds=UNKNOWN_BOUNDS)
    with pytest.raises(ValueError, match="initialised without data"):
        resolve_bounds("estimator", unknown, X)
    low, high = resolve_bounds((0.0, 3.0), unknown, X)  # explicit bounds need no estimator
    assert (float(low), float(high)) == (0.0, 3.0)
    assert repr(UNKNOWN_BOUNDS) == "UNKNOWN_BOUNDS"


# ---------------------------------------------------------------- the caller's format
def test_predictions_in_the_callers_format(cancer_raw):
    X, y, X_test, _ = cancer_raw
    columns = [f"f{i}" for i in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=columns)
    clf = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, y)
    named = with_feature_names(clf, X_test)
    assert isinstance(named, pd.DataFrame) and list(named.columns) == columns
    np.testing.assert_array_equal(named.to_numpy(), X_test)
    assert isinstance(with_feature_names(clf, X_test[:, :3]), np.ndarray)  # other width
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "X does not have feature names"
        predicted = predict_like(clf, X_test, pd.DataFrame(X_test, columns=columns))
    np.testing.assert_array_equal(predicted, clf.predict(pd.DataFrame(X_test, columns=columns)))
    plain = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    assert isinstance(with_feature_names(plain, X_test), np.ndarray)


# ---------------------------------------------------------------- the model left as found
def test_preserved_state_restores_modes_and_streams_even_after_an_error(scaled_pipe):
    found = torch_modules(scaled_pipe)  # through the pipeline: the network and the loss
    net = scaled_pipe[-1]
    assert [id(m) for m in found] == [id(net.module_), id(net.criterion_)]
    module = net.module_
    assert torch_modules(LogisticRegression()) == []
    module.train()
    module.net[0].eval()  # mixed modes: every submodule's own flag comes back
    modes = [m.training for m in module.modules()]
    try:
        torch.manual_seed(3)
        state = torch.get_rng_state()
        with pytest.raises(RuntimeError, match="inside"), preserved_state(scaled_pipe):
            module.eval()
            torch.rand(5)
            raise RuntimeError("inside")
        assert [m.training for m in module.modules()] == modes
        assert torch.equal(torch.get_rng_state(), state)
    finally:
        module.eval()


# ---------------------------------------------------------------- for the verifiers
def test_verification_chain_folds_the_scalers_in(cancer_raw, scaled_pipe):
    _, _, X_test, _ = cancer_raw
    model = as_torch_classifier(scaled_pipe)
    chain, scales = verification_chain(model)
    assert [type(layer).__name__ for layer in chain] == ["DiagonalAffine", "MLP"]
    (mult, add), = scales
    scaler = scaled_pipe[0]
    np.testing.assert_allclose(mult, 1 / scaler.scale_)
    np.testing.assert_allclose(add, -scaler.mean_ / scaler.scale_)
    assert chain[1] is model.network
    (linear,) = chain[0].sequential_layers()  # what the verifiers read of the scaler
    np.testing.assert_allclose(linear.weight.detach().numpy(), np.diag(mult))
    assert not linear.weight.requires_grad
    x = torch.as_tensor(X_test, dtype=torch.float64)
    with torch.no_grad():
        scaled = linear(x)
        np.testing.assert_allclose(chain[0](x).numpy(), scaled.numpy(), rtol=1e-12)
        np.testing.assert_allclose(chain[1](scaled.float()).numpy(), model(x.float()).numpy(),
                                   rtol=1e-5, atol=1e-5)
    black_box = as_torch_classifier(
        make_pipeline(StandardScaler(), LogisticRegression()).fit(*cancer_raw[:2]),
        gradients=False)
    with pytest.raises(TypeError, match="Pipeline has no torch network"):
        verification_chain(black_box)


def test_verification_chain_refuses_a_clipping_scaler(cancer_raw):
    X, y, _, _ = cancer_raw
    pipe = make_pipeline(MinMaxScaler(clip=True), NaturalClassifier(
        max_epochs=1, random_state=0, module__hidden_units=(8,))).fit(X, y)
    with pytest.raises(ValueError, match="clips its output"):
        verification_chain(as_torch_classifier(pipe))


def test_input_rounding_maps_later_scalers_back_through_earlier_ones():
    # x = 300 through mult 0.01 (z1 = 3) then mult 4, add 1 (z2 = 13): the second
    # rounding, INPUT_ROUNDING * 13, is 1 / (0.01 * 4) times larger in raw units.
    scales = [(np.array([0.01]), np.array([0.0])), (np.array([4.0]), np.array([1.0]))]
    x = np.array([[300.0]])
    radius = input_rounding(scales, x, x)
    expected = INPUT_ROUNDING * (3 / 0.01 + 13 / (0.01 * 4))
    np.testing.assert_allclose(radius, [[expected]], rtol=1e-12)
    # over an interval of raw values the largest |z| counts
    wide = input_rounding(scales[:1], np.array([[-500.0]]), np.array([[300.0]]))
    np.testing.assert_allclose(wide, [[INPUT_ROUNDING * 5 / 0.01]], rtol=1e-12)


# ---------------------------------------------------------------- read-only arrays (issue 28)
# Torch gives its "not writable" warning once per process, so the in-process tests spy on
# the numpy arrays handed to torch (deterministic whatever ran before), and one slow test
# checks the warning itself in a fresh interpreter.
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


@pytest.mark.slow
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
