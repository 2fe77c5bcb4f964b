"""Auto-PGD (Croce & Hein 2020): PGD with momentum and a self-tuning step size.

APGD starts with step size ``2 * eps`` and halves it, restarting from the best point
found so far, at checkpoints where the loss stopped rising. No step size to tune, which
makes it a reliable baseline for robustness evaluation. ``APGDTargeted`` (in
``_apgd_targeted.py``) runs it once per target class on the targeted DLR loss.
"""

from __future__ import annotations

import math

import torch

from ..utils import StrOptions, check_fraction, check_int, check_scalar_param, per_sample
from ._apgd_l1 import check_shrinking_eps, run_l1
from ._base import Attack, margin_fooled
from ._checks import input_gradient
from ._docs import docs
from ._losses import get_loss
from ._parallel import run_groups, sample_numel


def apgd_checkpoints(steps):
    """Iterations at which APGD checks whether to halve its step size.

    ``w_j = ceil(p_j * steps)`` with ``p_0 = 0``, ``p_1 = 0.22`` and
    ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``: checks grow denser as the
    attack proceeds.

    Parameters
    ----------
    steps : int
        Number of iterations of the attack (``n_iter`` in Croce & Hein's AutoAttack code).

    Returns
    -------
    list of int
        Increasing checkpoints in ``[1, steps]``.

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
    steps = check_int(steps, "steps", "apgd_checkpoints")
    points, p_prev, p = [], 0.0, 0.22
    while p <= 1.0:
        # Round before ceil: 0.41 * 100 is 41.000000000000007 in floating point.
        points.append(max(math.ceil(round(p * steps, 6)), 1))
        p_prev, p = p, p + max(p - p_prev - 0.03, 0.06)
    return sorted(set(points))


def _loss_and_grad(module, x, y, loss_fn, caller, *, eot_iter=1, check=False):
    """Per-sample loss, its input gradient and the logits at ``x`` (all detached).

    With ``eot_iter > 1`` all three are means over that many forward and backward passes
    (expectation over transformation, for randomised models). A gradient that is missing,
    zero or NaN warns (see ``_checks.input_gradient``) rather than passing silently.
    """
    loss_sum = grad_sum = logits_sum = 0
    for _ in range(eot_iter):
        x_req = x.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = module(x_req)
            loss = loss_fn(logits, y)
            grad = input_gradient(loss.sum(), x_req, caller, check=check)
        loss_sum = loss_sum + loss.detach()
        grad_sum = grad_sum + grad
        logits_sum = logits_sum + logits.detach()
    if eot_iter == 1:
        return loss_sum, grad_sum, logits_sum
    return loss_sum / eot_iter, grad_sum / eot_iter, logits_sum / eot_iter


@docs
class APGD(Attack):
    """Auto-PGD: projected gradient ascent with momentum and step-size halving.

    One run of ``steps`` iterations: from a uniform random start, steps of size
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
        Norm (``'linf'``, ``'l2'`` or ``'l1'``), ``eps`` and bounds.
    loss : {'ce', 'dlr'}, default='ce'
        Cross-entropy or the difference of logits ratio. DLR needs at least 3 classes;
        with fewer, cross-entropy is used and a ``UserWarning`` says so.
    steps : int, default=100
        Iterations per run (``n_iter`` in Croce & Hein's AutoAttack code). APGD sets its
        own step size, so it takes no ``step_size``.
    restarts : int, default=1
        Runs from independent random starts, each on the points not yet broken.
    rho : float, default=0.75
        Fraction of loss-increasing steps below which the step size is halved.
    momentum : float, default=0.75
        Weight of the new gradient step; ``1 - momentum`` goes to the previous step.
    eot_iter : int, default=1
        Forward and backward passes averaged per iteration (expectation over
        transformation, ``eot_iter`` in Croce & Hein's code): 20 in AutoAttack's
        ``'rand'`` version, for randomised models.
    shrinking_eps : bool, default=False
        ``norm='l1'`` only: run 30 %, 30 % and 40 % of the steps at radii ``3 eps``,
        ``2 eps`` and ``eps``, each phase from the previous one's best point
        (AutoAttack's ``use_largereps``, on in its l_1 ``'standard'`` version). Needs
        ``steps >= 2``.
    %(attack_kwargs)s

    Notes
    -----
    Under ``norm='l1'`` the run is l1-APGD (Croce & Hein 2021): sparse steps whose
    sparsity and step size adapt to the sparsity of the best point, no momentum (so
    ``rho`` and ``momentum`` are not used); see ``_apgd_l1.py`` for the schedule.

    See Also
    --------
    APGDTargeted : APGD on the targeted DLR loss, one run per target class.
    PGD : Fixed step size.

    %(croce_hein_refs)s

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.attacks import APGD
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Linear(4, 3)
    >>> X, y = torch.rand(8, 4), torch.zeros(8, dtype=torch.long)
    >>> attack = APGD(ThreatModel(eps=0.1, bounds=(0, 1)), steps=10, random_state=0)
    >>> X_adv = attack(model, X, y)
    >>> bool(((X_adv - X).abs() <= 0.1 + 1e-6).all())
    True
    """

    name = "apgd"
    schedule_params = ("steps", "restarts")

    def __init__(self, threat, *, loss="ce", steps=100, restarts=1, rho=0.75,
                 momentum=0.75, eot_iter=1, shrinking_eps=False, **kwargs):
        super().__init__(threat, **kwargs)
        caller = type(self).__name__
        self.loss = check_scalar_param(loss, "loss", [StrOptions({"ce", "dlr"})], caller)
        self.steps = check_int(steps, "steps", caller)
        self.restarts = check_int(restarts, "restarts", caller)
        self.rho = check_fraction(rho, "rho", caller)
        self.momentum = check_fraction(momentum, "momentum", caller)
        self.eot_iter = check_int(eot_iter, "eot_iter", caller)
        self.shrinking_eps = check_shrinking_eps(shrinking_eps, threat, self.steps, caller)
        self.name = f"apgd-{loss}"

    @property
    def expects_randomness(self):
        """Whether the attack averages over the model's randomness (``eot_iter > 1``)."""
        return self.eot_iter > 1

    @property
    def _caller(self):
        return self.name.upper()

    def __repr__(self):
        return f"{type(self).__name__}(threat={self.threat!r}, loss={self.loss!r})"

    def perturb(self, module, x, y, generator):
        """Adversarial points for one batch (see :meth:`Attack.perturb`)."""
        with torch.no_grad():
            logits = module(x)
        return self._attack(module, x, y, logits, self._runs(logits, y), generator)

    def _runs(self, logits, y):
        # One run per restart; a run maps the indices it attacks to its loss function.
        loss_fn = get_loss(self.loss, logits.shape[1], self.name.upper())
        return [lambda idx: loss_fn] * self.restarts

    def _attack(self, module, x, y, clean_logits, runs, generator):
        """Run ``runs`` (each ``idx -> loss_fn``) on the points not yet broken.

        Runs go in groups side by side in one batch (see ``_parallel``); within a group
        the results are taken in run order, as if the runs had gone one after the other:
        a point keeps the first run that fooled it, or else the run of highest loss.
        """
        out = x.clone()
        fooled = margin_fooled(clean_logits, y)
        best_loss = torch.full((x.shape[0],), -float("inf"), dtype=x.dtype, device=x.device)
        for group in run_groups(len(runs), int((~fooled).sum()), sample_numel(x)):
            idx = (~fooled).nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            m, copies = idx.numel(), idx.repeat(len(group))
            loss_fn = _side_by_side([runs[r](idx) for r in group])
            x_adv, hit, loss = self._run(module, x[copies], y[copies], loss_fn, generator)
            for j in range(len(group)):
                part = slice(j * m, (j + 1) * m)
                open_ = ~fooled[idx]
                take = open_ & (hit[part] | (loss[part] > best_loss[idx]))
                out[idx[take]] = x_adv[part][take]
                best_loss[idx[take]] = loss[part][take]
                fooled[idx[open_ & hit[part]]] = True
        return out

    def _run(self, module, x, y, loss_fn, generator):
        """One APGD run, or several side by side (each row is its own run).

        Returns (points, fooled mask, best loss), all per sample.

        A point's output is fixed once it is misclassified (its first fooling iterate),
        so it leaves the working set: later iterations attack only the points still
        standing. Every point's trajectory is its own (per-sample step sizes and
        checkpoints), so this changes no result, only the cost.
        """
        if self.threat.norm == "l1":  # l1-APGD: its own step and schedule
            return run_l1(self, module, x, y, loss_fn, generator, _loss_and_grad)
        threat = self.threat
        bounds = threat.bounds_like(x)
        n = x.shape[0]
        checkpoints = set(apgd_checkpoints(self.steps))

        x_cur = threat.uniform_start(x, generator)
        loss_cur, grad, logits = _loss_and_grad(module, x_cur, y, loss_fn, self._caller,
                                                eot_iter=self.eot_iter, check=True)
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

        for k in range(self.steps):
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
                if hasattr(loss_fn, "subset"):  # per-point targets follow the working set
                    loss_fn = loss_fn.subset(keep)

            # Gradient step, then momentum (none on the first step).
            a = 1.0 if k == 0 else self.momentum
            z = threat.project(
                x_cur + per_sample(eta, x_cur) * threat.direction(grad), x_orig, bounds
            )
            x_next = threat.project(
                x_cur + a * (z - x_cur) + (1 - a) * (x_cur - x_prev), x_orig, bounds
            )
            x_prev, x_cur = x_cur, x_next

            loss_new, grad, logits = _loss_and_grad(module, x_cur, y_act, loss_fn,
                                                    self._caller, eot_iter=self.eot_iter)
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
                x_cur = torch.where(per_sample(halve, x_cur), x_max, x_cur)
                grad = torch.where(per_sample(halve, grad), grad_max, grad)
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


def _side_by_side(losses):
    """One loss for runs side by side: per-point targets concatenated, or the shared loss."""
    if all(hasattr(loss, "side_by_side") for loss in losses):
        return losses[0].side_by_side(losses)
    if all(loss is losses[0] for loss in losses):
        return losses[0]
    raise ValueError("runs side by side need one shared loss or per-point targets")
