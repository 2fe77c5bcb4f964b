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

from ._square_oracle import _TABLE_CELLS, WorkingSet


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


def _channel_norms(v):
    return v.flatten(2).norm(dim=2)[:, :, None, None]  # (b, c, 1, 1)


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


def _placed(choices, variant, top, left, h, w, mask):
    """The patterns ``choices[variant]`` with their top-left corner at ``(top, left)``.

    ``variant`` indexes ``choices`` (``(V, side_h, side_w)``); ``top`` and ``left``
    broadcast against it, and the result, ``variant.shape + (h, w)``, is zero outside
    ``mask`` (the windows).
    """
    side_h, side_w = choices.shape[1:]
    rows = (torch.arange(h, device=choices.device) - top[..., None]).clamp(0, side_h - 1)
    cols = (torch.arange(w, device=choices.device) - left[..., None]).clamp(0, side_w - 1)
    picked = choices[variant[..., None, None], rows[..., :, None], cols[..., None, :]]
    return picked * mask


class _Fresh:
    """The fresh patterns of one window side: ``-p, +p, -p.T, +p.T`` (``p.T`` only if square).

    ``variant = 2 * transposed + positive``. With few enough windows every placement is
    tabulated once, so an iteration looks its patterns up in one operation.
    """

    def __init__(self, oracle, windows):
        _, self.h, self.w = oracle.image_shape
        self.windows = windows
        base = pattern(windows.side_h, windows.side_w, oracle.device, oracle.dtype)
        turned = base.T if windows.side_h == windows.side_w else base
        self.choices = torch.stack([-base, base, -turned, turned])
        self.table = None
        if windows.table is not None and 4 * windows.table.numel() <= _TABLE_CELLS:
            top, left = windows.corners(torch.arange(windows.n_positions,
                                                     device=oracle.device))
            variants = torch.arange(4, device=oracle.device)[:, None].expand(4, top.shape[0])
            self.table = _placed(self.choices, variants, top[:, 0], left[:, 0], self.h,
                                 self.w, windows.table)  # (4, n_positions, h, w)

    def __call__(self, variant, positions, mask):
        """Patterns ``(b, c, h, w)`` for per-channel ``variant`` ``(b, c)`` at ``positions``."""
        if self.table is not None:
            return self.table[variant, positions[:, None]]
        top, left = self.windows.corners(positions)
        return _placed(self.choices, variant, top, left, self.h, self.w, mask)


def search_l2(square, oracle, x, y):
    """Square Attack, l_2, on one batch (see :class:`~sklearn_robust.attacks.Square`)."""
    eps = square.threat.eps
    c, h, w = oracle.image_shape
    x_img, x_best, m_best, fooled = oracle.start(
        x, y, lambda n: _to_sphere(_initial(oracle, n), eps))
    standing = WorkingSet(x_best, m_best, fooled, y, x=x_img, best=x_best)
    fresh_patterns = {}

    for iteration in range(1, square.n_queries):
        b = len(standing)
        if b == 0:
            break
        x_cur, best = standing.state["x"], standing.state["best"]
        delta = best - x_cur
        windows = oracle.windows(*_window_side(square.p_schedule(iteration), h, w))
        if windows not in fresh_patterns:
            fresh_patterns[windows] = _Fresh(oracle, windows)
        positions = oracle.positions(b, windows)
        first, w_first = windows.masks(positions)
        second, w_second = windows.masks(oracle.positions(b, windows))

        # Per channel: the mass of the two windows plus a share of the unused budget
        # (sums over a window as batched products with its weights).
        squares = (delta * delta).view(b, c, -1)
        in_both = torch.bmm(squares, torch.maximum(w_first, w_second)).view(b, c, 1, 1)
        in_first = torch.bmm(squares, w_first).view(b, c, 1, 1)
        unused = (eps ** 2 - squares.sum(dim=(1, 2))).clamp_min(0)
        available = (in_both + unused.view(-1, 1, 1, 1) / c).sqrt()
        old = delta * first / in_first.sqrt().clamp_min(1e-12)
        # One orientation per point, one sign per channel: the pattern's variant.
        bits = torch.randint(0, 2, (b, 1 + c), generator=oracle.generator,
                             device=oracle.device)
        variant = 2 * bits[:, :1] + bits[:, 1:]
        new = old + fresh_patterns[windows](variant, positions, first)
        new = new * (available / _channel_norms(new).clamp_min(1e-12))
        proposal = torch.where(first | second, new, delta)  # the second window emptied
        x_new = oracle.clamp(x_cur + _to_sphere(proposal, eps))
        standing.step(oracle, x_new, best=x_new)
    return square.threat.project(standing.finish(standing.state["best"]).reshape(x.shape), x)
