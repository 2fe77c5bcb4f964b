"""Tests of robustness_sandwich and its band on RobustnessCurveDisplay.

Certified accuracies (lower bounds) and the attacked one (an upper bound) of a small
TRADES network on breast_cancer: the bounds must nest at every radius, meet at eps 0,
and a contradiction must be reported, not hidden.
"""

import io
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sklearn_robust import NaturalClassifier, TRADESClassifier  # noqa: E402
from sklearn_robust.metrics import (  # noqa: E402
    SandwichReport,
    certified_accuracy_score,
    robust_accuracy_score,
    robustness_sandwich,
)
from sklearn_robust.metrics import _sandwich as sandwich_module  # noqa: E402
from sklearn_robust.plotting import RobustnessCurveDisplay  # noqa: E402
from sklearn_robust.separation import r_separation  # noqa: E402

EPS = [0.0, 0.02, 0.05]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def cancer():
    """breast_cancer, each feature divided by its training max; 40 test points."""
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)
    top = X_train.max(axis=0)
    X_train, X_test = (X_train / top).astype(np.float32), (X_test / top).astype(np.float32)
    return X_train, X_test[:40], y_train, y_test[:40]


@pytest.fixture(scope="module")
def model(cancer):
    X_train, _, y_train, _ = cancer
    return make_pipeline(StandardScaler(), TRADESClassifier(
        eps=0.1, attack_steps=3, max_epochs=10, random_state=0,
        module__hidden_units=(16, 16))).fit(X_train, y_train)


@pytest.fixture(scope="module")
def report(model, cancer):
    X_train, X, y_train, y = cancer
    return robustness_sandwich(model, X, y, eps=EPS, attack="pgd", certify=("ibp", "crown"),
                               exact=True, X_train=X_train, y_train=y_train, random_state=0)


def _band_edges(band):
    """``{x: (lower, upper)}`` of a fill_between band."""
    vertices = band.get_paths()[0].vertices
    return {float(x): (vertices[vertices[:, 0] == x, 1].min(),
                       vertices[vertices[:, 0] == x, 1].max())
            for x in np.unique(vertices[:, 0])}


# ------------------------------------------------------------------ the bounds
def test_bounds_nest_at_every_radius(report):
    attacked = np.array(report.attacked)
    for method in ("ibp", "crown"):
        assert np.all(np.array(report.certified[method]) <= attacked), method
        assert np.all(np.array(report.certified[method]) <= report.exact_upper), method
    assert np.all(np.array(report.exact_lower) <= attacked)
    assert np.all(np.array(report.exact_lower) <= report.exact_upper)
    undecided = np.array(report.exact_upper) - report.exact_lower
    np.testing.assert_allclose(undecided * report.n_points, report.exact_undecided)
    assert np.all(np.array(report.lower) <= report.upper)
    assert report.lower == tuple(np.maximum.reduce(
        [report.certified["ibp"], report.certified["crown"], report.exact_lower]))
    assert report.upper == tuple(np.minimum(report.attacked, report.exact_upper))
    assert np.all(np.array(report.upper) <= report.clean_accuracy)
    assert report.consistent == (True, True, True) and report.violations == ()


def test_eps_zero_gives_the_clean_accuracy_everywhere(report, model, cancer):
    _, X, _, y = cancer
    clean = model.score(X, y)
    assert report.clean_accuracy == clean
    assert report.attacked[0] == report.exact_lower[0] == report.exact_upper[0] == clean
    assert report.certified["ibp"][0] == report.certified["crown"][0] == clean
    assert report.lower[0] == report.upper[0] == clean


def test_columns_are_the_metrics_own(report, model, cancer):
    _, X, _, y = cancer
    assert report.attacked[2] == robust_accuracy_score(model, X, y, eps=0.05, attack="pgd",
                                                       bounds=None, random_state=0)
    assert report.certified["crown"][2] == certified_accuracy_score(model, X, y, eps=0.05)
    assert report.certified["ibp"][1] == certified_accuracy_score(model, X, y, eps=0.02,
                                                                  method="ibp")


def test_separation_ceiling_is_r_separations(report, cancer):
    X_train, X, y_train, y = cancer
    expected = [r_separation(X_train, y_train, X, y, eps=e).robust_accuracy_ceiling
                for e in EPS]
    assert report.separation_ceiling == tuple(expected)
    assert report.separation_ceiling[0] == 1.0  # no test point duplicates another class
    assert np.all(np.diff(report.separation_ceiling) <= 0)
    # The ceiling binds classifiers astute at every training point, not this one: it
    # stays out of lower, upper and the consistency check.
    assert "not a bound of this one" in str(report)


def test_report_prints_every_column_and_serialises(report):
    text = str(report)
    assert text == repr(report)
    for column in ("eps", "clean", "ibp", "crown", "exact_lower", "undecided",
                   "exact_upper", "attacked", "ceiling", "interval", "consistent"):
        assert column in text, column
    assert list(report.table()) == [
        "eps", "clean", "ibp", "crown", "exact_lower", "undecided", "exact_upper",
        "attacked", "ceiling", "lower", "upper", "consistent"]
    assert all(len(values) == len(EPS) for values in report.table().values())
    data = json.loads(json.dumps(report.to_dict()))
    assert data["lower"] == list(report.lower) and data["attack"] == "pgd"


