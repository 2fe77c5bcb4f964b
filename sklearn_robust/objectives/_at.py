"""PGD adversarial training (Madry et al. 2018)."""

import torch.nn.functional as F

from ._base import Objective, check_label_smoothing, inner_maximise, label_loss


class PGDAdversarial(Objective):
    """``CE(f(x'), y)`` with ``x'`` maximising the cross-entropy from a uniform start.

    The logits returned are those of the adversarial points (no extra clean forward pass).

    Parameters
    ----------
    ls : float, default=0.0
        Label smoothing of the outer cross-entropy, in ``[0, 1)``: the target is ``1 - ls``
        on the true class and ``ls / (C - 1)`` on each other class. The attack maximises
        the cross-entropy of the hard labels.

    References
    ----------
    A. Madry, A. Makelov, L. Schmidt, D. Tsipras, A. Vladu. "Towards Deep Learning Models
    Resistant to Adversarial Attacks", ICLR 2018.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.objectives import PGDAdversarial
    >>> model = torch.nn.Linear(3, 2)
    >>> x, y = torch.rand(5, 3), torch.tensor([0, 1, 0, 1, 1])
    >>> loss, _ = PGDAdversarial()(model, x, y, ThreatModel(eps=0.1, steps=3))
    >>> bool(loss >= 0)
    True
    """

    def __init__(self, ls=0.0):
        self.ls = check_label_smoothing(ls)

    def __call__(self, module, x, y, threat):
        x_adv = inner_maximise(
            module, x, threat, lambda logits: F.cross_entropy(logits, y, reduction="none"),
            start="uniform",
        )
        logits_adv = module(x_adv)
        return label_loss(logits_adv, y, self.ls), logits_adv
