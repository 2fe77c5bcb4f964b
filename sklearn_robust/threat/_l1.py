"""The l_1 geometry: the exact projection onto the l_1 ball inside a box, starts, sparse steps.

With images the effective threat is the l_1 ball intersected with the box of valid inputs,
and Croce & Hein (2021, "Mind the box") show that ignoring the box (projecting onto the
ball, then clipping) gives weaker attacks. :func:`project_l1_box` solves the
intersection exactly. Everything works on flattened batches ``(N, D)``.
"""

import math

import torch

#: Fraction of the coordinates a sparse l_1 step moves by default: Tramer & Boneh's SLIDE
#: keeps the gradient entries above the 99th percentile of ``|g|``.
L1_FRACTION = 0.01


def project_l1_box(v, low, high, eps):
    """Euclidean projection of each row of ``v`` onto ``{d : ||d||_1 <= eps, low <= d <= high}``.

    ``low <= 0 <= high`` (the box of the perturbation around a point inside the bounds),
    tensors broadcastable to ``v`` or ``None`` (unbounded). The KKT conditions give
    ``d_i = sign(v_i) min(max(|v_i| - lam, 0), c_i)`` with ``c_i`` the room towards
    ``sign(v_i)`` and ``lam >= 0`` the least value with ``||d||_1 <= eps``. The l_1 norm
    ``phi(lam) = sum_i min(max(|v_i| - lam, 0), c_i)`` is piecewise linear and
    non-increasing with breakpoints ``|v_i| - c_i`` and ``|v_i|``; sorting them gives
    ``lam`` exactly. Solved in float64, returned in ``v``'s dtype.

    Parameters
    ----------
    v : torch.Tensor of shape (N, D)
        Perturbations to project.
    low, high : torch.Tensor broadcastable to (N, D), or None
        The box of the perturbation (``low <= 0 <= high``).
    eps : float
        Radius of the l_1 ball (``>= 0``).

    Returns
    -------
    torch.Tensor of shape (N, D)

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust.threat._l1 import project_l1_box
    >>> project_l1_box(torch.tensor([[3.0, 1.0]]), None, None, 2.0)  # soft threshold at 1
    tensor([[2., 0.]])
    >>> project_l1_box(torch.tensor([[3.0, 1.0]]), None, torch.tensor(1.0), 2.0)  # capped
    tensor([[1., 1.]])
    """
    w = v.to(torch.float64)
    size = w.abs()
    up = w >= 0
    inf = torch.full_like(w, math.inf)
    room_up = inf if high is None else high.to(torch.float64).expand_as(w)
    room_down = inf if low is None else (-low.to(torch.float64)).expand_as(w)
    cap = torch.where(up, room_up, room_down).clamp_min(0)
    inside = torch.minimum(size, cap)  # the box alone (lam = 0)
    over = inside.sum(dim=1) > eps
    if not bool(over.any()):
        return (torch.sign(w) * inside).to(v.dtype)
    lam = torch.zeros(w.shape[0], dtype=torch.float64, device=w.device)
    lam[over] = _threshold(size[over], cap[over], eps)
    d = torch.minimum((size - lam[:, None]).clamp_min(0), cap)
    return (torch.sign(w) * d).to(v.dtype)


def _threshold(size, cap, eps):
    """The ``lam > 0`` with ``phi(lam) = eps`` for rows with ``phi(0) > eps``."""
    n, dim = size.shape
    starts = (size - cap).clamp_min(0)  # where a coordinate starts to shrink
    points = torch.cat([torch.zeros(n, 1, dtype=size.dtype, device=size.device),
                        starts, size], dim=1)
    # +1 where a coordinate starts shrinking, -1 where it reaches 0 (the leading 0: none)
    signs = torch.cat([torch.zeros(n, 1, dtype=size.dtype, device=size.device),
                       torch.ones_like(starts), -torch.ones_like(size)], dim=1)
    points, order = points.sort(dim=1)
    active = signs.gather(1, order).cumsum(dim=1)  # shrinking coordinates after each point
    gaps = points.diff(dim=1)
    phi0 = torch.minimum(size, cap).sum(dim=1, keepdim=True)
    drop = torch.cat([torch.zeros_like(phi0), (active[:, :-1] * gaps).cumsum(dim=1)], dim=1)
    phi = phi0 - drop  # phi at each sorted breakpoint
    # the last breakpoint still above eps; phi falls linearly with slope -active after it
    j = ((phi > eps).sum(dim=1, keepdim=True) - 1).clamp(0, 2 * dim)
    lam = points.gather(1, j) + (phi.gather(1, j) - eps) / active.gather(1, j).clamp_min(1)
    return torch.minimum(lam.squeeze(1), size.amax(dim=1))


def uniform_l1(shape, eps, generator=None, device=None, dtype=torch.float32):
    """Points drawn uniformly from the l_1 ball of radius ``eps`` in ``R^D`` (rows).

    With ``E_1, ..., E_{D+1}`` i.i.d. exponential, ``(E_1, ..., E_D) / sum_j E_j`` is
    uniform on ``{y >= 0, sum_i y_i <= 1}``; random signs make it uniform on the ball.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust.threat._l1 import uniform_l1
    >>> z = uniform_l1((1000, 3), 0.5, torch.Generator().manual_seed(0))
    >>> bool((z.abs().sum(dim=1) <= 0.5).all())
    True
    """
    n, dim = shape
    e = torch.empty(n, dim + 1, device=device, dtype=torch.float64).exponential_(
        generator=generator)
    signs = torch.randint(0, 2, (n, dim), generator=generator, device=device) * 2 - 1
    radial = e[:, :dim] / e.sum(dim=1, keepdim=True)
    return (eps * signs * radial).to(dtype)


def sparse_direction(grad, fraction=L1_FRACTION, movable=None):
    """The sparse l_1 ascent step of unit l_1 norm, per row of ``grad`` ``(N, D)``.

    The signs of the ``k = ceil(fraction * D)`` largest ``|grad|`` entries (ties
    included), each ``1 / (their number)``: Tramer & Boneh's SLIDE step (``fraction =
    1 - q / 100``). ``movable`` (boolean, like ``grad``) leaves out the coordinates the
    box stops from moving along their gradient, so the step's mass is not spent on them.
    Rows without a usable gradient get a zero step.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust.threat._l1 import sparse_direction
    >>> sparse_direction(torch.tensor([[0.1, -3.0, 2.0, -3.0]]), fraction=0.5)
    tensor([[ 0.0000, -0.5000,  0.0000, -0.5000]])
    """
    score = grad.abs()
    if movable is not None:
        score = torch.where(movable, score, torch.zeros_like(score))
    k = min(max(math.ceil(fraction * grad.shape[1]), 1), grad.shape[1])
    kth = score.topk(k, dim=1).values[:, -1:]
    chosen = (score >= kth) & (score > 0)
    step = torch.sign(grad) * chosen
    return step / chosen.sum(dim=1, keepdim=True).clamp_min(1)
