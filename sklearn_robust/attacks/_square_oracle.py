"""Square Attack's view of one batch: samples as images, queries, bounds, random draws."""

from __future__ import annotations

import torch

from ._losses import margin


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



class Oracle:
    """Square's view of one batch: the image layout, queries, bounds and random draws."""

    def __init__(self, threat, module, x, generator):
        self.threat, self.module, self.generator = threat, module, generator
        self.bounds = threat.bounds_like(x)
        self.sample_shape = x.shape[1:]
        self.image_shape = _image_shape(self.sample_shape)
        self.device, self.dtype = x.device, x.dtype

    def clamp(self, z):
        """Clamp images into the bounds, which apply in the caller's layout."""
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

    def corners(self, b, side_h, side_w):
        """Random top-left corners ``(b, 1)`` of ``side_h x side_w`` windows, one per image."""
        _, h, w = self.image_shape
        top = torch.randint(0, h - side_h + 1, (b, 1), generator=self.generator,
                            device=self.device)
        left = torch.randint(0, w - side_w + 1, (b, 1), generator=self.generator,
                             device=self.device)
        return top, left

    def windows(self, b, side_h, side_w, corners=None):
        """Boolean masks ``(b, h, w)`` of random (or the given corners') windows."""
        _, h, w = self.image_shape
        top, left = self.corners(b, side_h, side_w) if corners is None else corners
        rows = torch.arange(h, device=self.device)
        cols = torch.arange(w, device=self.device)
        in_rows = (rows >= top) & (rows < top + side_h)
        in_cols = (cols >= left) & (cols < left + side_w)
        return in_rows[:, :, None] & in_cols[:, None, :]

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

    def accept(self, idx, x_new, y, x_best, m_best, fooled):
        """Query proposals ``x_new`` of the images ``idx``; keep those that lower the margin."""
        m_new, hit = self.query(x_new, y[idx])
        accept = (m_new < m_best[idx]) | hit
        x_best[idx[accept]] = x_new[accept]
        m_best[idx[accept]] = m_new[accept]
        fooled[idx[hit]] = True
