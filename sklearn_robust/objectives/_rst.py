"""RST, the "advbeta" objective of Yang et al. 2020: clean plus weighted adversarial loss."""

from ..utils import NON_NEGATIVE
from ._base import fill_doc, label_loss
from ._search import SearchingObjective


@fill_doc
class RST(SearchingObjective):
    """``CE(f(x), y) + lam * CE(f(x'), y)`` with ``x'`` the PGD-AT adversarial point.

    The inner maximisation is PGD adversarial training's: ``steps`` steps of
    cross-entropy ascent from a uniform start in the ball, run frozen. Both branches are
    averaged over the batch. The logits returned are the clean ones.

    Parameters
    ----------
    lam : float, default=1.0
        Weight of the adversarial term (Yang et al. use 0.5, 1 and 2).
    %(schedule)s

    References
    ----------
    Y.-Y. Yang, C. Rashtchian, H. Zhang, R. Salakhutdinov, K. Chaudhuri. "A Closer Look at
    Accuracy vs. Robustness", NeurIPS 2020 (the "advbeta" loss of its code; robust
    self-training in the sense of Raghunathan et al. 2020, without unlabelled data).

    Examples
    --------
    %(batch)s
    >>> from sklearn_robust.objectives import RST
    >>> loss, logits = RST(lam=2.0, steps=3)(model, x, y, ThreatModel(eps=0.1))
    >>> bool(loss >= 0), logits.shape
    (True, torch.Size([5, 2]))
    """

    _parameter_constraints = {**SearchingObjective._parameter_constraints, "lam": NON_NEGATIVE}
    criterion_term = "both cross-entropy terms, clean and adversarial (the attack's is plain)"

    def __init__(self, lam=1.0, steps=10, step_size=None):
        self._set_params(lam=lam, steps=steps, step_size=step_size)

    def __call__(self, module, x, y, threat, criterion=None):
        x_adv = self.pgd_points(module, x, y, threat)
        logits = module(x)
        loss = (label_loss(logits, y, criterion=criterion)
                + self.lam * label_loss(module(x_adv), y, criterion=criterion))
        return loss, logits
