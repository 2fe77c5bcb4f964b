"""Auto-PGD (Croce & Hein 2020): PGD with momentum and a self-tuning step size.

APGD starts with step size ``2 * eps`` and halves it, restarting from the best point
found so far, at checkpoints where the loss stopped rising. No step size to tune, which
makes it a reliable baseline for robustness evaluation. ``APGDTargeted`` runs it once per
target class on the targeted DLR loss.
"""

from __future__ import annotations

import math
import numbers
import warnings

import torch

from ._base import Attack, margin_fooled
from ._losses import cross_entropy, dlr, dlr_targeted

_UNTARGETED = {"ce": cross_entropy, "dlr": dlr}


def _check_int(value, name, low=1):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    return int(value)


def _check_fraction(value, name, low_open=True):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and (0 < value <= 1 if low_open else 0 <= value <= 1)
    if not ok:
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}.")
    return float(value)


def apgd_checkpoints(n_iter):
    """Iterations at which APGD checks whether to halve its step size.

    ``w_j = ceil(p_j * n_iter)`` with ``p_0 = 0``, ``p_1 = 0.22`` and
    ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``: checks grow denser as the
    attack proceeds.

    Parameters
    ----------
    n_iter : int
        Number of iterations of the attack.

    Returns
    -------
    list of int
        Increasing checkpoints in ``[1, n_iter]``.

    References
    ----------
    .. [1] F. Croce and M. Hein, "Reliable evaluation of adversarial robustness with an
       ensemble of diverse parameter-free attacks", ICML 2020, section 3.

    Examples
    --------
    >>> from sklearn_robust.attacks import apgd_checkpoints
    >>> apgd_checkpoints(100)
    [22, 41, 57, 70, 80, 87, 93, 99]
    """
    n_iter = _check_int(n_iter, "n_iter")
    points, p_prev, p = [], 0.0, 0.22
    while p <= 1.0:
        # Round before ceil: 0.41 * 100 is 41.000000000000007 in floating point.
        points.append(max(math.ceil(round(p * n_iter, 6)), 1))
        p_prev, p = p, p + max(p - p_prev - 0.03, 0.06)
    return sorted(set(points))


