"""The command line's data: bundled data sets and data files, read or refused in one line.

A data set is named (one of :data:`BUNDLED`) or is a ``.npz``, ``.npy`` or ``.csv``
file; anything wrong with a file (missing, empty, unreadable, of the wrong shape) is an
:class:`InputError` naming it, which :mod:`sklearn_robust.cli` prints as one line.
"""

BUNDLED = ("digits", "breast_cancer", "wine", "iris")
SUFFIXES = (".npz", ".npy", ".csv")


class InputError(ValueError):
    """A bad input file or argument: the command line prints its message and exits with 2."""


def load_dataset(source, target=None):
    """``(X, y)`` from a bundled data set name or a ``.npz``, ``.npy`` or ``.csv`` file.

    A ``.npz`` holds arrays ``X`` and ``y``; a ``.csv`` (and a 2-D ``.npy``) holds the
    features with the label in column ``target`` (default: the last). Digits are scaled to
    [0, 1] (pixel / 16); the other bundled sets are standardised. A file that is missing,
    empty, unreadable or of the wrong shape raises :class:`InputError` naming it.

    Examples
    --------
    >>> X, y = load_dataset("wine")
    >>> X.shape, len(set(y))
    ((178, 13), 3)
    >>> load_dataset("missing.npz")
    Traceback (most recent call last):
    ...
    sklearn_robust._cli_data.InputError: missing.npz: no such file.
    """
    import numpy as np
    from sklearn import datasets
    from sklearn.preprocessing import StandardScaler

    if source in BUNDLED:
        X, y = getattr(datasets, f"load_{source}")(return_X_y=True)
        if source == "digits":
            return (X / 16.0).astype(np.float32), y
        return StandardScaler().fit_transform(X).astype(np.float32), y
    path = str(source)
    if not path.endswith(SUFFIXES):
        raise InputError(
            f"unknown data set {source!r}: give one of {BUNDLED} or a .npz/.npy/.csv file."
        )
    check_file(path)
    try:
        X, y = _read_data(path, target)
    except InputError:
        raise
    except Exception as error:  # numpy's many ways of saying "not this format"
        raise InputError(f"{path}: cannot be read as {path.rsplit('.', 1)[-1]} data "
                         f"({one_line(error)}).") from None
    return _check_data(path, X, y)


def check_file(path):
    """An :class:`InputError` unless ``path`` is an existing, non-empty file."""
    import os

    if not os.path.exists(path):
        raise InputError(f"{path}: no such file.")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not a file.")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: the file is empty.")


def _read_data(path, target):
    import warnings

    import numpy as np

    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            if "X" not in data or "y" not in data:
                raise InputError(f"{path}: must hold arrays named 'X' and 'y', "
                                 f"found {sorted(data.files)}.")
            return data["X"], data["y"]
    if path.endswith(".npy"):
        table = np.load(path, allow_pickle=False)
    else:
        with warnings.catch_warnings():  # an empty table is reported below, not warned
            warnings.simplefilter("ignore", UserWarning)
            table = np.loadtxt(path, delimiter=",", ndmin=2)
    if table.ndim != 2 or table.shape[1] < 2:
        raise InputError(f"{path}: a table needs 2 dimensions and at least 2 columns "
                         f"(features and the label), got shape {table.shape}.")
    column = table.shape[1] - 1 if target is None else int(target)
    if not -table.shape[1] <= column < table.shape[1]:
        raise InputError(f"{path}: --target {column} is not a column of a table with "
                         f"{table.shape[1]} columns.")
    return np.delete(table, column, axis=1), table[:, column]


def _check_data(path, X, y):
    import numpy as np

    if X.dtype.kind not in "biuf":
        raise InputError(f"{path}: X must be numeric, got dtype {X.dtype}.")
    if X.ndim < 2 or y.ndim != 1 or len(X) != len(y):
        raise InputError(f"{path}: needs X of shape (n_samples, ...) and y of shape "
                         f"(n_samples,), got {X.shape} and {y.shape}.")
    if len(X) < 2 or X[0].size == 0:
        raise InputError(f"{path}: needs at least 2 samples and 1 feature, got {X.shape}.")
    if not np.isfinite(X).all():
        raise InputError(f"{path}: X contains NaN or infinite values.")
    return X, y


def one_line(error):
    """An exception as one line: its type, and its message with the whitespace folded."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def split_data(X, y, test_size, seed):
    """``X_train, X_test, y_train, y_test``: a stratified hold-out of ``test_size``."""
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=test_size, stratify=y, random_state=seed)
