"""Clean against robust accuracy across a hyperparameter (the accuracy-robustness trade-off)."""

import numbers

import numpy as np

from ._base import Display, check_1d, check_same_length, format_value
from ._cv_results import MEAN, metric_columns, param_column, results_of, short_param, unmask


def _check_std(std, name, reference):
    std = check_1d(std, name, allow_none=True)
    if std is None:
        return None
    check_same_length(reference, "clean_accuracy", std, name)
    if np.any(std < 0):
        raise ValueError(f"{name} must be >= 0, got {std.tolist()}.")
    return std


def _sort_key(values):
    """Positions sorting numeric parameter values (None last); input order otherwise."""
    def is_number(v):
        return isinstance(v, numbers.Real) and not isinstance(v, bool)

    if all(v is None or is_number(v) for v in values):
        return sorted(range(len(values)),
                      key=lambda i: (values[i] is None, 0 if values[i] is None else values[i]))
    return list(range(len(values)))


class TradeoffDisplay(Display):
    """Clean against robust accuracy, one point per hyperparameter value.

    The accuracy-robustness trade-off: each point is one model (typically one value of
    TRADES' or SCORE's ``beta``), at its clean accuracy (x) and robust accuracy (y),
    annotated with the parameter value, with optional error bars (standard deviations
    over cross-validation folds). Points of one group (one estimator type, say) are
    joined by a line in order of the parameter. Build it with :meth:`from_cv_results`
    from a fitted multi-metric ``GridSearchCV``, or from precomputed values, then call
    :meth:`plot`.

    Parameters
    ----------
    clean_accuracy : array-like of shape (n_points,)
        Clean score of each model (x axis).
    robust_accuracy : array-like of shape (n_points,)
        Robust score of each model (y axis).
    param_values : sequence of shape (n_points,) or None, default=None
        Hyperparameter value of each model, written next to its point (None entries
        are left unannotated).
    param_name : str or None, default=None
        Name of that hyperparameter, e.g. ``'beta'``.
    clean_std, robust_std : array-like of shape (n_points,) or None, default=None
        Standard deviations, drawn as horizontal and vertical error bars.
    groups : sequence of shape (n_points,) or None, default=None
        Group label of each model; one line and one legend entry per group.
    name : str or None, default=None
        Legend label of the line when there are no groups.
    xlabel, ylabel : str, default='clean accuracy', 'robust accuracy'
        Axis labels.

    Attributes
    ----------
    line_ : matplotlib Line2D or list of Line2D
        The line, or one line per group (in order of first appearance).
    errorbars_ : list of matplotlib ErrorbarContainer
        Error bars, one container per group (empty without standard deviations).
    annotations_ : list of matplotlib Annotation
        The parameter labels.
    ax_ : matplotlib Axes
        Axes holding the plot.
    figure_ : matplotlib Figure
        Figure holding the axes.

    Raises
    ------
    ValueError
        For non-finite accuracies, negative standard deviations, or arrays of different
        lengths.

    See Also
    --------
    RobustnessCurveDisplay : Robust accuracy against eps.
    sklearn_robust.metrics.make_robust_scorer : The robust scorer of the search.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from sklearn_robust.plotting import TradeoffDisplay
    >>> display = TradeoffDisplay(
    ...     clean_accuracy=[0.98, 0.96, 0.93], robust_accuracy=[0.55, 0.78, 0.84],
    ...     param_values=[0.5, 3, 6], param_name="beta", name="TRADES")
    >>> display = display.plot(ax=Figure().subplots())
    >>> [a.get_text() for a in display.annotations_]
    ['beta=0.5', 'beta=3', 'beta=6']
    >>> display.line_.get_xydata().tolist()
    [[0.98, 0.55], [0.96, 0.78], [0.93, 0.84]]
    """

    def __init__(
        self,
        *,
        clean_accuracy,
        robust_accuracy,
        param_values=None,
        param_name=None,
        clean_std=None,
        robust_std=None,
        groups=None,
        name=None,
        xlabel="clean accuracy",
        ylabel="robust accuracy",
    ):
        self.clean_accuracy = check_1d(clean_accuracy, "clean_accuracy")
        self.robust_accuracy = check_1d(robust_accuracy, "robust_accuracy")
        check_same_length(self.clean_accuracy, "clean_accuracy", self.robust_accuracy,
                          "robust_accuracy")
        self.clean_std = _check_std(clean_std, "clean_std", self.clean_accuracy)
        self.robust_std = _check_std(robust_std, "robust_std", self.clean_accuracy)
        self.param_values = None if param_values is None else list(param_values)
        check_same_length(self.clean_accuracy, "clean_accuracy", self.param_values,
                          "param_values")
        self.groups = None if groups is None else list(groups)
        check_same_length(self.clean_accuracy, "clean_accuracy", self.groups, "groups")
        self.param_name = param_name
        self.name = name
        self.xlabel = xlabel
        self.ylabel = ylabel

    def plot(self, ax=None, *, name=None, annotate=True, error_bars=True, **kwargs):
        """Draw the points, one line per group.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Axes to draw on (new axes on a new figure if None).
        name : str or None, default=None
            Legend label without groups; overrides the ``name`` given at construction.
        annotate : bool, default=True
            Write the parameter value next to each point.
        error_bars : bool, default=True
            Draw the standard deviations, if known.
        **kwargs
            Line properties passed to ``ax.plot`` for every group.

        Returns
        -------
        display : TradeoffDisplay
            ``self``, with ``line_``, ``errorbars_``, ``annotations_``, ``ax_`` and
            ``figure_`` set.

        Examples
        --------
        >>> from matplotlib.figure import Figure
        >>> from sklearn_robust.plotting import TradeoffDisplay
        >>> display = TradeoffDisplay(
        ...     clean_accuracy=[0.98, 0.95, 0.97, 0.96], robust_accuracy=[0.6, 0.8, 0.7, 0.8],
        ...     param_values=[1, 6, 3, 4], param_name="beta",
        ...     groups=["TRADES", "TRADES", "SCORE", "SCORE"])
        >>> display = display.plot(ax=Figure().subplots(), error_bars=False)
        >>> [line.get_label() for line in display.line_]
        ['TRADES', 'SCORE']
        """
        ax, name = self._start_plot(ax, name)
        n = len(self.clean_accuracy)
        groups = self.groups if self.groups is not None else [None] * n
        order = list(dict.fromkeys(groups))  # groups in order of first appearance
        params = self.param_values if self.param_values is not None else [None] * n
        short = short_param(self.param_name)

        lines, errorbars, annotations = [], [], []
        for group in order:
            members = [i for i in range(n) if groups[i] == group]
            members = [members[j] for j in _sort_key([params[i] for i in members])]
            x, y = self.clean_accuracy[members], self.robust_accuracy[members]
            label = name if self.groups is None else format_value(group)
            (line,) = ax.plot(x, y, **self._style(label, kwargs, marker="o"))
            lines.append(line)
            has_std = self.clean_std is not None or self.robust_std is not None
            if error_bars and has_std:
                errorbars.append(ax.errorbar(
                    x, y,
                    xerr=None if self.clean_std is None else self.clean_std[members],
                    yerr=None if self.robust_std is None else self.robust_std[members],
                    fmt="none", ecolor=line.get_color(), elinewidth=0.8, capsize=2, alpha=0.4,
                ))
            if annotate:
                for i, xi, yi in zip(members, x, y, strict=True):
                    if params[i] is None:
                        continue
                    text = format_value(params[i])
                    text = f"{short}={text}" if short else text
                    annotations.append(ax.annotate(
                        text, (xi, yi), textcoords="offset points", xytext=(5, 5),
                        fontsize=8, color=line.get_color(),
                        bbox={"boxstyle": "round,pad=0.1", "facecolor": "white",
                              "edgecolor": "none", "alpha": 0.7},
                    ))

        ax.set_xlabel(self.xlabel)
        ax.set_ylabel(self.ylabel)
        ax.grid(True, alpha=0.3)
        if any(line.get_label() and not line.get_label().startswith("_") for line in lines):
            ax.legend(loc="best")
        self.line_ = lines[0] if self.groups is None else lines
        self.errorbars_, self.annotations_ = errorbars, annotations
        return self

    @classmethod
    def from_cv_results(
        cls,
        search_or_cv_results,
        *,
        param,
        clean="clean",
        robust="robust",
        group_by=None,
        annotate=True,
        error_bars=True,
        name=None,
        ax=None,
        **kwargs,
    ):
        """Plot the trade-off found by a fitted search with a clean and a robust scorer.

        Reads the ``mean_test_<key>`` (and ``std_test_<key>``) columns of
        ``cv_results_`` for the two scorer keys and the ``param_<param>`` column for the
        annotations: one point per candidate.

        Parameters
        ----------
        search_or_cv_results : fitted search or dict
            A fitted ``GridSearchCV`` / ``RandomizedSearchCV`` (any object with
            ``cv_results_``) run with multi-metric ``scoring``, or its ``cv_results_``.
        param : str
            The hyperparameter written next to the points: ``'beta'`` or
            ``'param_beta'``; a unique nested name such as ``'tradesclassifier__beta'``
            is also found from ``'beta'``.
        clean, robust : str, default='clean', 'robust'
            Keys of the clean and robust scorers in the search's ``scoring`` dict (or the
            full ``'mean_test_<key>'`` column names); ``'score'`` for a single-metric
            search.
        group_by : str or None, default=None
            Another searched parameter (e.g. ``'estimator'`` when the grid swaps
            estimators): one line per value, labelled with the value (an estimator's
            class name).
        annotate : bool, default=True
            Write the parameter value next to each point.
        error_bars : bool, default=True
            Draw the standard deviations over folds (``std_test_<key>``) as error bars.
        name : str or None, default=None
            Legend label of the line without ``group_by``.
        ax : matplotlib Axes or None, default=None
            Axes to draw on.
        **kwargs
            Line properties passed to ``ax.plot``.

        Returns
        -------
        display : TradeoffDisplay
            The plotted display.

        Raises
        ------
        ValueError
            For an unfitted search, a scorer key or parameter the results lack (the
            message lists those available), or an ambiguous parameter name.
        ImportError
            If matplotlib is not installed (the ``plot`` extra).

        Examples
        --------
        >>> from matplotlib.figure import Figure
        >>> from sklearn.model_selection import GridSearchCV
        >>> from sklearn_robust import TRADESClassifier
        >>> from sklearn_robust.datasets import load_digits_images
        >>> from sklearn_robust.metrics import make_robust_scorer
        >>> from sklearn_robust.plotting import TradeoffDisplay
        >>> X, _, y, _ = load_digits_images(flat=True)
        >>> search = GridSearchCV(
        ...     TRADESClassifier(eps=0.1, attack_steps=2, max_epochs=2, random_state=0),
        ...     {"beta": [1.0, 6.0]}, cv=2, refit=False,
        ...     scoring={"clean": "accuracy",
        ...              "robust": make_robust_scorer(eps=0.1, steps=3, random_state=0)})
        >>> search = search.fit(X[:300], y[:300])
        >>> display = TradeoffDisplay.from_cv_results(
        ...     search, param="beta", clean="clean", robust="robust", ax=Figure().subplots())
        >>> [a.get_text() for a in display.annotations_]
        ['beta=1', 'beta=6']
        >>> bool((display.robust_accuracy <= display.clean_accuracy).all())
        True
        """
        cls._require_matplotlib("from_cv_results")
        results = results_of(search_or_cv_results)
        clean_mean, clean_std = metric_columns(results, clean, "clean")
        robust_mean, robust_std = metric_columns(results, robust, "robust")
        param_key = param_column(results, param, "param")
        groups = None
        if group_by is not None:
            group_key = param_column(results, group_by, "group_by")
            groups = ["(unset)" if g is None else format_value(g)
                      for g in unmask(results[group_key])]
        display = cls(
            clean_accuracy=results[clean_mean],
            robust_accuracy=results[robust_mean],
            param_values=unmask(results[param_key]),
            param_name=param_key,
            clean_std=results[clean_std] if clean_std else None,
            robust_std=results[robust_std] if robust_std else None,
            groups=groups,
            name=name,
            xlabel=f"{clean_mean[len(MEAN):]} (mean test score)",
            ylabel=f"{robust_mean[len(MEAN):]} (mean test score)",
        )
        return display.plot(ax=ax, annotate=annotate, error_bars=error_bars, **kwargs)
