"""Robust accuracy against the perturbation radius eps."""

import inspect

import numpy as np

from ..metrics import SandwichReport, robust_accuracy_score
from ._base import Display, estimator_name, norm_label
from ._curve_checks import attack_label, check_accuracy, check_eps_grid, has_instance

# The keywords of the metric that from_estimator passes on (the others style the line).
_METRIC = inspect.signature(robust_accuracy_score).parameters
_SCORE_KWARGS = {name for name, p in _METRIC.items() if p.kind is p.KEYWORD_ONLY} - {
    "eps", "return_adversarial", "return_details"}


#: Line styles of the certified curves, one per method in turn.
_CERTIFIED_STYLES = ("--", ":", "-.")


class RobustnessCurveDisplay(Display):
    """Robust accuracy against the perturbation radius ``eps``: a robustness curve.

    One curve per estimator; draw several estimators on one axis by passing the same
    ``ax`` to :meth:`from_estimator` (or :meth:`plot`) again, as with scikit-learn's
    ``RocCurveDisplay``. Build it with :meth:`from_estimator`, which runs the attack at
    every radius with :func:`~sklearn_robust.metrics.robust_accuracy_score`, or directly
    from precomputed values, then call :meth:`plot`. At ``eps=0`` the robust accuracy
    is the clean accuracy, so including 0 in the radii starts the curve at the clean
    accuracy.

    Parameters
    ----------
    eps : array-like of shape (n_radii,)
        Perturbation radii, ``>= 0``.
    robust_accuracy : array-like of shape (n_radii,)
        Robust accuracy at each radius, in ``[0, 1]``.
    name : str or None, default=None
        Legend label of the curve.
    norm : {'linf', 'l2', 'l1'} or None, default=None
        Norm of the radii, shown in the x-axis label.
    attack : str, Attack subclass, list of these or None, default=None
        The attack, named in the y-axis label.
    certified : dict of {str: array-like}, array-like or None, default=None
        Certified accuracy at each radius, lower bounds of the robust accuracy: one
        dashed curve per method (an array is one curve, ``'certified'``). With it,
        :meth:`plot` shades the band between the largest certified value and
        ``upper``, where the true robust accuracy lies.
    upper : array-like or None, default=None
        The band's upper edge, the best upper bound at each radius (None:
        ``robust_accuracy``, the attack's).

    Attributes
    ----------
    line_ : matplotlib Line2D
        The curve.
    certified_lines_ : dict of {str: matplotlib Line2D}
        The certified curves (empty without ``certified``).
    band_ : matplotlib PolyCollection or None
        The band between the certified and the upper curve (None without
        ``certified``).
    ax_ : matplotlib Axes
        Axes holding the curve.
    figure_ : matplotlib Figure
        Figure holding the axes.

    Raises
    ------
    ValueError
        For a negative or non-finite radius, an accuracy outside ``[0, 1]``, or
        ``eps`` and ``robust_accuracy`` (or ``certified``, ``upper``) of different
        lengths.

    See Also
    --------
    sklearn_robust.metrics.robust_accuracy_score : The score at one radius.
    sklearn_robust.metrics.robustness_sandwich : Certified and attacked, at every radius.
    TradeoffDisplay : Clean against robust accuracy across a hyperparameter.

    Examples
    --------
    From precomputed values, on a figure that needs no GUI backend:

    >>> from matplotlib.figure import Figure
    >>> from sklearn_robust.plotting import RobustnessCurveDisplay
    >>> ax = Figure().subplots()
    >>> display = RobustnessCurveDisplay(
    ...     eps=[0.0, 0.05, 0.1], robust_accuracy=[0.97, 0.85, 0.62], name="TRADES",
    ...     norm="linf", attack="pgd")
    >>> display = display.plot(ax=ax)
    >>> display.line_.get_xydata().tolist()
    [[0.0, 0.97], [0.05, 0.85], [0.1, 0.62]]
    >>> display.ax_.get_legend_handles_labels()[1]
    ['TRADES']

    With certified accuracies, the band where the true robust accuracy lies:

    >>> display = RobustnessCurveDisplay(
    ...     eps=[0.0, 0.05, 0.1], robust_accuracy=[0.97, 0.85, 0.62],
    ...     certified={"crown": [0.97, 0.7, 0.3]}).plot(ax=Figure().subplots())
    >>> display.ax_.get_legend_handles_labels()[1]
    ['attacked', 'certified (crown)', 'robust accuracy interval']
    """

    def __init__(self, *, eps, robust_accuracy, name=None, norm=None, attack=None,
                 certified=None, upper=None):
        self.eps = check_eps_grid(eps)
        self.robust_accuracy = check_accuracy(robust_accuracy, "robust_accuracy", self.eps)
        if certified is not None and not isinstance(certified, dict):
            certified = {"certified": certified}
        self.certified = None if certified is None else {
            str(method): check_accuracy(values, f"certified[{method!r}]", self.eps)
            for method, values in certified.items()}
        self.upper = None if upper is None else check_accuracy(upper, "upper", self.eps)
        self.name = name
        self.norm = norm
        self.attack = attack

    def plot(self, ax=None, *, name=None, band_kwargs=None, **kwargs):
        """Draw the curve, and with ``certified`` the certified curves and the band.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Axes to draw on (new axes on a new figure if None). Pass the axes of
            another display to compare curves.
        name : str or None, default=None
            Legend label; overrides the ``name`` given at construction.
        band_kwargs : dict or None, default=None
            Properties of the band passed to ``ax.fill_between`` (``alpha``,
            ``color``, ``hatch``...); the band takes the curve's colour by default.
        **kwargs
            Line properties passed to ``ax.plot`` (``color``, ``linestyle``...).

        Returns
        -------
        display : RobustnessCurveDisplay
            ``self``, with ``line_``, ``certified_lines_``, ``band_``, ``ax_`` and
            ``figure_`` set.

        Examples
        --------
        >>> from matplotlib.figure import Figure
        >>> from sklearn_robust.plotting import RobustnessCurveDisplay
        >>> ax = Figure().subplots()
        >>> a = RobustnessCurveDisplay(eps=[0, 0.1], robust_accuracy=[0.9, 0.3]).plot(
        ...     ax=ax, name="natural")
        >>> b = RobustnessCurveDisplay(eps=[0, 0.1], robust_accuracy=[0.8, 0.6]).plot(
        ...     ax=ax, name="robust", linestyle="--")
        >>> len(ax.get_lines()), ax.get_legend_handles_labels()[1]
        (2, ['natural', 'robust'])
        """
        ax, name = self._start_plot(ax, name)
        order = np.argsort(self.eps, kind="stable")
        x = self.eps[order]
        banded = bool(self.certified)
        label = (f"{name}, attacked" if name else "attacked") if banded else name
        line_kwargs = self._style(label, kwargs, marker="o")
        (self.line_,) = ax.plot(x, self.robust_accuracy[order], **line_kwargs)
        self.certified_lines_, self.band_ = {}, None
        if banded:
            self._draw_band(ax, x, order, name, band_kwargs)

        norm = norm_label(self.norm)
        ax.set_xlabel(r"perturbation radius $\varepsilon$" + (f" ({norm})" if norm else ""))
        attack = attack_label(self.attack)
        ax.set_ylabel("robust accuracy" + (f" ({attack})" if attack else ""))
        ax.set_ylim(-0.02, 1.02)
        ax.grid(True, alpha=0.3)
        if "label" in line_kwargs:
            ax.legend(loc="best")
        return self

    def _draw_band(self, ax, x, order, name, band_kwargs):
        """The certified curves (dashed, in the curve's colour) and the band up to upper."""
        color = self.line_.get_color()
        prefix = f"{name}, " if name else ""
        for i, (method, values) in enumerate(self.certified.items()):
            (self.certified_lines_[method],) = ax.plot(
                x, values[order], color=color, marker="v", markersize=4,
                linestyle=_CERTIFIED_STYLES[i % len(_CERTIFIED_STYLES)],
                label=f"{prefix}certified ({method})")
        lower = np.max(np.vstack(list(self.certified.values())), axis=0)
        upper = self.robust_accuracy if self.upper is None else self.upper
        style = {"color": color, "alpha": 0.2, "linewidth": 0,
                 "label": f"{prefix}robust accuracy interval", **(band_kwargs or {})}
        self.band_ = ax.fill_between(x, lower[order], upper[order], **style)

    @classmethod
    def from_estimator(cls, estimator, X, y, *, eps, name=None, ax=None, **kwargs):
        """Attack ``estimator`` at every radius in ``eps`` and plot its robust accuracy.

        Each point is :func:`~sklearn_robust.metrics.robust_accuracy_score` at one radius,
        with the same keyword arguments (and the same ``random_state``) at every radius;
        ``eps=0`` gives the clean accuracy without running the attack.

        Parameters
        ----------
        estimator : estimator or Pipeline
            A fitted classifier of this library, or a pipeline of scalers ending in
            one (any classifier with ``predict_proba`` for ``attack='square'``).
        X : array-like of shape (n_samples, ...)
            Inputs, as given to ``estimator.predict``.
        y : array-like of shape (n_samples,)
            True labels.
        eps : array-like of float
            Radii to evaluate, ``>= 0``, in raw input units.
        name : str or None, default=None
            Legend label; the estimator's class name (a pipeline's final step's) if None.
        ax : matplotlib Axes or None, default=None
            Axes to draw on; pass the same axes again to add another estimator.
        **kwargs
            Keyword arguments of
            :func:`~sklearn_robust.metrics.robust_accuracy_score` (``norm``, ``attack``,
            ``steps``, ``step_size``, ``restarts``, ``bounds``, ``attack_params``,
            ``batch_size``, ``random_state``, ``verbose``) are passed to it at every
            radius; an Attack instance carries one radius, so a curve needs a name, a
            class or a list of these. The others are line properties passed to
            ``ax.plot`` (``color``, ``linestyle``...).

        Returns
        -------
        display : RobustnessCurveDisplay
            The plotted display; ``display.robust_accuracy`` holds the scores.

        Raises
        ------
        ValueError
            For a negative radius, an unknown norm or attack, or ``X`` and ``y`` of
            different lengths, before any attack runs.
        ImportError
            If matplotlib is not installed (the ``plot`` extra).

        Examples
        --------
        >>> from matplotlib.figure import Figure
        >>> from sklearn_robust import NaturalClassifier
        >>> from sklearn_robust.datasets import load_digits_images
        >>> from sklearn_robust.metrics import robust_accuracy_score
        >>> from sklearn_robust.plotting import RobustnessCurveDisplay
        >>> X_train, X_test, y_train, y_test = load_digits_images(flat=True)
        >>> clf = NaturalClassifier(max_epochs=2, random_state=0).fit(X_train, y_train)
        >>> ax = Figure().subplots()
        >>> display = RobustnessCurveDisplay.from_estimator(
        ...     clf, X_test, y_test, eps=[0.0, 0.05, 0.1], steps=5, bounds=(0, 1),
        ...     random_state=0, ax=ax)
        >>> bool(display.robust_accuracy[0] == clf.score(X_test, y_test))  # eps=0: clean
        True
        >>> bool(display.robust_accuracy[2] == robust_accuracy_score(
        ...     clf, X_test, y_test, eps=0.1, steps=5, bounds=(0, 1), random_state=0))
        True
        >>> display.line_.get_label()
        'NaturalClassifier'
        """
        cls._require_matplotlib("from_estimator")
        eps = check_eps_grid(eps)
        score_kwargs = {k: v for k, v in kwargs.items() if k in _SCORE_KWARGS}
        line_kwargs = {k: v for k, v in kwargs.items() if k not in _SCORE_KWARGS}
        attack = score_kwargs.get("attack", _METRIC["attack"].default)
        if eps.size > 1 and has_instance(attack):
            raise ValueError(
                "an Attack instance carries a single eps: give the attack by name or class "
                "to evaluate several radii."
            )
        # robust_accuracy_score validates every argument before attacking, even at eps=0,
        # so a bad setting fails on the first radius before any attack has run.
        scores = [robust_accuracy_score(estimator, X, y, eps=e, **score_kwargs) for e in eps]
        display = cls(
            eps=eps, robust_accuracy=scores,
            name=estimator_name(estimator) if name is None else name,
            norm=score_kwargs.get("norm", _METRIC["norm"].default), attack=attack,
        )
        return display.plot(ax=ax, **line_kwargs)

    @classmethod
    def from_sandwich(cls, report, *, name=None, ax=None, band_kwargs=None, **kwargs):
        """Plot a :func:`~sklearn_robust.metrics.robustness_sandwich` report.

        Draws the attacked curve, one dashed curve per certification method (the exact
        MILP's decided-robust share as ``'exact'``) and the band from the best certified
        value (``report.lower``) to the best upper bound (``report.upper``): the true
        robust accuracy lies in it.

        Parameters
        ----------
        report : SandwichReport
            The report of :func:`~sklearn_robust.metrics.robustness_sandwich`.
        name : str or None, default=None
            Prefix of the legend labels (``'TRADES, attacked'``...).
        ax : matplotlib Axes or None, default=None
            Axes to draw on; pass the same axes again to add another report.
        band_kwargs : dict or None, default=None
            Properties of the band passed to ``ax.fill_between``.
        **kwargs
            Properties of the attacked curve passed to ``ax.plot``.

        Returns
        -------
        display : RobustnessCurveDisplay
            The plotted display.

        Raises
        ------
        TypeError
            If ``report`` is not a SandwichReport.

        Examples
        --------
        >>> from matplotlib.figure import Figure
        >>> from sklearn_robust.metrics import SandwichReport
        >>> from sklearn_robust.plotting import RobustnessCurveDisplay
        >>> report = SandwichReport(
        ...     eps=(0.0, 0.1), norm="linf", n_points=10, clean_accuracy=0.9, attack="pgd",
        ...     attacked=(0.9, 0.6), certified={"crown": (0.9, 0.4)}, consistent=(True, True))
        >>> display = RobustnessCurveDisplay.from_sandwich(report, ax=Figure().subplots())
        >>> float(display.band_.get_paths()[0].vertices[:, 1].min())  # crown at 0.1
        0.4
        >>> display.certified_lines_["crown"].get_ydata().tolist()
        [0.9, 0.4]
        """
        cls._require_matplotlib("from_sandwich")
        if not isinstance(report, SandwichReport):
            raise TypeError(f"report must be a SandwichReport (from robustness_sandwich), "
                            f"got {type(report).__name__}.")
        certified = dict(report.certified)
        if report.exact_lower is not None:
            certified["exact"] = report.exact_lower
        display = cls(eps=report.eps, robust_accuracy=report.attacked, name=name,
                      norm=report.norm, attack=report.attack, certified=certified or None,
                      upper=report.upper)
        return display.plot(ax=ax, band_kwargs=band_kwargs, **kwargs)
