"""FAB's geometry, one projection object per norm: the least-norm step onto a hyperplane
inside the box, the distance to a hyperplane and the direction of a random restart.

For points ``x`` (rows), hyperplanes ``b + <w, delta> = 0`` and the box
``low <= x + delta <= high``, :meth:`BoxProjection.onto_hyperplane` (and
:func:`boundary_step`) returns the ``delta`` of least norm. l_inf and l_2 reduce to one
monotone equation: with ``r = |b|`` and ``w`` turned towards the hyperplane, the
reachable value of ``<w, delta>`` at level ``tau`` is
``g(tau) = sum_j c_j min(tau, beta_j)`` (l_inf: ``c = |w|``, ``beta`` the room to the
box; l_2: ``c = w^2``, ``beta = room / |w|``, from the KKT conditions
``delta = clip(tau w)``). ``g`` is piecewise linear, increasing and concave, so
``g(tau) = r`` has an exact solution on one of its segments. It is found by pivoting
(Newton's method from the left, as in Michelot's simplex projection): assume the
coordinates with ``beta_j <= tau`` are saturated, solve the linear equation that leaves,
saturate the coordinates the new ``tau`` passes, and repeat until the set stops growing;
concavity keeps every ``tau`` at or below the solution. It settles in a few passes over
the coordinates (3 on FAB's rows from MNIST models), against a sort of every row; rows
that have not settled after ``_PIVOT_PASSES`` are solved by sorting the breakpoints.

l_1 is a fractional knapsack: a unit of l_1 spent on coordinate ``j`` buys ``|w_j|`` of
``<w, delta>``, so the coordinates are filled to the box in decreasing ``|w_j|`` until
``r`` is reached, the last one partly (exact; with ties any split is optimal). A
hyperplane the box cannot reach gets the box's farthest corner towards it.
"""

import torch

# Stands for "no bound": finite so that products and sums stay finite in float32.
_FAR = 1e20


# Pivoting passes before the rows still moving are handed to the sort (see the module doc).
_PIVOT_PASSES = 32


def _solve_level(c, beta, r):
    """Least ``tau`` with ``sum_j c_j min(tau, beta_j) >= r``, row by row (``inf``: none)."""
    total = c.sum(dim=1)
    c_beta = c * beta
    saturated = torch.empty_like(beta)  # 0/1 as floats: boolean masks are slow on CPU
    capped = torch.zeros_like(r)  # sum of c_j beta_j over the saturated coordinates
    slope = total  # sum of c_j over the others
    for _ in range(_PIVOT_PASSES):
        # A row with every coordinate saturated is flat: inf keeps its set as it is.
        tau = torch.where(slope > 0, (r - capped) / slope, float("inf"))
        torch.le(beta, tau[:, None], out=saturated)
        new_capped = (c_beta * saturated).sum(dim=1)
        new_slope = (c - c * saturated).sum(dim=1)  # not total - ...: no cancellation
        # The set only grows; when the sums stay put, so does tau: the row is solved.
        moving = (new_capped != capped) | (new_slope != slope)
        capped, slope = new_capped, new_slope
        if not bool(moving.any()):
            break
    # A row with every coordinate saturated (tau inf) is flat from its last breakpoint
    # on: it reaches r there, or never.
    at_last = (slope <= 0) & (r <= capped)
    if bool(at_last.any()):
        tau[at_last] = (beta[at_last] * (c[at_last] > 0)).amax(dim=1)
    if bool(moving.any()):
        tau[moving] = _solve_level_by_sort(c[moving], beta[moving], r[moving])
    return tau


def _solve_level_by_sort(c, beta, r):
    """:func:`_solve_level` by sorting the breakpoints (for rows the pivoting left moving)."""
    beta, order = beta.sort(dim=1)
    c = c.gather(1, order)
    capped = (c * beta).cumsum(dim=1)  # sum over j <= k of c_j beta_j
    slope = c.flip(1).cumsum(dim=1).flip(1)  # sum over j >= k of c_j
    after = slope - c  # sum over j > k
    g = capped + beta * after  # g at each breakpoint
    k = (g < r[:, None]).sum(dim=1, keepdim=True)  # the segment holding the solution
    d = beta.shape[1]
    inside = k < d
    k_in = k.clamp(max=d - 1)
    prev = (k_in - 1).clamp(min=0)
    g_prev = torch.where(k_in > 0, g.gather(1, prev), torch.zeros_like(r[:, None]))
    beta_prev = torch.where(k_in > 0, beta.gather(1, prev), torch.zeros_like(r[:, None]))
    tau = beta_prev + (r[:, None] - g_prev) / slope.gather(1, k_in).clamp_min(1e-30)
    return torch.where(inside, tau, torch.full_like(tau, float("inf"))).squeeze(1)


