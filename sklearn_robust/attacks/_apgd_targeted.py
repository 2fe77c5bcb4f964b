"""APGD-T (Croce & Hein 2020): APGD on the targeted DLR loss, one run per target class."""

from __future__ import annotations

import torch

from ..utils import check_int
from ._apgd import APGD
from ._docs import docs
from ._losses import LOSSES, dlr_targeted, resolve_loss


class _TargetedLoss:
    """Targeted DLR towards per-point targets; follows APGD's working set via ``subset``."""

    def __init__(self, target):
        self.target = target

    def __call__(self, logits, y):
        return dlr_targeted(logits, y, self.target)

    def subset(self, keep):
        return _TargetedLoss(self.target[keep])

    @staticmethod
    def side_by_side(losses):
        return _TargetedLoss(torch.cat([loss.target for loss in losses]))


@docs
class APGDTargeted(APGD):
    """APGD-T: APGD on the targeted DLR loss, one run per target class.

    The targets of a point are the ``n_target_classes`` classes other than its label
    with the highest clean logits, tried in decreasing order; each run attacks only the
    points no earlier run has broken. A point counts as broken when it is misclassified
    (as any class). Points already misclassified are returned unchanged. The runs of
    several targets share one batch (each point repeated once per target) when it
    fits, which changes the cost, not what each run does.

    Targeted DLR needs at least 4 classes. With 3 classes the attack falls back to
    untargeted APGD-DLR, with 2 to APGD-CE, and a ``UserWarning`` says so (the rule of
    :func:`~sklearn_robust.attacks.resolve_loss`).

    Parameters
    ----------
    threat : ThreatModel
        Norm, ``eps`` and bounds.
    n_target_classes : int, default=9
        Target classes per point, capped at ``n_classes - 1``.
    steps : int, default=100
        Iterations per run (``n_iter`` in Croce & Hein's AutoAttack code).
    restarts : int, default=1
        Runs per target class.
    rho, momentum : float, default=0.75
        As in :class:`APGD`.
    %(attack_kwargs)s

    See Also
    --------
    APGD : The untargeted attack.
    AutoAttack : APGD-CE, APGD-T and Square as a cascade.

    %(croce_hein_refs)s

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.attacks import APGDTargeted
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Linear(4, 5)
    >>> X, y = torch.rand(8, 4), torch.zeros(8, dtype=torch.long)
    >>> attack = APGDTargeted(ThreatModel(eps=0.1, bounds=(0, 1)), n_target_classes=2,
    ...                       steps=10, random_state=0)
    >>> X_adv = attack(model, X, y)
    >>> bool(attack.threat.contains(X_adv, X).all())
    True
    """

    name = "apgd-t"

    def __init__(self, threat, *, n_target_classes=9, steps=100, restarts=1, rho=0.75,
                 momentum=0.75, **kwargs):
        super().__init__(threat, loss="dlr", steps=steps, restarts=restarts, rho=rho,
                         momentum=momentum, **kwargs)
        self.n_target_classes = check_int(n_target_classes, "n_target_classes",
                                          type(self).__name__)
        self.name = "apgd-t"

    def __repr__(self):
        return (f"{type(self).__name__}(threat={self.threat!r}, "
                f"n_target_classes={self.n_target_classes})")

    def _runs(self, logits, y):
        n_classes = logits.shape[1]
        loss = resolve_loss("dlr-targeted", n_classes, "APGD-T")
        if loss != "dlr-targeted":  # too few classes: the untargeted fallback
            loss_fn = LOSSES[loss]
            return [lambda idx: loss_fn] * self.restarts
        n_targets = min(self.n_target_classes, n_classes - 1)
        others = logits.scatter(1, y[:, None], -float("inf"))
        targets = others.argsort(dim=1, descending=True)[:, :n_targets]

        def targeted(rank):
            return lambda idx: _TargetedLoss(targets[idx, rank])

        return [targeted(rank) for rank in range(n_targets) for _ in range(self.restarts)]
