"""Tests of sklearn_robust.separation: exact chunked distances, the report, the transformer."""

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import cdist
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_robust.separation import RSeparation, SeparationReport, _linf, r_separation
from sklearn_robust.separation._distances import class_distances, nearest_other_class_distances
from sklearn_robust.separation._validation import block_size

NORMS = ("linf", "l2", "l1")
SCIPY_METRIC = {"linf": "chebyshev", "l2": "euclidean", "l1": "cityblock"}
SKLEARN_METRIC = {"linf": "chebyshev", "l2": "euclidean", "l1": "manhattan"}


# ---------------------------------------------------------------------- references
def brute_pairwise(Xq, Xr, norm):
    return cdist(np.asarray(Xq, np.float64), np.asarray(Xr, np.float64), SCIPY_METRIC[norm])


def brute_other(Xq, yq, Xr, yr, norm):
    D = brute_pairwise(Xq, Xr, norm)
    D[np.asarray(yq)[:, None] == np.asarray(yr)[None, :]] = np.inf
    return D.min(axis=1)


def brute_matrix(Xq, Xr, yr, norm):
    D = brute_pairwise(Xq, Xr, norm)
    yr = np.asarray(yr)
    return np.stack([D[:, yr == c].min(axis=1) for c in np.unique(yr)], axis=1)


