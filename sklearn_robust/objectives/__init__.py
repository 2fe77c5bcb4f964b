"""Training objectives: one small class per method, called once per batch.

Each maps ``(module, x, y, threat)`` to ``(loss, logits)``; the estimators in
:mod:`sklearn_robust.estimators` only choose which objective to call. An objective that
searches the threat ball owns its schedule (``steps``, ``step_size``); the threat model
is the ball only.
"""

from ._at import PGDAdversarial
from ._awp import PerturbedWeights, WeightPerturbation
from ._base import Objective, mask_replay
from ._certified import IntervalBoundTraining
from ._divergences import DISTANCES
from ._fast_at import FastAdversarial
from ._gr import GradientRegularization
from ._llr import LLR
from ._natural import Natural
from ._rst import RST
from ._score import SCORE
from ._search import SearchingObjective, inner_maximise, recorded_searches
from ._trades import TRADES

__all__ = [
    "DISTANCES",
    "FastAdversarial",
    "GradientRegularization",
    "IntervalBoundTraining",
    "LLR",
    "Natural",
    "Objective",
    "PGDAdversarial",
    "PerturbedWeights",
    "RST",
    "SCORE",
    "SearchingObjective",
    "TRADES",
    "WeightPerturbation",
    "inner_maximise",
    "mask_replay",
    "recorded_searches",
]