def _knapsack(size, room, r):
    """Per row, the amounts ``a_j`` in ``[0, room_j]`` of least sum with ``sum size_j a_j = r``."""
    order = size.argsort(dim=1, descending=True)
    s, cap = size.gather(1, order), room.gather(1, order)
    gain = s * cap
    reach = gain.cumsum(dim=1)
    before = reach - gain
    r = r[:, None]
    part = ((r - before) / s.clamp_min(1e-30)).clamp(min=0)
    amount = torch.where(reach <= r, cap, torch.where(before < r, torch.minimum(part, cap),
                                                         torch.zeros_like(cap)))
    return torch.zeros_like(amount).scatter(1, order, amount)


class BoxProjection:
    """FAB's geometry in one norm: hyperplanes, the box, and random restarts.

    Attributes
    ----------
    dual : float
        The exponent of the dual norm, in which the distance to a hyperplane
        ``b + <w, delta> = 0`` is ``|b| / ||w||_dual``.
    """

    dual = 2

    def distance(self, b, w):
        """Distance of each point to its hyperplane ``b + <w, delta> = 0`` (no box).

        ``b`` of shape ``(N, ...)`` and ``w`` of shape ``(N, ..., D)``: one hyperplane
        per entry of ``b``.
        """
        return b.abs() / (w.norm(p=self.dual, dim=-1) + 1e-12)

    def onto_hyperplane(self, x, w, b, low, high):
        """Least-norm ``delta`` with ``b + <w, delta> = 0`` and ``low <= x + delta <= high``.

        See :func:`boundary_step`.
        """
        toward = w * torch.sign(-b)[:, None]  # <toward, delta> must reach r = |b|
        up = toward > 0
        room_up = (high - x) if high is not None else torch.full_like(x, _FAR)
        room_down = (x - low) if low is not None else torch.full_like(x, _FAR)
        room = torch.where(up, room_up, room_down).clamp(0, _FAR)
        return self._least_norm(toward, toward.abs(), room, b.abs())

    def random_direction(self, x, generator):
        """Noise of ``x``'s shape whose direction is uniform (Gaussian)."""
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)

    def _least_norm(self, toward, size, room, r):
        # l_2: delta = clip(tau w), with the level tau of the module docstring.
        beta = torch.where(size > 0, room / size.clamp_min(1e-30), torch.zeros_like(room))
        tau = _solve_level(size * size, beta.clamp(max=_FAR), r)
        return toward * torch.minimum(tau[:, None], beta)


class LinfProjection(BoxProjection):
    """l_inf: every coordinate moves by the same level, capped by the box."""

    dual = 1

    def random_direction(self, x, generator):
        """Uniform noise in ``[-1, 1]``."""
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return 2 * noise - 1

    def _least_norm(self, toward, size, room, r):
        tau = _solve_level(size, room, r)
        return torch.sign(toward) * torch.minimum(tau[:, None], room)


class L2Projection(BoxProjection):
    """l_2: the step along ``w``, clipped coordinates redistributed (KKT)."""


class L1Projection(BoxProjection):
    """l_1: a fractional knapsack, the coordinates of largest ``|w_j|`` first."""

    dual = float("inf")

    def _least_norm(self, toward, size, room, r):
        return torch.sign(toward) * _knapsack(size, room, r)


#: The projection of each norm.
PROJECTIONS = {"linf": LinfProjection(), "l2": L2Projection(), "l1": L1Projection()}


def boundary_step(x, w, b, low, high, norm):
    """Least-norm ``delta`` with ``b + <w, delta> = 0`` and ``low <= x + delta <= high``.

    Parameters
    ----------
    x, w : torch.Tensor of shape (N, D)
        Points and hyperplane normals, flattened.
    b : torch.Tensor of shape (N,)
        The hyperplane's value at each point.
    low, high : torch.Tensor broadcastable to (N, D), or None
        The box (None: unbounded).
    norm : {'linf', 'l2', 'l1'}
        The norm of ``delta`` to minimise.

    Returns
    -------
    torch.Tensor of shape (N, D)

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust.attacks._fab._projections import boundary_step
    >>> x, w, b = torch.zeros(1, 2), torch.tensor([[1.0, 3.0]]), torch.tensor([-2.0])
    >>> boundary_step(x, w, b, None, None, "linf")  # |delta_j| = 2 / ||w||_1
    tensor([[0.5000, 0.5000]])
    >>> boundary_step(x, w, b, None, torch.tensor(0.5), "l2")  # the box caps delta_2
    tensor([[0.5000, 0.5000]])
    >>> boundary_step(x, w, b, None, torch.tensor(0.5), "l1")  # delta_2 first, then delta_1
    tensor([[0.5000, 0.5000]])
    >>> boundary_step(x, w, b, None, None, "l1")  # one coordinate, the largest |w_j|
    tensor([[0.0000, 0.6667]])
    """
    return PROJECTIONS[norm].onto_hyperplane(x, w, b, low, high)
