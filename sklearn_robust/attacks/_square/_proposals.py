"""Square Attack's proposals, one object per norm: the start and the random steps.

The random search (``_attack.py``) is the same for every norm; a proposal object gives
its initial perturbation (:meth:`initial`, then :meth:`start` sets the per-point state
``s.best``...), its candidate for each point at each iteration (:meth:`propose`) and the
update of the points that accept it (:meth:`accept`). Points are rows of ``c * h * w``
values (see ``_oracle.py``).

- :class:`LinfProposal` (Andriushchenko et al. 2020): stripes of ``+-eps``, then windows
  set to a face of the ball, one random sign per channel.
- :class:`L2Proposal` (same paper, section 3.2): a grid of patterns on the sphere, then
  the mass of two windows moved into the first as its old content plus a fresh pattern,
  the whole perturbation rescaled to norm ``eps``.
- :class:`L1Proposal` (Croce & Hein 2021): as l_2 with the l_1 patterns and budgets,
  every candidate projected exactly onto the l_1 ball inside the bounds.
"""

import math

import torch

from ._patterns import odd_window_sides, pattern, tiles

# Fresh signs drawn for an l_inf window that would not change the point (reference:
# unbounded).
_MAX_RESAMPLE = 10


class LinfProposal:
    """l_inf: each window set to ``+eps`` or ``-eps`` around ``x``, one sign per channel.

    Every cell of a standing point sits on a face of the ball clamped to the bounds,
    ``up`` (+eps) or ``down`` (-eps); where the bounds leave less than 1e-7 of room (the
    reference's test of an unchanged cell) it is pinned to ``down``. A candidate differs
    from the point only inside its window, so an iteration reads and writes the window's
    cells (``side**2`` per channel), never the whole image.
    """

    def __init__(self, threat, oracle):
        self.eps, self.oracle = threat.eps, oracle

    def initial(self, x):
        """Vertical stripes of ``+-eps``, one sign per channel and column."""
        c, h, w = self.oracle.image_shape
        stripes = self.eps * self.oracle.signs((x.shape[0], c, 1, w))
        return self.oracle.clamp((x.view(-1, c, h, w) + stripes).flatten(1))

    def start(self, s, x_init):
        """The per-point state: the faces, the movable cells, the point on them."""
        s.up, s.down = self.oracle.clamp(s.x + self.eps), self.oracle.clamp(s.x - self.eps)
        s.movable = s.up - s.down >= 1e-7
        s.best = torch.where(s.movable, x_init, s.down)

    def propose(self, s, p):
        """``s.best`` with a random window flipped to a random face (in place).

        Returns the candidate and what :meth:`accept` needs to undo it.
        """
        oracle, b = self.oracle, s.best.shape[0]
        c = oracle.image_shape[0]
        cells = oracle.window_cells(*self.window_sides(p))
        where = cells.indices(oracle.positions(b, cells))  # (b, c * side_h * side_w)
        old, hi, lo = s.best.gather(1, where), s.up.gather(1, where), s.down.gather(1, where)
        free = s.movable.gather(1, where)
        # A sign changes a channel when some movable cell of its window is on the other face.
        can_up = ((old < hi) & free).view(b, c, -1).any(dim=2)
        can_down = ((old > lo) & free).view(b, c, -1).any(dim=2)
        sign_up = self._signs(can_up, can_down)  # (b, c)
        take_up = sign_up[:, :, None].expand(b, c, cells.per_channel).reshape(b, -1) & free
        new = torch.where(take_up, hi, lo)
        s.best.scatter_(1, where, new)  # the candidates, queried in place
        return s.best, (where, new, old)

    def accept(self, s, candidate, change, accepted):
        """Keep the accepted windows, restore the others."""
        where, new, old = change
        s.best.scatter_(1, where, torch.where(accepted[:, None], new, old))

    def finish(self, found, x):
        """The points, in ``x``'s shape."""
        return found.reshape(x.shape)

    def window_sides(self, p):
        """A square of about ``p`` of the image (rows: an interval of ``p * width``)."""
        _, height, width = self.oracle.image_shape
        if height == 1:
            return 1, min(max(round(p * width), 1), max(width - 1, 1))
        side = round(math.sqrt(p * height * width))
        side = min(max(side, 1), max(min(height, width) - 1, 1))
        return side, side

    def _signs(self, can_up, can_down):
        """One sign per channel and point (True: up) whose window changes the point.

        The paper's code redraws a point's signs until its window changes. One channel:
        a fair coin among the changing signs (a coin too if both or neither change),
        exactly where redrawing ends. Several: ``1 + _MAX_RESAMPLE`` draws at once, each
        point taking its first changing one (its last if none changes), as drawing in
        turn would, without a loop.
        """
        oracle, (b, c) = self.oracle, can_up.shape
        if c == 1:
            coin = torch.randint(0, 2, (b, 1), generator=oracle.generator,
                                 device=oracle.device).bool()
            return torch.where(can_up == can_down, coin, can_up)
        draws = torch.randint(0, 2, (b, 1 + _MAX_RESAMPLE, c),
                              generator=oracle.generator, device=oracle.device).bool()
        changes = torch.where(draws, can_up[:, None], can_down[:, None]).any(dim=2)
        changes[:, -1] = True
        first = changes.byte().argmax(dim=1)  # argmax returns the first maximum
        return draws[torch.arange(b, device=oracle.device), first]  # (b, c)


