"""The canonical layers the verifiers read: float64 affine maps, ReLUs and max pools.

Every layer acts on flat vectors, one row per sample (``(N, d)``); the flat order is the
C order of the per-sample tensor, so reshapes (``Flatten``, ``Unflatten``) are no layer
at all. Weights are float64 copies of the module's float32 parameters.
"""

import math

import torch
from torch.nn import functional as F

__all__ = ["MAX_DENSE", "Affine", "MaxPool", "ReLU", "check_dense_size", "merged", "native_conv"]

#: A convolution runs as a convolution, its dense matrix built only when asked, when
#: that matrix has more than this many times as many entries as the convolution has
#: multiply-adds per sample: float64 convolutions on CPU cost 2-5 times a dense
#: product per multiply-add (measured on the 8x8 and 4x4 layers of SmallCNN).
NATIVE_RATIO = 4
#: Largest dense matrix built for a convolution or pooling layer (float64 entries): IBP
#: and CROWN-IBP never build one for a native convolution, full CROWN and the MILP may.
MAX_DENSE = 2**28


def check_dense_size(n_out, n_in, name):
    """Refuse to build an ``(n_out, n_in)`` dense matrix above :data:`MAX_DENSE`."""
    if n_in * n_out > MAX_DENSE:
        raise ValueError(f"{name}: its dense matrix ({n_out} x {n_in}) is too large to "
                         f"build here; use smaller inputs or a smaller network, or a "
                         f"method that runs convolutions natively (IBP, CROWN-IBP).")


def native_conv(conv):
    """Whether the convolution ``conv`` (the dict :class:`Affine` takes) runs natively."""
    macs = math.prod(conv["out_shape"]) * math.prod(conv["weight"].shape[1:])
    dense = math.prod(conv["out_shape"]) * math.prod(conv["in_shape"])
    return dense > NATIVE_RATIO * macs


class Affine:
    """``z = W x + b`` on flat vectors, with what bounding and rounding analysis need.

    Parameters
    ----------
    weight : torch.Tensor or None
        ``(out, in)`` float64 matrix; ``None`` with ``diagonal`` or a native ``conv``
        (then built on first use of :attr:`weight`).
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
        ``dilation``, ``groups``, ``in_shape`` and ``out_shape``. Where
        :func:`native_conv` says so, every product runs as a convolution (the same
        values up to rounding, for less work) and ``weight`` may be ``None``.
    kind : str
        Where it came from (``'linear'``, ``'conv'``, ``'batchnorm'``, ...), for messages.
    """

    native = False  # products run as convolutions (set per layer)

    def __init__(self, weight, bias, *, terms=None, bias_magnitude=None, diagonal=None,
                 conv=None, kind="linear"):
        self._weight = weight
        self.bias = bias
        self.diagonal = diagonal
        self.conv = conv
        self.kind = kind
        self.native = conv is not None and (weight is None or native_conv(conv))
        if terms is None:
            terms = int((self.weight != 0).sum(dim=1).max().item()) + 2 \
                if self.weight.numel() else 2
        self.terms = int(terms)
        self.bias_magnitude = bias.abs() if bias_magnitude is None else bias_magnitude

    @property
    def weight(self):
        """The dense ``(out, in)`` float64 matrix (built on first use if not given)."""
        if self._weight is None:
            if self.diagonal is not None:
                self._weight = torch.diag(self.diagonal)
            else:  # the images of the basis vectors, as columns
                check_dense_size(self.out_features, self.in_features,
                                 f"a {self.kind} layer")
                eye = torch.eye(self.in_features, dtype=self.bias.dtype,
                                device=self.bias.device)
                self._weight = _conv(self.conv, eye, self.conv["weight"]).T.contiguous()
        return self._weight

    @property
    def in_features(self):
        if self._weight is not None:
            return self._weight.shape[1]
        if self.diagonal is not None:
            return self.diagonal.numel()
        return math.prod(self.conv["in_shape"])

    @property
    def out_features(self):
        return self.bias.numel()

    @property
    def abs_weight(self):
        """``|W|``, cached (IBP and the rounding slack use it on every batch)."""
        if getattr(self, "_abs", None) is None:
            self._abs = self.weight.abs()
        return self._abs

    def _abs_kernel(self):
        if "abs_weight" not in self.conv:
            self.conv["abs_weight"] = self.conv["weight"].abs()
        return self.conv["abs_weight"]

    def forward(self, x):
        """``x W^T + b`` for rows ``x`` of shape ``(..., in)``."""
        if self.diagonal is not None:
            return x * self.diagonal + self.bias
        if self.native:
            return _conv(self.conv, x, self.conv["weight"]) + self.bias
        return x @ self.weight.T + self.bias

    def forward_abs(self, r):
        """``r |W|^T`` (no bias): the radius of a box's image."""
        if self.diagonal is not None:
            return r * self.diagonal.abs()
        if self.native:
            return _conv(self.conv, r, self._abs_kernel())
        return r @ self.abs_weight.T

    def backward(self, a):
        """``a W`` for rows ``a`` of shape ``(..., out)``: ``(..., in)``."""
        if self.diagonal is not None:
            return a * self.diagonal
        if self.native:
            return _conv_backward(self.conv, a, self.conv["weight"])
        return a @ self.weight

    def backward_abs(self, a):
        """``a |W|`` for rows ``a`` of shape ``(..., out)``."""
        if self.diagonal is not None:
            return a * self.diagonal.abs()
        if self.native:
            return _conv_backward(self.conv, a, self._abs_kernel())
        return a @ self.abs_weight

    def __repr__(self):
        return f"Affine({self.kind}, in={self.in_features}, out={self.out_features})"


