"""One layer of a torch module as canonical layers: the supported layers and their reading.

``convert`` turns one leaf module (a layer ``network_layers`` found in the forward)
into float64 ``Affine``, ``ReLU`` and ``MaxPool`` layers on flat vectors, for inputs of
a given per-sample shape: a ``Linear`` as its matrix (block diagonal on the last axis of
a larger input), a convolution as its matrix or as a native convolution, an average
pooling as the image of the basis, an eval-mode BatchNorm as a diagonal, a max pool as
its windows.
"""

import math

import torch
from torch import nn

from ._layers import Affine, MaxPool, ReLU, check_dense_size, native_conv

#: Layers that only reshape (the flat C-order vector is unchanged) or are identities in
#: eval mode.
RESHAPES = (nn.Flatten, nn.Unflatten, nn.Identity)
DROPOUTS = (nn.modules.dropout._DropoutNd,)
LINEAR_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
SUPPORTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU,
             nn.MaxPool2d, *LINEAR_POOLS, *RESHAPES, *DROPOUTS)
SUPPORTED_NAMES = ("Linear, Conv1d, Conv2d, BatchNorm1d, BatchNorm2d (eval mode), ReLU, "
                   "MaxPool2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d, Flatten, Unflatten, "
                   "Identity, Dropout (identity in eval mode), nn.Sequential")


