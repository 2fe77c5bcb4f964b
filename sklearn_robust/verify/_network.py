"""A torch module as canonical layers: float64 affine maps, ReLUs and max pools.

The module is read, never changed: its parameters and buffers are copied to float64, no
mode is switched and no gradient is recorded. A module in train mode is read as in eval
mode (BatchNorm with its running statistics, dropout off): what is verified is the
eval-mode model, the one attacks and predictions use.
"""

import copy
import math

import numpy as np
import torch
from torch import nn

from ._layers import Affine, MaxPool, ReLU, check_dense_size, merged, native_conv
from ._trace import chain_of

__all__ = ["dense_layers", "network_layers"]

#: Layers that only reshape (the flat C-order vector is unchanged) or are identities in
#: eval mode.
_RESHAPES = (nn.Flatten, nn.Unflatten, nn.Identity)
_DROPOUTS = (nn.modules.dropout._DropoutNd,)
_LINEAR_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
_SUPPORTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU,
              nn.MaxPool2d, *_LINEAR_POOLS, *_RESHAPES, *_DROPOUTS)
_SUPPORTED_NAMES = ("Linear, Conv1d, Conv2d, BatchNorm1d, BatchNorm2d (eval mode), ReLU, "
                    "MaxPool2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d, Flatten, Unflatten, "
                    "Identity, Dropout (identity in eval mode), nn.Sequential")


def network_layers(module, sample_shape, *, check=True):
    """Canonical layers of ``module`` for inputs of per-sample shape ``sample_shape``.

    The network as a list of layers on flat vectors, weights float64 copies of the
    module's: ``Affine`` (``W`` (out, in), ``b``; from ``Linear``, ``Conv1d``/``Conv2d``
    as the matrix of this input shape, average pooling, eval-mode BatchNorm folded with
    its running statistics), ``ReLU`` and ``MaxPool`` (``MaxPool2d``). A zero-padded
    ``Conv2d`` whose matrix is much larger than its kernel work runs as a convolution
    and builds that matrix only when asked for it (by full CROWN, or the MILP).
    Reshapes (``Flatten``, ``Unflatten``), ``Identity`` and dropout (identity in eval
    mode) leave no layer. The module is only read: no mode switch, no gradient, no
    buffer update. A module in train mode is read as in eval mode: what is verified is
    the eval-mode model.

    ``nn.Sequential`` is read child by child. Any other module must be a supported
    layer, or declare ``sequential_layers()``, returning the modules whose composition
    is its forward on a batch of ``(N, *sample_shape)`` (the library's ``MLP``,
    ``SmallCNN`` and ``Reshape`` do), or have a forward that ``torch.fx`` traces to a
    plain chain of submodules, ``relu`` and ``flatten(x, 1)``. Anything else (residual
    additions, other activations such as Tanh or GELU, LayerNorm) is refused before
    any work, naming the module.

    Parameters
    ----------
    module : torch.nn.Module
        The model, returning logits.
    sample_shape : tuple of int
        Shape of one input sample, e.g. ``(64,)`` or ``(1, 8, 8)`` (the library's
        ``SmallCNN`` also accepts ``(N, H, W)`` batches; give it ``(1, H, W)`` here).
    check : bool, default=True
        Check on a few random inputs that the layers compute the module's eval-mode
        forward (on a float64 copy), and raise ``ValueError`` when they do not.

    Returns
    -------
    list
        The canonical layers, in order.

    Raises
    ------
    TypeError
        For an unsupported layer or a module whose forward cannot be read.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust.verify import network_layers
    >>> model = torch.nn.Sequential(
    ...     torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    ...     torch.nn.Flatten(), torch.nn.Linear(8, 3))
    >>> network_layers(model, (1, 4, 4))
    [Affine(conv, in=16, out=32), ReLU(), MaxPool(in=32, out=8, k=4), \
Affine(linear, in=8, out=3)]
    >>> network_layers(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh()), (2,))
    Traceback (most recent call last):
    ...
    TypeError: Sequential.1: unsupported layer Tanh: ...
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}.")
    try:
        shape = tuple(int(s) for s in sample_shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"sample_shape must be a tuple of ints, got {sample_shape!r}.") from None
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"sample_shape must hold positive sizes, got {sample_shape!r}.")
    param = next(iter(module.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    leaves = list(_leaves(module, type(module).__name__))  # every refusal before any work
    layers, current = [], shape
    with torch.no_grad():
        for name, leaf in leaves:
            built, current = _convert(leaf, current, name, device)
            layers.extend(built)
    if not any(isinstance(layer, Affine) for layer in layers):
        raise ValueError(f"{type(module).__name__} has no affine layer to verify.")
    if check:
        _check_same_function(module, layers, shape, device)
    return layers


def layers_out(layers):
    """Width of the network's output."""
    for layer in reversed(layers):
        if not isinstance(layer, ReLU):
            return layer.out_features
    raise ValueError("layers hold no affine or max-pool layer.")


def layers_in(layers):
    """Width of the network's input."""
    for layer in layers:
        if not isinstance(layer, ReLU):
            return layer.in_features
    raise ValueError("layers hold no affine or max-pool layer.")


