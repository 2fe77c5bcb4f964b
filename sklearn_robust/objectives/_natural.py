"""Natural training: cross-entropy on clean inputs only."""

import torch.nn.functional as F

from ._base import Objective


class Natural(Objective):
    """``CE(f(x), y)``: the baseline every robust method is compared with.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust.objectives import Natural
    >>> model = torch.nn.Linear(2, 2)
    >>> loss, logits = Natural()(model, torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), None)
    >>> logits.shape
    torch.Size([4, 2])
    """

    adversarial = False

    def __call__(self, module, x, y, threat):
        logits = module(x)
        return F.cross_entropy(logits, y), logits
