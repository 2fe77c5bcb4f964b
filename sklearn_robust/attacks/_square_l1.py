"""Square Attack's l_1 variant (Croce & Hein 2021, "Mind the box", section 5).

The l_2 variant's scheme (``_square_l2.py``) with the l_1 geometry, as in AutoAttack's
``square.py``: window patterns of concentric squares with weights ``1 / (k + 1)^4``
(sparser than l_2's ``1 / (k + 1)^2``), positive on one half and negative on the other,
of unit l_1 norm; each proposal moves the mass of two random windows (plus the unused
budget) into the first as its old content plus a fresh pattern, empties the second, and
projects exactly onto the l_1 ball intersected with the bounds.
"""

from __future__ import annotations

import torch

from ._square_l2 import _window_side, pattern


def _window(gen, b, side_h, side_w, h, w, device):
    """Random windows ``(b, 1, h, w)`` and their corners."""
    top = torch.randint(0, h - side_h + 1, (b, 1), generator=gen, device=device)
    left = torch.randint(0, w - side_w + 1, (b, 1), generator=gen, device=device)
    rows, cols = torch.arange(h, device=device), torch.arange(w, device=device)
    in_rows = (rows >= top) & (rows < top + side_h)
    in_cols = (cols >= left) & (cols < left + side_w)
    return (in_rows[:, :, None] & in_cols[:, None, :])[:, None], (top, left)


def _placed(gen, b, side_h, side_w, corners, h, w, device, dtype):
    """The pattern at each image's window, randomly transposed if square: ``(b, 1, h, w)``."""
    base = pattern(side_h, side_w, device, dtype, norm="l1")
    choices = torch.stack([base, base.T]) if side_h == side_w else base[None]
    pick = torch.randint(0, choices.shape[0], (b,), generator=gen, device=device)
    top, left = corners
    rows = (torch.arange(h, device=device) - top).clamp(0, side_h - 1)
    cols = (torch.arange(w, device=device) - left).clamp(0, side_w - 1)
    return choices[pick[:, None, None], rows[:, :, None], cols[:, None, :]][:, None]


def _signs(gen, shape, device, dtype):
    return (2 * torch.randint(0, 2, shape, generator=gen, device=device) - 1).to(dtype)


def _initial(gen, b, c, h, w, device, dtype):
    """A 5 x 5 grid of tiles, each a pattern with one random sign per channel."""
    tile_h, tile_w = (max(h // 5, 1), max(w // 5, 1)) if h > 1 else (1, max(w // 5, 1))
    top, left = max((h - 5 * tile_h) // 2, 0), max((w - 5 * tile_w) // 2, 0)
    tile = pattern(tile_h, tile_w, device, dtype, norm="l1")
    delta = torch.zeros(b, c, h, w, device=device, dtype=dtype)
    for row in range(top, h - tile_h + 1, tile_h):
        for col in range(left, w - tile_w + 1, tile_w):
            delta[:, :, row:row + tile_h, col:col + tile_w] = _signs(
                gen, (b, c, 1, 1), device, dtype) * tile
    return delta


def _l1(v):
    return v.abs().flatten(2).sum(dim=2)[:, :, None, None]  # (b, c, 1, 1)


def search_l1(square, oracle, x, y):
    """Square Attack, l_1, on one batch (see :class:`~sklearn_robust.attacks.Square`)."""
    threat, gen = square.threat, oracle.generator
    eps, device, dtype = threat.eps, oracle.device, oracle.dtype
    c, h, w = oracle.image_shape
    shape = (-1, *x.shape[1:])

    def project(x_img, delta):  # in the caller's layout, where the bounds apply
        flat = x_img.reshape(shape)
        return threat.project(flat + delta.reshape(shape), flat).reshape(x_img.shape)

    x_img = x.reshape(-1, c, h, w)
    x_best = x_img.clone()
    m_best, fooled = oracle.query(x_img, y)
    idx = (~fooled).nonzero().squeeze(1)
    if idx.numel():
        x_init = project(x_img[idx], _initial(gen, idx.numel(), c, h, w, device, dtype))
        m_init, hit = oracle.query(x_init, y[idx])
        x_best[idx], m_best[idx], fooled[idx] = x_init, m_init, hit

    for iteration in range(1, square.n_queries):
        idx = (~fooled).nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        b = idx.numel()
        x_cur = x_img[idx]
        delta = x_best[idx] - x_cur
        side_h, side_w = _window_side(square.p_schedule(iteration), h, w)
        first, corners = _window(gen, b, side_h, side_w, h, w, device)
        second, _ = _window(gen, b, side_h, side_w, h, w, device)

        unused = (eps - delta.abs().flatten(1).sum(dim=1)).clamp_min(0).view(-1, 1, 1, 1)
        held = _l1(delta * (first | second))  # per channel, both windows
        old = delta * first / _l1(delta * first).clamp_min(1e-12)
        fresh = _placed(gen, b, side_h, side_w, corners, h, w, device, dtype) * first
        new = old + _signs(gen, (b, c, 1, 1), device, dtype) * fresh
        # The reference's budget per channel, times c; the exact projection trims any excess.
        new = new / _l1(new).clamp_min(1e-12) * (unused / c + held) * c
        proposal = torch.where(first, new, torch.where(second, torch.zeros_like(delta), delta))
        x_new = project(x_cur, proposal)

        m_new, hit = oracle.query(x_new, y[idx])
        accept = (m_new < m_best[idx]) | hit
        x_best[idx[accept]] = x_new[accept]
        m_best[idx[accept]] = m_new[accept]
        fooled[idx[hit]] = True
    return x_best.reshape(x.shape)