@pytest.mark.filterwarnings("ignore:AutoAttack. the model has 2 classes")
def test_autoattack_and_a_scalar_radius(model, cancer):
    _, X, _, y = cancer
    report = robustness_sandwich(model, X, y, eps=0.05, random_state=0)  # attack='auto'
    assert isinstance(report, SandwichReport)
    assert report.eps == (0.05,) and report.attack == "auto"
    assert report.certified["crown"][0] <= report.attacked[0] <= report.clean_accuracy
    assert report.exact_lower is None and report.separation_ceiling is None
    assert report.consistent == (True,)
    assert report.upper == report.attacked


# ------------------------------------------------------------ violations are reported
def test_an_unsound_certificate_is_reported_not_hidden(model, cancer, monkeypatch):
    """A 'certificate' claiming every correct point: the attack refutes it."""
    _, X, _, y = cancer
    real = sandwich_module.certified_accuracy_score

    def unsound(*args, **kwargs):
        score, cert = real(*args, **kwargs)
        cert.status[cert.status == "unknown"] = "certified"
        return float(cert.certified.mean()), cert

    monkeypatch.setattr(sandwich_module, "certified_accuracy_score", unsound)
    with pytest.warns(UserWarning, match="certificate is unsound"):
        report = robustness_sandwich(model, X, y, eps=[0.0, 0.05], attack="pgd",
                                     random_state=0)
    assert report.consistent == (True, False)
    assert report.certified["crown"][1] > report.attacked[1]
    assert report.violations and "crown certifies" in report.violations[0]
    assert "VIOLATION: eps=0.05: crown certifies" in str(report)


@pytest.mark.parametrize("kwargs, match", [
    ({"certify": ("smoothing",)}, "smoothed classifier"),
    ({"certify": ("exact",)}, "exact=True"),
    ({"certify": ("crown", "crown")}, "twice"),
    ({"certify": "bogus"}, "certify takes methods"),
    ({"norm": "l2", "exact": True}, "'exact' certifies the norms"),
    ({"eps": [0.1, -0.1]}, r"eps\[1\]"),
    ({"eps": []}, "at least one radius"),
    ({"attack": "nope"}, "attack must be one of"),
    ({"X_train": np.zeros((2, 3))}, "given together"),
    ({"exact": "yes"}, "exact"),
])
def test_bad_arguments_fail_before_any_work(kwargs, match):
    # An unfitted estimator: each error must come from validation, before any bound.
    X, y = np.zeros((4, 3), dtype=np.float32), np.array([0, 1, 0, 1])
    kwargs = {"eps": [0.1], **kwargs}
    with pytest.raises(ValueError, match=match):
        robustness_sandwich(NaturalClassifier(), X, y, **kwargs)


# ------------------------------------------------------------------ the display
def test_display_draws_the_sandwich(report):
    display = RobustnessCurveDisplay.from_sandwich(report, name="TRADES")
    np.testing.assert_array_equal(display.line_.get_ydata(), report.attacked)
    assert set(display.certified_lines_) == {"ibp", "crown", "exact"}
    np.testing.assert_array_equal(display.certified_lines_["exact"].get_ydata(),
                                  report.exact_lower)
    edges = _band_edges(display.band_)
    np.testing.assert_allclose([edges[e][0] for e in EPS], report.lower)
    np.testing.assert_allclose([edges[e][1] for e in EPS], report.upper)
    labels = display.ax_.get_legend_handles_labels()[1]
    assert labels == ["TRADES, attacked", "TRADES, certified (ibp)",
                      "TRADES, certified (crown)", "TRADES, certified (exact)",
                      "TRADES, robust accuracy interval"]
    assert [text.get_text() for text in display.ax_.get_legend().get_texts()] == labels
    buffer = io.BytesIO()
    display.figure_.savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG"


def test_band_between_certified_and_attacked():
    fig, ax = plt.subplots()
    display = RobustnessCurveDisplay(
        eps=[0.1, 0.0, 0.2], robust_accuracy=[0.7, 0.9, 0.5],
        certified={"ibp": [0.3, 0.9, 0.0], "crown": [0.5, 0.9, 0.2]}, attack="pgd",
    ).plot(ax=ax, color="C3", band_kwargs={"alpha": 0.5})
    edges = _band_edges(display.band_)
    assert [edges[e] for e in (0.0, 0.1, 0.2)] == [(0.9, 0.9), (0.5, 0.7), (0.2, 0.5)]
    assert display.band_.get_alpha() == 0.5
    assert display.certified_lines_["crown"].get_color() == "C3"  # the curve's colour
    assert display.certified_lines_["ibp"].get_linestyle() == "--"
    plain = RobustnessCurveDisplay(eps=[0, 0.1], robust_accuracy=[0.9, 0.5]).plot()
    assert plain.band_ is None and plain.certified_lines_ == {}
    assert plain.ax_.get_legend() is None  # no name, no certified: no legend, as before


def test_display_bad_inputs():
    with pytest.raises(ValueError, match="certified\\['crown'\\] has 1 values"):
        RobustnessCurveDisplay(eps=[0, 0.1], robust_accuracy=[0.9, 0.5],
                               certified={"crown": [0.9]})
    with pytest.raises(ValueError, match="not a percentage"):
        RobustnessCurveDisplay(eps=[0, 0.1], robust_accuracy=[0.9, 0.5],
                               certified=[90.0, 50.0])
    with pytest.raises(TypeError, match="SandwichReport"):
        RobustnessCurveDisplay.from_sandwich({"eps": [0.1]})
