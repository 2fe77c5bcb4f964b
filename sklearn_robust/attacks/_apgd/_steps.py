"""APGD's step rule, one object per norm: momentum steps (l_inf, l_2), sparse steps (l_1).

An APGD run (``_attack.py``) is one loop whatever the norm: step, evaluate the loss, keep
each point's best iterate, and at the rule's checks adapt the step size, the points whose
search stalled restarting from their best iterate. The rule says what a step is and when
and how it adapts:

- :class:`MomentumSteps` (Croce & Hein 2020, l_inf and l_2): the threat model's
  steepest-ascent step of size ``eta`` (``2 eps`` at first), averaged with the previous
  step by momentum; at the checkpoints of :func:`apgd_checkpoints` ``eta`` is halved
  where the loss rose too rarely or the best loss stalled.
- :class:`SparseSteps` (Croce & Hein 2021, "Mind the box", l_1; as in the reference
  implementation ``autoattack/autopgd_base.py``): the ``k`` coordinates with the largest
  ``|gradient|`` (ties included) move by their signs, scaled to l_1 length ``eta``, then
  the exact projection onto the l_1 ball inside the bounds; no momentum. ``eta`` starts
  at ``eps``; every ``max(floor(0.04 * steps), 1)`` iterations the sparsity
  ``s = ||x_best - x||_0`` of the best point sets ``k = s / 1.5``; if ``s`` fell by more
  than 5 % since the last check, ``eta`` is reset to ``eps`` and the point restarts from
  its best iterate, otherwise ``eta`` is divided by 1.5 (never below ``eps / 10``). The
  first ``k`` is 20 % of the coordinates (from a warm start, its sparsity / 1.5). The
  start is ``x + N(0, 1)`` projected onto the ball inside the bounds; with
  ``shrinking_eps`` (AutoAttack's ``use_largereps``) a run is three phases, see
  :func:`phases`.
"""

import math

import torch

from ...utils import check_int, per_sample

# l1-APGD's constants (the reference's): first sparsity, sparsity-drop test, step decay
# and floor.
_FIRST_K = 0.2
_DROP = 0.95
_DECAY = 1.5
_MIN_STEP = 10.0


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


def phases(eps, steps, shrinking):
    """``[(radius, steps), ...]`` of an APGD run.

    One phase, unless ``shrinking`` (l_1 only): 30 %, 30 % and 40 % of the steps at
    radii ``3 eps``, ``2 eps`` and ``eps``, each phase warm-started from the previous
    one's best point projected onto its smaller ball; only the last phase, inside the
    threat, can break a point.

    Examples
    --------
    >>> from sklearn_robust.attacks._apgd._steps import phases
    >>> phases(1.0, 100, shrinking=True)
    [(3.0, 30), (2.0, 30), (1.0, 40)]
    >>> phases(1.0, 100, shrinking=False)
    [(1.0, 100)]
    """
    if not shrinking:
        return [(eps, steps)]
    first = math.ceil(0.3 * steps)
    return [(3.0 * eps, first), (2.0 * eps, first), (eps, steps - 2 * first)]


class MomentumSteps:
    """APGD's rule under l_inf and l_2: momentum steps, ``eta`` halved at checkpoints.

    Parameters
    ----------
    ball : ThreatModel
        The threat model searched.
    steps : int
        Iterations of the run.
    rho : float
        Fraction of loss-increasing steps below which ``eta`` is halved.
    momentum : float
        Weight of the new step; ``1 - momentum`` goes to the previous one.
    """

    def __init__(self, ball, steps, rho, momentum):
        self.ball, self.steps, self.rho, self.momentum = ball, steps, rho, momentum
        self.checkpoints = set(apgd_checkpoints(steps))
        self.last_check = 0

    def start(self, x, generator):
        """A uniform random point of the ball."""
        return self.ball.uniform_start(x, generator)

    def enter(self, x_start, x):
        """The start of the run (one phase: the start point as it is)."""
        return x_start

    def init(self, s):
        """The rule's per-point state, next to the run's (``s.x``, ``s.f_best``...)."""
        n, x = s.x.shape[0], s.x
        s.eta = torch.full((n,), 2.0 * self.ball.eps, dtype=x.dtype, device=x.device)
        s.x_prev = s.x_cur
        s.rises = torch.zeros_like(s.eta)
        s.f_best_at_check = s.f_best.clone()
        s.halved = torch.zeros(n, dtype=torch.bool, device=x.device)

    def step(self, s, k, bounds):
        """The next iterate: a gradient step, then momentum (none on the first step)."""
        ball, x_cur = self.ball, s.x_cur
        a = 1.0 if k == 0 else self.momentum
        z = ball.project(x_cur + per_sample(s.eta, x_cur) * ball.direction(s.grad), s.x, bounds)
        x_next = ball.project(x_cur + a * (z - x_cur) + (1 - a) * (x_cur - s.x_prev), s.x,
                              bounds)
        s.x_prev = x_cur
        return x_next

    def observe(self, s, loss):
        """Count the steps on which the loss rose."""
        s.rises += (loss > s.loss).to(s.rises.dtype)

    def adapt(self, s, k):
        """After step ``k``: at a checkpoint, halve ``eta`` where the loss rose rarely or
        the best loss stalled; returns those points (they restart from their best
        iterate), or ``None`` between checkpoints."""
        if k + 1 not in self.checkpoints:
            return None
        rose_rarely = s.rises < self.rho * (k + 1 - self.last_check)
        stalled = ~s.halved & (s.f_best <= s.f_best_at_check)
        halve = rose_rarely | stalled
        s.eta = torch.where(halve, s.eta / 2, s.eta)
        s.halved, s.f_best_at_check = halve, s.f_best.clone()
        s.rises.zero_()
        self.last_check = k + 1
        return halve


