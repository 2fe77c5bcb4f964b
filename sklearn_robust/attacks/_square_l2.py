"""Square Attack's l_2 variant (Andriushchenko et al. 2020, section 3.2).

The perturbation is built from the paper's window pattern: concentric squares whose
weights ``1 / (k + 1)^2`` add up towards the centre, positive on one half of the window
and negative on the other. The initial perturbation tiles the image with such patterns;
each proposal moves the mass of two random windows into the first, as a fresh pattern
added to its old content, and keeps the total norm at ``eps``.
"""

from __future__ import annotations

import math

import torch


def rings(height, width, device=None, dtype=torch.float32, power=2):
    """The paper's concentric-squares weights on a ``height x width`` rectangle.

    A cell at Chebyshev distance ``d`` from the centre gets ``sum_{k=d}^{n-1} 1/(k+1)^power``
    with ``n`` squares in all, so weights grow towards the centre (``power`` 2 for l_2,
    4 for l_1, whose patterns are sparser).

    Examples
    --------
    >>> from sklearn_robust.attacks._square_l2 import rings
    >>> rings(1, 3)
    tensor([[0.2500, 1.2500, 0.2500]])
    >>> rings(1, 3, power=4)
    tensor([[0.0625, 1.0625, 0.0625]])
    """
    if height == 0 or width == 0:
        return torch.zeros(height, width, device=device, dtype=dtype)
    n = max(height // 2, width // 2) + 1
    rows = (torch.arange(height, device=device) - height // 2).abs()
    cols = (torch.arange(width, device=device) - width // 2).abs()
    dist = torch.maximum(rows[:, None], cols[None, :])
    weights = 1.0 / torch.arange(1, n + 1, device=device, dtype=dtype) ** power
    suffix = weights.flip(0).cumsum(0).flip(0)  # suffix[d] = sum_{k >= d} weights[k]
    return suffix[dist]


def pattern(height, width, device=None, dtype=torch.float32, norm="l2"):
    """The window pattern of unit norm: ``+rings`` on one half, ``-rings`` on the other.

    Windows of more than one row are split into top and bottom halves, rows into left and
    right halves. ``norm='l1'``: the l_1 variant's rings (``power=4``), unit l_1 norm.

    Examples
    --------
    >>> from sklearn_robust.attacks._square_l2 import pattern
    >>> p = pattern(3, 3)
    >>> round(float(p.norm()), 6), bool((p[0] > 0).all()), bool((p[1:] < 0).all())
    (1.0, True, True)
    >>> round(float(pattern(3, 3, norm="l1").abs().sum()), 6)
    1.0
    """
    power = 4 if norm == "l1" else 2
    out = torch.zeros(height, width, device=device, dtype=dtype)
    if height > 1:
        half = height // 2
        out[:half] = rings(half, width, device, dtype, power)
        out[half:] = -rings(height - half, width, device, dtype, power)
    else:
        half = width // 2
        out[:, :half] = rings(1, half, device, dtype, power)
        out[:, half:] = -rings(1, width - half, device, dtype, power)
    size = out.abs().sum() if norm == "l1" else out.norm()
    return out / size.clamp_min(1e-12)


def _window_side(p, height, width):
    """Side of the l_2 and l_1 windows: ``sqrt(p * area)`` (rows: ``p * width``), odd, >= 3."""
    if height == 1:
        side = max(round(p * width), 3)
        side += 1 - side % 2
        return 1, min(side, width)
    side = max(round(math.sqrt(p * height * width)), 3)
    side += 1 - side % 2
    side = min(side, height, width)
    return side, side


def _to_sphere(delta, eps):
    norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    return delta * (eps / norms).view(-1, 1, 1, 1)


def _initial(oracle, b):
    """The 5 x 5 grid of tiles, each a pattern with one random sign per channel."""
    c, h, w = oracle.image_shape
    tile_h, tile_w = max(h // 5, 1), max(w // 5, 1)
    top, left = max((h - 5 * tile_h) // 2, 0), max((w - 5 * tile_w) // 2, 0)
    tile = pattern(tile_h, tile_w, oracle.device, oracle.dtype)
    delta = torch.zeros(b, c, h, w, device=oracle.device, dtype=oracle.dtype)
    for row in range(top, h - tile_h + 1, tile_h):
        for col in range(left, w - tile_w + 1, tile_w):
            sign = oracle.signs((b, c, 1, 1))
            delta[:, :, row:row + tile_h, col:col + tile_w] = sign * tile
    return delta


def search_l2(square, oracle, x, y):
    """Square Attack, l_2, on one batch (see :class:`~sklearn_robust.attacks.Square`).

    Each proposal rewrites the cells of its two windows and rescales the whole
    perturbation to norm ``eps``; the window sums are read from the two windows' cells
    (``side**2`` per channel), and only the rescaling, the clamp to the bounds and the
    acceptance touch the whole image.
    """
    eps = square.threat.eps
    c, h, w = oracle.image_shape
    x_img, x_best, m_best, fooled = oracle.start(
        x, y, lambda n: _to_sphere(_initial(oracle, n), eps))
    standing = (~fooled).nonzero().squeeze(1)
    x_cur, best = x_img.flatten(1)[standing], x_best.flatten(1)[standing]
    m_standing, y_standing = m_best[standing], y[standing]
    # The accepted perturbation and its squared norm, updated on the rows that accept.
    delta = best - x_cur
    total = (delta * delta).sum(dim=1)
    choices = {}

    for iteration in range(1, square.n_queries):
        b = standing.numel()
        if b == 0:
            break
        side_h, side_w = _window_side(square.p_schedule(iteration), h, w)
        cells = oracle.window_cells(side_h, side_w)
        if (side_h, side_w) not in choices:
            base = pattern(side_h, side_w, oracle.device, oracle.dtype)
            turned = base.T if side_h == side_w else base
            choices[side_h, side_w] = torch.stack([-base, base, -turned, turned])
        first_at = oracle.positions(b, cells)
        second_at = oracle.positions(b, cells)
        first, second = cells.indices(first_at), cells.indices(second_at)
        d_first, d_second = delta.gather(1, first), delta.gather(1, second)
        # The second window's cells outside the first (the union's other part).
        top1, left1 = cells.corners(first_at)
        top2, left2 = cells.corners(second_at)
        rows = top2 + cells.cell_rows
        cols = left2 + cells.cell_cols
        outside = ~((rows >= top1) & (rows < top1 + side_h)
                    & (cols >= left1) & (cols < left1 + side_w))  # (b, side_h * side_w)
        outside = outside.repeat(1, c)
        sq_first = (d_first * d_first).view(b, c, -1).sum(dim=2)  # (b, c)
        sq_second = (d_second * d_second * outside).view(b, c, -1).sum(dim=2)
        in_both = sq_first + sq_second
        unused = (eps ** 2 - total).clamp_min(0)
        available = (in_both + unused[:, None] / c).sqrt()  # (b, c)
        old = d_first.view(b, c, -1) / sq_first.sqrt().clamp_min(1e-12)[:, :, None]
        bits = torch.randint(0, 2, (b, 1 + c), generator=oracle.generator,
                             device=oracle.device)
        variant = 2 * bits[:, :1] + bits[:, 1:]  # one orientation, one sign per channel
        new = old + choices[side_h, side_w][variant].flatten(2)
        new = new * (available / new.norm(dim=2).clamp_min(1e-12))[:, :, None]
        new = new.flatten(1)
        proposal = delta.clone()
        proposal.scatter_(1, second, 0.0)  # the second window emptied...
        proposal.scatter_(1, first, new)  # ...into the first
        norm = (total - in_both.sum(dim=1) + (new * new).sum(dim=1)).clamp_min(0).sqrt()
        scale = eps / norm.clamp_min(1e-12)
        x_new = oracle.clamp(torch.addcmul(x_cur, proposal, scale[:, None]))
        m_new, hit = oracle.query(x_new, y_standing)
        accept = (m_new < m_standing) | hit
        taken = accept.nonzero().squeeze(1)
        if taken.numel():
            best[taken] = x_new[taken]
            delta[taken] = x_new[taken] - x_cur[taken]
            total[taken] = (delta[taken] * delta[taken]).sum(dim=1)
        m_standing = torch.where(accept, m_new, m_standing)
        if bool(hit.any()):
            x_best[standing[hit]] = best[hit].view(-1, c, h, w)
            rest = ~hit
            standing, m_standing, y_standing, best, x_cur, delta, total = (
                t[rest] for t in (standing, m_standing, y_standing, best, x_cur, delta, total)
            )
    x_best[standing] = best.view(-1, c, h, w)
    return square.threat.project(x_best.reshape(x.shape), x)
