"""The window patterns of Square's l_2 and l_1 proposals (Andriushchenko et al. 2020,
section 3.2; Croce & Hein 2021, section 5).

A pattern is concentric squares whose weights ``1 / (k + 1)^power`` add up towards the
centre (``power`` 2 for l_2, 4 for l_1, whose patterns are sparser), positive on one half
of the window and negative on the other, of unit norm. The initial perturbation tiles the
image with them; each proposal adds a fresh one to a window's old content.
"""

import math

import torch


def rings(height, width, device=None, dtype=torch.float32, power=2):
    """The paper's concentric-squares weights on a ``height x width`` rectangle.

    A cell at Chebyshev distance ``d`` from the centre gets ``sum_{k=d}^{n-1} 1/(k+1)^power``
    with ``n`` squares in all, so weights grow towards the centre (``power`` 2 for l_2,
    4 for l_1, whose patterns are sparser).

    Examples
    --------
    >>> from sklearn_robust.attacks._square._patterns import rings
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
    >>> from sklearn_robust.attacks._square._patterns import pattern
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


def tiles(oracle, n, norm):
    """``n`` perturbations ``(n, c, h, w)``: a 5 x 5 grid of the norm's patterns, each
    with one random sign per channel."""
    c, h, w = oracle.image_shape
    tile_h, tile_w = max(h // 5, 1), max(w // 5, 1)
    top, left = max((h - 5 * tile_h) // 2, 0), max((w - 5 * tile_w) // 2, 0)
    tile = pattern(tile_h, tile_w, oracle.device, oracle.dtype, norm=norm)
    delta = torch.zeros(n, c, h, w, device=oracle.device, dtype=oracle.dtype)
    for row in range(top, h - tile_h + 1, tile_h):
        for col in range(left, w - tile_w + 1, tile_w):
            sign = oracle.signs((n, c, 1, 1))
            delta[:, :, row:row + tile_h, col:col + tile_w] = sign * tile
    return delta


def odd_window_sides(p, height, width):
    """Sides of the l_2 and l_1 windows: ``sqrt(p * area)`` (rows: ``p * width``), odd,
    at least 3.

    Examples
    --------
    >>> odd_window_sides(0.1, 28, 28), odd_window_sides(0.5, 1, 10)
    ((9, 9), (1, 5))
    """
    if height == 1:
        side = max(round(p * width), 3)
        side += 1 - side % 2
        return 1, min(side, width)
    side = max(round(math.sqrt(p * height * width)), 3)
    side += 1 - side % 2
    side = min(side, height, width)
    return side, side