class SparseSteps:
    """l1-APGD's rule: sparse steps whose sparsity and size follow the best point's.

    Parameters
    ----------
    ball : ThreatModel
        The l_1 ball of the phase (``3 eps``, ``2 eps`` or the threat's, see
        :func:`phases`).
    steps : int
        Iterations of the phase.
    warm : bool
        Whether the first sparsity is the start's (a warm start) rather than 20 %.
    """

    def __init__(self, ball, steps, warm):
        self.ball, self.steps, self.warm = ball, steps, warm
        self.period = max(int(0.04 * steps), 1)

    def start(self, x, generator):
        """``x + N(0, 1)`` projected onto the ball inside the bounds."""
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return self.ball.project(x + noise, x)

    def enter(self, x_start, x):
        """The start of the phase: ``x_start`` projected onto its ball."""
        return self.ball.project(x_start, x)

    def init(self, s):
        """The rule's per-point state, next to the run's (``s.x``, ``s.x_cur``...)."""
        n, dim, x = s.x.shape[0], s.x[0].numel(), s.x
        s.eta = torch.full((n,), self.ball.eps, dtype=x.dtype, device=x.device)
        if self.warm:
            s.sparsity = _sparsity(s.x_cur - s.x)
            s.share = s.sparsity / dim / _DECAY
        else:
            s.sparsity = torch.full_like(s.eta, float(dim))
            s.share = torch.full_like(s.eta, _FIRST_K)

    def step(self, s, k, bounds):
        """The next iterate: the sparse step, projected onto the ball inside the bounds."""
        return self.ball.project(s.x_cur + _sparse_step(s.grad, s.share, s.eta), s.x, bounds)

    def observe(self, s, loss):
        """Nothing: the schedule reads the best point's sparsity only."""

    def adapt(self, s, k):
        """After step ``k``: every period, the sparsity and size of the next steps;
        returns the points whose best point got sparser (they restart from it, with
        ``eta = eps``), or ``None`` between checks."""
        if (k + 1) % self.period:
            return None
        radius = self.ball.eps
        sparsity = _sparsity(s.x_best - s.x)
        dropped = sparsity < _DROP * s.sparsity
        s.share = sparsity / s.x[0].numel() / _DECAY
        eta = torch.where(dropped, torch.full_like(s.eta, radius), s.eta / _DECAY)
        s.eta = eta.clamp(radius / _MIN_STEP, radius)
        s.sparsity = sparsity
        return dropped


def _sparsity(delta):
    return (delta != 0).flatten(1).sum(dim=1).to(delta.dtype)


def _sparse_step(grad, share, eta):
    """Signs of the ``share`` largest ``|grad|`` of each row, l_1 length ``eta``."""
    flat = grad.flatten(1)
    dim = flat.shape[1]
    size = flat.abs()
    # The reference's threshold: the entry at rank floor((1 - share) * D) in ascending order.
    rank = ((1.0 - share) * dim).clamp(0, dim - 1).long()
    threshold = size.sort(dim=1).values.gather(1, rank[:, None])
    signs = torch.sign(flat) * (size >= threshold)
    step = signs / (signs.abs().sum(dim=1, keepdim=True) + 1e-10)
    return (per_sample(eta, flat) * step).view_as(grad)