def ties_data(seed=0, n=120, p=5):
    """Small integers: many equal distances, and duplicated rows with different labels."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 3, size=(n, p)).astype(np.float64)
    y = rng.integers(0, 4, size=n)
    X[-10:] = X[:10]
    y[-10:] = (y[:10] + 1) % 4
    return X, y


def _digits():
    return load_digits(return_X_y=True)


DATASETS = {
    "digits": _digits,
    "breast_cancer": lambda: load_breast_cancer(return_X_y=True),
    "wine": lambda: load_wine(return_X_y=True),
    "ties": ties_data,
    "random32": lambda: (
        np.random.default_rng(1).random((300, 50), dtype=np.float32),
        np.random.default_rng(2).integers(0, 3, 300),
    ),
}


# ---------------------------------------------------------------------- engine vs brute force
@pytest.mark.parametrize("chunk_bytes", [None, 60_000], ids=["default", "small-chunks"])
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_train_train_matches_brute_force(name, norm, chunk_bytes):
    X, y = DATASETS[name]()
    if chunk_bytes is not None:  # many tiny blocks: keep the run short
        X, y = X[:500], y[:500]
    got = nearest_other_class_distances(X, y, norm=norm, chunk_bytes=chunk_bytes)
    want = brute_other(X, y, X, y, norm)
    assert got.dtype == np.float64 and got.shape == (len(y),)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)


@pytest.mark.parametrize("chunk_bytes", [None, 60_000], ids=["default", "small-chunks"])
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", ["digits", "wine", "ties"])
def test_test_train_and_class_matrix_match_brute_force(name, norm, chunk_bytes):
    X, y = DATASETS[name]()
    if chunk_bytes is not None:
        X, y = X[:600], y[:600]
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    tr, te = idx[: len(y) * 2 // 3], idx[len(y) * 2 // 3 :]
    got = nearest_other_class_distances(
        X[te], y[te], X[tr], y[tr], norm=norm, chunk_bytes=chunk_bytes
    )
    np.testing.assert_allclose(
        got, brute_other(X[te], y[te], X[tr], y[tr], norm), rtol=1e-6, atol=0
    )
    M = class_distances(X[te], X[tr], y[tr], norm=norm, chunk_bytes=chunk_bytes)
    np.testing.assert_allclose(M, brute_matrix(X[te], X[tr], y[tr], norm), rtol=1e-6, atol=0)


@pytest.mark.parametrize("norm", NORMS)
def test_digits_against_sklearn_nearest_neighbors(norm):
    X, y = load_digits(return_X_y=True)
    per_class = np.empty((len(y), 10))
    for c in range(10):
        nn = NearestNeighbors(n_neighbors=1, algorithm="brute", metric=SKLEARN_METRIC[norm])
        per_class[:, c] = nn.fit(X[y == c]).kneighbors(X)[0][:, 0]
    other = np.where(np.arange(10)[None, :] == y[:, None], np.inf, per_class).min(axis=1)
    np.testing.assert_allclose(nearest_other_class_distances(X, y, norm=norm), other, rtol=1e-6)
    np.testing.assert_allclose(class_distances(X, X, y, norm=norm), per_class, rtol=1e-6, atol=1e-6)


def test_l_inf_pruning_paths_are_exercised_and_exact(monkeypatch):
    calls = []
    original = _linf._tail_max

    def spy(*args):
        calls.append(len(args[2]))
        return original(*args)

    monkeypatch.setattr(_linf, "_tail_max", spy)
    X, y = load_digits(return_X_y=True)
    got = nearest_other_class_distances(X, y, chunk_bytes=1_000_000)
    assert calls and sum(calls) > 0  # some pairs were finished by gathering
    np.testing.assert_array_equal(got, brute_other(X, y, X, y, "linf"))
    calls.clear()
    M = class_distances(X[:300], X[300:], y[300:], chunk_bytes=1_000_000)
    assert calls and sum(calls) > 0
    np.testing.assert_array_equal(M, brute_matrix(X[:300], X[300:], y[300:], "linf"))


def test_l2_recheck_is_exact_far_from_the_origin():
    # Float32 GEMM alone would lose everything here; the float64 re-check recovers it.
    rng = np.random.default_rng(0)
    X = 1e4 + 1e-3 * rng.normal(size=(400, 30))
    y = rng.integers(0, 3, 400)
    got = nearest_other_class_distances(X, y, norm="l2", chunk_bytes=100_000)
    diff = X[:, None, :] - X[None, :, :]
    D = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    D[y[:, None] == y[None, :]] = np.inf
    np.testing.assert_allclose(got, D.min(axis=1), rtol=1e-12)


@pytest.mark.parametrize("norm", NORMS)
def test_duplicates_with_different_labels_give_zero(norm):
    X = np.array([[0.0, 1.0], [0.0, 1.0], [5.0, 5.0], [7.0, 1.0]])
    y = np.array([0, 1, 1, 0])
    got = nearest_other_class_distances(X, y, norm=norm)
    assert got[0] == 0.0 and got[1] == 0.0
    # A same-label duplicate is not a neighbour, and a point is not its own neighbour.
    got = nearest_other_class_distances(X[[0, 0, 2]], [0, 0, 1], norm=norm)
    assert got[0] > 0 and got[1] > 0


@pytest.mark.parametrize("pad", [0, 100])
def test_known_answer_two_clusters(pad):
    base = np.array([[0, 0], [0, 1], [1, 0], [5, 0], [5, 1], [6, 0]], dtype=np.float64)
    # A column block shared by every point changes no distance (and with 102 features
    # the l_inf pruning path runs).
    common = np.random.default_rng(0).random(pad)
    X = np.hstack([base, np.tile(common, (6, 1))])
    y = [0, 0, 0, 1, 1, 1]
    expected = {
        "linf": [5, 5, 4, 4, 4, 5],
        "l1": [5, 5, 4, 4, 5, 5],
        "l2": [5, 5, 4, 4, np.sqrt(17), 5],
    }
    for norm, want in expected.items():
        got = nearest_other_class_distances(X, y, norm=norm, chunk_bytes=1)
        np.testing.assert_allclose(got, want, rtol=1e-12)
        report = r_separation(X, y, norm=norm)
        assert report.train_train_min == 4.0 and report.r == 2.0
    M = class_distances([[3.0, 0.0] + list(common)], X, y, norm="linf")
    np.testing.assert_allclose(M, [[2.0, 2.0]])


def test_test_train_on_the_training_set_equals_train_train():
    X, y = load_wine(return_X_y=True)
    for norm in NORMS:
        np.testing.assert_array_equal(
            nearest_other_class_distances(X, y, X, y, norm=norm),
            nearest_other_class_distances(X, y, norm=norm),
        )


def test_unseen_test_label_counts_every_training_point():
    X_train, y_train = [[0.0], [1.0], [3.0], [4.0]], [0, 0, 1, 1]
    got = nearest_other_class_distances([[2.2], [0.9]], [7, 0], X_train, y_train)
    np.testing.assert_allclose(got, [0.8, 2.1])


def test_float32_input_stays_exact_to_float32_rounding():
    X, y = DATASETS["random32"]()
    for norm in NORMS:
        got32 = nearest_other_class_distances(X, y, norm=norm)
        got64 = nearest_other_class_distances(X.astype(np.float64), y, norm=norm)
        np.testing.assert_allclose(got32, got64, rtol=2**-23)


def test_block_size_respects_the_budget():
    for n_features in (1, 13, 64, 784, 3072):
        for budget in (1, 10_000, 2**20, 64 * 2**20, 128 * 2**20, 2**30):
            s = block_size(n_features, budget)
            assert s >= 1
            if s > 1:
                assert 32 * s * s + 48 * n_features * s <= 0.75 * budget
            # The next size up would not fit (the size is the largest that fits).
            assert 32 * (s + 1) ** 2 + 48 * n_features * (s + 1) > 0.75 * budget
    # 60,000 x 784 float32: blocks of at most ~100 MiB, never a 60,000-wide matrix.
    s = block_size(784)
    assert 1000 < s < 2000


def _status_bytes(key):
    with open("/proc/self/status") as f:
        return int(re.search(key + r":\s+(\d+)", f.read()).group(1)) * 1024


def test_memory_stays_bounded_on_20000_points():
    rng = np.random.default_rng(0)
    X = rng.random((20_000, 784), dtype=np.float32)
    y = rng.integers(0, 10, 20_000)
    T = rng.random((100, 784), dtype=np.float32)
    y_test = rng.integers(0, 10, 100)
    budget = 64 * 2**20
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak resident set size
        base = _status_bytes("VmRSS")
    except OSError:
        base = None
    got = {
        norm: nearest_other_class_distances(T, y_test, X, y, norm=norm, chunk_bytes=budget)
        for norm in ("linf", "l2")
    }
    if base is not None:
        extra = _status_bytes("VmHWM") - base
        # A full 100 x 20,000 float64 matrix is only 16 MB, but a 20,000-point
        # train-train matrix would be 1.6 GB: the bound is the block budget.
        assert extra < 2 * budget, extra / 2**20
    some = rng.choice(100, 10, replace=False)
    for norm, d in got.items():
        np.testing.assert_allclose(
            d[some], brute_other(T[some], y_test[some], X, y, norm), rtol=1e-6
        )


# ---------------------------------------------------------------------- property test
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_property_chunked_equals_brute_force(data):
    n = data.draw(st.integers(2, 24), label="n")
    p = data.draw(st.sampled_from([1, 3, 40]), label="p")
    dtype = data.draw(st.sampled_from([np.float32, np.float64]), label="dtype")
    small_ints = data.draw(st.booleans(), label="small_ints")
    elements = (
        st.integers(0, 2).map(float)
        if small_ints
        else st.floats(-100, 100, allow_nan=False, width=32)
    )
    X = data.draw(arrays(dtype, (n, p), elements=elements), label="X")
    y = data.draw(arrays(np.int64, n, elements=st.integers(0, 2)), label="y")
    if len(np.unique(y)) < 2:
        y[0] = (y[-1] + 1) % 3
    norm = data.draw(st.sampled_from(NORMS), label="norm")
    chunk_bytes = data.draw(st.sampled_from([1, 2_000, 50_000, None]), label="chunk_bytes")
    rtol = 1e-6
    got = nearest_other_class_distances(X, y, norm=norm, chunk_bytes=chunk_bytes)
    np.testing.assert_allclose(got, brute_other(X, y, X, y, norm), rtol=rtol, atol=0)
    m = data.draw(st.integers(1, 6), label="m")
    Q = data.draw(arrays(dtype, (m, p), elements=elements), label="Q")
    y_q = data.draw(arrays(np.int64, m, elements=st.integers(0, 3)), label="y_q")
    got = nearest_other_class_distances(Q, y_q, X, y, norm=norm, chunk_bytes=chunk_bytes)
    np.testing.assert_allclose(got, brute_other(Q, y_q, X, y, norm), rtol=rtol, atol=0)
    M = class_distances(Q, X, y, norm=norm, chunk_bytes=chunk_bytes)
    np.testing.assert_allclose(M, brute_matrix(Q, X, y, norm), rtol=rtol, atol=0)


# ---------------------------------------------------------------------- the report
def test_report_fields_against_hand_computation():
    X_train, y_train = [[0.0], [1.0], [3.0], [4.0]], [0, 0, 1, 1]
    X_test, y_test = [[2.0], [5.0], [0.5]], [0, 1, 1]
    report = r_separation(
        X_train, y_train, X_test, y_test, eps=0.5, norm="l1", percentiles=(0, 50, 100)
    )
    assert isinstance(report, SeparationReport)
    assert (report.norm, report.n_train, report.n_test, report.n_classes) == ("l1", 4, 3, 2)
    np.testing.assert_array_equal(report.train_train_distances, [3, 2, 2, 3])
    np.testing.assert_array_equal(report.test_train_distances, [1.0, 4.0, 0.5])
    assert report.train_train_min == 2.0 and report.train_train_mean == 2.5
    assert report.train_train_percentiles == {0: 2.0, 50: 2.5, 100: 3.0}
    assert report.test_train_min == 0.5 and report.test_train_mean == pytest.approx(5.5 / 3)
    assert report.test_train_percentiles == {0: 0.5, 50: 1.0, 100: 4.0}
    assert report.r == 1.0 and report.eps == 0.5 and report.two_eps == 1.0
    assert report.separated is True
    assert report.train_share_within_2eps == 0.0
    # Test points at 1.0 (= 2 eps: the closed balls touch) and 0.5 are within 2 eps.
    assert report.test_share_within_2eps == pytest.approx(2 / 3)
    assert report.robust_accuracy_ceiling == pytest.approx(1 / 3)
    # At eps = 1 the training classes touch: not separated, half the points within 2 eps.
    report = r_separation(X_train, y_train, X_test, y_test, eps=1.0)
    assert report.separated is False and report.train_share_within_2eps == 0.5
    assert report.robust_accuracy_ceiling == pytest.approx(1 / 3)


def test_report_without_test_data_or_eps():
    X, y = load_wine(return_X_y=True)
    report = r_separation(X, y, norm="l2")
    want = brute_other(X, y, X, y, "l2")
    assert report.n_test == 0
    assert report.test_train_min is None and report.test_train_distances is None
    assert report.eps is None and report.separated is None
    assert report.robust_accuracy_ceiling is None
    assert report.train_train_min == pytest.approx(want.min())
    assert report.train_train_mean == pytest.approx(want.mean())
    assert report.train_train_percentiles[5] == pytest.approx(np.percentile(want, 5))
    assert report.r == pytest.approx(want.min() / 2)


def test_report_is_frozen_and_prints_a_table():
    X, y = load_digits(return_X_y=True)
    report = r_separation(X[:1000], y[:1000], X[1000:], y[1000:], eps=3.5)
    with pytest.raises(AttributeError):
        report.r = 0.0
    with pytest.raises(ValueError):
        report.train_train_distances[0] = 0.0  # read-only
    text = repr(report)
    assert text == str(report)
    assert "train-train" in text and "test-train" in text and "p50" in text
    assert "separated = False" in text and "robust accuracy ceiling" in text
    assert "array" not in text  # per-point arrays stay out of the repr
    d = report.to_dict()
    assert "train_train_distances" not in d and d["r"] == 3.5


def test_report_flattens_images():
    X, y = load_digits(return_X_y=True)
    flat = r_separation(X[:400], y[:400], X[400:500], y[400:500])
    images = r_separation(
        X[:400].reshape(-1, 8, 8), y[:400], X[400:500].reshape(-1, 1, 8, 8), y[400:500]
    )
    np.testing.assert_array_equal(images.train_train_distances, flat.train_train_distances)
    np.testing.assert_array_equal(images.test_train_distances, flat.test_train_distances)


def test_report_uint8_images_match_float():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(200, 6, 6), dtype=np.uint8)
    y = rng.integers(0, 3, 200)
    report = r_separation(X, y)
    want = brute_other(X.reshape(200, -1), y, X.reshape(200, -1), y, "linf")
    np.testing.assert_array_equal(report.train_train_distances, want)


X_OK = np.arange(12, dtype=float).reshape(6, 2)
Y_OK = np.array([0, 0, 0, 1, 1, 1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"X_train": np.where(X_OK == 3, np.nan, X_OK)}, "NaN"),
        ({"X_train": np.where(X_OK == 3, np.inf, X_OK)}, "infinity"),
        ({"X_test": [[np.nan, 1.0]], "y_test": [0]}, "NaN"),
        ({"y_train": Y_OK[:5]}, "inconsistent numbers of samples"),
        ({"y_train": np.zeros(6)}, "at least 2 classes"),
        ({"norm": "l3"}, "The 'norm' parameter of r_separation"),
        ({"eps": -0.1}, "The 'eps' parameter of r_separation"),
        ({"eps": np.inf}, "'eps' parameter of r_separation must be finite"),
        ({"X_test": [[1.0, 2.0, 3.0]], "y_test": [0]}, "X_test has 3 features but X_train has 2"),
        ({"X_test": [[1.0, 2.0]]}, "given together"),
        ({"y_test": [0]}, "given together"),
        ({"X_test": [[1.0, 2.0]], "y_test": [0, 1]}, "inconsistent numbers of samples"),
        ({"percentiles": (5, 101)}, "percentiles"),
        ({"percentiles": 5}, "percentiles"),
        ({"chunk_bytes": 0}, "chunk_bytes"),
        ({"X_train": np.zeros(6)}, "2D array"),
    ],
)
def test_report_bad_input(kwargs, match):
    args = {"X_train": X_OK, "y_train": Y_OK, "X_test": None, "y_test": None}
    for key in list(args):
        if key in kwargs:
            args[key] = kwargs.pop(key)
    with pytest.raises(ValueError, match=match):
        r_separation(**args, **kwargs)


def test_distance_helpers_bad_input():
    with pytest.raises(ValueError, match="'norm' parameter of nearest_other_class_distances"):
        nearest_other_class_distances(X_OK, Y_OK, norm="chebyshev")
    with pytest.raises(ValueError, match="at least 2 classes"):
        nearest_other_class_distances(X_OK, np.ones(6))
    with pytest.raises(ValueError, match="features"):
        class_distances(X_OK, X_OK[:, :1], Y_OK)
    with pytest.raises(ValueError, match="y_ref"):
        nearest_other_class_distances(X_OK, Y_OK, X_OK)
    with pytest.raises(ValueError, match="another label"):
        nearest_other_class_distances(X_OK, np.zeros(6), X_OK, np.zeros(6))


# ---------------------------------------------------------------------- the transformer
@parametrize_with_checks([RSeparation(), RSeparation(norm="l2", eps=0.1, chunk_bytes=4096)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("norm", NORMS)
def test_transformer_matches_brute_force(norm):
    X, y = load_wine(return_X_y=True)
    labels = np.array(["a", "b", "c"])[y]
    sep = RSeparation(norm=norm, chunk_bytes=20_000).fit(X[::2], labels[::2])
    np.testing.assert_array_equal(sep.classes_, ["a", "b", "c"])
    assert sep.n_features_in_ == 13
    want = brute_other(X[::2], labels[::2], X[::2], labels[::2], norm)
    np.testing.assert_allclose(sep.train_distances_, want, rtol=1e-6)
    assert sep.r_ == pytest.approx(want.min() / 2)
    D = sep.transform(X[1::2])
    np.testing.assert_allclose(D, brute_matrix(X[1::2], X[::2], labels[::2], norm), rtol=1e-6)
    np.testing.assert_array_equal(sep.predict(X[1::2]), sep.classes_[D.argmin(axis=1)])
    # Training points are at distance 0 from their own class.
    assert np.all(sep.transform(X[::2])[np.arange(89), y[::2]] == 0)
    names = sep.get_feature_names_out()
    np.testing.assert_array_equal(names, ["dist_a", "dist_b", "dist_c"])


def test_transformer_predict_is_astute_with_radius_r():
    # Well separated blobs: every point of an r-ball around a training point keeps its
    # label under the constructive classifier.
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    y = np.repeat([0, 1, 2], 30)
    X = centers[y] + rng.uniform(-1, 1, size=(90, 2))
    sep = RSeparation(norm="linf").fit(X, y)
    assert sep.r_ > 3
    corners = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1], [0.3, -0.7]])
    for offset in corners * 0.999 * sep.r_:
        np.testing.assert_array_equal(sep.predict(X + offset), y)


def test_transformer_score_certifies_with_margin():
    X, y = [[0.0], [1.0], [3.0], [4.0]], [0, 0, 1, 1]
    X_eval, y_eval = [[1.5], [2.9], [5.0], [1.9]], [0, 1, 1, 1]
    plain = RSeparation().fit(X, y)
    assert plain.separated_ is None
    assert plain.score(X_eval, y_eval) == 0.75  # 1.9 is predicted 0
    # Margins: 1.0, 1.8, 3.0 (and a wrong prediction); 2 eps = 1.2 certifies two of four.
    robust = RSeparation(eps=0.6).fit(X, y)
    assert robust.separated_ is True
    assert robust.score(X_eval, y_eval) == 0.5
    assert robust.score(X_eval, y_eval, sample_weight=[0, 1, 1, 1]) == pytest.approx(2 / 3)
    assert RSeparation(eps=1.0).fit(X, y).separated_ is False


def test_transformer_flattens_images_and_keeps_feature_names():
    X, y = load_digits(return_X_y=True)
    flat = RSeparation().fit(X[:300], y[:300])
    images = RSeparation().fit(X[:300].reshape(-1, 8, 8), y[:300])
    assert images.n_features_in_ == 64
    np.testing.assert_array_equal(
        images.transform(X[300:350].reshape(-1, 8, 8)), flat.transform(X[300:350])
    )
    frame = pd.DataFrame(X[:300], columns=[f"px{i}" for i in range(64)])
    sep = RSeparation().set_output(transform="pandas").fit(frame, y[:300])
    out = sep.transform(frame.iloc[:5])
    assert list(out.columns) == [f"dist_{c}" for c in range(10)]
    np.testing.assert_array_equal(out.to_numpy(), flat.transform(X[:5]))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"norm": "l0"}, "The 'norm' parameter of RSeparation"),
        ({"eps": -1}, "The 'eps' parameter of RSeparation"),
        ({"chunk_bytes": -5}, "The 'chunk_bytes' parameter of RSeparation"),
    ],
)
def test_transformer_bad_params(params, match):
    with pytest.raises(ValueError, match=match):
        RSeparation(**params).fit(X_OK, Y_OK)


def test_transformer_bad_data():
    with pytest.raises(ValueError, match="1 class"):
        RSeparation().fit(X_OK, np.zeros(6))
    with pytest.raises(ValueError, match="NaN"):
        RSeparation().fit(np.where(X_OK == 3, np.nan, X_OK), Y_OK)
    sep = RSeparation().fit(X_OK, Y_OK)
    with pytest.raises(ValueError, match="features"):
        sep.transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="infinity"):
        sep.transform([[np.inf, 0.0]])
    # clone keeps parameters and drops the fitted state
    assert not hasattr(clone(sep), "classes_")


# ---------------------------------------------------------------------- l_inf certificates
def _image_like(n=700, seed=0):
    """Upsampled digits with MNIST's contrast: empty background, saturated strokes."""
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(y), n)
    img = np.kron(X[pick].reshape(n, 8, 8) / 16.0, np.ones((2, 2))).reshape(n, -1)
    img = np.clip((img - 0.2) / 0.45 + rng.normal(0, 0.03, img.shape) * (img > 0.2), 0, 1)
    return (np.round(img * 255) / 255).astype(np.float32), y[pick]


