"""What the displays share: the lazy matplotlib import, axes, labels and input checks."""

import numbers

import numpy as np

# Axis-label spelling of each norm (matplotlib mathtext).
NORM_LABELS = {"linf": r"$\ell_\infty$", "l2": r"$\ell_2$", "l1": r"$\ell_1$"}


def check_matplotlib(caller):
    """Import matplotlib, or raise an ImportError naming the ``plot`` extra.

    Called at plot time only: importing :mod:`sklearn_robust` (or
    :mod:`sklearn_robust.plotting`) never imports matplotlib. Same contract as
    scikit-learn's ``check_matplotlib_support``, whose message cannot name our extra.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{caller} requires matplotlib, an optional dependency of sklearn_robust: "
            "install it with `pip install sklearn-robust[plot]` (or `pip install matplotlib`)."
        ) from exc


def get_axes(ax):
    """``(ax, figure)``: ``ax`` itself, or new axes on a new pyplot figure."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax, ax.figure


def norm_label(norm):
    """``'linf'`` -> a mathtext l_inf; unknown or None -> the string as given (or '')."""
    if norm is None:
        return ""
    return NORM_LABELS.get(norm, str(norm))


def check_1d(values, name, *, allow_none=False):
    """A finite 1-D float array, or a ValueError naming ``name``."""
    if values is None:
        if allow_none:
            return None
        raise ValueError(f"{name} is required.")
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold real numbers, got {values!r}.") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {values!r}.")
    return array


def check_same_length(reference, reference_name, other, other_name):
    """Raise a ValueError if ``other`` is not None and differs in length from ``reference``."""
    if other is not None and len(other) != len(reference):
        raise ValueError(
            f"{other_name} has {len(other)} values but {reference_name} has "
            f"{len(reference)}: they must have the same length."
        )


def format_value(value):
    """A short label for a parameter value: ``6.0 -> '6'``, an estimator -> its class name."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return f"{value:g}"
    if hasattr(value, "get_params"):
        steps = getattr(value, "steps", None)  # a Pipeline: name it after its last step
        final = steps[-1][1] if steps else value
        return type(final).__name__
    return str(value)


def estimator_name(estimator):
    """Default legend label of an estimator: its class name (a pipeline's final step's)."""
    return format_value(estimator)


class Display:
    """The base of the displays: matplotlib checked at plot time, the axes, the name.

    A display's ``plot`` starts with :meth:`_start_plot` (which imports matplotlib or
    says how to install it, picks or makes the axes and sets ``ax_`` and ``figure_``)
    and builds its artists' properties with :meth:`_style`; ``from_*`` constructors
    call :meth:`_require_matplotlib` before computing anything.
    """

    name = None

    @classmethod
    def _require_matplotlib(cls, method):
        check_matplotlib(f"{cls.__name__}.{method}")

    def _start_plot(self, ax, name=None):
        """``(ax, name)``: the axes to draw on and the legend name (``name`` overrides)."""
        self._require_matplotlib("plot")
        self.ax_, self.figure_ = get_axes(ax)
        return self.ax_, (self.name if name is None else name)

    @staticmethod
    def _style(label, kwargs, **defaults):
        """Artist properties: ``defaults``, the legend ``label`` if any, then ``kwargs``."""
        style = dict(defaults)
        if label is not None:
            style["label"] = label
        style.update(kwargs)
        return style
