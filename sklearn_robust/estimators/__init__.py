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
from ._resnets import PreActResNet18, WideResNet

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
    "PreActResNet18",
    "RSTClassifier",
    "RobustNetClassifier",
    "SCOREClassifier",
    "SmallCNN",
    "TRADESClassifier",
    "ThreatNetClassifier",
    "WideResNet",
    "default_network",
]
