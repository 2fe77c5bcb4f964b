"""Certified training: the loss at the worst case the bound allows (IBP, CROWN-IBP)."""

from numbers import Real

from .. import verify
from ..utils import NON_NEGATIVE, Interval
from ._base import Objective, label_loss

_FRACTION = [Interval(Real, 0, 1, closed="both")]


class IntervalBoundTraining(Objective):
    """``kappa * CE(f(x), y) + (1 - kappa) * CE(-m(x), y)``, ``m`` the certified margins.

    ``m_j(x)`` is a lower bound of the margin ``z_y(x') - z_j(x')`` over every ``x'`` of
    the threat ball (``m_y = 0``): ``-m`` are the worst-case logits the bound allows, and
    their cross-entropy is small only when every margin is provably positive. The bound
    is the verification package's (:func:`sklearn_robust.verify.training_margin_bounds`),
    computed on the network being trained, in its dtype, with gradients:
    ``crown_weight * CROWN-IBP + (1 - crown_weight) * IBP`` (interval bound propagation;
    CROWN-IBP: intervals for the hidden layers, one CROWN pass back from the margins).
    There is no search and no random draw: the step is deterministic.

    The parameters are the values of one step; an estimator ramps them during training
    (see :class:`~sklearn_robust.IBPClassifier`) by :meth:`replace`.

    Parameters
    ----------
    kappa : float, default=0.5
        Weight of the clean cross-entropy, in ``[0, 1]``; ``1 - kappa`` weighs the
        worst-case one. ``kappa = 1`` skips the bound.
    crown_weight : float, default=0.0
        ``beta`` of CROWN-IBP, in ``[0, 1]``: the weight of the CROWN-IBP bound against
        the interval bound (``0``: IBP alone, cheapest).
    eps : float or None, default=None
        Radius of the ball of the bound; ``None`` is the threat model's (an estimator
        passes its ramped training radius here). ``0`` skips the bound.

    References
    ----------
    S. Gowal et al. "On the Effectiveness of Interval Bound Propagation for Training
    Verifiably Robust Models", arXiv:1810.12715, 2018.
    H. Zhang et al. "Towards Stable and Efficient Training of Verifiably Robust Neural
    Networks", ICLR 2020.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.objectives import IntervalBoundTraining
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(),
    ...                             torch.nn.Linear(8, 2))
    >>> x, y = torch.rand(5, 3), torch.tensor([0, 1, 0, 1, 1])
    >>> threat = ThreatModel(eps=0.1, bounds=(0, 1))
    >>> loss, _ = IntervalBoundTraining(kappa=0.5)(model, x, y, threat)
    >>> clean, _ = IntervalBoundTraining(kappa=1.0)(model, x, y, threat)
    >>> bool(loss > clean)  # the worst case costs more than the clean points
    True
    """

    _parameter_constraints = {
        "kappa": _FRACTION,
        "crown_weight": _FRACTION,
        "eps": [None, *NON_NEGATIVE],
    }
    criterion_term = "both cross-entropies, clean and worst-case"

    def __init__(self, kappa=0.5, crown_weight=0.0, eps=None):
        self._set_params(kappa=kappa, crown_weight=crown_weight, eps=eps)

    def __call__(self, module, x, y, threat, criterion=None):
        logits = module(x)
        clean = label_loss(logits, y, criterion=criterion)
        eps = threat.eps if self.eps is None else self.eps
        if self.kappa == 1 or eps == 0:
            return clean, logits
        box = threat.bounds_like(x)
        lower, upper = (None, None) if box is None else box
        margins = verify.training_margin_bounds(
            _network(module), x, y, eps=eps, norm=threat.norm, lower=lower, upper=upper,
            crown_weight=self.crown_weight)
        worst = label_loss(-margins, y, criterion=criterion)
        return self.kappa * clean + (1 - self.kappa) * worst, logits


def _network(module):
    """The network whose parameters the bound reads.

    During a data-parallel step the objective gets a view whose first forward goes
    through the DDP wrapper (which arms the gradient all-reduce); the bound reads the
    wrapped network's parameters directly, and their gradients join the same all-reduce.
    """
    parallel = getattr(module, "parallel", None)
    return getattr(parallel, "module", module) if parallel is not None else module