class L2Proposal:
    """l_2: two windows' mass moved into the first, the perturbation kept at norm ``eps``.

    A candidate rewrites the cells of its two windows and rescales the whole perturbation
    to norm ``eps``; the window sums are read from the two windows' cells (``side**2``
    per channel), and only the rescaling, the clamp to the bounds and the acceptance
    touch the whole image.
    """

    def __init__(self, threat, oracle):
        self.threat, self.eps, self.oracle = threat, threat.eps, oracle
        self.choices = {}  # the four patterns of each side: two orientations, two signs

    def initial(self, x):
        """The grid of l_2 patterns, rescaled to norm ``eps``."""
        c, h, w = self.oracle.image_shape
        delta = tiles(self.oracle, x.shape[0], "l2")
        norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
        delta = delta * (self.eps / norms).view(-1, 1, 1, 1)
        return self.oracle.clamp((x.view(-1, c, h, w) + delta).flatten(1))

    def start(self, s, x_init):
        """The per-point state: the point, its perturbation and its squared norm."""
        s.best = x_init
        s.delta = s.best - s.x
        s.total = (s.delta * s.delta).sum(dim=1)

    def propose(self, s, p):
        """A candidate per point; returns it (nothing to undo)."""
        oracle, eps, b = self.oracle, self.eps, s.best.shape[0]
        c = oracle.image_shape[0]
        side_h, side_w = odd_window_sides(p, *oracle.image_shape[1:])
        cells = oracle.window_cells(side_h, side_w)
        if (side_h, side_w) not in self.choices:
            base = pattern(side_h, side_w, oracle.device, oracle.dtype)
            turned = base.T if side_h == side_w else base
            self.choices[side_h, side_w] = torch.stack([-base, base, -turned, turned])
        first_at, second_at = oracle.positions(b, cells), oracle.positions(b, cells)
        first, second = cells.indices(first_at), cells.indices(second_at)
        d_first, d_second = s.delta.gather(1, first), s.delta.gather(1, second)
        # The second window's cells outside the first (the union's other part).
        top1, left1 = cells.corners(first_at)
        top2, left2 = cells.corners(second_at)
        rows, cols = top2 + cells.cell_rows, left2 + cells.cell_cols
        outside = ~((rows >= top1) & (rows < top1 + side_h)
                    & (cols >= left1) & (cols < left1 + side_w))  # (b, side_h * side_w)
        outside = outside.repeat(1, c)
        sq_first = (d_first * d_first).view(b, c, -1).sum(dim=2)  # (b, c)
        sq_second = (d_second * d_second * outside).view(b, c, -1).sum(dim=2)
        in_both = sq_first + sq_second
        unused = (eps ** 2 - s.total).clamp_min(0)
        available = (in_both + unused[:, None] / c).sqrt()  # (b, c)
        old = d_first.view(b, c, -1) / sq_first.sqrt().clamp_min(1e-12)[:, :, None]
        bits = torch.randint(0, 2, (b, 1 + c), generator=oracle.generator,
                             device=oracle.device)
        variant = 2 * bits[:, :1] + bits[:, 1:]  # one orientation, one sign per channel
        new = old + self.choices[side_h, side_w][variant].flatten(2)
        new = new * (available / new.norm(dim=2).clamp_min(1e-12))[:, :, None]
        new = new.flatten(1)
        proposal = s.delta.clone()
        proposal.scatter_(1, second, 0.0)  # the second window emptied...
        proposal.scatter_(1, first, new)  # ...into the first
        norm = (s.total - in_both.sum(dim=1) + (new * new).sum(dim=1)).clamp_min(0).sqrt()
        scale = eps / norm.clamp_min(1e-12)
        return oracle.clamp(torch.addcmul(s.x, proposal, scale[:, None])), None

    def accept(self, s, candidate, change, accepted):
        """The accepted candidates and their perturbations."""
        taken = accepted.nonzero().squeeze(1)
        if taken.numel():
            s.best[taken] = candidate[taken]
            s.delta[taken] = candidate[taken] - s.x[taken]
            s.total[taken] = (s.delta[taken] * s.delta[taken]).sum(dim=1)

    def finish(self, found, x):
        """The points projected onto the ball (a rounding's worth), in ``x``'s shape."""
        return self.threat.project(found.reshape(x.shape), x)


