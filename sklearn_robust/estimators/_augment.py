"""Training-time data augmentation for image input: random translations."""

import torch
import torch.nn.functional as F


def check_shift_fits(max_shift, image_shape):
    """Refuse a shift of tabular rows (``image_shape=None``) or wider than the image."""
    if not max_shift:
        return
    if image_shape is None:
        raise ValueError(
            "max_shift > 0 shifts images, but the data are tabular rows: pass images "
            "(N, C, H, W) or (N, H, W), or flat rows with input_shape."
        )
    if min(image_shape[-2:]) <= max_shift:
        raise ValueError(
            f"max_shift={max_shift} must be smaller than the image's height and width "
            f"{tuple(image_shape[-2:])}."
        )


def random_shift(x, max_shift, image_shape=None, generator=None):
    """Translate each image by its own random offset of at most ``max_shift`` pixels.

    Offsets are drawn uniformly in ``[-max_shift, max_shift]`` per axis from
    ``generator`` (the fit's stream, so a seeded ``fit`` stays reproducible); pixels
    shifted in are zero, the background of digits and MNIST-like data. All images move in
    one vectorised gather.

    Parameters
    ----------
    x : torch.Tensor of shape (N, ...)
        A batch of images, or flat rows that ``image_shape`` reshapes.
    max_shift : int
        Largest translation in pixels; ``0`` returns ``x`` unchanged.
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` or ``(H, W)`` of one image when ``x`` holds flat rows; ``None`` uses
        ``x.shape[1:]``.
    generator : torch.Generator or None, default=None
        Source of the offsets, on ``x``'s device; ``None`` is torch's global stream.

    Returns
    -------
    torch.Tensor
        The shifted batch, with the shape of ``x``.

    Examples
    --------
    >>> import torch
    >>> x = torch.zeros(1, 1, 3, 3)
    >>> x[0, 0, 1, 1] = 1.0
    >>> _ = torch.manual_seed(0)
    >>> shifted = random_shift(x, 1)
    >>> shifted.shape, float(shifted.sum())
    (torch.Size([1, 1, 3, 3]), 1.0)
    """
    if not max_shift:
        return x
    shape = tuple(image_shape) if image_shape is not None else tuple(x.shape[1:])
    n = x.shape[0]
    height, width = shape[-2:]
    images = x.reshape(n, -1, height, width)
    padded = F.pad(images, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, n), device=x.device, generator=generator)
    rows = (offsets[0, :, None] + torch.arange(height, device=x.device))[:, :, None]
    cols = (offsets[1, :, None] + torch.arange(width, device=x.device))[:, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None]
    # Advanced indexing on (N, H, W, C) picks one (H, W) window per image.
    shifted = padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
    return shifted.reshape(x.shape).contiguous()