def convert(leaf, shape, name, device):
    """``(canonical layers, output shape)`` of one leaf on inputs of shape ``shape``."""
    f64 = dict(dtype=torch.float64, device=device)
    n_in = math.prod(shape)
    if isinstance(leaf, nn.ReLU):
        return [ReLU()], shape
    if isinstance(leaf, DROPOUTS):
        return [], shape
    if isinstance(leaf, RESHAPES):
        out = leaf(torch.empty((2, *shape), device="meta")).shape
        if len(out) < 1 or out[0] != 2:
            raise ValueError(f"{name}: {type(leaf).__name__} mixes samples of a batch.")
        return [], tuple(out[1:])
    if isinstance(leaf, nn.Linear):
        if shape[-1] != leaf.in_features:
            raise ValueError(f"{name}: Linear expects {leaf.in_features} features, gets "
                             f"inputs of shape {shape}.")
        weight = leaf.weight.detach().to(**f64)
        bias = (leaf.bias.detach().to(**f64) if leaf.bias is not None
                else torch.zeros(leaf.out_features, **f64))
        terms = leaf.in_features + 2
        if len(shape) == 1:
            return [Affine(weight.clone(), bias.clone(), terms=terms)], (leaf.out_features,)
        reps = n_in // shape[-1]  # Linear on the last axis: block diagonal
        big = torch.block_diag(*([weight] * reps))
        return ([Affine(big, bias.repeat(reps), terms=terms)],
                (*shape[:-1], leaf.out_features))
    if isinstance(leaf, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return _batchnorm(leaf, shape, name, f64)
    if isinstance(leaf, (nn.Conv1d, nn.Conv2d)):
        return _conv(leaf, shape, name, f64)
    if isinstance(leaf, LINEAR_POOLS):
        weight, out_shape = _basis_image(lambda v: leaf(v), shape, name, f64)
        return [Affine(weight, torch.zeros(weight.shape[0], **f64), kind="avgpool")], \
            out_shape
    if isinstance(leaf, nn.MaxPool2d):
        return _maxpool(leaf, shape, name, device)
    raise TypeError(f"{name}: unsupported layer {type(leaf).__name__}.")  # pragma: no cover


def _basis_image(function, shape, name, f64):
    """The matrix of a linear ``function`` on inputs of ``shape``: images of the basis."""
    n_in = math.prod(shape)
    out = function(torch.zeros((1, *shape), **f64)).shape[1:]
    check_dense_size(math.prod(out), n_in, name)
    basis = torch.eye(n_in, **f64).reshape(n_in, *shape)
    return function(basis).reshape(n_in, -1).T.contiguous(), tuple(out)


def _conv(leaf, shape, name, f64):
    dims = 2 if isinstance(leaf, nn.Conv2d) else 1
    if len(shape) != dims + 1 or shape[0] != leaf.in_channels:
        raise ValueError(f"{name}: {type(leaf).__name__} expects ({leaf.in_channels}, ...) "
                         f"inputs with {dims} spatial axes, gets shape {shape}.")
    # the standard layout even where a channels-last kernel also counts as contiguous
    # (one input channel): torch would run the convolutions channels-last, 4x slower
    weight = leaf.weight.detach().to(**f64).clone(memory_format=torch.contiguous_format)
    bias = leaf.bias.detach().to(**f64) if leaf.bias is not None else None
    zero = torch.zeros((1, *shape), **f64)
    out_shape = tuple(leaf._conv_forward(zero, weight, None).shape[1:])
    offset = (leaf._conv_forward(zero, weight, bias).reshape(-1) if bias is not None
              else torch.zeros(math.prod(out_shape), **f64))
    terms = math.prod(weight.shape[1:]) + 2
    fast = None
    if dims == 2 and leaf.padding_mode == "zeros" and not isinstance(leaf.padding, str):
        fast = dict(weight=weight, stride=leaf.stride, padding=leaf.padding,
                    dilation=leaf.dilation, groups=leaf.groups, in_shape=shape,
                    out_shape=out_shape)
    matrix = None  # a native convolution builds its matrix only when asked
    if fast is None or not native_conv(fast):
        matrix, _ = _basis_image(lambda v: leaf._conv_forward(v, weight, None), shape,
                                 name, f64)
    return [Affine(matrix, offset, terms=terms, conv=fast, kind="conv")], out_shape


def _batchnorm(leaf, shape, name, f64):
    if leaf.running_mean is None or leaf.running_var is None:
        raise ValueError(f"{name}: {type(leaf).__name__} without running statistics "
                         f"(track_running_stats=False) normalises by the batch: not a "
                         f"function of one sample.")
    if len(shape) < 1 or shape[0] != leaf.num_features:
        raise ValueError(f"{name}: {type(leaf).__name__} expects {leaf.num_features} "
                         f"channels, gets shape {shape}.")
    mean = leaf.running_mean.detach().to(**f64)
    scale = 1.0 / torch.sqrt(leaf.running_var.detach().to(**f64) + leaf.eps)
    shift = torch.zeros_like(mean)
    if leaf.weight is not None:
        scale = scale * leaf.weight.detach().to(**f64)
    if leaf.bias is not None:
        shift = leaf.bias.detach().to(**f64)
    per = math.prod(shape[1:])
    diagonal = scale.repeat_interleave(per)
    bias = (shift - mean * scale).repeat_interleave(per)
    magnitude = (shift.abs() + (mean * scale).abs()).repeat_interleave(per)
    # about 8 roundings (var + eps, sqrt, divide, * weight, mean * scale, shift - .,
    # x * scale, + .), 16 to leave room for approximate rsqrt on accelerators
    return [Affine(None, bias, terms=16, bias_magnitude=magnitude, diagonal=diagonal,
                   kind="batchnorm")], shape


def _maxpool(leaf, shape, name, device):
    if len(shape) != 3:
        raise ValueError(f"{name}: MaxPool2d expects (C, H, W) inputs, gets shape {shape}.")
    channels, height, width = shape
    out = leaf(torch.zeros((1, *shape))).shape[1:]
    kernel, stride, pad, dil = (nn.modules.utils._pair(v) for v in (
        leaf.kernel_size, leaf.stride if leaf.stride is not None else leaf.kernel_size,
        leaf.padding, leaf.dilation))
    ids = torch.arange(channels * height * width, dtype=torch.float64).reshape(1, *shape)
    extra = [max(0, (out[1 + a] - 1) * stride[a] + dil[a] * (kernel[a] - 1) + 1
                 - (shape[1 + a] + 2 * pad[a])) for a in (0, 1)]
    ids = torch.nn.functional.pad(ids, (pad[1], pad[1] + extra[1], pad[0], pad[0] + extra[0]),
                                  value=-1.0)
    windows = torch.nn.functional.unfold(ids, kernel, dilation=dil, stride=stride)
    rows, cols = (ids.shape[2] - dil[0] * (kernel[0] - 1) - 1) // stride[0] + 1, \
        (ids.shape[3] - dil[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    k = kernel[0] * kernel[1]
    windows = windows.reshape(channels, k, rows, cols)[:, :, :out[1], :out[2]]
    index = windows.permute(0, 2, 3, 1).reshape(-1, k).to(torch.long)
    return [MaxPool(index.to(device), channels * height * width)], tuple(out)
