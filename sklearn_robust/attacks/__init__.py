"""Evaluation attacks: pure torch, sharing :class:`~sklearn_robust.ThreatModel`.

Each attack is a small class called as ``attack(module, X, y)``; it returns points inside
the threat model's ball and bounds and leaves the module as it was (see :func:`frozen`).
"""

from ._base import Attack, frozen, make_generator, module_device
from ._losses import cross_entropy, dlr, dlr_targeted
from ._pgd import FGSM, PGD
from ._registry import ATTACKS, make_attack

__all__ = [
    "ATTACKS",
    "Attack",
    "FGSM",
    "PGD",
    "cross_entropy",
    "dlr",
    "dlr_targeted",
    "frozen",
    "make_attack",
    "make_generator",
    "module_device",
]
