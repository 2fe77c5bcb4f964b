"""The bases of the classifiers trained against a threat model."""

import numpy as np

from ..objectives import SearchingObjective, WeightPerturbation
from ..threat import ThreatModel
from ..utils import (
    NON_NEGATIVE,
    NORMS,
    POSITIVE,
    StrOptions,
    check_bounds,
    check_bounds_contain,
)
from ._base import RobustNetClassifier
from ._docs import fill_doc
from ._params import objective_constraints


@fill_doc
class ThreatNetClassifier(RobustNetClassifier):
    """Base of the classifiers trained against a threat: adds ``eps``, ``norm``, ``bounds``.

    ``fit`` builds :attr:`threat_model_` from them (``bounds='auto'`` resolved on the
    training data); how the objective searches the ball is its own business (see
    :class:`AdversarialNetClassifier` for the searching ones).

    Parameters
    ----------
    %(threat)s
    %(network)s

    See Also
    --------
    RobustNetClassifier : the attributes of a fitted classifier.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_robust import FastATClassifier
    >>> FastATClassifier(eps=0.2).make_threat_model(np.array([[0.0, 2.0], [1.0, 0.5]]))
    ThreatModel(eps=0.2, norm='linf', bounds=(0.0, 2.0))
    """

    _parameter_constraints = {
        **RobustNetClassifier._parameter_constraints,
        "eps": NON_NEGATIVE,
        "norm": [StrOptions(set(NORMS))],
        "bounds": [StrOptions({"auto"}), None, tuple, list, np.ndarray],
    }

    def __init__(self, module=None, *, eps=0.1, norm="linf", bounds="auto", **kwargs):
        super().__init__(module, **kwargs)
        self.eps = eps
        self.norm = norm
        self.bounds = bounds

    def _check_params(self):
        super()._check_params()
        if not isinstance(self.bounds, str):
            check_bounds(self.bounds)

    def make_threat_model(self, X):
        """The training threat model, ``bounds='auto'`` resolved on ``X``."""
        bounds = self.bounds
        if isinstance(bounds, str):
            bounds = (float(X.min()), float(X.max()))
        else:
            check_bounds_contain(bounds, X)
        return ThreatModel(eps=self.eps, norm=self.norm, bounds=bounds)


@fill_doc
class AdversarialNetClassifier(ThreatNetClassifier):
    """Base of the classifiers whose objective searches the ball: adds the attack schedule.

    ``attack_steps`` and ``step_size`` are passed to the objective (as its ``steps`` and
    ``step_size``) by :meth:`schedule`; the threat model stays the ball only. With
    ``awp_gamma`` the objective is wrapped in
    :class:`~sklearn_robust.objectives.WeightPerturbation`.

    Parameters
    ----------
    %(threat)s
    %(schedule)s
    %(network)s

    Attributes
    ----------
    %(attributes)s

    Examples
    --------
    %(digits)s
    >>> from sklearn_robust import TRADESClassifier
    >>> clf = TRADESClassifier(eps=0.1, attack_steps=2, max_epochs=1, random_state=0)
    >>> clf.fit(X_train, y_train).threat_model_
    ThreatModel(eps=0.1, norm='linf', bounds=(0.0, 1.0))
    >>> clf.objective_.steps
    2
    >>> TRADESClassifier(awp_gamma=0.005).make_objective()
    WeightPerturbation(objective=TRADES(beta=6.0, ls=0.0, steps=10, step_size=None), gamma=0.005)
    """

    schedule_params = {"attack_steps": "steps", "step_size": "step_size"}
    _parameter_constraints = {
        **ThreatNetClassifier._parameter_constraints,
        **objective_constraints(SearchingObjective, **schedule_params),
        "awp_gamma": [None, *POSITIVE],
    }

    def __init__(self, module=None, *, attack_steps=10, step_size=None, awp_gamma=None,
                 **kwargs):
        super().__init__(module, **kwargs)
        self.attack_steps = attack_steps
        self.step_size = step_size
        self.awp_gamma = awp_gamma

    def make_objective(self):
        """The method's objective, inside a weight perturbation when ``awp_gamma`` is set."""
        objective = super().make_objective()
        if self.awp_gamma is None:
            return objective
        return WeightPerturbation(objective, gamma=self.awp_gamma)