def _leaves(module, name):
    """``(name, leaf module)`` in the order the forward runs them; refuses the unknown."""
    declared = getattr(module, "sequential_layers", None)
    if callable(declared):
        children = list(declared())
        for i, child in enumerate(children):
            if not isinstance(child, nn.Module):
                raise TypeError(f"{name}.sequential_layers() returned a "
                                f"{type(child).__name__}, not a torch.nn.Module.")
            yield from _leaves(child, f"{name}.{type(child).__name__}[{i}]")
    elif isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward:
        for key, child in module.named_children():
            yield from _leaves(child, f"{name}.{key}")
    elif isinstance(module, _SUPPORTED):
        if isinstance(module, nn.MaxPool2d) and module.return_indices:
            raise TypeError(f"{name}: MaxPool2d with return_indices=True is not supported.")
        base = next(c for c in _SUPPORTED if isinstance(module, c))
        if not isinstance(module, _DROPOUTS) and type(module).forward is not base.forward:
            raise TypeError(
                f"{name}: {type(module).__name__} overrides the forward of {base.__name__}; "
                f"declare sequential_layers() on it listing what its forward computes.")
        yield name, module
    elif type(module).__module__.startswith("torch.nn"):
        raise TypeError(f"{name}: unsupported layer {type(module).__name__}: the verifiers "
                        f"handle {_SUPPORTED_NAMES}.")
    else:
        chain = chain_of(module)
        if chain is None:
            raise TypeError(
                f"{name}: cannot verify {type(module).__name__}: its forward is not a plain "
                f"chain of supported layers ({_SUPPORTED_NAMES}), and it declares no "
                f"sequential_layers(). Give {type(module).__name__} a method "
                f"sequential_layers() returning the list of modules whose composition is "
                f"its forward (residual connections and other activations cannot be "
                f"verified here).")
        for i, child in enumerate(chain):
            yield from _leaves(child, f"{name}.{type(child).__name__}[{i}]")


def _convert(leaf, shape, name, device):
    """``(canonical layers, output shape)`` of one leaf on inputs of shape ``shape``."""
    f64 = dict(dtype=torch.float64, device=device)
    n_in = math.prod(shape)
    if isinstance(leaf, nn.ReLU):
        return [ReLU()], shape
    if isinstance(leaf, _DROPOUTS):
        return [], shape
    if isinstance(leaf, _RESHAPES):
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
    if isinstance(leaf, _LINEAR_POOLS):
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


def _check_same_function(module, layers, shape, device):
    """The layers compute the eval-mode module's forward (on a float64 copy)."""
    twin = copy.deepcopy(module).to(dtype=torch.float64).eval()
    generator = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn((2, *shape), generator=generator, dtype=torch.float64),
                   torch.rand((2, *shape), generator=generator, dtype=torch.float64)])
    x = x.to(device)
    with torch.no_grad():
        expected = twin(x).reshape(4, -1)
        got = forward_layers(layers, x.reshape(4, -1))
    scale = 1.0 + expected.abs().max().item()
    if got.shape != expected.shape or (got - expected).abs().max().item() > 1e-7 * scale:
        raise ValueError(
            f"the layers read from {type(module).__name__} do not compute its forward (in "
            f"eval mode); if it declares sequential_layers(), that list must compose to "
            f"its forward on inputs of shape (N, *{shape}).")


def forward_layers(layers, v):
    """The canonical network on flat rows ``v`` (float64)."""
    for layer in layers:
        if isinstance(layer, ReLU):
            v = v.clamp_min(0)
        else:
            v = layer.forward(v)
    return v


def dense_layers(layers):
    """``[(W, b), ...]`` float64 numpy pairs with a ReLU between consecutive pairs.

    The network ``x -> W_1 x + b_1 -> ReLU -> W_2 . + b_2 -> ... -> W_L . + b_L`` (a
    ReLU after every pair but the last), as an exact verifier (a MILP) takes it:
    consecutive affine maps (a convolution and its BatchNorm, ...) are multiplied into
    one. Networks with max pooling are refused.

    Parameters
    ----------
    layers : list
        :func:`network_layers` of the model.

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray)
        ``(W, b)`` float64 pairs, ``W`` of shape ``(out, in)``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust.verify import dense_layers, network_layers
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8),
    ...                             torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> [w.shape for w, b in dense_layers(network_layers(model, (4,)))]
    [(8, 4), (3, 8)]
    """
    if any(isinstance(layer, MaxPool) for layer in layers):
        raise ValueError("dense_layers cannot express a max pool layer (a max of several "
                         "units is not a ReLU network of this form).")
    pairs, pending_relu = [], False
    for layer in merged(layers):
        if isinstance(layer, ReLU):
            if not pairs:  # a ReLU on the input: an identity pair first
                width = layers_in(layers)
                pairs.append((np.eye(width), np.zeros(width)))
            pending_relu = True
            continue
        if pairs and not pending_relu:  # pragma: no cover - merged() joins affines
            raise AssertionError("two affine maps without a ReLU between them")
        pairs.append((layer.weight.cpu().numpy().copy(), layer.bias.cpu().numpy().copy()))
        pending_relu = False
    if pending_relu:  # a ReLU on the output: an identity pair last
        width = pairs[-1][0].shape[0]
        pairs.append((np.eye(width), np.zeros(width)))
    return pairs
