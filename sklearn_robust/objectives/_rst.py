"""RST, the "advbeta" objective of Yang et al. 2020: clean plus weighted adversarial loss."""

import torch.nn.functional as F

from ._base import Objective, check_non_negative, inner_maximise


class RST(Objective):
    """``CE(f(x), y) + lam * CE(f(x'), y)`` with ``x'`` the PGD-AT adversarial point.

    The inner maximisation is PGD adversarial training's: ``threat.steps`` steps of
    cross-entropy ascent from a uniform start in the ball, run frozen. Both branches are
    averaged over the batch. The logits returned are the clean ones.

    Parameters
    ----------
    lam : float, default=1.0
        Weight of the adversarial term (Yang et al. use 0.5, 1 and 2).

    References
    ----------
    Y.-Y. Yang, C. Rashtchian, H. Zhang, R. Salakhutdinov, K. Chaudhuri. "A Closer Look at
    Accuracy vs. Robustness", NeurIPS 2020 (the "advbeta" loss of its code; robust
    self-training in the sense of Raghunathan et al. 2020, without unlabelled data).

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.objectives import RST
    >>> model = torch.nn.Linear(3, 2)
    >>> x, y = torch.rand(5, 3), torch.tensor([0, 1, 0, 1, 1])
    >>> loss, logits = RST(lam=2.0)(model, x, y, ThreatModel(eps=0.1, steps=3))
    >>> bool(loss >= 0), logits.shape
    (True, torch.Size([5, 2]))
    """

    def __init__(self, lam=1.0):
        self.lam = check_non_negative(lam, "lam")

    def __call__(self, module, x, y, threat):
        x_adv = inner_maximise(
            module, x, threat, lambda logits: F.cross_entropy(logits, y, reduction="none"),
            start="uniform",
        )
        logits = module(x)
        loss = F.cross_entropy(logits, y) + self.lam * F.cross_entropy(module(x_adv), y)
        return loss, logits
