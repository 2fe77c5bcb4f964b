"""APGD-T (Croce & Hein 2020): APGD on the targeted DLR loss, one run per target class."""

from ...utils import POSITIVE_INT
from .._docs import docs
from .._losses import LOSSES, dlr_targeted, resolve_loss
from .._parallel import n_target_runs, target_runs
from ._attack import APGD


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

    %(attack_example)s
    >>> from sklearn_robust.attacks import APGDTargeted
    >>> apgd_t = APGDTargeted(ThreatModel(eps=0.1, bounds=(0, 1)), n_target_classes=2,
    ...                       steps=10, random_state=0)
    >>> X_adv = apgd_t(model, X, y)  # 2 runs per point, one per target class
    >>> bool(apgd_t.threat.contains(X_adv, X).all())
    True
    """

    name = "apgd-t"
    _parameter_constraints = {
        **{key: kinds for key, kinds in APGD._parameter_constraints.items() if key != "loss"},
        "n_target_classes": POSITIVE_INT,
    }

    def __init__(self, threat, *, n_target_classes=9, steps=100, restarts=1, rho=0.75,
                 momentum=0.75, **kwargs):
        super().__init__(threat, loss="dlr", steps=steps, restarts=restarts, rho=rho,
                         momentum=momentum, **kwargs)
        self._set_params(n_target_classes=n_target_classes)
        self.name = "apgd-t"

    def __repr__(self):
        return (f"{type(self).__name__}(threat={self.threat!r}, "
                f"n_target_classes={self.n_target_classes})")

    def _n_runs(self, n_classes):
        return n_target_runs(self.n_target_classes, n_classes, self.restarts)

    def _runs(self, logits, y):
        """Targeted DLR and ``restarts`` runs per target class (or the fallback's runs)."""
        loss = resolve_loss("dlr-targeted", logits.shape[1], "APGD-T")
        if loss != "dlr-targeted":  # too few classes: the untargeted fallback
            return LOSSES[loss], [None] * self.restarts
        return dlr_targeted, target_runs(logits, y, self.n_target_classes, self.restarts)
