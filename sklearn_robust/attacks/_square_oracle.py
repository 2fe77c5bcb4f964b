"""Square Attack's view of one batch: samples as images, queries, bounds, random draws.

Square runs thousands of iterations on small batches, so its cost is the number of tensor
operations per iteration rather than their size: windows are looked up in a table built
once per window side, and the points still standing are kept as a compact working set.
"""

from __future__ import annotations

import torch

from ._losses import margin

# Largest window table (positions x pixels) built; past it each window is assembled from
# a row mask and a column mask (three operations instead of one lookup).
_TABLE_CELLS = 1 << 22


def _image_shape(sample_shape):
    """View one sample as ``(channels, height, width)``; ``height == 1`` means 1-D."""
    if len(sample_shape) == 1:  # (features,): one channel, a row of features
        return 1, 1, sample_shape[0]
    if len(sample_shape) == 2:  # (channels, length)
        return sample_shape[0], 1, sample_shape[1]
    if len(sample_shape) == 3:  # (channels, height, width)
        return tuple(sample_shape)
    raise ValueError(
        "Square needs samples of shape (features,), (channels, length) or "
        f"(channels, height, width), got {tuple(sample_shape)}."
    )


def _interval_masks(size, side, device):
    """``(size - side + 1, size)`` booleans: row ``t`` marks the interval ``[t, t + side)``."""
    cells = torch.arange(size, device=device)
    starts = torch.arange(size - side + 1, device=device)[:, None]
    return (cells >= starts) & (cells < starts + side)


