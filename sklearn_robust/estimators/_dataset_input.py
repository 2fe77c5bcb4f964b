"""A map-style torch ``Dataset`` of ``(input, label)`` pairs as training or test data.

skorch's convention: ``fit(dataset)`` with ``y=None``, the labels inside the items. A
first pass over the dataset (batched by a ``DataLoader``, with the training loader's
workers) checks every item and gathers the labels and the per-coordinate minimum and
maximum of the inputs, never the inputs themselves: the classes, the sample shape,
``input_range_`` and ``bounds='auto'`` come from it, and each epoch then reads the items
again. The datasets this library builds for skorch carry labels already encoded as
``0..C-1``; :func:`is_encoded` tells them from a user's.
"""

from numbers import Integral
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset

# Set on the datasets whose labels are indices into classes_ (skorch's scoring reads them).
_ENCODED = "_sklearn_robust_encoded"
# Items per batch of the first pass: its memory is a few batches, whatever the dataset.
_SCAN_BATCH = 256


def is_encoded(dataset):
    """Whether ``dataset`` (or the dataset a ``Subset`` of it is cut from) is one of ours.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> is_encoded(TensorDataset(torch.zeros(2, 3), torch.zeros(2)))
    False
    """
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return bool(getattr(dataset, _ENCODED, False))


def mark_encoded(dataset):
    """Mark a dataset built from encoded labels (skorch's, from arrays); returns it."""
    setattr(dataset, _ENCODED, True)
    return dataset


def check_map_style(dataset):
    """Refuse an iterable-style or empty dataset (one pass per epoch needs ``len``)."""
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
        raise ValueError(
            f"{type(dataset).__name__} is not a map-style dataset: pass a torch Dataset "
            "with __len__ and __getitem__ returning (tensor, int) pairs."
        )
    if len(dataset) == 0:
        raise ValueError("the dataset is empty: it needs at least one (tensor, int) pair.")


def _describe(value):
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__} of ({', '.join(type(v).__name__ for v in value)})"
    return type(value).__name__


def _pair(item, index):
    if not (isinstance(item, (tuple, list)) and len(item) == 2):
        raise ValueError(
            f"dataset items must be (tensor, int) pairs, as skorch reads them; item {index} "
            f"is a {_describe(item)}."
        )
    return item


def _as_input(x, index, sample_shape=None):
    """One item's input as a float32 tensor, checked (shape against ``sample_shape``)."""
    if isinstance(x, np.ndarray):
        x = torch.as_tensor(x)
    if not isinstance(x, torch.Tensor) or x.dtype in (torch.bool,) or x.is_complex():
        raise ValueError(
            f"dataset items must be (tensor, int) pairs; the input of item {index} is a "
            f"{_describe(x) if not isinstance(x, torch.Tensor) else x.dtype} (a torchvision "
            "dataset needs transforms.ToTensor())."
        )
    if x.ndim == 0:
        raise ValueError(f"the input of item {index} is a scalar; inputs need a shape.")
    if sample_shape is not None and tuple(x.shape) != tuple(sample_shape):
        raise ValueError(
            f"item {index} has an input of shape {tuple(x.shape)}, but the samples have "
            f"shape {tuple(sample_shape)}."
        )
    return x.to(torch.float32)


def _as_label(y, index):
    """One item's label as a Python int (an integer, numpy's or a 0-d integer tensor)."""
    if isinstance(y, torch.Tensor) and y.ndim == 0 and not (
            y.is_floating_point() or y.is_complex() or y.dtype == torch.bool):
        return int(y)
    if isinstance(y, Integral) and not isinstance(y, (bool, np.bool_)):
        return int(y)
    raise ValueError(
        f"dataset items must be (tensor, int) pairs; the label of item {index} is "
        f"{y!r}, not an integer."
    )


