"""Evaluation attacks: pure torch, sharing :class:`~sklearn_robust.ThreatModel`.

Each attack is a small class called as ``attack(module, X, y)``; it returns points inside
the threat model's ball and bounds and leaves the module as it was (see :func:`frozen`).
White box: :class:`FGSM`, :class:`PGD`, :class:`APGD`, :class:`APGDTargeted`. Black box:
:class:`Square`. The cascade: :class:`AutoAttack`. By name: :func:`make_attack`.
"""

from ._apgd import APGD, APGDTargeted, apgd_checkpoints
from ._auto import AutoAttack
from ._base import Attack, frozen, make_generator, module_device
from ._losses import cross_entropy, dlr, dlr_targeted, margin
from ._pgd import FGSM, PGD
from ._registry import ATTACKS, make_attack
from ._square import CallableModule, Square, as_module

__all__ = [
    "APGD",
    "APGDTargeted",
    "ATTACKS",
    "Attack",
    "AutoAttack",
    "CallableModule",
    "FGSM",
    "PGD",
    "Square",
    "apgd_checkpoints",
    "as_module",
    "cross_entropy",
    "dlr",
    "dlr_targeted",
    "frozen",
    "make_attack",
    "make_generator",
    "margin",
    "module_device",
]
