"""l1-APGD (Croce & Hein 2021, "Mind the box"): APGD's run under the l_1 threat.

What differs from the l_inf / l_2 run (``_apgd.py``), as in the paper and its reference
implementation (``autoattack/autopgd_base.py``):

- the step moves the ``k`` coordinates with the largest ``|gradient|`` (ties included)
  by their signs, scaled to l_1 length ``eta``, then projects exactly onto the l_1 ball
  intersected with the bounds; no momentum;
- ``eta`` starts at ``eps``; every ``max(floor(0.04 * steps), 1)`` iterations the
  sparsity ``s = ||x_best - x||_0`` of the best point sets ``k = s / 1.5``; if ``s``
  fell by more than 5 % since the last check, ``eta`` is reset to ``eps`` and the run
  restarts from the best point, otherwise ``eta`` is divided by 1.5 (never below
  ``eps / 10``); the first ``k`` is 20 % of the coordinates (from a warm start, its
  sparsity / 1.5);
- the start is ``x + N(0, 1)`` projected onto the ball inside the bounds;
- optionally (``shrinking_eps``, AutoAttack's ``use_largereps``, which its l_1
  'standard' version turns on) 30 %, 30 % and 40 % of the steps run at radii
  ``3 eps``, ``2 eps`` and ``eps``, each phase warm-started from the previous phase's
  best point projected onto the smaller ball; only the last phase, inside the threat,
  can break a point.
"""

from __future__ import annotations

import math

import torch

from ..threat import ThreatModel
from ..utils import check_scalar_param, per_sample
from ._base import margin_fooled

# The reference's constants: first sparsity, sparsity-drop test, step decay and floor.
_FIRST_K = 0.2
_DROP = 0.95
_DECAY = 1.5
_MIN_STEP = 10.0


def phases(eps, steps, shrinking):
    """``[(radius, steps), ...]`` of an l1-APGD run.

    Examples
    --------
    >>> from sklearn_robust.attacks._apgd_l1 import phases
    >>> phases(1.0, 100, shrinking=True)
    [(3.0, 30), (2.0, 30), (1.0, 40)]
    >>> phases(1.0, 100, shrinking=False)
    [(1.0, 100)]
    """
    if not shrinking:
        return [(eps, steps)]
    first = math.ceil(0.3 * steps)
    return [(3.0 * eps, first), (2.0 * eps, first), (eps, steps - 2 * first)]


def run_l1(attack, module, x, y, loss_fn, generator, evaluate):
    """One l1-APGD run. Returns (points, fooled mask, best loss), all per sample.

    ``evaluate(module, x, y, loss_fn, caller, eot_iter=, check=)`` returns the loss,
    its input gradient and the logits (``_apgd._loss_and_grad``).
    """
    threat = attack.threat
    plan = phases(threat.eps, attack.steps, attack.shrinking_eps)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x_start = _ball(threat, plan[0][0]).project(x + noise, x)
    for number, (radius, steps) in enumerate(plan):
        last = number == len(plan) - 1
        ball = _ball(threat, radius)
        x_start = ball.project(x_start, x)
        result = _phase(attack, ball, module, x, y, loss_fn, x_start, steps, evaluate,
                        warm=attack.shrinking_eps, count=last, check=number == 0)
        if last:
            return result
        x_start = result[0]
    raise AssertionError("unreachable")  # pragma: no cover


def _ball(threat, radius):
    if radius == threat.eps:
        return threat
    return ThreatModel(eps=radius, norm="l1", bounds=threat.bounds)


def _sparsity(delta):
    return (delta != 0).flatten(1).sum(dim=1).to(delta.dtype)


def _step(grad, share, eta):
    """The sparse step: signs of the ``share`` largest ``|grad|``, l_1 length ``eta``."""
    flat = grad.flatten(1)
    dim = flat.shape[1]
    size = flat.abs()
    # The reference's threshold: the entry at rank floor((1 - share) * D) in ascending order.
    rank = ((1.0 - share) * dim).clamp(0, dim - 1).long()
    threshold = size.sort(dim=1).values.gather(1, rank[:, None])
    signs = torch.sign(flat) * (size >= threshold)
    step = signs / (signs.abs().sum(dim=1, keepdim=True) + 1e-10)
    return (per_sample(eta, flat) * step).view_as(grad)


