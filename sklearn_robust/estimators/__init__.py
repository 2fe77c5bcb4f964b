"""The estimators: thin skorch subclasses that choose a training objective."""

from ._accelerate import AccelerateMixin
from ._adversarial import AdversarialNetClassifier, ThreatNetClassifier
from ._base import RobustNetClassifier
from ._certified import IBPClassifier
from ._classifiers import (
    ATClassifier,
    FastATClassifier,
    NaturalClassifier,
    RSTClassifier,
    SCOREClassifier,
    TRADESClassifier,
)
from ._networks import MLP, SmallCNN, default_network
from ._regularisers import GRClassifier, LLRClassifier

__all__ = [
    "ATClassifier",
    "AccelerateMixin",
    "AdversarialNetClassifier",
    "FastATClassifier",
    "GRClassifier",
    "IBPClassifier",
    "LLRClassifier",
    "MLP",
    "NaturalClassifier",
    "RSTClassifier",
    "RobustNetClassifier",
    "SCOREClassifier",
    "SmallCNN",
    "TRADESClassifier",
    "ThreatNetClassifier",
    "default_network",
]
