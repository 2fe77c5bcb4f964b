"""AutoAttack (Croce & Hein 2020): APGD-CE, APGD-T and Square as a cascade.

Each stage attacks only the points that are still robust (correctly classified and not
broken by an earlier stage). The per-stage counts tell whether the black-box stage broke
points that the gradient attacks missed, a sign of gradient masking.
"""

from __future__ import annotations

import warnings

import torch

from ._apgd import APGD, APGDTargeted, _check_int
from ._base import Attack, frozen
from ._square import Square, as_module

# Budgets of the versions; explicit n_iter / n_target_classes / n_queries override them.
VERSIONS = {
    "standard": {"n_iter": 100, "n_target_classes": 9, "n_queries": 5000},
    "fast": {"n_iter": 20, "n_target_classes": 3, "n_queries": 500},
}
# Square breaking more than this fraction of the points after the gradient stages is
# reported as a sign of gradient masking (AutoAttack's own check uses the same margin).
MASKING_TOLERANCE = 0.002


class AutoAttack(Attack):
    """AutoAttack without FAB: APGD-CE, then APGD-T, then Square, as a cascade.

    Clean-misclassified points are not attacked. Each stage then runs only on the points
    still robust; a point broken by a stage keeps that stage's adversarial example and
    the other points are returned unchanged. After a call, :attr:`stage_counts_` says
    how many points each stage broke.

    Fallbacks, each announced by a ``UserWarning``: with 2 classes the APGD-T stage is
    skipped; with 3 classes it runs untargeted APGD-DLR (see :class:`APGDTargeted`);
    under the l_2 norm the Square stage is skipped (only its l_inf version exists).
    A ``UserWarning`` also flags Square breaking more than 0.2 % of the points after the
    gradient stages: the gradient attacks were probably misled (gradient masking).

    Parameters
    ----------
    threat : ThreatModel
        Norm, ``eps`` and bounds shared by all stages.
    version : {'standard', 'fast'}, default='standard'
        Budgets. ``'standard'``: 100 APGD iterations, 9 target classes, 5000 Square
        queries, as in AutoAttack. ``'fast'``: 20 iterations, 3 targets, 500 queries,
        for quick checks.
    n_iter : int or None, default=None
        APGD iterations per run; ``None`` takes the version's.
    n_target_classes : int or None, default=None
        Target classes of APGD-T; ``None`` takes the version's.
    n_queries : int or None, default=None
        Square queries per point; ``None`` takes the version's.
    **kwargs
        ``batch_size``, ``random_state``, ``verbose`` of :class:`Attack`.

    Attributes
    ----------
    attacks : dict
        The stages by name (``'apgd-ce'``, ``'apgd-t'``, ``'square'``), in order.
    stage_counts_ : dict
        After a call: points broken by each stage that ran, by name.
    n_points_ : int
        After a call: points given.
    clean_correct_ : int
        After a call: points correctly classified without attack.
    robust_ : int
        After a call: points no stage broke (``robust_ / n_points_`` is the robust
        accuracy).

    See Also
    --------
    APGD, APGDTargeted, Square : The stages.

    References
    ----------
    .. [1] F. Croce and M. Hein, "Reliable evaluation of adversarial robustness with an
       ensemble of diverse parameter-free attacks", ICML 2020.
    .. [2] M. Andriushchenko, F. Croce, N. Flammarion and M. Hein, "Square Attack: a
       query-efficient black-box adversarial attack via random search", ECCV 2020.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.attacks import AutoAttack
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Linear(4, 5)
    >>> X = torch.rand(16, 4)
    >>> y = model(X).argmax(dim=1)  # all correct before the attack
    >>> attack = AutoAttack(ThreatModel(eps=0.3, bounds=(0, 1)), version="fast",
    ...                     random_state=0)
    >>> X_adv = attack(model, X, y)
    >>> sorted(attack.stage_counts_)
    ['apgd-ce', 'apgd-t', 'square']
    >>> attack.robust_ == int((model(X_adv).argmax(dim=1) == y).sum())
    True
    """

    name = "auto"

    def __init__(self, threat, *, version="standard", n_iter=None, n_target_classes=None,
                 n_queries=None, **kwargs):
        super().__init__(threat, **kwargs)
        if version not in VERSIONS:
            raise ValueError(f"version must be one of {sorted(VERSIONS)}, got {version!r}.")
        self.version = version
        self.n_iter = n_iter
        self.n_target_classes = n_target_classes
        self.n_queries = n_queries
        budget = dict(VERSIONS[version])
        for key, value in (("n_iter", n_iter), ("n_target_classes", n_target_classes),
                           ("n_queries", n_queries)):
            if value is not None:
                budget[key] = _check_int(value, key)

        common = {"batch_size": self.batch_size}
        self.attacks = {
            "apgd-ce": APGD(threat, loss="ce", n_iter=budget["n_iter"], **common),
            "apgd-t": APGDTargeted(threat, n_target_classes=budget["n_target_classes"],
                                   n_iter=budget["n_iter"], **common),
        }
        if threat.norm == "linf":
            self.attacks["square"] = Square(threat, n_queries=budget["n_queries"], **common)
        else:
            warnings.warn(
                f"Square is implemented for norm='linf' only: under norm={threat.norm!r} "
                "AutoAttack runs APGD-CE and APGD-T only, without the black-box check "
                "for gradient masking.",
                UserWarning,
                stacklevel=2,
            )

    def __repr__(self):
        return f"{type(self).__name__}(threat={self.threat!r}, version={self.version!r})"

    def __call__(self, module, X, y):
        """Adversarial points for ``X``; sets :attr:`stage_counts_` and the counts."""
        module = as_module(module)
        self.stage_counts_ = {}
        self.clean_correct_ = 0
        self.robust_ = 0
        self._binary_warned = False
        for attack in self.attacks.values():
            attack._warned = set()
        out = super().__call__(module, X, y)
        self.n_points_ = out.shape[0]
        if self.threat.eps == 0:  # no stage ran: robust means correct
            self.clean_correct_ = self.robust_ = self._count_correct(module, out, y)
        square = self.stage_counts_.get("square", 0)
        if square > MASKING_TOLERANCE * self.n_points_:
            warnings.warn(
                f"Square (black box, no gradients) broke {square} of {self.n_points_} points "
                "that the gradient attacks missed: they were probably misled "
                "(gradient masking), so white-box robust accuracy overstates robustness.",
                UserWarning,
                stacklevel=2,
            )
        return out

    def _count_correct(self, module, X, y):
        y = torch.as_tensor(y, dtype=torch.long).to(X.device)
        correct = 0
        with frozen(module), torch.no_grad():
            for start in range(0, X.shape[0], self.batch_size):
                stop = start + self.batch_size
                correct += int((module(X[start:stop]).argmax(dim=1) == y[start:stop]).sum())
        return correct

    def _perturb_batch(self, module, x, y, generator):
        with torch.no_grad():
            logits = module(x)
        robust = logits.argmax(dim=1) == y
        n_classes = logits.shape[1]
        self.clean_correct_ += int(robust.sum())
        out = x.clone()
        for name, attack in self.attacks.items():
            if name == "apgd-t" and n_classes < 3:
                if not self._binary_warned:
                    self._binary_warned = True
                    warnings.warn(
                        f"AutoAttack: the model has {n_classes} classes, APGD-T needs at "
                        "least 4 (DLR at least 3): the APGD-T stage is skipped.",
                        UserWarning,
                        stacklevel=3,
                    )
                continue
            self.stage_counts_.setdefault(name, 0)
            idx = robust.nonzero().squeeze(1)
            if idx.numel() == 0:
                continue
            x_adv = attack._perturb_batch(module, x[idx], y[idx], generator)
            with torch.no_grad():
                broken = module(x_adv).argmax(dim=1) != y[idx]
            out[idx[broken]] = x_adv[broken]
            robust[idx[broken]] = False
            self.stage_counts_[name] += int(broken.sum())
        self.robust_ += int(robust.sum())
        return out
