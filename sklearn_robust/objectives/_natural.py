"""Natural training: cross-entropy on clean inputs only."""

from ._base import Objective, label_loss


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
    criterion_term = "the cross-entropy"

    def __call__(self, module, x, y, threat, criterion=None):
        logits = module(x)
        return label_loss(logits, y, criterion=criterion), logits
