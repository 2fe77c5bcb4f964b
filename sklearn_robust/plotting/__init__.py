"""Plots of robustness, following scikit-learn's Display pattern.

Each display is built from an estimator, a search or data by a ``from_*`` class method
(which computes and plots), or from precomputed values by its constructor, followed by
``plot(ax=...)``; the drawn artists end in ``_`` (``line_``, ``ax_``, ``figure_``).

- :class:`RobustnessCurveDisplay`: robust accuracy against ``eps``, several estimators on
  one axis.
- :class:`TradeoffDisplay`: clean against robust accuracy across a hyperparameter such as
  ``beta``, from a fitted multi-metric ``GridSearchCV``.
- :class:`SeparationDisplay`: histograms of the Train-Train and Test-Train r-separation
  distances against ``2 eps``.

matplotlib is an optional dependency (``pip install sklearn-robust[plot]``), imported
only when a plot is drawn: importing this module does not import it.
"""

from ._robustness_curve import RobustnessCurveDisplay
from ._separation import SeparationDisplay
from ._tradeoff import TradeoffDisplay

__all__ = ["RobustnessCurveDisplay", "SeparationDisplay", "TradeoffDisplay"]
