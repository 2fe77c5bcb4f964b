"""Evaluation attacks: pure torch, sharing :class:`~sklearn_robust.ThreatModel`.

Each attack is a small class called as ``attack(module, X, y)``; it returns points inside
the threat model's ball and bounds and leaves the module as it was (run in eval mode
without parameter gradients, then restored).
White box: :class:`FGSM`, :class:`PGD`, :class:`APGD`, :class:`APGDTargeted`, and the
minimum-norm :class:`FAB` and :class:`FABTargeted`. Black box:
:class:`Square`. The worst case over several: :class:`Cascade`, and its preset
:class:`AutoAttack`. By name: :func:`make_attack`. A new attack subclasses
:class:`Attack` and writes :meth:`Attack.perturb` for one batch. A call that may take
long says so first, with its estimate (:class:`LongEvaluationWarning`).
"""

from ._apgd import APGD, APGDTargeted, apgd_checkpoints
from ._auto import AutoAttack
from ._base import Attack
from ._budget import LongEvaluationWarning
from ._cascade import Cascade
from ._fab import FAB, FABTargeted
from ._losses import LOSSES, cross_entropy, dlr, dlr_targeted, margin, resolve_loss
from ._pgd import FGSM, PGD
from ._registry import ATTACKS, make_attack
from ._square import Square

__all__ = [
    "APGD",
    "APGDTargeted",
    "ATTACKS",
    "Attack",
    "AutoAttack",
    "Cascade",
    "FAB",
    "FABTargeted",
    "FGSM",
    "LOSSES",
    "LongEvaluationWarning",
    "PGD",
    "Square",
    "apgd_checkpoints",
    "cross_entropy",
    "dlr",
    "dlr_targeted",
    "make_attack",
    "margin",
    "resolve_loss",
]