def _phase(attack, ball, module, x, y, loss_fn, x_cur, steps, evaluate, *, warm, count,
           check):
    """``steps`` iterations inside ``ball`` from ``x_cur``.

    Returns ``(points, fooled, best loss)``: with ``count`` (the threat's own ball),
    points are the first misclassified iterates (the best ones for the others) and
    fooled points leave the working set; otherwise points are the best iterates and
    nothing counts as fooled.
    """
    caller, eot = attack._caller, attack.eot_iter
    bounds = ball.bounds_like(x)
    n, dim = x.shape[0], x[0].numel()
    radius = ball.eps
    loss_cur, grad, logits = evaluate(module, x_cur, y, loss_fn, caller, eot_iter=eot,
                                      check=check)
    fooled = margin_fooled(logits, y) if count else torch.zeros_like(y, dtype=torch.bool)
    out, f_out = x_cur.clone(), loss_cur.clone()

    act = torch.arange(n, device=x.device)
    x_orig, y_act = x, y
    x_best, f_best, grad_best = x_cur.clone(), loss_cur.clone(), grad.clone()
    eta = torch.full((n,), radius, dtype=x.dtype, device=x.device)
    if warm:
        old = _sparsity(x_cur - x)
        share = old / dim / _DECAY
    else:
        old = torch.full((n,), float(dim), dtype=x.dtype, device=x.device)
        share = torch.full((n,), _FIRST_K, dtype=x.dtype, device=x.device)
    period = max(int(0.04 * steps), 1)

    for k in range(steps):
        keep = ~fooled[act]
        if not bool(keep.all()):
            f_out[act[~keep]] = f_best[~keep]
            act = act[keep]
            if act.numel() == 0:
                break
            x_orig, y_act, eta, share, old = x_orig[keep], y_act[keep], eta[keep], \
                share[keep], old[keep]
            x_cur, grad = x_cur[keep], grad[keep]
            x_best, f_best, grad_best = x_best[keep], f_best[keep], grad_best[keep]
            if hasattr(loss_fn, "subset"):  # per-point targets follow the working set
                loss_fn = loss_fn.subset(keep)

        x_cur = ball.project(x_cur + _step(grad, share, eta), x_orig, bounds)
        loss_cur, grad, logits = evaluate(module, x_cur, y_act, loss_fn, caller, eot_iter=eot)
        if count:
            now = margin_fooled(logits, y_act)
            out[act[now]] = x_cur[now]
            fooled[act[now]] = True
        better = loss_cur > f_best
        x_best[better], grad_best[better] = x_cur[better], grad[better]
        f_best = torch.where(better, loss_cur, f_best)

        if (k + 1) % period == 0:
            sparsity = _sparsity(x_best - x_orig)
            dropped = sparsity < _DROP * old
            share = sparsity / dim / _DECAY
            eta = torch.where(dropped, torch.full_like(eta, radius), eta / _DECAY)
            eta = eta.clamp(radius / _MIN_STEP, radius)
            old = sparsity
            x_cur = torch.where(per_sample(dropped, x_cur), x_best, x_cur)
            grad = torch.where(per_sample(dropped, grad), grad_best, grad)

    if act.numel():
        standing = ~fooled[act]
        out[act[standing]] = x_best[standing]
        f_out[act] = f_best
    return out, fooled, f_out


def check_shrinking_eps(value, threat, steps, caller):
    """``shrinking_eps`` if it is a boolean usable with ``threat`` and ``steps``."""
    check_scalar_param(value, "shrinking_eps", ["boolean"], caller)
    if value and threat.norm != "l1":
        raise ValueError(
            f"shrinking_eps is for norm='l1' only; {caller} has norm={threat.norm!r}."
        )
    if value and steps < 2:
        raise ValueError(f"shrinking_eps needs steps >= 2 (three phases), got steps={steps}.")
    return bool(value)
