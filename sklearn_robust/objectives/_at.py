"""PGD adversarial training (Madry et al. 2018)."""

from ._base import LABEL_SMOOTHING, fill_doc, label_loss
from ._search import SearchingObjective


@fill_doc
class PGDAdversarial(SearchingObjective):
    """``CE(f(x'), y)`` with ``x'`` maximising the cross-entropy from a uniform start.

    The attack is ``steps`` steps of projected cross-entropy ascent. The logits returned
    are those of the adversarial points (no extra clean forward pass).

    Parameters
    ----------
    ls : float, default=0.0
        Label smoothing of the outer cross-entropy, in ``[0, 1)``: the target is ``1 - ls``
        on the true class and ``ls / (C - 1)`` on each other class. The attack maximises
        the cross-entropy of the hard labels.
    %(schedule)s

    References
    ----------
    A. Madry, A. Makelov, L. Schmidt, D. Tsipras, A. Vladu. "Towards Deep Learning Models
    Resistant to Adversarial Attacks", ICLR 2018.

    Examples
    --------
    %(batch)s
    >>> from sklearn_robust.objectives import PGDAdversarial
    >>> loss, _ = PGDAdversarial(steps=3)(model, x, y, ThreatModel(eps=0.1))
    >>> bool(loss >= 0)
    True
    """

    _parameter_constraints = {**SearchingObjective._parameter_constraints, "ls": LABEL_SMOOTHING}
    criterion_term = "the cross-entropy at the adversarial points (the attack's is plain)"

    def __init__(self, ls=0.0, steps=10, step_size=None):
        self._set_params(ls=ls, steps=steps, step_size=step_size)

    def __call__(self, module, x, y, threat, criterion=None):
        x_adv = self.pgd_points(module, x, y, threat)
        logits_adv = module(x_adv)
        return label_loss(logits_adv, y, self.ls, criterion), logits_adv