class _Indexed(Dataset):
    """Items with their indices, so that the first pass names a bad item."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return index, self.dataset[index]


def _checked_batch(entries):
    """The first pass's collate: every item checked, ``(first index, inputs, labels)``."""
    inputs = [_as_input(_pair(item, i)[0], i) for i, item in entries]
    labels = [_as_label(item[1], i) for i, item in entries]
    shape = inputs[0].shape
    for (index, _), x in zip(entries, inputs, strict=True):
        if x.shape != shape:
            raise ValueError(
                f"the dataset's inputs differ in shape: item {entries[0][0]} has "
                f"{tuple(shape)}, item {index} has {tuple(x.shape)}."
            )
    return entries[0][0], torch.stack(inputs), torch.tensor(labels, dtype=torch.int64)


class DatasetSummary(NamedTuple):
    """What the first pass over a training dataset found."""

    labels: np.ndarray
    sample_shape: tuple
    extremes: np.ndarray  # (2, *sample_shape): per-coordinate minimum, then maximum


def scan_dataset(dataset, num_workers=0):
    """One checked pass over ``dataset``: its labels, sample shape and input extremes.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> summary = scan_dataset(TensorDataset(torch.tensor([[0.0, 2.0], [1.0, -1.0]]),
    ...                                      torch.tensor([3, 5])))
    >>> summary.labels.tolist(), summary.sample_shape, summary.extremes.tolist()
    ([3, 5], (2,), [[0.0, -1.0], [1.0, 2.0]])
    """
    check_map_style(dataset)
    # A generator of its own: the pass draws nothing from torch's global stream.
    loader = DataLoader(_Indexed(dataset), batch_size=_SCAN_BATCH, num_workers=num_workers,
                        collate_fn=_checked_batch, generator=torch.Generator())
    labels, low, high = [], None, None
    for first, x, y in loader:
        if low is not None and x.shape[1:] != low.shape:
            raise ValueError(
                f"the dataset's inputs differ in shape: item 0 has {tuple(low.shape)}, "
                f"item {first} has {tuple(x.shape[1:])}."
            )
        finite = torch.isfinite(x.reshape(len(x), -1)).all(dim=1)
        if not finite.all():
            bad = first + int((~finite).nonzero()[0])
            raise ValueError(f"the input of item {bad} of the dataset contains NaN or "
                             "infinity.")
        lo, hi = x.amin(dim=0), x.amax(dim=0)
        low = lo if low is None else torch.minimum(low, lo)
        high = hi if high is None else torch.maximum(high, hi)
        labels.append(y)
    return DatasetSummary(torch.cat(labels).numpy(), tuple(low.shape),
                          torch.stack([low, high]).numpy())


class LabelledDataset(Dataset):
    """A user's training dataset as skorch reads it: float32 inputs, encoded labels.

    Each item is checked as it is read (shape, label), so a dataset that changes after
    the first pass fails clearly. ``extremes`` are the first pass's, for the threat model.
    """

    def __init__(self, dataset, classes, sample_shape, extremes):
        self.dataset, self.sample_shape, self.extremes = dataset, sample_shape, extremes
        self.index = {int(label): i for i, label in enumerate(classes)}

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        x, y = _pair(self.dataset[i], i)
        label = _as_label(y, i)
        if label not in self.index:
            raise ValueError(f"item {i} has label {label}, outside classes_ "
                             f"{sorted(self.index)}.")
        return _as_input(x, i, self.sample_shape), self.index[label]


mark_encoded(LabelledDataset)


class InputDataset(Dataset):
    """A user's dataset as prediction reads it: float32 inputs checked, labels as given."""

    def __init__(self, dataset, sample_shape):
        self.dataset, self.sample_shape = dataset, sample_shape

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        x, y = _pair(self.dataset[i], i)
        return _as_input(x, i, self.sample_shape), y


def first_sample_shape(dataset):
    """The shape of the first input of a map-style dataset (the first item checked)."""
    check_map_style(dataset)
    return tuple(_as_input(_pair(dataset[0], 0)[0], 0).shape)


def training_extremes(X):
    """What the threat model reads of the training data: ``X``, or a dataset's extremes."""
    return X.extremes if isinstance(X, LabelledDataset) else X


def first_input(X):
    """The first training input as a float32 array of one sample (arrays or datasets)."""
    if isinstance(X, Dataset):
        return np.asarray(X[0][0])[None]
    return np.asarray(X[:1], dtype=np.float32)
