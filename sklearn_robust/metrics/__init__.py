"""Robustness metrics and scikit-learn scorers.

:func:`robust_accuracy_score` (accuracy under attack, over all points) and
:func:`local_lipschitz_score` (Yang et al. 2020's empirical local Lipschitz constant of the
logits), their scorers for ``GridSearchCV`` and ``cross_validate``
(:func:`make_robust_scorer`, :func:`make_lipschitz_scorer`), and the bridge that turns a
fitted estimator or a pipeline of scalers ending in one into a torch module on raw inputs
(:func:`as_torch_classifier`).
"""

from ._bridge import TorchClassifier, as_torch_classifier
from ._lipschitz import local_lipschitz_score, make_lipschitz_scorer
from ._robust import make_robust_scorer, robust_accuracy_score

__all__ = [
    "TorchClassifier",
    "as_torch_classifier",
    "local_lipschitz_score",
    "make_lipschitz_scorer",
    "make_robust_scorer",
    "robust_accuracy_score",
]