def _loss_and_grad(module, x, y, loss_fn):
    """Per-sample loss, its input gradient and the logits at ``x`` (all detached).

    A model whose output does not depend on the input through autograd (gradient
    masking) gets a zero gradient rather than an error.
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = module(x)
        loss = loss_fn(logits, y)
        grad = None
        if loss.requires_grad:
            (grad,) = torch.autograd.grad(loss.sum(), x, allow_unused=True)
    if grad is None:
        grad = torch.zeros_like(x)
    return loss.detach(), grad.detach(), logits.detach()


class _TargetedLoss:
    """Targeted DLR towards per-point targets; follows the working set via ``subset``."""

    def __init__(self, target):
        self.target = target

    def __call__(self, logits, y):
        return dlr_targeted(logits, y, self.target)

    def subset(self, keep):
        return _TargetedLoss(self.target[keep])


class APGD(Attack):
    """Auto-PGD: projected gradient ascent with momentum and step-size halving.

    One run of ``n_iter`` iterations: from a uniform random start, steps of size
    ``eta`` (initially ``2 * eps``) along the threat model's steepest-ascent direction,
    averaged with the previous step by momentum. At each checkpoint (see
    :func:`apgd_checkpoints`) the step size of a point is halved, and the point restarts
    from its best iterate, when (1) the loss rose in fewer than ``rho`` of the steps
    since the previous checkpoint, or (2) the step size was not halved at the previous
    checkpoint and the best loss has not improved since. Every point has its own step
    size; everything is vectorised over the batch.

    Each point returns its first misclassified iterate over all restarts; a point never
    misclassified returns its highest-loss iterate. Points already misclassified are
    returned unchanged.

    Parameters
    ----------
    threat : ThreatModel
        Norm (``'linf'`` or ``'l2'``), ``eps`` and bounds. Its ``steps`` and
        ``step_size`` are not used: APGD has ``n_iter`` and sets its own step size.
    loss : {'ce', 'dlr'}, default='ce'
        Cross-entropy or the difference of logits ratio. DLR needs at least 3 classes;
        with fewer, cross-entropy is used and a ``UserWarning`` says so.
    n_iter : int, default=100
        Iterations per run.
    restarts : int, default=1
        Runs from independent random starts, each on the points not yet broken.
    rho : float, default=0.75
        Fraction of loss-increasing steps below which the step size is halved.
    momentum : float, default=0.75
        Weight of the new gradient step; ``1 - momentum`` goes to the previous step.
    **kwargs
        ``batch_size``, ``random_state``, ``verbose`` of :class:`Attack`.

    See Also
    --------
    APGDTargeted : APGD on the targeted DLR loss, one run per target class.
    PGD : Fixed step size.

    References
    ----------
    .. [1] F. Croce and M. Hein, "Reliable evaluation of adversarial robustness with an
       ensemble of diverse parameter-free attacks", ICML 2020.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.attacks import APGD
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Linear(4, 3)
    >>> X, y = torch.rand(8, 4), torch.zeros(8, dtype=torch.long)
    >>> attack = APGD(ThreatModel(eps=0.1, bounds=(0, 1)), n_iter=10, random_state=0)
    >>> X_adv = attack(model, X, y)
    >>> bool(((X_adv - X).abs() <= 0.1 + 1e-6).all())
    True
    """

    name = "apgd"

    def __init__(self, threat, *, loss="ce", n_iter=100, restarts=1, rho=0.75,
                 momentum=0.75, **kwargs):
        super().__init__(threat, **kwargs)
        if loss not in _UNTARGETED:
            raise ValueError(f"loss must be one of {sorted(_UNTARGETED)}, got {loss!r}.")
        self.loss = loss
        self.n_iter = _check_int(n_iter, "n_iter")
        self.restarts = _check_int(restarts, "restarts")
        self.rho = _check_fraction(rho, "rho")
        self.momentum = _check_fraction(momentum, "momentum")
        self.name = f"apgd-{loss}"
        self._warned = set()

    def __repr__(self):
        return f"{type(self).__name__}(threat={self.threat!r}, loss={self.loss!r})"

    def __call__(self, module, X, y):
        """Adversarial points for ``X`` with labels ``y`` (see :meth:`Attack.__call__`)."""
        self._warned = set()
        return super().__call__(module, X, y)

    # ------------------------------------------------------------------ helpers
    def _warn_once(self, message):
        if message not in self._warned:
            self._warned.add(message)
            warnings.warn(message, UserWarning, stacklevel=2)

    def _untargeted_loss(self, n_classes, loss=None):
        loss = self.loss if loss is None else loss
        if loss == "dlr" and n_classes < 3:
            self._warn_once(
                f"APGD-DLR needs at least 3 classes, the model has {n_classes}: "
                "falling back to cross-entropy (APGD-CE)."
            )
            loss = "ce"
        return _UNTARGETED[loss]

    def _perturb_batch(self, module, x, y, generator):
        with torch.no_grad():
            logits = module(x)
        loss_fn = self._untargeted_loss(logits.shape[1])
        return self._attack(module, x, y, logits, [lambda idx: loss_fn] * self.restarts,
                            generator)

    def _attack(self, module, x, y, clean_logits, runs, generator):
        """Run ``runs`` (each ``idx -> loss_fn``) in turn on the points not yet broken."""
        out = x.clone()
        fooled = margin_fooled(clean_logits, y)
        best_loss = torch.full((x.shape[0],), -float("inf"), dtype=x.dtype, device=x.device)
        for make_loss in runs:
            idx = (~fooled).nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            x_adv, hit, loss = self._run(module, x[idx], y[idx], make_loss(idx), generator)
            take = hit | (loss > best_loss[idx])
            out[idx[take]] = x_adv[take]
            best_loss[idx[take]] = loss[take]
            fooled[idx[hit]] = True
        return out

    def _run(self, module, x, y, loss_fn, generator):
        """One APGD run. Returns (points, fooled mask, best loss), all per sample.

        A point's output is fixed once it is misclassified (its first fooling iterate),
        so it leaves the working set: later iterations attack only the points still
        standing. Every point's trajectory is its own (per-sample step sizes and
        checkpoints), so this changes no result, only the cost.
        """
        threat = self.threat
        bounds = threat.bounds_like(x)
        n = x.shape[0]
        per_sample = (-1,) + (1,) * (x.dim() - 1)
        checkpoints = set(apgd_checkpoints(self.n_iter))

        x_cur = threat.uniform_start(x, generator)
        loss_cur, grad, logits = _loss_and_grad(module, x_cur, y, loss_fn)
        fooled = margin_fooled(logits, y)  # over the whole batch
        out = x_cur.clone()  # first misclassified iterate; the best one at the end
        f_out = loss_cur.clone()

        # Working set: the points not yet fooled, and their state.
        act = torch.arange(n, device=x.device)
        x_orig, y_act = x, y
        eta = torch.full((n,), 2.0 * threat.eps, dtype=x.dtype, device=x.device)
        x_max, f_max, grad_max = x_cur.clone(), loss_cur.clone(), grad.clone()
        x_prev = x_cur
        last_check = 0
        n_rises = torch.zeros(n, dtype=x.dtype, device=x.device)
        f_max_at_check = f_max.clone()
        halved_at_check = torch.zeros(n, dtype=torch.bool, device=x.device)

        for k in range(self.n_iter):
            keep = ~fooled[act]
            if not bool(keep.all()):
                f_out[act[~keep]] = f_max[~keep]
                act = act[keep]
                if act.numel() == 0:
                    break
                x_orig, y_act, eta = x_orig[keep], y_act[keep], eta[keep]
                x_cur, x_prev = x_cur[keep], x_prev[keep]
                grad, loss_cur = grad[keep], loss_cur[keep]
                x_max, f_max, grad_max = x_max[keep], f_max[keep], grad_max[keep]
                n_rises, f_max_at_check = n_rises[keep], f_max_at_check[keep]
                halved_at_check = halved_at_check[keep]
                if isinstance(loss_fn, _TargetedLoss):
                    loss_fn = loss_fn.subset(keep)

            # Gradient step, then momentum (none on the first step).
            a = 1.0 if k == 0 else self.momentum
            z = threat.project(
                x_cur + eta.view(per_sample) * threat.direction(grad), x_orig, bounds
            )
            x_next = threat.project(
                x_cur + a * (z - x_cur) + (1 - a) * (x_cur - x_prev), x_orig, bounds
            )
            x_prev, x_cur = x_cur, x_next

            loss_new, grad, logits = _loss_and_grad(module, x_cur, y_act, loss_fn)
            n_rises += (loss_new > loss_cur).to(x.dtype)
            loss_cur = loss_new

            now_fooled = margin_fooled(logits, y_act)
            out[act[now_fooled]] = x_cur[now_fooled]
            fooled[act[now_fooled]] = True
            better = loss_cur > f_max
            x_max[better] = x_cur[better]
            grad_max[better] = grad[better]
            f_max = torch.where(better, loss_cur, f_max)

            if k + 1 in checkpoints:
                rose_rarely = n_rises < self.rho * (k + 1 - last_check)
                stalled = ~halved_at_check & (f_max <= f_max_at_check)
                halve = rose_rarely | stalled
                eta = torch.where(halve, eta / 2, eta)
                x_cur = torch.where(halve.view(per_sample), x_max, x_cur)
                grad = torch.where(halve.view(per_sample), grad_max, grad)
                loss_cur = torch.where(halve, f_max, loss_cur)
                halved_at_check = halve
                f_max_at_check = f_max.clone()
                n_rises.zero_()
                last_check = k + 1

        if act.numel():
            standing = ~fooled[act]
            out[act[standing]] = x_max[standing]
            f_out[act] = f_max
        return out, fooled, f_out


class APGDTargeted(APGD):
    """APGD-T: APGD on the targeted DLR loss, one run per target class.

    The targets of a point are the ``n_target_classes`` classes other than its label
    with the highest clean logits, tried in decreasing order; each run attacks only the
    points no earlier run has broken. A point counts as broken when it is misclassified
    (as any class). Points already misclassified are returned unchanged.

    Targeted DLR needs at least 4 classes. With 3 classes the attack falls back to
    untargeted APGD-DLR, with 2 to APGD-CE, and a ``UserWarning`` says so.

    Parameters
    ----------
    threat : ThreatModel
        Norm, ``eps`` and bounds (``steps`` and ``step_size`` are not used).
    n_target_classes : int, default=9
        Target classes per point, capped at ``n_classes - 1``.
    n_iter : int, default=100
        Iterations per run.
    restarts : int, default=1
        Runs per target class.
    rho, momentum : float, default=0.75
        As in :class:`APGD`.
    **kwargs
        ``batch_size``, ``random_state``, ``verbose`` of :class:`Attack`.

    See Also
    --------
    APGD : The untargeted attack.
    AutoAttack : APGD-CE, APGD-T and Square as a cascade.

    References
    ----------
    .. [1] F. Croce and M. Hein, "Reliable evaluation of adversarial robustness with an
       ensemble of diverse parameter-free attacks", ICML 2020.

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
    ...                       n_iter=10, random_state=0)
    >>> X_adv = attack(model, X, y)
    >>> bool(attack.threat.contains(X_adv, X).all())
    True
    """

    name = "apgd-t"

    def __init__(self, threat, *, n_target_classes=9, n_iter=100, restarts=1, rho=0.75,
                 momentum=0.75, **kwargs):
        super().__init__(threat, loss="dlr", n_iter=n_iter, restarts=restarts, rho=rho,
                         momentum=momentum, **kwargs)
        self.n_target_classes = _check_int(n_target_classes, "n_target_classes")
        self.name = "apgd-t"

    def __repr__(self):
        return (f"{type(self).__name__}(threat={self.threat!r}, "
                f"n_target_classes={self.n_target_classes})")

    def _perturb_batch(self, module, x, y, generator):
        with torch.no_grad():
            logits = module(x)
        n_classes = logits.shape[1]
        if n_classes < 4:
            fallback = "dlr" if n_classes == 3 else "ce"
            self._warn_once(
                f"APGD-T needs at least 4 classes, the model has {n_classes}: "
                f"falling back to untargeted APGD-{fallback.upper()}."
            )
            loss_fn = self._untargeted_loss(n_classes, fallback)
            runs = [lambda idx: loss_fn] * self.restarts
            return self._attack(module, x, y, logits, runs, generator)

        n_targets = min(self.n_target_classes, n_classes - 1)
        others = logits.scatter(1, y[:, None], -float("inf"))
        targets = others.argsort(dim=1, descending=True)[:, :n_targets]

        def targeted(rank):
            return lambda idx: _TargetedLoss(targets[idx, rank])

        runs = [targeted(rank) for rank in range(n_targets) for _ in range(self.restarts)]
        return self._attack(module, x, y, logits, runs, generator)
