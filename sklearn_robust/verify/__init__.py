"""Verification: certified lower bounds of robust accuracy, by bound propagation.

Attacks give upper bounds on robust accuracy; the functions here give lower bounds. A
point ``(x, y)`` is certified at radius ``eps`` when a lower bound of every margin
``z_y(x') - z_j(x')``, over all ``x'`` with ``||x' - x||_p <= eps`` inside the box
``[lower, upper]``, is positive.

:func:`network_layers` reads a torch module as canonical float64 layers (affine maps,
ReLUs, max pools on flat vectors; :func:`dense_layers` gives the ``(W, b)`` pairs an
exact MILP verifier takes). :func:`ibp_margin_bounds` (interval bound propagation) and
:func:`crown_margin_bounds` (CROWN, CROWN-IBP, alpha-CROWN) bound the margins;
:func:`preactivation_bounds` bounds every ReLU's input. Every margin bound holds for the
float32 model as it computes: a rounding slack (:func:`rounding_slack`) is subtracted.
:func:`training_margin_bounds` gives the same IBP and CROWN-IBP bounds for certified
training: on the live module, in its dtype, differentiable in its parameters.

:func:`exact_verify` decides robustness completely (one MILP per wrong class, HiGHS),
for fully connected ReLU networks under l_inf and l_1 balls. :func:`smoothed_certify`
and :func:`smoothed_predict` are randomized smoothing's CERTIFY and PREDICT (Cohen et
al. 2019, l_2) for any classifier, and :class:`SmoothedClassifier` the scikit-learn
estimator built on them.
"""

from ._bounds import (
    crown_margin_bounds,
    ibp_margin_bounds,
    preactivation_bounds,
    rounding_slack,
)
from ._differentiable import training_margin_bounds
from ._milp import ExactResult, exact_verify, exact_verify_batch
from ._network import dense_layers, network_layers
from ._smoothed import SmoothedClassifier
from ._smoothing import smoothed_certify, smoothed_predict

__all__ = [
    "ExactResult",
    "SmoothedClassifier",
    "crown_margin_bounds",
    "dense_layers",
    "exact_verify",
    "exact_verify_batch",
    "ibp_margin_bounds",
    "network_layers",
    "preactivation_bounds",
    "rounding_slack",
    "smoothed_certify",
    "smoothed_predict",
    "training_margin_bounds",
]