def test_l_inf_certificates_prune_and_stay_exact(monkeypatch):
    # Saturated image data: the 0/1 certificate products rule out most pairs, the few
    # uncertified ones are gathered, and every distance equals brute force exactly
    # (float32 data: correctly rounded float32 values).
    X, y = _image_like()
    certified, total = [], []
    original = _linf._count_products

    def spy(A, B):
        out = original(A, B)
        certified.append(int((out > 0).sum()))
        total.append(out.numel())
        return out

    monkeypatch.setattr(_linf, "_count_products", spy)
    chunk = 300_000  # several blocks per side
    got = nearest_other_class_distances(X, y, chunk_bytes=chunk)
    np.testing.assert_array_equal(got, brute_other(X, y, X, y, "linf").astype(np.float32))
    assert sum(certified) > 0.5 * sum(total)
    tr, te = np.arange(500), np.arange(500, 700)
    got = nearest_other_class_distances(X[te], y[te], X[tr], y[tr], chunk_bytes=chunk)
    want = brute_other(X[te], y[te], X[tr], y[tr], "linf").astype(np.float32)
    np.testing.assert_array_equal(got, want)
    M = class_distances(X[te], X[tr], y[tr], chunk_bytes=chunk)
    np.testing.assert_array_equal(M, brute_matrix(X[te], X[tr], y[tr], "linf").astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_l_inf_dense_fallback_and_mixed_dtypes_are_exact(dtype):
    # Continuous uniform data: almost nothing is certified, blocks fall back to cdist;
    # float32 queries against float64 references are measured in float64.
    rng = np.random.default_rng(3)
    X = rng.random((400, 40)).astype(dtype)
    y = rng.integers(0, 3, 400)
    got = nearest_other_class_distances(X, y, chunk_bytes=200_000)
    np.testing.assert_allclose(got, brute_other(X, y, X, y, "linf"), rtol=1e-6, atol=0)
    Xq = rng.random((50, 40)).astype(np.float32)
    yq = rng.integers(0, 3, 50)
    got = nearest_other_class_distances(Xq, yq, X.astype(np.float64), y)
    np.testing.assert_array_equal(got, brute_other(Xq, yq, X, y, "linf"))


def test_r_separation_verbose_shows_progress(capsys):
    X, y = _image_like(200)
    quiet = r_separation(X[:150], y[:150], X[150:], y[150:])
    loud = r_separation(X[:150], y[:150], X[150:], y[150:], verbose=True)
    np.testing.assert_array_equal(quiet.train_train_distances, loud.train_train_distances)
    assert "train-train" in capsys.readouterr().err


def test_cli_separation_progress_flag(capsys):
    from sklearn_robust.cli import main

    assert main(["separation", "digits", "--json", "--progress"]) == 0
    captured = capsys.readouterr()
    assert "train_train_min" in captured.out and "train-train" in captured.err
