"""Histograms of the r-separation distances, against 2 eps."""

import numbers

import numpy as np

from ..separation import SeparationReport, r_separation
from ..utils import Substitution, check_eps
from ._base import Display, check_1d, norm_label

# The drawing parameters of the from_* constructors, documented once.
_HIST_PARAMS = Substitution(hist_params="""
    ax : matplotlib Axes or None, default=None
        Axes to draw on.
    bins : int, str or array-like, default=30
        See :meth:`plot`.
    density : bool, default=False
        See :meth:`plot`.
    **kwargs
        Patch properties passed to ``ax.hist``.
""")


def _check_distances(distances, name, *, allow_none=False):
    distances = check_1d(distances, name, allow_none=allow_none)
    if distances is not None and np.any(distances < 0):
        raise ValueError(f"{name} must be >= 0 (they are distances).")
    return distances


def _check_bins(bins):
    if isinstance(bins, str):
        return bins
    if isinstance(bins, numbers.Integral) and not isinstance(bins, bool):
        if bins < 1:
            raise ValueError(f"bins must be a positive integer, got {bins!r}.")
        return int(bins)
    edges = check_1d(bins, "bins")
    if edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("bins given as edges must be at least two increasing numbers.")
    return edges


class SeparationDisplay(Display):
    """Histogram of the r-separation distances, with the ``2 eps`` line.

    For every training point, the distance to the nearest training point of another
    class (Train-Train), and for every test point the same against the training set
    (Test-Train), as in Yang et al. (2020). A point left of the ``2 * eps`` line is
    within ``2 eps`` of a point of another class: no classifier can be astute at both,
    so the share of test points left of the line bounds the reachable robust accuracy.
    Build it with :meth:`from_data` (which runs
    :func:`~sklearn_robust.separation.r_separation`) or :meth:`from_report`, or directly
    from per-point distances, then call :meth:`plot`.

    Parameters
    ----------
    train_train_distances : array-like of shape (n_train,)
        Per-point Train-Train distances.
    test_train_distances : array-like of shape (n_test,) or None, default=None
        Per-point Test-Train distances.
    eps : float or None, default=None
        Perturbation radius; a vertical line marks ``2 * eps``.
    norm : {'linf', 'l2', 'l1'} or None, default=None
        Norm of the distances, shown in the x-axis label.

    Attributes
    ----------
    train_hist_ : tuple
        ``(counts, bin_edges, patches)`` of the Train-Train histogram, as returned by
        ``ax.hist``.
    test_hist_ : tuple or None
        The same for Test-Train (None without test distances).
    eps_line_ : matplotlib Line2D or None
        The vertical line at ``2 * eps`` (None without ``eps``).
    ax_ : matplotlib Axes
        Axes holding the histogram.
    figure_ : matplotlib Figure
        Figure holding the axes.

    Raises
    ------
    ValueError
        For negative or non-finite distances or a negative ``eps``.

    See Also
    --------
    sklearn_robust.separation.r_separation : The distances and their summary.
    sklearn_robust.separation.RSeparation : The astute classifier built on them.

    References
    ----------
    .. [1] Y.-Y. Yang, C. Rashtchian, H. Zhang, R. Salakhutdinov, K. Chaudhuri,
       "A Closer Look at Accuracy vs. Robustness", NeurIPS 2020.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from sklearn_robust.plotting import SeparationDisplay
    >>> display = SeparationDisplay(
    ...     train_train_distances=[0.5, 0.7, 0.7, 0.9], test_train_distances=[0.2, 0.8],
    ...     eps=0.15, norm="linf")
    >>> display = display.plot(ax=Figure().subplots(), bins=4)
    >>> int(display.train_hist_[0].sum()), int(display.test_hist_[0].sum())
    (4, 2)
    >>> display.eps_line_.get_xdata()[0]
    0.3
    """

    def __init__(self, *, train_train_distances, test_train_distances=None, eps=None,
                 norm=None):
        self.train_train_distances = _check_distances(train_train_distances,
                                                      "train_train_distances")
        self.test_train_distances = _check_distances(test_train_distances,
                                                     "test_train_distances", allow_none=True)
        self.eps = None if eps is None else check_eps(eps, caller="SeparationDisplay")
        self.norm = norm

    def plot(self, ax=None, *, bins=30, density=False, **kwargs):
        """Draw the histograms and the ``2 * eps`` line.

        Both histograms share their bins, so they can be compared bar by bar.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Axes to draw on (new axes on a new figure if None).
        bins : int, str or array-like, default=30
            Number of bins over the range of all distances, a numpy bin rule
            (``'auto'``...) or the bin edges.
        density : bool, default=False
            Plot densities instead of counts (useful when the test set is much smaller
            than the training set).
        **kwargs
            Properties passed to both ``ax.hist`` calls (``alpha``, ``histtype``...),
            overriding the defaults (train filled, test as an outline).

        Returns
        -------
        display : SeparationDisplay
            ``self``, with ``train_hist_``, ``test_hist_``, ``eps_line_``, ``ax_`` and
            ``figure_`` set.

        Examples
        --------
        >>> import numpy as np
        >>> from matplotlib.figure import Figure
        >>> from sklearn_robust.plotting import SeparationDisplay
        >>> distances = np.random.RandomState(0).uniform(0.2, 1.0, size=100)
        >>> display = SeparationDisplay(train_train_distances=distances, eps=0.1)
        >>> display = display.plot(ax=Figure().subplots(), bins=10, density=True)
        >>> display.test_hist_ is None, len(display.train_hist_[0])
        (True, 10)
        """
        bins = _check_bins(bins)
        ax, _ = self._start_plot(ax)
        train, test = self.train_train_distances, self.test_train_distances
        all_distances = train if test is None else np.concatenate([train, test])
        if not isinstance(bins, np.ndarray):
            edges = np.histogram_bin_edges(all_distances, bins=bins)
        else:
            edges = bins
        two_eps = None if self.eps is None else 2.0 * self.eps

        # Train filled, test as an outline on top: both stay readable where they overlap.
        train_kwargs = self._style(
            f"train-train (n={train.size}, min {train.min():.3g})", kwargs,
            color="tab:blue", alpha=0.5, histtype="stepfilled", density=density)
        self.train_hist_ = ax.hist(train, bins=edges, **train_kwargs)
        self.test_hist_ = None
        if test is not None:
            test_kwargs = self._style(
                f"test-train (n={test.size}, min {test.min():.3g})", kwargs,
                color="tab:orange", histtype="step", linewidth=2, density=density)
            self.test_hist_ = ax.hist(test, bins=edges, **test_kwargs)
        self.eps_line_ = None
        if two_eps is not None:
            self.eps_line_ = ax.axvline(two_eps, color="black", linestyle="--", linewidth=1.5,
                                        label=f"2$\\varepsilon$ = {two_eps:.3g}")
            # Annotated with the shares of points closer than 2 eps to another class.
            shares = [f"train {np.mean(train <= two_eps):.1%}"]
            if test is not None:
                shares.append(f"test {np.mean(test <= two_eps):.1%}")
            ax.annotate(
                f"2$\\varepsilon$ = {two_eps:.3g}\nshare within 2$\\varepsilon$:\n"
                + ", ".join(shares),
                (two_eps, 1.0), xycoords=("data", "axes fraction"), xytext=(4, -6),
                textcoords="offset points", va="top", fontsize=8,
            )
        norm = norm_label(self.norm)
        ax.set_xlabel("distance to the nearest training point of another class"
                      + (f" ({norm})" if norm else ""))
        ax.set_ylabel("density" if density else "number of points")
        ax.legend(loc="best", fontsize=8)
        return self

    @classmethod
    @_HIST_PARAMS
    def from_report(cls, report, *, eps=None, ax=None, bins=30, density=False, **kwargs):
        """Plot the per-point distances of a :class:`~sklearn_robust.separation.SeparationReport`.

        Parameters
        ----------
        report : SeparationReport
            Returned by :func:`~sklearn_robust.separation.r_separation`.
        eps : float or None, default=None
            Radius of the ``2 * eps`` line; the report's ``eps`` if None.
        %(hist_params)s

        Returns
        -------
        display : SeparationDisplay
            The plotted display.

        Raises
        ------
        ValueError
            If ``report`` is not a SeparationReport or carries no per-point distances.

        Examples
        --------
        >>> from matplotlib.figure import Figure
        >>> from sklearn_robust.plotting import SeparationDisplay
        >>> from sklearn_robust.separation import r_separation
        >>> report = r_separation([[0.0], [1.0], [3.0], [4.0]], [0, 0, 1, 1], eps=0.5)
        >>> display = SeparationDisplay.from_report(report, ax=Figure().subplots())
        >>> display.eps, display.train_train_distances.tolist()
        (0.5, [3.0, 2.0, 2.0, 3.0])
        """
        cls._require_matplotlib("from_report")
        if not isinstance(report, SeparationReport):
            raise ValueError(
                f"report must be a SeparationReport (from r_separation), got "
                f"{type(report).__name__}."
            )
        if report.train_train_distances is None:
            raise ValueError("the report carries no per-point distances to plot.")
        display = cls(
            train_train_distances=report.train_train_distances,
            test_train_distances=report.test_train_distances,
            eps=report.eps if eps is None else eps,
            norm=report.norm,
        )
        return display.plot(ax=ax, bins=bins, density=density, **kwargs)

    @classmethod
    @_HIST_PARAMS
    def from_data(cls, X_train, y_train, X_test=None, y_test=None, *, eps=None, norm="linf",
                  chunk_bytes=None, device=None, ax=None, bins=30, density=False, **kwargs):
        """Measure the separation of a data set with ``r_separation`` and plot it.

        Parameters
        ----------
        X_train : array-like of shape (n_train, n_features) or (n_train, ...)
            Training points (images are flattened).
        y_train : array-like of shape (n_train,)
            Training labels; at least two classes.
        X_test, y_test : array-like or None, default=None
            Test points and labels, given together.
        eps : float or None, default=None
            Perturbation radius of the ``2 * eps`` line.
        norm : {'linf', 'l2', 'l1'}, default='linf'
            Distance.
        chunk_bytes, device
            Passed to :func:`~sklearn_robust.separation.r_separation`.
        %(hist_params)s

        Returns
        -------
        display : SeparationDisplay
            The plotted display; ``display.report_`` is the
            :class:`~sklearn_robust.separation.SeparationReport`.

        Raises
        ------
        ValueError
            As :func:`~sklearn_robust.separation.r_separation` (negative ``eps``,
            inconsistent lengths, one class...), before any distance is computed.

        Examples
        --------
        >>> from matplotlib.figure import Figure
        >>> from sklearn_robust.datasets import load_digits_images
        >>> from sklearn_robust.plotting import SeparationDisplay
        >>> X_train, X_test, y_train, y_test = load_digits_images()
        >>> display = SeparationDisplay.from_data(
        ...     X_train, y_train, X_test, y_test, eps=0.1, ax=Figure().subplots())
        >>> display.report_.train_train_min
        0.4375
        >>> int(display.test_hist_[0].sum()) == len(X_test)
        True
        """
        cls._require_matplotlib("from_data")
        bins = _check_bins(bins)
        report = r_separation(X_train, y_train, X_test, y_test, norm=norm, eps=eps,
                              chunk_bytes=chunk_bytes, device=device)
        display = cls.from_report(report, ax=ax, bins=bins, density=density, **kwargs)
        display.report_ = report
        return display
