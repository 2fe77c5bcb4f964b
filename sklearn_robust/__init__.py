"""sklearn_robust: adversarially robust deep learning as scikit-learn estimators."""

from ._threat import ThreatModel
from ._version import __version__

__all__ = ["ThreatModel", "__version__"]
