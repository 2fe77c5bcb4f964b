"""Tests of sklearn_robust.plotting: the values drawn, the axes shared, the errors raised."""

import io
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

from sklearn_robust import NaturalClassifier, ThreatModel, TRADESClassifier  # noqa: E402
from sklearn_robust.attacks import PGD  # noqa: E402
from sklearn_robust.metrics import make_robust_scorer, robust_accuracy_score  # noqa: E402
from sklearn_robust.plotting import (  # noqa: E402
    RobustnessCurveDisplay,
    SeparationDisplay,
    TradeoffDisplay,
)
from sklearn_robust.separation import r_separation  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _render(figure):
    """Draw the figure to PNG bytes: the labels' mathtext must parse."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def natural_digits(digits_flat):
    X_train, X_test, y_train, y_test = digits_flat
    clf = NaturalClassifier(max_epochs=3, random_state=0).fit(X_train, y_train)
    return clf, X_test[:150], y_test[:150]


# ------------------------------------------------------------------ import behaviour
def test_importing_the_library_does_not_import_matplotlib():
    code = (
        "import sys\n"
        "import sklearn_robust, sklearn_robust.plotting, sklearn_robust.metrics\n"
        "import sklearn_robust.separation\n"
        "assert 'matplotlib' not in sys.modules, sorted(m for m in sys.modules "
        "if m.startswith('matplotlib'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def test_missing_matplotlib_names_the_plot_extra(monkeypatch):
    display = RobustnessCurveDisplay(eps=[0, 0.1], robust_accuracy=[0.9, 0.5])
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install sklearn-robust\[plot\]"):
        display.plot()
    with pytest.raises(ImportError, match="SeparationDisplay.from_data requires matplotlib"):
        SeparationDisplay.from_data([[0.0], [1.0]], [0, 1])


# ------------------------------------------------------------ RobustnessCurveDisplay
def test_robustness_curve_matches_robust_accuracy_score(natural_digits):
    clf, X, y = natural_digits
    eps = [0.0, 0.05, 0.1]
    kwargs = {"steps": 5, "bounds": (0, 1), "random_state": 0}
    display = RobustnessCurveDisplay.from_estimator(clf, X, y, eps=eps, **kwargs)
    assert display.robust_accuracy[0] == clf.score(X, y)  # eps=0: the clean accuracy
    expected = [robust_accuracy_score(clf, X, y, eps=e, **kwargs) for e in eps]
    np.testing.assert_array_equal(display.robust_accuracy, expected)
    np.testing.assert_array_equal(display.line_.get_xdata(), eps)
    np.testing.assert_array_equal(display.line_.get_ydata(), expected)
    assert display.line_.get_label() == "NaturalClassifier"
    assert display.ax_ is display.line_.axes and display.figure_ is display.ax_.figure
    assert "robust accuracy (pgd)" == display.ax_.get_ylabel()
    assert r"$\ell_\infty$" in display.ax_.get_xlabel()
    assert _render(display.figure_)[:8] == b"\x89PNG\r\n\x1a\n"


def test_several_estimators_on_one_axis(natural_digits):
    clf, X, y = natural_digits
    other = Pipeline([("clf", NaturalClassifier(max_epochs=1, random_state=1))])
    other.fit(X, y)
    fig, ax = plt.subplots()
    first = RobustnessCurveDisplay.from_estimator(clf, X, y, eps=[0, 0.1], steps=3, ax=ax,
                                                  name="natural, 3 epochs")
    second = RobustnessCurveDisplay.from_estimator(other, X, y, eps=[0, 0.1], steps=3,
                                                   ax=ax, linestyle="--")
    assert first.ax_ is second.ax_ is ax
    assert len(ax.get_lines()) == 2
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["natural, 3 epochs", "NaturalClassifier"]  # a pipeline: final step
    assert second.line_.get_linestyle() == "--"
    _render(fig)


def test_robustness_curve_passes_keywords_to_the_metric(natural_digits):
    clf, X, y = natural_digits
    kwargs = {"attack": ["pgd", "apgd-ce"], "steps": 3, "norm": "l2", "random_state": 0}
    display = RobustnessCurveDisplay.from_estimator(clf, X, y, eps=[0.5, 1.0], color="red",
                                                    **kwargs)
    expected = [robust_accuracy_score(clf, X, y, eps=e, **kwargs) for e in (0.5, 1.0)]
    np.testing.assert_array_equal(display.robust_accuracy, expected)
    assert display.line_.get_color() == "red"  # the others style the line
    assert display.ax_.get_ylabel() == "robust accuracy (pgd + apgd-ce)"
    assert r"$\ell_2$" in display.ax_.get_xlabel()


def test_robustness_curve_sorts_eps_and_plots_on_new_axes():
    display = RobustnessCurveDisplay(eps=[0.2, 0.0, 0.1], robust_accuracy=[0.1, 0.9, 0.5],
                                     norm="l2").plot()
    assert display.line_.get_xydata().tolist() == [[0.0, 0.9], [0.1, 0.5], [0.2, 0.1]]
    assert display.eps.tolist() == [0.2, 0.0, 0.1]  # stored as given
    assert display.ax_.get_legend() is None  # no name, no legend
    assert r"$\ell_2$" in display.ax_.get_xlabel()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"eps": [0.0, -0.1]}, r"'eps\[1\]' parameter of RobustnessCurveDisplay .*\[0"),
        ({"eps": []}, "at least one radius"),
        ({"eps": [0.1, float("nan")]}, r"'eps\[1\]' .* must be finite"),
        ({"eps": [0.1], "norm": "l3"}, "norm"),
        ({"eps": [0.1], "attack": "nope"}, "attack must be one of"),
        ({"eps": [0.0, 0.1], "attack": PGD(ThreatModel(eps=0.1))}, "single eps"),
    ],
)
def test_robustness_curve_bad_inputs_fail_before_computing(kwargs, match):
    # An unfitted estimator: each error must come from validation, before any scoring.
    X, y = np.zeros((4, 3), dtype=np.float32), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match=match):
        RobustnessCurveDisplay.from_estimator(NaturalClassifier(), X, y, **kwargs)


def test_robustness_curve_mismatched_lengths(natural_digits):
    clf, X, y = natural_digits
    with pytest.raises(ValueError, match="different lengths"):
        RobustnessCurveDisplay.from_estimator(clf, X, y[:-1], eps=[0.1])
    with pytest.raises(ValueError, match="same length"):
        RobustnessCurveDisplay(eps=[0, 0.1], robust_accuracy=[0.9])
    with pytest.raises(ValueError, match="not a percentage"):
        RobustnessCurveDisplay(eps=[0, 0.1], robust_accuracy=[90.0, 50.0])


# -------------------------------------------------------------------- TradeoffDisplay
@pytest.fixture(scope="module")
def trades_search(digits_flat):
    X_train, _, y_train, _ = digits_flat
    scoring = {"clean": "accuracy",
               "robust": make_robust_scorer(eps=0.1, steps=3, bounds=(0, 1), random_state=0)}
    search = GridSearchCV(
        TRADESClassifier(eps=0.1, attack_steps=2, max_epochs=2, bounds=(0, 1), random_state=0),
        {"beta": [6.0, 0.5]}, cv=2, scoring=scoring, refit="robust",
    )
    return search.fit(X_train[:300], y_train[:300])


def test_tradeoff_from_grid_search(trades_search):
    results = trades_search.cv_results_
    display = TradeoffDisplay.from_cv_results(trades_search, param="beta", name="TRADES")
    # Points in order of beta; values straight from cv_results_.
    order = [1, 0]  # beta 0.5, then 6
    np.testing.assert_array_equal(display.line_.get_xdata(), results["mean_test_clean"][order])
    np.testing.assert_array_equal(display.line_.get_ydata(),
                                  results["mean_test_robust"][order])
    assert [a.get_text() for a in display.annotations_] == ["beta=0.5", "beta=6"]
    assert len(display.errorbars_) == 1
    assert display.line_.get_label() == "TRADES"
    assert display.ax_.get_xlabel() == "clean (mean test score)"
    assert display.ax_.get_ylabel() == "robust (mean test score)"
    _render(display.figure_)

    # 'param_beta', the cv_results_ dict and the full column names give the same plot.
    again = TradeoffDisplay.from_cv_results(results, param="param_beta",
                                            clean="mean_test_clean", robust="robust",
                                            error_bars=False, annotate=False)
    np.testing.assert_array_equal(again.line_.get_xydata(), display.line_.get_xydata())
    assert again.errorbars_ == [] and again.annotations_ == []


def test_tradeoff_groups_and_nested_params(digits_flat):
    X_train, _, y_train, _ = digits_flat
    pipe = Pipeline([("clf", NaturalClassifier())])
    grid = [
        {"clf": [TRADESClassifier(eps=0.1, attack_steps=1, max_epochs=1, random_state=0)],
         "clf__beta": [1.0, 6.0]},
        {"clf": [NaturalClassifier(max_epochs=1, random_state=0)]},
    ]
    search = GridSearchCV(pipe, grid, cv=2, refit=False, scoring={
        "clean": "accuracy", "robust": make_robust_scorer(eps=0.1, steps=2, random_state=0)})
    search.fit(X_train[:200], y_train[:200])
    # 'beta' finds 'clf__beta'; the Natural candidate has no beta (a masked entry).
    display = TradeoffDisplay.from_cv_results(search, param="beta", group_by="clf")
    assert [line.get_label() for line in display.line_] == ["TRADESClassifier",
                                                            "NaturalClassifier"]
    assert [len(line.get_xdata()) for line in display.line_] == [2, 1]
    assert [a.get_text() for a in display.annotations_] == ["beta=1", "beta=6"]
    assert display.param_values[2] is None
    _render(display.figure_)


def test_tradeoff_bad_inputs(trades_search):
    with pytest.raises(ValueError, match=r"no column 'mean_test_accuracy'.*\['clean', 'robust'\]"):
        TradeoffDisplay.from_cv_results(trades_search, param="beta", clean="accuracy")
    with pytest.raises(ValueError, match=r"no column 'param_gamma'.*\['beta'\]"):
        TradeoffDisplay.from_cv_results(trades_search, param="gamma")
    with pytest.raises(ValueError, match="fit the search"):
        TradeoffDisplay.from_cv_results(GridSearchCV(NaturalClassifier(), {}), param="beta")
    with pytest.raises(ValueError, match="fitted search"):
        TradeoffDisplay.from_cv_results([1, 2], param="beta")
    ambiguous = {"mean_test_clean": np.array([0.9]), "mean_test_robust": np.array([0.5]),
                 "param_a__beta": np.array([1]), "param_b__beta": np.array([1])}
    with pytest.raises(ValueError, match="ambiguous"):
        TradeoffDisplay.from_cv_results(ambiguous, param="beta")
    with pytest.raises(ValueError, match="same length"):
        TradeoffDisplay(clean_accuracy=[0.9, 0.8], robust_accuracy=[0.5])
    with pytest.raises(ValueError, match="robust_std must be >= 0"):
        TradeoffDisplay(clean_accuracy=[0.9], robust_accuracy=[0.5], robust_std=[-0.1])
    with pytest.raises(ValueError, match="param_values has 1 values"):
        TradeoffDisplay(clean_accuracy=[0.9, 0.8], robust_accuracy=[0.5, 0.6],
                        param_values=[1])


# ------------------------------------------------------------------ SeparationDisplay
def test_separation_from_data(digits_flat):
    X_train, X_test, y_train, y_test = digits_flat
    display = SeparationDisplay.from_data(X_train, y_train, X_test, y_test, eps=0.1, bins=20)
    report = r_separation(X_train, y_train, X_test, y_test, eps=0.1)
    np.testing.assert_array_equal(display.train_train_distances, report.train_train_distances)
    np.testing.assert_array_equal(display.test_train_distances, report.test_train_distances)
    assert display.report_.train_train_min == report.train_train_min
    # Every point is counted once, in shared bins.
    assert display.train_hist_[0].sum() == len(X_train)
    assert display.test_hist_[0].sum() == len(X_test)
    np.testing.assert_array_equal(display.train_hist_[1], display.test_hist_[1])
    assert len(display.train_hist_[0]) == 20
    # The 2 eps line.
    assert list(display.eps_line_.get_xdata()) == [pytest.approx(0.2)] * 2
    labels = [t.get_text() for t in display.ax_.get_legend().get_texts()]
    assert any("0.2" in label for label in labels)
    assert any(label.startswith(f"train-train (n={len(X_train)}") for label in labels)
    _render(display.figure_)


def test_separation_from_report_and_eps_override():
    report = r_separation([[0.0], [1.0], [3.0], [4.0]], [0, 0, 1, 1])
    display = SeparationDisplay.from_report(report, bins=3)
    assert display.eps is None and display.eps_line_ is None and display.test_hist_ is None
    assert display.train_hist_[0].sum() == 4
    display = SeparationDisplay.from_report(report, eps=0.25, density=True)
    assert display.eps_line_.get_xdata()[0] == 0.5
    assert display.ax_.get_ylabel() == "density"


def test_separation_bad_inputs():
    with pytest.raises(ValueError, match=r"'eps' parameter .* \[0"):
        SeparationDisplay.from_data([[0.0], [1.0]], [0, 1], eps=-0.1)
    with pytest.raises(ValueError, match="given together"):
        SeparationDisplay.from_data([[0.0], [1.0]], [0, 1], X_test=[[0.5]])
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        SeparationDisplay.from_data([[0.0], [1.0]], [0, 1], bins=0)
    with pytest.raises(ValueError, match="SeparationReport"):
        SeparationDisplay.from_report({"train_train_distances": [1.0]})
    with pytest.raises(ValueError, match="train_train_distances must be >= 0"):
        SeparationDisplay(train_train_distances=[-1.0, 2.0])
    with pytest.raises(ValueError, match="one-dimensional"):
        SeparationDisplay(train_train_distances=[[1.0, 2.0]])
