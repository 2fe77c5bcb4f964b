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


def rings(height, width, device=None, dtype=torch.float32):
    """The paper's concentric-squares weights on a ``height x width`` rectangle.

    A cell at Chebyshev distance ``d`` from the centre gets ``sum_{k=d}^{n-1} 1/(k+1)^2``
    with ``n`` squares in all, so weights grow towards the centre.

    Examples
    --------
    >>> from sklearn_robust.attacks._square_l2 import rings
    >>> rings(1, 3)
    tensor([[0.2500, 1.2500, 0.2500]])
    """
    if height == 0 or width == 0:
        return torch.zeros(height, width, device=device, dtype=dtype)
    n = max(height // 2, width // 2) + 1
    rows = (torch.arange(height, device=device) - height // 2).abs()
    cols = (torch.arange(width, device=device) - width // 2).abs()
    dist = torch.maximum(rows[:, None], cols[None, :])
    weights = 1.0 / torch.arange(1, n + 1, device=device, dtype=dtype) ** 2
    suffix = weights.flip(0).cumsum(0).flip(0)  # suffix[d] = sum_{k >= d} weights[k]
    return suffix[dist]


def pattern(height, width, device=None, dtype=torch.float32):
    """The window pattern of unit l_2 norm: ``+rings`` on one half, ``-rings`` on the other.

    Windows of more than one row are split into top and bottom halves, rows into left and
    right halves.

    Examples
    --------
    >>> from sklearn_robust.attacks._square_l2 import pattern
    >>> p = pattern(3, 3)
    >>> round(float(p.norm()), 6), bool((p[0] > 0).all()), bool((p[1:] < 0).all())
    (1.0, True, True)
    """
    out = torch.zeros(height, width, device=device, dtype=dtype)
    if height > 1:
        half = height // 2
        out[:half] = rings(half, width, device, dtype)
        out[half:] = -rings(height - half, width, device, dtype)
    else:
        half = width // 2
        out[:, :half] = rings(1, half, device, dtype)
        out[:, half:] = -rings(1, width - half, device, dtype)
    return out / out.norm().clamp_min(1e-12)


def _window_side(p, height, width):
    """Side of the l_2 windows: ``sqrt(p * area)`` (rows: ``p * width``), odd, >= 3."""
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


def _placed(oracle, b, side_h, side_w, corners):
    """The pattern at each image's window, randomly transposed if square: ``(b, 1, h, w)``."""
    _, h, w = oracle.image_shape
    base = pattern(side_h, side_w, oracle.device, oracle.dtype)
    choices = torch.stack([base, base.T]) if side_h == side_w else base[None]
    pick = torch.randint(0, choices.shape[0], (b,), generator=oracle.generator,
                         device=oracle.device)
    top, left = corners
    rows = (torch.arange(h, device=oracle.device) - top).clamp(0, side_h - 1)  # (b, h)
    cols = (torch.arange(w, device=oracle.device) - left).clamp(0, side_w - 1)  # (b, w)
    return choices[pick[:, None, None], rows[:, :, None], cols[:, None, :]][:, None]


def search_l2(square, oracle, x, y):
    """Square Attack, l_2, on one batch (see :class:`~sklearn_robust.attacks.Square`)."""
    eps = square.threat.eps
    c, h, w = oracle.image_shape
    x_img, x_best, m_best, fooled = oracle.start(
        x, y, lambda n: _to_sphere(_initial(oracle, n), eps))

    for iteration in range(1, square.n_queries):
        idx = (~fooled).nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        b = idx.numel()
        x_cur = x_img[idx]
        delta = x_best[idx] - x_cur
        side_h, side_w = _window_side(square.p_schedule(iteration), h, w)
        corners = oracle.corners(b, side_h, side_w)
        first = oracle.windows(b, side_h, side_w, corners)[:, None]
        second = oracle.windows(b, side_h, side_w)[:, None]

        # The budget the two windows hold, plus what the whole perturbation leaves unused.
        unused = (eps ** 2 - delta.flatten(1).pow(2).sum(dim=1)).clamp_min(0)
        available = (_channel_norms(delta * (first | second)) ** 2
                     + unused.view(-1, 1, 1, 1) / c).sqrt()
        old = delta * first / _channel_norms(delta * first).clamp_min(1e-12)
        fresh = _placed(oracle, b, side_h, side_w, corners) * first
        new = old + oracle.signs((b, c, 1, 1)) * fresh
        new = new / _channel_norms(new).clamp_min(1e-12) * available
        proposal = torch.where(first, new, torch.where(second, torch.zeros_like(delta), delta))
        x_new = oracle.clamp(x_cur + _to_sphere(proposal, eps))

        oracle.accept(idx, x_new, y, x_best, m_best, fooled)
    return square.threat.project(x_best.reshape(x.shape), x)
