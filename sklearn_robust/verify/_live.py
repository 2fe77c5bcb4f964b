"""The live layers of certified training: linear maps applied natively, in the module's dtype.

A convolution, a ``Linear`` on the last axis of a larger input or an average pooling is
a :class:`LiveMap`: its forward runs the layer's own operation on the live parameters,
its transpose is the transposed convolution (or a ``vjp``), and ``|W|`` products apply
the operation to ``|w|``; the dense matrix is built only where a step has no matrix-free
form. :class:`NativeMaxPool` runs ``max_pool2d`` itself.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._layers import Affine, MaxPool, check_dense_size

__all__ = ["LiveMap", "NativeMaxPool", "conv_maps"]


class LiveMap(Affine):
    """``z = A(x) + b`` on flat rows, ``A`` a linear map applied natively.

    ``apply(v, w)`` maps ``(M, *in_shape)`` to ``(M, *out_shape)`` with weights ``w``
    (a convolution, a linear layer on the last axis, a pooling with ``w = None``);
    ``adjoint(a, w)`` is its transpose (``None``: by ``torch.func.vjp`` of ``apply``).
    ``|W|`` products use ``apply(., |w|)`` (``w = None``: no negative weights). The dense
    matrix is built only where a step has no matrix-free form (an l_1 ball at the first
    layer); :func:`~sklearn_robust.verify._ibp.merged_dense` never merges this layer.
    """

    matrix_free = True
    diagonal = None
    conv = None
    terms = 0

    def __init__(self, apply, adjoint, w, bias, in_shape, out_shape, *, kind,
                 squares=False):
        self._apply, self._adjoint, self._w, self.bias = apply, adjoint, w, bias
        self.in_shape, self.out_shape, self.kind = tuple(in_shape), tuple(out_shape), kind
        self._in, self._out = math.prod(in_shape), math.prod(out_shape)
        self._weight = self._abs_w = None
        self.squares = squares  # whether apply(1, w * w) gives the rows' squared l2 norms

    in_features = property(lambda self: self._in)
    out_features = property(lambda self: self._out)
    bias_magnitude = property(lambda self: self.bias.abs())

    @property
    def weight(self):
        """The dense ``(out, in)`` matrix (differentiable), built on first use."""
        if self._weight is None:
            check_dense_size(self._out, self._in, f"a {self.kind} layer (l_1 ball)")
            eye = torch.eye(self._in, dtype=self.bias.dtype, device=self.bias.device)
            self._weight = self._rows(self._apply, eye, self._w, self.in_shape).T
        return self._weight

    def _abs(self):
        if self._abs_w is None and self._w is not None:
            self._abs_w = self._w.abs()
        return self._abs_w

    @staticmethod
    def _rows(function, rows, w, shape):
        lead = rows.shape[:-1]
        return function(rows.reshape(-1, *shape), w).reshape(*lead, -1)

    def _transpose(self, a, w):
        if self._adjoint is not None:
            return self._adjoint(a, w)
        probe = a.new_zeros((a.shape[0], *self.in_shape))
        return torch.func.vjp(lambda v: self._apply(v, w), probe)[1](a)[0]

    def forward(self, x):
        return self._rows(self._apply, x, self._w, self.in_shape) + self.bias

    def forward_abs(self, r):
        return self._rows(self._apply, r, self._abs(), self.in_shape)

    def backward(self, a):
        return self._rows(self._transpose, a, self._w, self.out_shape)

    def backward_abs(self, a):
        return self._rows(self._transpose, a, self._abs(), self.out_shape)

    def row_dual_norms(self, norm):
        """``||w_i||_2`` of every row without the matrix (``None`` for other norms)."""
        if norm != "l2" or not self.squares:
            return None
        ones = self.bias.new_ones((1, *self.in_shape))
        squares = self._apply(ones, self._w * self._w).reshape(-1)
        return squares.clamp_min(torch.finfo(squares.dtype).tiny).sqrt()  # finite grads

    def __repr__(self):
        return f"LiveMap({self.kind}, in={self._in}, out={self._out})"


class NativeMaxPool(MaxPool):
    """:class:`MaxPool` whose forward (IBP's two ends) runs ``max_pool2d`` itself, and
    whose windows are gathered by ``index_select`` (a cheaper gradient than indexing)."""

    def __init__(self, pool, leaf, shape):
        super().__init__(pool.index, pool.in_features)
        self.shape, self.options = tuple(shape), dict(
            kernel_size=leaf.kernel_size, stride=leaf.stride, padding=leaf.padding,
            dilation=leaf.dilation, ceil_mode=leaf.ceil_mode)
        self.flat_index, self.padded = self.safe_index.reshape(-1), not bool(self.valid.all())

    def gather(self, v, fill):
        values = v.index_select(1, self.flat_index).reshape(v.shape[0], *self.index.shape)
        return values.masked_fill(~self.valid, fill) if self.padded else values

    def forward(self, v):
        return F.max_pool2d(v.reshape(-1, *self.shape), **self.options).reshape(
            *v.shape[:-1], -1)


def conv_maps(leaf, shape, out):
    """``(apply, adjoint, squares)`` of a convolution from ``shape`` to ``out``."""
    if leaf.padding_mode != "zeros" or isinstance(leaf.padding, str):
        return (lambda v, w: leaf._conv_forward(v, w, None)), None, False
    two = isinstance(leaf, nn.Conv2d)
    conv, transposed = (F.conv2d, F.conv_transpose2d) if two else (F.conv1d,
                                                                   F.conv_transpose1d)
    kernel = leaf.weight.shape[2:]
    stride, padding, dilation, groups = leaf.stride, leaf.padding, leaf.dilation, leaf.groups
    # the rows the forward's floor division dropped, restored by the transpose
    extra = tuple(shape[1 + i] - ((out[1 + i] - 1) * stride[i] - 2 * padding[i]
                                  + dilation[i] * (kernel[i] - 1) + 1)
                  for i in range(len(kernel)))
    return ((lambda v, w: conv(v, w, None, stride, padding, dilation, groups)),
            (lambda a, w: transposed(a, w, None, stride, padding, extra, groups, dilation)),
            True)
