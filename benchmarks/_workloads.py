"""Workloads shared by the benchmarks: real MNIST, and image-like data built from digits.

``real_mnist(seed)`` is the fixed stratified 4,000 / 1,000 split of the 5,000 real MNIST
images of :func:`sklearn_robust.datasets.load_mnist_subset` (the split of
``examples/_mnist.py``): the attack and training benchmarks run on it. The synthetic
sets below are for sizes beyond 5,000 (the separation benchmark).

``mnist_like(n)`` makes ``n`` MNIST-shaped points (784 features in [0, 1], 10 classes)
without downloading anything: each is one of scikit-learn's 1,797 8x8 digits, upsampled
to 28x28 inside a 20x20 box (MNIST's layout), moved by a random affine map (rotation
+-12 degrees, scale 0.9-1.1, shift +-2 pixels), blurred by the bilinear resampling,
sharpened to MNIST's contrast (``(v - 0.2) / 0.45`` clipped to [0, 1]: empty background,
saturated strokes, soft edges), given 0.03 noise on the strokes, and quantised to
multiples of 1/255 like 8-bit images. Everything is batched torch (no per-sample
Python loop) and seeded.
The point of the choice: MNIST's structure matters for nearest-neighbour search
(empty borders, strokes, near-duplicates within a class), uniform noise would not
show it.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sklearn_robust.datasets import load_mnist_subset


def real_mnist(seed=0):
    """``X_train, X_test, y_train, y_test``: real MNIST (N, 1, 28, 28) in [0, 1], 4,000 / 1,000."""
    bunch = load_mnist_subset()
    return train_test_split(bunch.images, bunch.target, train_size=4000, test_size=1000,
                            stratify=bunch.target, random_state=seed)


def mnist_like(n, seed=0, batch=4096):
    """``(X, y)``: ``X`` float32 of shape (n, 1, 28, 28) in [0, 1], ``y`` int64 in 0..9."""
    digits = load_digits()
    base = torch.as_tensor(digits.images / 16.0, dtype=torch.float32)[:, None]  # (1797,1,8,8)
    big = F.interpolate(base, size=(20, 20), mode="bilinear", align_corners=False)
    big = F.pad(big, (4, 4, 4, 4))  # 28x28, digit in the central 20x20 box
    labels = torch.as_tensor(digits.target, dtype=torch.int64)
    gen = torch.Generator().manual_seed(seed)
    out = torch.empty(n, 1, 28, 28)
    y = torch.empty(n, dtype=torch.int64)
    for start in range(0, n, batch):  # batches of thousands, for memory only
        m = min(batch, n - start)
        pick = torch.randint(0, len(base), (m,), generator=gen)
        angle = (torch.rand(m, generator=gen) * 2 - 1) * (12 * math.pi / 180)
        scale = 0.9 + 0.2 * torch.rand(m, generator=gen)
        shift = (torch.rand(m, 2, generator=gen) * 2 - 1) * (2 / 14)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                             torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, (m, 1, 28, 28), align_corners=False)
        img = F.grid_sample(big[pick], grid, mode="bilinear", align_corners=False)
        img = ((img - 0.2) / 0.45).clamp(0, 1)  # MNIST-like contrast: sharp strokes
        img = img + 0.03 * torch.randn(img.shape, generator=gen) * (img > 0)
        out[start:start + m] = torch.round(img.clamp(0, 1) * 255) / 255
        y[start:start + m] = labels[pick]
    return out.numpy(), y.numpy()


def synthetic28(n, seed=0):
    """Random 28x28 images in [0, 1] with random labels: shapes for timing only."""
    rng = np.random.RandomState(seed)
    return rng.rand(n, 1, 28, 28).astype(np.float32), rng.randint(0, 10, n)


def digits_like(n, seed=0):
    """``n`` 8x8 digit images (float32 in [0, 1], shape (n, 1, 8, 8)) and labels.

    scikit-learn's 1,797 digits, each drawn at random and moved by a small random affine
    map (rotation +-10 degrees, shift +-0.5 pixel): as many digits-shaped points as
    asked, for scaling curves beyond the 1,797 originals.
    """
    digits = load_digits()
    base = torch.as_tensor(digits.images / 16.0, dtype=torch.float32)[:, None]
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randint(0, len(base), (n,), generator=gen)
    angle = (torch.rand(n, generator=gen) * 2 - 1) * (10 * math.pi / 180)
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (0.5 / 4)
    theta = torch.stack([torch.stack([torch.cos(angle), -torch.sin(angle), shift[:, 0]], 1),
                         torch.stack([torch.sin(angle), torch.cos(angle), shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, (n, 1, 8, 8), align_corners=False)
    img = F.grid_sample(base[pick], grid, mode="bilinear", align_corners=False)
    return img.clamp(0, 1).numpy(), digits.target[pick.numpy()]
