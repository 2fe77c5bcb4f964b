"""Fast adversarial training (Wong et al. 2020): FGSM from a random start."""

import torch.nn.functional as F

from ..attacks import frozen
from ._base import Objective

#: Wong et al.'s step: 1.25 times the radius.
STEP_FACTOR = 1.25


class FastAdversarial(Objective):
    """``CE(f(x'), y)`` with ``x'`` one FGSM step from a uniform random start in the ball.

    ``x' = Pi(x_0 + alpha * direction(grad CE(f(x_0), y)))`` with ``x_0`` uniform in the
    ball, ``alpha = 1.25 * eps`` (Wong et al.'s choice, so the step can leave the start's
    neighbourhood) and ``Pi`` the projection onto the ball and the bounds. The step is
    computed frozen (eval mode, input gradients only). A ``step_size`` set on the threat
    model replaces ``1.25 * eps``; the threat model's ``steps`` is not used (one step is
    the method). The logits returned are those of the adversarial points.

    References
    ----------
    E. Wong, L. Rice, J. Z. Kolter. "Fast is better than free: Revisiting adversarial
    training", ICLR 2020.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.objectives import FastAdversarial
    >>> model = torch.nn.Linear(3, 2)
    >>> x, y = torch.rand(5, 3), torch.tensor([0, 1, 0, 1, 1])
    >>> loss, _ = FastAdversarial()(model, x, y, ThreatModel(eps=0.1, bounds=(0, 1)))
    >>> bool(loss >= 0)
    True
    """

    def __call__(self, module, x, y, threat):
        alpha = threat.step_size if threat.step_size is not None else STEP_FACTOR * threat.eps
        with frozen(module):
            x_adv = threat.ascend(
                lambda x_adv: F.cross_entropy(module(x_adv), y, reduction="none"),
                x, start="uniform", steps=1, alpha=alpha,
            )
        logits_adv = module(x_adv)
        return F.cross_entropy(logits_adv, y), logits_adv
