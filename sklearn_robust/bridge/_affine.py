"""Fitted scikit-learn scalers as differentiable torch affine maps, and pipeline steps.

A scaler in front of a network is an increasing per-feature affine map (plus a clip for
``MinMaxScaler(clip=True)``); written as a torch module it lets gradients, and therefore
the adversary, reach the raw inputs the user gives to ``predict``.
"""

import numpy as np
import torch
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler
from sklearn.utils.validation import check_is_fitted
from torch import nn

#: The scikit-learn scalers the bridge can differentiate through.
SCALERS = (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler)


def work_dtype(device):
    """The dtype of the scaler maps on ``device``: float64 as scikit-learn, except on MPS.

    Examples
    --------
    >>> import torch
    >>> work_dtype(torch.device("cpu"))
    torch.float64
    """
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


class AffineMap(nn.Module):
    """``x * mult + add`` per feature (float64), then an optional clip: a fitted scaler.

    Built by :func:`scaler_to_affine`.

    Parameters
    ----------
    name : str
        Label of the step (shown in ``repr`` and in ``TorchClassifier.steps``).
    mult, add : array-like of shape (n_features,)
        The per-feature factor and offset.
    clip : None or (float, float), default=None
        Range the output is clamped to.
    device : torch.device or str or None, default=None
        Where the buffers live (CPU if None).

    Examples
    --------
    >>> import torch
    >>> affine = AffineMap("half", [0.5, 0.5], [0.0, 1.0])
    >>> affine(torch.tensor([[2.0, 2.0]], dtype=torch.float64))
    tensor([[1., 2.]], dtype=torch.float64)
    >>> affine.inverse([1.0, 2.0]).tolist()
    [2.0, 2.0]
    """

    def __init__(self, name, mult, add, clip=None, device=None):
        super().__init__()
        self.name = name
        device = torch.device("cpu" if device is None else device)
        for key, value in (("mult", mult), ("add", add)):
            tensor = torch.tensor(np.array(value), dtype=work_dtype(device), device=device)
            self.register_buffer(key, tensor, persistent=False)
        self.clip = clip

    def forward(self, x):
        """The scaled batch ``x * mult + add``, clipped if the scaler clips."""
        x = x * self.mult + self.add
        if self.clip is not None:
            x = x.clamp(self.clip[0], self.clip[1])
        return x

    def inverse(self, z):
        """The raw values mapped to ``z`` (numpy, ignoring the clip): ``(z - add) / mult``."""
        return (np.asarray(z) - self.add.cpu().numpy()) / self.mult.cpu().numpy()

    def extra_repr(self):
        return f"{self.name}, clip={self.clip}"


def scaler_to_affine(name, scaler, n_features, device=None):
    """The :class:`AffineMap` equal to ``scaler.transform`` for a fitted sklearn scaler.

    Parameters
    ----------
    name : str
        Label of the step.
    scaler : StandardScaler, MinMaxScaler, MaxAbsScaler or RobustScaler
        A fitted scaler (one of :data:`SCALERS`).
    n_features : int
        Number of features it scales.
    device : torch.device or str or None, default=None
        Where the map runs.

    Returns
    -------
    AffineMap

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from sklearn.preprocessing import StandardScaler
    >>> X = np.array([[0.0, 1.0], [2.0, 3.0]])
    >>> affine = scaler_to_affine("std", StandardScaler().fit(X), 2)
    >>> affine(torch.tensor(X)).tolist()
    [[-1.0, -1.0], [1.0, 1.0]]
    """
    check_is_fitted(scaler)
    ones, zeros = np.ones(n_features), np.zeros(n_features)
    mult, add, clip = ones, zeros, None
    if isinstance(scaler, StandardScaler):
        scale = scaler.scale_ if scaler.with_std else ones
        mean = scaler.mean_ if scaler.with_mean else zeros
        mult, add = 1.0 / scale, -mean / scale
    elif isinstance(scaler, RobustScaler):
        scale = scaler.scale_ if scaler.with_scaling else ones
        center = scaler.center_ if scaler.with_centering else zeros
        mult, add = 1.0 / scale, -center / scale
    elif isinstance(scaler, MinMaxScaler):
        mult, add = scaler.scale_, scaler.min_
        if scaler.clip:
            clip = (float(scaler.feature_range[0]), float(scaler.feature_range[1]))
    elif isinstance(scaler, MaxAbsScaler):
        mult = 1.0 / scaler.scale_
        if getattr(scaler, "clip", False):
            clip = (-1.0, 1.0)
    else:
        raise ValueError(f"{type(scaler).__name__} is not one of the scalers {SCALERS}.")
    mult = np.broadcast_to(np.asarray(mult, dtype=np.float64), (n_features,))
    add = np.broadcast_to(np.asarray(add, dtype=np.float64), (n_features,))
    return AffineMap(f"{name}: {type(scaler).__name__}", mult, add, clip, device)


def flatten_pipeline(pipeline, prefix=""):
    """``(name, step)`` pairs of a pipeline, nested pipelines expanded, passthroughs dropped.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import Pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> pipe = Pipeline([("pre", Pipeline([("skip", "passthrough"),
    ...                                    ("std", StandardScaler())])),
    ...                  ("clf", LogisticRegression())])
    >>> [name for name, _ in flatten_pipeline(pipe)]
    ['pre__std', 'clf']
    """
    out = []
    for name, step in pipeline.steps:
        full = f"{prefix}{name}"
        if step is None or (isinstance(step, str) and step == "passthrough"):
            continue
        if isinstance(step, Pipeline):
            out.extend(flatten_pipeline(step, prefix=f"{full}__"))
        else:
            out.append((full, step))
    return out
