"""Square Attack's view of one batch: samples as images, queries, bounds, random draws.

The search keeps each point as a row of ``c * h * w`` values (``image_shape`` says how
they form an image); the model and the bounds see them in the caller's layout.

Square runs thousands of iterations on small batches, so its cost is the number of tensor
operations per iteration and the share of the image each one reads: a proposal changes
only the cells of its windows, listed by :class:`WindowCells` (built once per side).
"""

import torch

from .._losses import margin


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


class WindowCells:
    """The flat indices of every ``side_h x side_w`` window of a ``(c, h, w)`` image.

    A window at flat position ``t`` has its top-left corner at ``(t // n_cols, t % n_cols)``
    (so drawing ``t`` uniformly draws the corner's row and column uniformly and
    independently) and covers, in each channel, the cells ``top * w + left + offset`` for
    the ``side_h * side_w`` offsets of a window in the top-left corner; :meth:`indices`
    lists them, channel by channel.
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
        # Row and column of each cell of one channel's window, relative to its corner.
        self.cell_rows = torch.arange(side_h, device=device).repeat_interleave(side_w)
        self.cell_cols = torch.arange(side_w, device=device).repeat(side_h)

    def corners(self, positions):
        """Top-left corners ``(top, left)``, each ``(b, 1)``, of the windows at ``positions``."""
        return (positions // self.n_cols)[:, None], (positions % self.n_cols)[:, None]

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
        """Margins and misclassification of the points ``z`` (rows): one query each."""
        scores = self.module(z.reshape(-1, *self.sample_shape)).float()
        return margin(scores, labels), scores.argmax(dim=1) != labels

    def signs(self, shape):
        """Independent random signs."""
        draw = torch.randint(0, 2, shape, generator=self.generator, device=self.device)
        return (2 * draw - 1).to(self.dtype)

    def window_cells(self, side_h, side_w):
        """The :class:`WindowCells` of that side (built once per side and batch)."""
        key = (side_h, side_w)
        if key not in self._windows:
            self._windows[key] = WindowCells(self.image_shape, side_h, side_w, self.device)
        return self._windows[key]

    def positions(self, b, windows):
        """``b`` uniform random window positions (flat indices, see :class:`WindowCells`)."""
        return torch.randint(0, windows.n_positions, (b,), generator=self.generator,
                             device=self.device)
