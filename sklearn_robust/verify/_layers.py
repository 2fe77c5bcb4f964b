"""The canonical layers the verifiers read: float64 affine maps, ReLUs and max pools.

Every layer acts on flat vectors, one row per sample (``(N, d)``); the flat order is the
C order of the per-sample tensor, so reshapes (``Flatten``, ``Unflatten``) are no layer
at all. Weights are float64 copies of the module's float32 parameters.
"""

from __future__ import annotations

import torch

__all__ = ["Affine", "MaxPool", "ReLU", "merged"]


class Affine:
    """``z = W x + b`` on flat vectors, with what bounding and rounding analysis need.

    Parameters
    ----------
    weight : torch.Tensor or None
        ``(out, in)`` float64 matrix; ``None`` with ``diagonal`` (materialised on demand).
    bias : torch.Tensor
        ``(out,)`` float64.
    terms : int or None
        Rounding steps of one output in the model's own (float32) computation, for the
        rounding slack: the number of products summed plus the bias and one spare.
        ``None``: the largest number of nonzeros in a row of ``weight`` plus 2.
    bias_magnitude : torch.Tensor or None
        Magnitude of the constant terms of that computation (``|b|``; BatchNorm:
        ``|beta| + |mean * scale|``). ``None``: ``|bias|``.
    diagonal : torch.Tensor or None
        ``(d,)``: the map is ``diag(diagonal) x + b`` (BatchNorm), applied elementwise.
    conv : dict or None
        A zero-padded 2-d convolution's float64 ``weight``, ``stride``, ``padding``,
        ``dilation``, ``groups``, ``in_shape`` and ``out_shape``: products with the
        matrix run as convolutions (same values, less work).
    kind : str
        Where it came from (``'linear'``, ``'conv'``, ``'batchnorm'``, ...), for messages.
    """

    def __init__(self, weight, bias, *, terms=None, bias_magnitude=None, diagonal=None,
                 conv=None, kind="linear"):
        self._weight = weight
        self.bias = bias
        self.diagonal = diagonal
        self.conv = conv
        self.kind = kind
        if terms is None:
            terms = int((weight != 0).sum(dim=1).max().item()) + 2 if weight.numel() else 2
        self.terms = int(terms)
        self.bias_magnitude = bias.abs() if bias_magnitude is None else bias_magnitude

    @property
    def weight(self):
        """The dense ``(out, in)`` float64 matrix."""
        if self._weight is None:
            self._weight = torch.diag(self.diagonal)
        return self._weight

    @property
    def in_features(self):
        return self.diagonal.numel() if self._weight is None else self._weight.shape[1]

    @property
    def out_features(self):
        return self.bias.numel()

    @property
    def abs_weight(self):
        """``|W|``, cached (IBP and the rounding slack use it on every batch)."""
        if getattr(self, "_abs", None) is None:
            self._abs = self.weight.abs()
        return self._abs

    def forward(self, x):
        """``x W^T + b`` for rows ``x`` of shape ``(..., in)``."""
        if self.diagonal is not None:
            return x * self.diagonal + self.bias
        return x @ self.weight.T + self.bias

    def forward_abs(self, r):
        """``r |W|^T`` (no bias): the radius of a box's image."""
        if self.diagonal is not None:
            return r * self.diagonal.abs()
        return r @ self.abs_weight.T

    def backward(self, a):
        """``a W`` for rows ``a`` of shape ``(..., out)``: ``(..., in)``."""
        if self.diagonal is not None:
            return a * self.diagonal
        if self.conv is not None and a.dim() == 3 and a.shape[0] * a.shape[1] > 64:
            return _conv_backward(self.conv, a)
        return a @ self.weight

    def backward_abs(self, a):
        """``a |W|`` for rows ``a`` of shape ``(..., out)``."""
        if self.diagonal is not None:
            return a * self.diagonal.abs()
        if self.conv is not None and a.dim() == 3 and a.shape[0] * a.shape[1] > 64:
            if "abs_weight" not in self.conv:
                self.conv["abs_weight"] = self.conv["weight"].abs()
            return _conv_backward(self.conv, a, "abs_weight")
        return a @ self.abs_weight

    def __repr__(self):
        return f"Affine({self.kind}, in={self.in_features}, out={self.out_features})"


def _conv_backward(conv, a, weight="weight"):
    """``a W`` for a convolution ``W``: its transpose applied to each row of ``a``."""
    lead = a.shape[:-1]
    rows = a.reshape(-1, *conv["out_shape"])
    grad = torch.nn.grad.conv2d_input(
        (rows.shape[0], *conv["in_shape"]), conv[weight], rows, stride=conv["stride"],
        padding=conv["padding"], dilation=conv["dilation"], groups=conv["groups"])
    return grad.reshape(*lead, -1)


class ReLU:
    """``max(x, 0)`` elementwise."""

    terms = 0

    def __repr__(self):
        return "ReLU()"


class MaxPool:
    """``z_o = max_{i in window o} x_i``.

    Parameters
    ----------
    index : torch.Tensor
        ``(out, k)`` long: the flat input indices of each output's window, ``-1`` where
        the window covers padding (which never wins: torch pads max pooling with -inf).
    in_features : int
        Width of the input.
    """

    def __init__(self, index, in_features):
        self.index = index
        self.valid = index >= 0
        self.safe_index = index.clamp_min(0)
        self.in_features = int(in_features)

    @property
    def out_features(self):
        return self.index.shape[0]

    def gather(self, v, fill):
        """``(N, out, k)``: the window values of rows ``v``, ``fill`` on padding."""
        values = v[:, self.safe_index]
        return values.masked_fill(~self.valid, fill)

    def forward(self, v):
        return self.gather(v, -torch.inf).amax(dim=-1)

    def __repr__(self):
        return f"MaxPool(in={self.in_features}, out={self.out_features}, " \
               f"k={self.index.shape[1]})"


def merged(layers):
    """``layers`` with every run of consecutive affine maps multiplied into one (dense).

    Bounds stay sound (the composition is the same function) and intervals get tighter;
    the rounding slack must still follow the unmerged layers (the model rounds each).

    Examples
    --------
    >>> import torch
    >>> one = Affine(torch.eye(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64))
    >>> merged([one, one, ReLU(), one])
    [Affine(merged, in=2, out=2), ReLU(), Affine(linear, in=2, out=2)]
    """
    out = []
    for layer in layers:
        if isinstance(layer, Affine) and out and isinstance(out[-1], Affine):
            prev = out[-1]
            if prev.diagonal is not None and layer.diagonal is not None:
                combined = Affine(None, layer.forward(prev.bias), terms=0,
                                  diagonal=layer.diagonal * prev.diagonal, kind="merged")
            else:
                if layer.diagonal is not None:
                    weight = layer.diagonal[:, None] * prev.weight
                else:
                    weight = layer.weight @ prev.weight
                combined = Affine(weight, layer.forward(prev.bias), terms=0, kind="merged")
            out[-1] = combined
        else:
            out.append(layer)
    return out