class Windows:
    """Every ``side_h x side_w`` window of an ``h x w`` image, drawn by flat position.

    A position ``t`` is the window with top-left corner ``(t // n_cols, t % n_cols)``;
    drawing ``t`` uniformly draws the corner's row and column uniformly and independently.
    """

    def __init__(self, h, w, side_h, side_w, device, dtype=torch.float32,
                 table_cells=_TABLE_CELLS):
        self.side_h, self.side_w = side_h, side_w
        self.rows = _interval_masks(h, side_h, device)  # (n_rows, h)
        self.cols = _interval_masks(w, side_w, device)  # (n_cols, w)
        self.n_cols = self.cols.shape[0]
        self.n_positions = self.rows.shape[0] * self.n_cols
        self.dtype = dtype
        self.table = self.weights_table = None
        if self.n_positions * h * w <= table_cells:
            self.table = self._assemble(torch.arange(self.n_positions, device=device))
            self.weights_table = self.table.flatten(1).to(dtype)

    def _assemble(self, positions):
        top, left = positions // self.n_cols, positions % self.n_cols
        return self.rows[top][:, :, None] & self.cols[left][:, None, :]

    def corners(self, positions):
        """Top-left corners ``(top, left)``, each ``(b, 1)``, of the windows at ``positions``."""
        return (positions // self.n_cols)[:, None], (positions % self.n_cols)[:, None]

    def masks(self, positions):
        """The windows at ``positions``: booleans ``(b, 1, h, w)`` and weights ``(b, h*w, 1)``.

        The float form sums a window's pixels by a batched matrix product, one operation.
        """
        if self.table is not None:
            masks, weights = self.table[positions], self.weights_table[positions]
        else:
            masks = self._assemble(positions)
            weights = masks.flatten(1).to(self.dtype)
        return masks[:, None], weights[:, :, None]


class WindowCells:
    """The flat indices of every ``side_h x side_w`` window of a ``(c, h, w)`` image.

    A window at flat position ``t`` (as in :class:`Windows`) covers, in each channel, the
    cells ``top * w + left + offset`` for the ``side_h * side_w`` offsets of a window in
    the top-left corner; :meth:`indices` lists them, channel by channel.
    """

    def __init__(self, image_shape, side_h, side_w, device):
        c, h, w = image_shape
        self.side_h, self.side_w, self.w = side_h, side_w, w
        self.n_cols = w - side_w + 1
        self.n_positions = (h - side_h + 1) * self.n_cols
        self.per_channel = side_h * side_w
        rows = torch.arange(side_h, device=device)[:, None] * w
        corner = (rows + torch.arange(side_w, device=device)).flatten()
        self.offsets = (torch.arange(c, device=device)[:, None] * (h * w) + corner).flatten()

    def indices(self, positions):
        """``(b, c * side_h * side_w)`` flat indices of the windows at ``positions``."""
        top, left = positions // self.n_cols, positions % self.n_cols
        return (top * self.w + left)[:, None] + self.offsets


class Oracle:
    """Square's view of one batch: the image layout, queries, bounds and random draws."""

    def __init__(self, threat, module, x, generator):
        self.threat, self.module, self.generator = threat, module, generator
        self.bounds = threat.bounds_like(x)
        self.sample_shape = x.shape[1:]
        self.image_shape = _image_shape(self.sample_shape)
        self.device, self.dtype = x.device, x.dtype
        self._windows = {}

    def clamp(self, z):
        """Clamp images into the bounds, which apply in the caller's layout."""
        if self.bounds is None:
            return z
        flat = z.reshape(-1, *self.sample_shape)
        return self.threat.clamp(flat, self.bounds).reshape(z.shape)

    def query(self, z, labels):
        """Margins and misclassification of images ``z``: one query per image."""
        scores = self.module(z.reshape(-1, *self.sample_shape)).float()
        return margin(scores, labels), scores.argmax(dim=1) != labels

    def signs(self, shape):
        """Independent random signs."""
        draw = torch.randint(0, 2, shape, generator=self.generator, device=self.device)
        return (2 * draw - 1).to(self.dtype)

    def windows(self, side_h, side_w):
        """The :class:`Windows` of that side (built once per side and batch)."""
        key = (side_h, side_w)
        if key not in self._windows:
            _, h, w = self.image_shape
            self._windows[key] = Windows(h, w, side_h, side_w, self.device, self.dtype)
        return self._windows[key]

    def window_cells(self, side_h, side_w):
        """The :class:`WindowCells` of that side (built once per side and batch)."""
        key = ("cells", side_h, side_w)
        if key not in self._windows:
            self._windows[key] = WindowCells(self.image_shape, side_h, side_w, self.device)
        return self._windows[key]

    def positions(self, b, windows):
        """``b`` uniform random window positions (flat indices, see :class:`Windows`)."""
        return torch.randint(0, windows.n_positions, (b,), generator=self.generator,
                             device=self.device)

    def start(self, x, y, initial):
        """Query the clean images, then ``x + initial(n)`` for the ``n`` not misclassified.

        Returns the images, the best points so far, their margins and which are fooled.
        """
        x_img = x.reshape(-1, *self.image_shape)
        x_best = x_img.clone()
        m_best, fooled = self.query(x_img, y)
        idx = (~fooled).nonzero().squeeze(1)
        if idx.numel():
            x_init = self.clamp(x_img[idx] + initial(idx.numel()))
            m_init, hit = self.query(x_init, y[idx])
            x_best[idx], m_best[idx], fooled[idx] = x_init, m_init, hit
        return x_img, x_best, m_best, fooled


class WorkingSet:
    """The points not yet fooled, as compact tensors: rows leave as their point is fooled.

    ``state`` holds per-point tensors (first dimension the working set), some of which
    describe each point's best proposal so far. :meth:`step` queries the proposals and
    keeps those that lower the margin; only when a point is fooled does it write that
    point's image to ``x_best`` and drop its rows, so most iterations index nothing.
    """

    def __init__(self, x_best, m_best, fooled, y, **state):
        self.x_best = x_best
        self.idx = (~fooled).nonzero().squeeze(1)
        self.m_best, self.y = m_best[self.idx], y[self.idx]
        self.state = {name: t[self.idx] for name, t in state.items()}

    def __len__(self):
        return self.idx.numel()

    def step(self, oracle, x_new, **proposed):
        """Query images ``x_new``; where the margin drops, ``proposed`` replaces the state."""
        m_new, hit = oracle.query(x_new, self.y)
        accept = (m_new < self.m_best) | hit
        self.m_best = torch.where(accept, m_new, self.m_best)
        for name, value in proposed.items():
            keep = accept.view(-1, *[1] * (value.dim() - 1))
            self.state[name] = torch.where(keep, value, self.state[name])
        if bool(hit.any()):
            self.x_best[self.idx[hit]] = x_new[hit]
            rest = ~hit
            self.idx, self.m_best, self.y = self.idx[rest], self.m_best[rest], self.y[rest]
            self.state = {name: t[rest] for name, t in self.state.items()}

    def finish(self, images):
        """``x_best`` with ``images``, the standing points' best images, written back."""
        self.x_best[self.idx] = images
        return self.x_best
