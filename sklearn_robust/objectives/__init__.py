"""Training objectives: one small class per method, called once per batch.

Each maps ``(module, x, y, threat)`` to ``(loss, logits)``; the estimators in
:mod:`sklearn_robust.estimators` only choose which objective to call.
"""

from ._at import PGDAdversarial
from ._base import Objective, inner_maximise, mask_replay
from ._fast_at import FastAdversarial
from ._gr import GradientRegularization
from ._llr import LLR
from ._natural import Natural
from ._rst import RST
from ._score import SCORE
from ._trades import TRADES

__all__ = [
    "FastAdversarial",
    "GradientRegularization",
    "LLR",
    "Natural",
    "Objective",
    "PGDAdversarial",
    "RST",
    "SCORE",
    "TRADES",
    "inner_maximise",
    "mask_replay",
]
