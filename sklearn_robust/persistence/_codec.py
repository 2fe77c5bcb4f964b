"""Values as data: JSON text, arrays set aside as tensors, classes by public name.

What a model file holds is read back with ``torch.load(weights_only=True)``: plain JSON
values, tensors, and the names of classes looked up in a fixed list (torch's losses and
optimizers, this library's networks), never imported by name. A file that is not one of
ours, or names a class outside the list, is a :class:`ModelFileError`.
"""

import numpy as np
import torch

from .. import estimators

#: The networks a model file may name (the library's own).
NETWORKS = ("MLP", "SmallCNN", "PreActResNet18", "WideResNet")


class ModelFileError(ValueError):
    """The file is not a model file of this format (or not one this version reads).

    A ``ValueError``, so the command line reports it as bad input in one line.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_robust.persistence import ModelFileError, load_model
    >>> path = os.path.join(tempfile.mkdtemp(), "not_a_model.pt")
    >>> with open(path, "w") as f:
    ...     _ = f.write("hello")
    >>> try:
    ...     load_model(path)
    ... except ModelFileError as error:
    ...     print(type(error).__name__)
    ModelFileError
    """


class Encoder:
    """Values to JSON, with arrays set aside as tensors and classes by public name."""

    def __init__(self):
        self.tensors = {}

    def __call__(self, value, where):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, (list, tuple)):
            items = [self(v, where) for v in value]
            return items if isinstance(value, list) else {"tuple": items}
        if isinstance(value, dict):
            return {"dict": {str(k): self(v, where) for k, v in value.items()}}
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "biuf":
                key = f"a{len(self.tensors)}"
                self.tensors[key] = torch.from_numpy(np.ascontiguousarray(value).copy())
                return {"array": key}
            if all(isinstance(v, str) for v in value.ravel()):
                return {"strings": value.tolist(), "dtype": value.dtype.str}
        if isinstance(value, type) and class_name(value) is not None:
            return {"class": class_name(value)}
        raise ValueError(
            f"{where} = {value!r} cannot be saved as data; save_model takes numbers, "
            f"strings, arrays and the networks {', '.join(NETWORKS)} (use joblib for others)."
        )


def spaces():
    """``(prefix, module, base class)`` of each place an allowed class is looked up."""
    return (("torch.nn", torch.nn, torch.nn.Module),
            ("torch.optim", torch.optim, torch.optim.Optimizer),
            ("sklearn_robust.estimators", estimators, object))


def class_name(cls):
    """The public name of an allowed class, or None."""
    for prefix, space, base in spaces():
        if space is estimators and cls.__name__ not in NETWORKS:
            continue
        if getattr(space, cls.__name__, None) is cls and issubclass(cls, base):
            return f"{prefix}.{cls.__name__}"
    return None


def resolve_class(name):
    """The allowed class of a public name, else a :class:`ModelFileError`."""
    prefix, _, short = name.rpartition(".")
    for space_name, space, base in spaces():
        if prefix == space_name:
            allowed = NETWORKS if space is estimators else dir(space)
            cls = getattr(space, short, None) if short in allowed else None
            if isinstance(cls, type) and issubclass(cls, base):
                return cls
    raise ModelFileError(f"the model file names a class that is not allowed: {name!r}.")


def decode(value, tensors):
    """A value written by :class:`Encoder`, its arrays taken from ``tensors``."""
    if isinstance(value, list):
        return [decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "tuple" in value:
        return tuple(decode(v, tensors) for v in value["tuple"])
    if "dict" in value:
        return {k: decode(v, tensors) for k, v in value["dict"].items()}
    if "array" in value:
        return tensors[value["array"]].numpy().copy()
    if "strings" in value:
        return np.asarray(value["strings"], dtype=value["dtype"])
    return resolve_class(value["class"])


def decode_each(mapping, tensors):
    """:func:`decode` of each value of a mapping."""
    return {key: decode(value, tensors) for key, value in mapping.items()}
