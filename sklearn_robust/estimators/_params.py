"""The classifiers' parameters: scikit-learn's constraints, checked once, in ``fit``.

A classifier declares ``_parameter_constraints`` (scikit-learn's format); the parameters
it forwards to its objective (``objective_params``, ``schedule_params``) are validated
with the objective's own constraints, added when the class is defined. ``fit`` checks
them all before any work; skorch's private bookkeeping is no parameter.
"""

from ..utils import NON_NEGATIVE, NON_NEGATIVE_INT, resolve_device, validate_params_of
from ._precision import PRECISION_CONSTRAINT
from ._schedules import LR_SCHEDULE_CONSTRAINT

#: The training options every classifier has (augmentation, precision, memory format,
#: learning-rate schedule), declared once for the base's ``_parameter_constraints``.
TRAINING_CONSTRAINTS = {
    "max_shift": NON_NEGATIVE_INT,
    "flip": ["boolean"],
    "noise_std": NON_NEGATIVE,
    "precision": PRECISION_CONSTRAINT,
    "channels_last": ["boolean"],
    "lr_schedule": LR_SCHEDULE_CONSTRAINT,
}


def objective_constraints(objective, *names, **renamed):
    """Constraints of an objective's parameters, for a classifier that forwards them.

    ``names`` keep their name; ``renamed`` maps a classifier parameter to the objective's
    (``attack_steps='steps'``).

    Examples
    --------
    >>> from sklearn_robust.objectives import LLR
    >>> list(objective_constraints(LLR, "lam", attack_steps="steps"))
    ['lam', 'attack_steps']
    """
    pairs = {**{name: name for name in names}, **renamed}
    return {ours: objective._parameter_constraints[theirs] for ours, theirs in pairs.items()}


class ParamsMixin:
    """Checks the parameters of a classifier against its ``_parameter_constraints``."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A classifier that declares its objective validates the parameters it forwards
        # with the objective's own constraints, under the classifier's names.
        if "objective_class" in vars(cls):
            cls._parameter_constraints = {
                **cls._parameter_constraints,
                **objective_constraints(cls.objective_class, *cls.objective_params,
                                        **cls.schedule_params),
            }

    def _check_params(self):
        """Validate the parameters against ``_parameter_constraints`` (before any work)."""
        validate_params_of(self._parameter_constraints, self.get_params(deep=False),
                           type(self).__name__)
        resolve_device(self.requested_device)
        self._check_precision()
        self._check_lr_schedule()

    def _get_param_names(self):
        # skorch lists every attribute not ending in "_"; private bookkeeping is no parameter.
        return [k for k in super()._get_param_names() if not k.startswith("_")]
