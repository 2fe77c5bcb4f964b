"""The estimators: thin skorch subclasses that choose a training objective."""

from ._base import AdversarialNetClassifier, RobustNetClassifier
from ._classifiers import (
    ATClassifier,
    FastATClassifier,
    GRClassifier,
    LLRClassifier,
    NaturalClassifier,
    RSTClassifier,
    SCOREClassifier,
    TRADESClassifier,
)
from ._device import resolve_device
from ._networks import MLP, SmallCNN, default_network

__all__ = [
    "ATClassifier",
    "AdversarialNetClassifier",
    "FastATClassifier",
    "GRClassifier",
    "LLRClassifier",
    "MLP",
    "NaturalClassifier",
    "RSTClassifier",
    "RobustNetClassifier",
    "SCOREClassifier",
    "SmallCNN",
    "TRADESClassifier",
    "default_network",
    "resolve_device",
]
