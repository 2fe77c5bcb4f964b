"""A bridged classifier as one chain of layers from raw inputs to logits, for verifiers.

The verifiers (:mod:`sklearn_robust.verify`) bound a chain of layers; a pipeline's
scalers run in float64 before the network and are folded in here as diagonal linear
layers, so certificates are about the raw input space the user gives to ``predict``.
"""

import numpy as np
import torch
from torch import nn

from ._affine import AffineMap

#: Relative rounding of a scaled input on its way to the float32 network: float64
#: scaling (2^-53, negligible) then the cast to float32 (2^-24); doubled for safety.
INPUT_ROUNDING = 2.0**-23


class DiagonalAffine(nn.Module):
    """``x * mult + add`` (float64), a fitted scaler, as a chain layer of its own."""

    def __init__(self, mult, add):
        super().__init__()
        self.register_buffer("mult", torch.as_tensor(mult, dtype=torch.float64).clone())
        self.register_buffer("add", torch.as_tensor(add, dtype=torch.float64).clone())

    def sequential_layers(self):
        """One float64 ``nn.Linear`` with the diagonal weight (for the verifiers)."""
        d = self.mult.shape[0]
        linear = nn.Linear(d, d, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.diag(self.mult))
            linear.bias.copy_(self.add)
        linear.requires_grad_(False)
        return [linear]

    def forward(self, x):
        return x.to(torch.float64) * self.mult + self.add


def verification_chain(model):
    """``(chain, scales)``: the bridged model as an ``nn.Sequential``, and its scalers.

    ``model`` is a :class:`~sklearn_robust.bridge.TorchClassifier` of a network (not the
    black-box wrapper of a non-torch classifier: verification needs the weights). The
    chain is the pipeline's scalers (as :class:`DiagonalAffine`) followed by the
    estimator's network; ``scales`` lists each scaler's ``(mult, add)`` (numpy), from
    which :func:`input_rounding` bounds the float32 rounding of the scaled input.

    Raises
    ------
    TypeError
        For a classifier without a torch network, naming it.
    ValueError
        For a scaler that clips (``MinMaxScaler(clip=True)``), which no verifier bounds.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_robust import NaturalClassifier
    >>> from sklearn_robust.bridge import as_torch_classifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), NaturalClassifier(max_epochs=1)).fit(X, y)
    >>> chain, scales = verification_chain(as_torch_classifier(pipe))
    >>> [type(layer).__name__ for layer in chain], len(scales)
    (['DiagonalAffine', 'MLP'], 1)
    """
    if model.output != "logits":
        raise TypeError(
            f"{type(model.estimator).__name__} has no torch network whose weights a "
            "verifier could bound: methods 'ibp', 'crown' and 'exact' need one of the "
            "library's classifiers (alone or at the end of a Pipeline); "
            "method='smoothing' certifies any classifier with predict."
        )
    layers, scales = [], []
    for step in model.preprocess:
        if not isinstance(step, AffineMap):  # pragma: no cover - the bridge builds these
            raise TypeError(f"cannot verify through the pipeline step {step!r}.")
        if step.clip is not None:
            raise ValueError(
                f"the pipeline step {step.name!r} clips its output (MinMaxScaler(clip=True)): "
                "no verifier bounds a clip; refit the scaler with clip=False."
            )
        mult, add = step.mult.cpu().numpy(), step.add.cpu().numpy()
        layers.append(DiagonalAffine(mult, add))
        scales.append((mult, add))
    return nn.Sequential(*layers, model.network), scales


def input_rounding(scales, low, high):
    """Per-feature raw-space radius covering the float32 rounding of the scaled input.

    The network sees ``float32(x * mult + add)``, within relative :data:`INPUT_ROUNDING`
    of the exact scaled value ``z``; the raw point mapped exactly to it lies within
    ``INPUT_ROUNDING * |z| / |mult|`` of ``x`` per feature. ``low`` and ``high`` bound the
    raw inputs (per feature, per point), hence ``|z|``. With several scalers the
    radii of later ones are mapped back through the earlier ones and added. Without
    scalers the network gets the float32 input itself: zero.

    Returns
    -------
    ndarray
        Same shape as ``low`` (float64).

    Examples
    --------
    A standard scaler with standard deviation 100 (``mult = 0.01``): a raw value of 300
    is scaled to 3, rounded to float32 within ``3 * 2**-23``, that is ``300 * 2**-23``
    in raw units.

    >>> import numpy as np
    >>> r = input_rounding([(np.array([0.01]), np.array([0.0]))], np.array([[300.0]]),
    ...                    np.array([[300.0]]))
    >>> bool(np.isclose(r[0, 0], 300 * 2.0**-23))
    True
    >>> input_rounding([], np.zeros((1, 2)), np.ones((1, 2))).tolist()
    [[0.0, 0.0]]
    """
    radius = np.zeros(np.broadcast(low, high).shape)
    lo, hi, gain = np.asarray(low, float), np.asarray(high, float), np.ones_like(radius)
    for mult, add in scales:
        a, b = lo * mult + add, hi * mult + add
        z_max = np.maximum(np.abs(a), np.abs(b))
        gain = gain * np.abs(mult)  # raw-to-here scale of every earlier step
        radius = radius + INPUT_ROUNDING * z_max / gain
        lo, hi = np.minimum(a, b), np.maximum(a, b)
    return radius
