"""Training-time data augmentation for image input: random crops and mirror images.

Both act on a training batch, drawn from the fit's own stream; prediction, scoring and
the evaluation attacks never see them.
"""

import torch
import torch.nn.functional as F


def check_images(option, image_shape):
    """Refuse an image-only training option (named as given) on tabular rows."""
    if image_shape is None:
        raise ValueError(
            f"{option} acts on images, but the data are tabular rows: pass images "
            "(N, C, H, W) or (N, H, W), or flat rows with input_shape."
        )


def check_shift_fits(max_shift, image_shape):
    """Refuse a shift of tabular rows (``image_shape=None``) or wider than the image."""
    if not max_shift:
        return
    check_images("max_shift > 0", image_shape)
    if min(image_shape[-2:]) <= max_shift:
        raise ValueError(
            f"max_shift={max_shift} must be smaller than the image's height and width "
            f"{tuple(image_shape[-2:])}."
        )


def random_shift(x, max_shift, image_shape=None, generator=None):
    """Translate each image by its own random offset of at most ``max_shift`` pixels.

    Offsets are drawn uniformly in ``[-max_shift, max_shift]`` per axis from
    ``generator`` (the fit's stream, so a seeded ``fit`` stays reproducible); pixels
    shifted in are zero, the background of digits and MNIST-like data. This is exactly the
    papers' random crop with zero padding (torchvision's ``RandomCrop(H, padding=s)``):
    each image is padded with ``max_shift`` zeros on every side and an ``H x W`` window
    is taken at row and column offsets drawn independently and uniformly in
    ``[0, 2 * max_shift]`` of the padded image. All images move in one vectorised gather.

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


def random_flip(x, image_shape=None, generator=None):
    """Mirror each image left to right (its last axis) with probability 1/2, independently.

    The horizontal flip of CIFAR-10 training (torchvision's ``RandomHorizontalFlip``):
    one fair coin per image, drawn from ``generator`` (the fit's stream).

    Parameters
    ----------
    x : torch.Tensor of shape (N, ...)
        A batch of images, or flat rows that ``image_shape`` reshapes.
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` or ``(H, W)`` of one image when ``x`` holds flat rows; ``None`` uses
        ``x.shape[1:]``.
    generator : torch.Generator or None, default=None
        Source of the coins, on ``x``'s device; ``None`` is torch's global stream.

    Returns
    -------
    torch.Tensor
        The batch with about half its images mirrored, with the shape of ``x``.

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(6.0).reshape(2, 1, 1, 3)
    >>> flipped = random_flip(x, generator=torch.Generator().manual_seed(0))
    >>> all(torch.equal(f, i) or torch.equal(f, i.flip(-1)) for f, i in zip(flipped, x))
    True
    """
    shape = tuple(image_shape) if image_shape is not None else tuple(x.shape[1:])
    n = x.shape[0]
    images = x.reshape(n, *shape)
    coins = torch.rand(n, generator=generator, device=x.device) < 0.5
    mirrored = torch.where(coins.view(n, *[1] * len(shape)), images.flip(-1), images)
    return mirrored.reshape(x.shape)
