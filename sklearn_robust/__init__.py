"""sklearn_robust: adversarially robust deep learning as scikit-learn estimators.

Layers, from the bottom: the threat model and attacks (pure torch), training objectives,
estimators (thin skorch subclasses), and on the scikit-learn side the metrics and the
r-separation transformer.
"""

from ._version import __version__
from .estimators import (
    AdversarialNetClassifier,
    ATClassifier,
    FastATClassifier,
    GRClassifier,
    IBPClassifier,
    LLRClassifier,
    NaturalClassifier,
    RobustNetClassifier,
    RSTClassifier,
    SCOREClassifier,
    TRADESClassifier,
)
from .threat import ThreatModel

__all__ = [
    "ATClassifier",
    "AdversarialNetClassifier",
    "FastATClassifier",
    "GRClassifier",
    "IBPClassifier",
    "LLRClassifier",
    "NaturalClassifier",
    "RSTClassifier",
    "RobustNetClassifier",
    "SCOREClassifier",
    "TRADESClassifier",
    "ThreatModel",
    "__version__",
]
