"""Fast adversarial training (Wong et al. 2020): FGSM from a random start."""

import torch.nn.functional as F

from ..utils import POSITIVE
from ._base import Objective, fill_doc, label_loss
from ._search import inner_maximise

#: Wong et al.'s step: 1.25 times the radius.
STEP_FACTOR = 1.25


@fill_doc
class FastAdversarial(Objective):
    """``CE(f(x'), y)`` with ``x'`` one FGSM step from a uniform random start in the ball.

    ``x' = Pi(x_0 + alpha * direction(grad CE(f(x_0), y)))`` with ``x_0`` uniform in the
    ball, ``alpha = 1.25 * eps`` (Wong et al.'s choice, so the step can leave the start's
    neighbourhood) and ``Pi`` the projection onto the ball and the bounds. The step is
    computed frozen (eval mode, input gradients only). One step is the method, so there
    is no ``steps``. The logits returned are those of the adversarial points.

    Parameters
    ----------
    step_size : float or None, default=None
        Length of the step; ``None`` is ``1.25 * eps``.

    References
    ----------
    E. Wong, L. Rice, J. Z. Kolter. "Fast is better than free: Revisiting adversarial
    training", ICLR 2020.

    Examples
    --------
    %(batch)s
    >>> from sklearn_robust.objectives import FastAdversarial
    >>> loss, _ = FastAdversarial()(model, x, y, ThreatModel(eps=0.1, bounds=(0, 1)))
    >>> bool(loss >= 0)
    True
    """

    _parameter_constraints = {"step_size": [None, *POSITIVE]}

    def __init__(self, step_size=None):
        self._set_params(step_size=step_size)

    criterion_term = "the cross-entropy at the adversarial points (the attack's is plain)"

    def __call__(self, module, x, y, threat, criterion=None):
        alpha = self.step_size if self.step_size is not None else STEP_FACTOR * threat.eps
        x_adv = inner_maximise(
            module, x, threat, lambda logits: F.cross_entropy(logits, y, reduction="none"),
            steps=1, step_size=alpha, start="uniform",
        )
        logits_adv = module(x_adv)
        return label_loss(logits_adv, y, criterion=criterion), logits_adv