class L1Proposal:
    """l_1: as l_2 with the l_1 patterns and budgets, each candidate projected exactly.

    As AutoAttack's ``square.py``: the mass of two random windows (plus the unused
    budget) moves into the first as its old content plus a fresh pattern, the second is
    emptied, and the candidate is projected onto the l_1 ball inside the bounds.
    """

    def __init__(self, threat, oracle):
        self.threat, self.eps, self.oracle = threat, threat.eps, oracle

    def initial(self, x):
        """The grid of l_1 patterns, projected onto the ball."""
        return self._project(x, tiles(self.oracle, x.shape[0], "l1"))

    def start(self, s, x_init):
        """The per-point state: the point."""
        s.best = x_init

    def propose(self, s, p):
        """A candidate per point; returns it (nothing to undo)."""
        oracle, b = self.oracle, s.best.shape[0]
        c, h, w = oracle.image_shape
        delta = (s.best - s.x).view(b, c, h, w)
        side_h, side_w = odd_window_sides(p, h, w)
        first, corners = self._window(b, side_h, side_w)
        second, _ = self._window(b, side_h, side_w)
        unused = (self.eps - delta.abs().flatten(1).sum(dim=1)).clamp_min(0).view(-1, 1, 1, 1)
        held = _l1(delta * (first | second))  # per channel, both windows
        old = delta * first / _l1(delta * first).clamp_min(1e-12)
        fresh = self._placed(b, side_h, side_w, corners) * first
        new = old + oracle.signs((b, c, 1, 1)) * fresh
        # The reference's budget per channel, times c; the exact projection trims any excess.
        new = new / _l1(new).clamp_min(1e-12) * (unused / c + held) * c
        proposal = torch.where(first, new, torch.where(second, torch.zeros_like(delta), delta))
        return self._project(s.x, proposal), None

    def accept(self, s, candidate, change, accepted):
        """The accepted candidates."""
        s.best[accepted] = candidate[accepted]

    def finish(self, found, x):
        """The points, in ``x``'s shape."""
        return found.reshape(x.shape)

    def _project(self, x, delta):
        # In the caller's layout, where the bounds apply; back to rows.
        shape = (-1, *self.oracle.sample_shape)
        flat = x.reshape(shape)
        return self.threat.project(flat + delta.reshape(shape), flat).reshape(x.shape[0], -1)

    def _window(self, b, side_h, side_w):
        """Random windows ``(b, 1, h, w)`` and their corners."""
        oracle, (_, h, w) = self.oracle, self.oracle.image_shape
        gen, device = oracle.generator, oracle.device
        top = torch.randint(0, h - side_h + 1, (b, 1), generator=gen, device=device)
        left = torch.randint(0, w - side_w + 1, (b, 1), generator=gen, device=device)
        rows, cols = torch.arange(h, device=device), torch.arange(w, device=device)
        in_rows = (rows >= top) & (rows < top + side_h)
        in_cols = (cols >= left) & (cols < left + side_w)
        return (in_rows[:, :, None] & in_cols[:, None, :])[:, None], (top, left)

    def _placed(self, b, side_h, side_w, corners):
        """The pattern at each image's window, randomly transposed if square: ``(b, 1, h, w)``."""
        oracle, (_, h, w) = self.oracle, self.oracle.image_shape
        device = oracle.device
        base = pattern(side_h, side_w, device, oracle.dtype, norm="l1")
        choices = torch.stack([base, base.T]) if side_h == side_w else base[None]
        pick = torch.randint(0, choices.shape[0], (b,), generator=oracle.generator,
                             device=device)
        top, left = corners
        rows = (torch.arange(h, device=device) - top).clamp(0, side_h - 1)
        cols = (torch.arange(w, device=device) - left).clamp(0, side_w - 1)
        return choices[pick[:, None, None], rows[:, :, None], cols[:, None, :]][:, None]


def _l1(v):
    return v.abs().flatten(2).sum(dim=2)[:, :, None, None]  # (b, c, 1, 1)


#: The proposal of each norm.
PROPOSALS = {"linf": LinfProposal, "l2": L2Proposal, "l1": L1Proposal}
