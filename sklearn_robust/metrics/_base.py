"""What every metric shares: parameter validation, the bridge to torch, leaving the model be.

A metric validates its arguments with :func:`check_params` (before any work), reaches the
model through :func:`bridge_inputs` (the torch module on raw inputs, the inputs as a
tensor and the attack bounds, all validated) and does its work inside
:func:`untouched`, which restores the model's modes and the global random streams.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import NamedTuple

import torch
from sklearn.utils.validation import check_is_fitted

from ..bridge import as_torch_classifier, check_bounds_arg, preserved_state, resolve_bounds
from ..utils import (
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    NORMS,
    POSITIVE,
    POSITIVE_INT,
    StrOptions,
    Substitution,
    validate_params_of,
)

#: The doctest setup of the metrics' examples: an unfitted scaler + network pipeline.
PIPELINE_EXAMPLE = Substitution(pipeline_example="""
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_robust import NaturalClassifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), NaturalClassifier(max_epochs=2, random_state=0))
""")

#: Constraints of the parameters several metrics take (a metric adds or overrides some).
COMMON_CONSTRAINTS = {
    "eps": NON_NEGATIVE,
    "norm": [StrOptions(set(NORMS))],
    "steps": NON_NEGATIVE_INT,
    "step_size": [None, *POSITIVE],
    "batch_size": POSITIVE_INT,
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


def check_params(caller, params, constraints=None):
    """Validate ``params`` (a dict) for the metric ``caller``; return them.

    ``constraints`` adds to or overrides :data:`COMMON_CONSTRAINTS`; a ``bounds`` entry
    is checked as the metrics' ``'estimator'``, None or ``(low, high)``. Optional
    numbers (``[None, Interval]``) follow the same rules as required ones once given
    (no booleans, finite).
    """
    table = {**COMMON_CONSTRAINTS, **(constraints or {})}
    checked = {name: value for name, value in params.items() if name in table}
    validate_params_of(table, checked, caller)
    for name, value in checked.items():
        numeric = [kind for kind in table[name] if kind is not None]
        if value is not None and len(numeric) < len(table[name]):
            validate_params_of({name: numeric}, {name: value}, caller)
    if "bounds" in params:
        check_bounds_arg(params["bounds"])
    return params


class Bridged(NamedTuple):
    """A model as the metrics see it: the torch module, the inputs, the attack bounds."""

    model: object
    X: torch.Tensor
    bounds: object


def bridge_inputs(estimator, X, *, gradients, bounds):
    """The estimator bridged to torch, ``X`` as its input tensor and the resolved bounds.

    Everything here validates (fitted estimator, differentiable steps, input shape,
    bounds containing ``X``); nothing predicts or attacks yet.
    """
    check_is_fitted(estimator)
    model = as_torch_classifier(estimator, gradients=gradients)
    X_tensor = model.to_tensor(X)
    return Bridged(model, X_tensor, resolve_bounds(bounds, model, X_tensor))


@contextmanager
def untouched(estimator):
    """Work on ``estimator`` and leave it, and the global random streams, as they were.

    Also usable from under ``torch.inference_mode()`` or ``no_grad`` (skorch scores
    callbacks there): attacks need autograd on the inputs.
    """
    with preserved_state(estimator), torch.inference_mode(False), torch.enable_grad():
        yield


def n_samples_of(X):
    """Number of rows of an array, a DataFrame or a list."""
    return X.shape[0] if hasattr(X, "shape") else len(X)
