"""The bridge from scikit-learn estimators to torch modules on raw inputs.

Attacks and the Lipschitz estimate need a torch module; users hold fitted estimators and
pipelines. :func:`as_torch_classifier` turns a classifier of this library, or a
:class:`~sklearn.pipeline.Pipeline` of scalers ending in one, into a differentiable
:class:`TorchClassifier` that takes the data as ``predict`` does (the scalers become
float64 :class:`AffineMap` s and the training bounds are mapped back through them), and
any other classifier with ``predict_proba`` into a black box (:class:`ProbaModule`).
The metrics ask only this package about a model: :func:`preserved_state` leaves it as
it was found, :func:`resolve_bounds` reads the ``bounds`` argument,
:func:`predict_like` predicts in the caller's format and :func:`verification_chain` gives
the verifiers the model as one chain of layers on raw inputs.
"""

from ._affine import SCALERS, AffineMap, flatten_pipeline, scaler_to_affine, work_dtype
from ._bounds import ESTIMATOR_BOUNDS, UNKNOWN_BOUNDS, check_bounds_arg, resolve_bounds
from ._classifier import ProbaModule, TorchClassifier, as_torch_classifier
from ._frames import predict_like, with_feature_names
from ._state import preserved_state, torch_modules
from ._verification import INPUT_ROUNDING, input_rounding, verification_chain

__all__ = [
    "ESTIMATOR_BOUNDS",
    "INPUT_ROUNDING",
    "UNKNOWN_BOUNDS",
    "SCALERS",
    "AffineMap",
    "ProbaModule",
    "TorchClassifier",
    "as_torch_classifier",
    "check_bounds_arg",
    "flatten_pipeline",
    "input_rounding",
    "predict_like",
    "preserved_state",
    "resolve_bounds",
    "scaler_to_affine",
    "torch_modules",
    "verification_chain",
    "with_feature_names",
    "work_dtype",
]
