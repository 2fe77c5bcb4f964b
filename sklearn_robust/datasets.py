"""Bundled data sets shaped the way robust-training experiments use them."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def load_digits_images(*, test_size=0.25, random_state=0, flat=False):
    """scikit-learn's 8x8 digits as float32 images in ``[0, 1]``, split with stratification.

    Parameters
    ----------
    test_size : float, default=0.25
        Share of the stratified hold-out set.
    random_state : int, default=0
        Seed of the split.
    flat : bool, default=False
        Return rows of 64 features instead of ``(N, 1, 8, 8)`` images.

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarray
        Pixel values are ``X / 16``, so the natural input bounds are ``(0, 1)``.

    Examples
    --------
    >>> X_train, X_test, y_train, y_test = load_digits_images()
    >>> X_train.shape, X_test.shape
    ((1347, 1, 8, 8), (450, 1, 8, 8))
    >>> float(X_train.min()), float(X_train.max())
    (0.0, 1.0)
    """
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    if not flat:
        X = X.reshape(-1, 1, 8, 8)
    return train_test_split(X, y, test_size=test_size, stratify=y, random_state=random_state)
