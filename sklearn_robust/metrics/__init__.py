"""Robustness metrics and scikit-learn scorers.

:func:`robust_accuracy_score` (accuracy under attack, over all points; a list of attacks
gives the worst case per point, and :class:`RobustAccuracyReport` what each attack added)
and :func:`local_lipschitz_score` (Yang et al. 2020's empirical local Lipschitz constant of
the logits), with their scorers for ``GridSearchCV`` and ``cross_validate``
(:func:`make_robust_scorer`, :func:`make_lipschitz_scorer`), and
:func:`sharded_robust_accuracy_score`, the robust accuracy of a large test set attacked
by the processes of a distributed job; :func:`certified_accuracy_score` (the lower bound:
points proven robust by IBP, CROWN, an exact MILP or randomized smoothing) with
:func:`make_certified_scorer`; :func:`robustness_sandwich` puts both together, the
interval of the true robust accuracy at each radius (a :class:`SandwichReport`). The
metrics reach a model only through :mod:`sklearn_robust.bridge`, whose
:func:`as_torch_classifier` and :class:`TorchClassifier` are re-exported here.
"""

from ..bridge import TorchClassifier, as_torch_classifier
from ._certified import Certificates, certified_accuracy_score, make_certified_scorer
from ._lipschitz import local_lipschitz_score, make_lipschitz_scorer
from ._report import RobustAccuracyReport
from ._robust import make_robust_scorer, robust_accuracy_score
from ._sandwich import robustness_sandwich
from ._sandwich_report import SandwichReport
from ._sharded import sharded_robust_accuracy_score

__all__ = [
    "Certificates",
    "RobustAccuracyReport",
    "SandwichReport",
    "TorchClassifier",
    "as_torch_classifier",
    "certified_accuracy_score",
    "local_lipschitz_score",
    "make_certified_scorer",
    "make_lipschitz_scorer",
    "make_robust_scorer",
    "robust_accuracy_score",
    "robustness_sandwich",
    "sharded_robust_accuracy_score",
]