def _conv(conv, x, weight):
    """``x W^T`` for a convolution ``W`` (kernel ``weight``), rows ``x`` (..., in)."""
    lead = x.shape[:-1]
    out = F.conv2d(x.reshape(-1, *conv["in_shape"]), weight, None, conv["stride"],
                   conv["padding"], conv["dilation"], conv["groups"])
    return out.reshape(*lead, math.prod(conv["out_shape"]))


def _conv_backward(conv, a, weight):
    """``a W`` for a convolution ``W``: its transpose applied to each row of ``a``."""
    lead = a.shape[:-1]
    rows = a.reshape(-1, *conv["out_shape"])
    grad = torch.nn.grad.conv2d_input(
        (rows.shape[0], *conv["in_shape"]), weight, rows, stride=conv["stride"],
        padding=conv["padding"], dilation=conv["dilation"], groups=conv["groups"])
    return grad.reshape(*lead, math.prod(conv["in_shape"]))


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
    """``layers`` with every run of consecutive affine maps multiplied into one.

    Bounds stay sound (the composition is the same function) and intervals get tighter;
    the rounding slack must still follow the unmerged layers (the model rounds each).
    A native convolution followed by a per-channel scaling (BatchNorm) stays a native
    convolution (its kernel scaled); other products are dense.

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
            out[-1] = _product(layer, out[-1])
        else:
            out.append(layer)
    return out


def _product(layer, prev):
    """The affine map ``layer . prev``."""
    bias = layer.forward(prev.bias)
    if prev.diagonal is not None and layer.diagonal is not None:
        return Affine(None, bias, terms=0, diagonal=layer.diagonal * prev.diagonal,
                      kind="merged")
    if layer.diagonal is not None:
        scale = _per_channel(layer.diagonal, prev)
        if scale is not None:  # BatchNorm after a convolution: scale its kernel
            kernel = prev.conv["weight"] * scale[:, None, None, None]
            conv = {**prev.conv, "weight": kernel, "abs_weight": kernel.abs()}
            return Affine(None, bias, terms=0, conv=conv, kind="merged")
        return Affine(layer.diagonal[:, None] * prev.weight, bias, terms=0, kind="merged")
    return Affine(layer.weight @ prev.weight, bias, terms=0, kind="merged")


def _per_channel(diagonal, prev):
    """The channel scales of ``diagonal`` after ``prev``, or None unless ``prev`` is a
    native convolution and the scaling is constant over each of its output channels."""
    if not getattr(prev, "native", False):
        return None
    per = diagonal.reshape(prev.conv["out_shape"][0], -1)
    return per[:, 0] if bool((per == per[:, :1]).all()) else None
