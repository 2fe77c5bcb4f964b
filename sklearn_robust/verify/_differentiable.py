"""Margin bounds for certified training: IBP and CROWN-IBP on the live module.

The module is read by the verifiers' rules (``_network._leaves``: the same chains and
refusals); its layers are built on every call from the live parameters, in their dtype:
a ``Linear`` is an :class:`Affine` whose weight is the parameter, a convolution or an
average pooling a :class:`LiveMap` (``_live.py``: convolution forward, transposed
convolution backward, never a dense matrix). The package's one IBP and CROWN then run on
them.
"""

import math
import weakref
from numbers import Real

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import Interval, check_eps, check_norm, check_scalar_param, frozen
from ._convert import LINEAR_POOLS, convert
from ._crown import backward, margin_spec, relaxations
from ._ibp import interval_bounds, interval_margins, nonlinear_inputs
from ._inputs import InputSet, box_side
from ._layers import Affine
from ._live import LiveMap, NativeMaxPool, conv_maps
from ._network import _leaves, forward_layers, layers_out

__all__ = ["training_margin_bounds"]

_CALLER = "training_margin_bounds"
_PLANS = weakref.WeakKeyDictionary()  # module -> (fingerprint, plan): read once


def _read(leaf, shape, name, device):
    """``(entry, output shape)``: a plan entry ``(kind, leaf ref, static layers, in,
    out)`` for one leaf; live kinds are built from the parameters on every call."""
    if isinstance(leaf, nn.Linear):
        if shape[-1] != leaf.in_features:
            raise ValueError(f"{name}: Linear expects {leaf.in_features} features, gets "
                             f"inputs of shape {shape}.")
        out = (*shape[:-1], leaf.out_features)
        kind = "linear" if len(shape) == 1 else "linear_last"
        return (kind, weakref.ref(leaf), None, shape, out), out
    if isinstance(leaf, (nn.Conv1d, nn.Conv2d)):
        dims = 2 if isinstance(leaf, nn.Conv2d) else 1
        if len(shape) != dims + 1 or shape[0] != leaf.in_channels:
            raise ValueError(f"{name}: {type(leaf).__name__} expects ({leaf.in_channels}, "
                             f"...) inputs with {dims} spatial axes, gets shape {shape}.")
        meta = torch.empty((1, *shape), device="meta", dtype=leaf.weight.dtype)
        out = tuple(leaf._conv_forward(meta, leaf.weight.to("meta"), None).shape[1:])
        return ("conv", weakref.ref(leaf), None, shape, out), out
    if isinstance(leaf, LINEAR_POOLS):
        out = tuple(leaf(torch.empty((1, *shape), device="meta")).shape[1:])
        return ("pool", weakref.ref(leaf), None, shape, out), out
    static, out = convert(leaf, shape, name, device)  # ReLU, max pool, reshapes, dropout
    if isinstance(leaf, nn.MaxPool2d):
        static = [NativeMaxPool(static[0], leaf, shape)]
    return ("static", None, static, shape, out), out


def _build(entry, like):
    """The canonical layers of one plan entry, on the live parameters (``like``: a
    tensor of the module's dtype and device, for a pooling's zero bias)."""
    kind, ref, static, shape, out = entry
    if kind == "static":
        return static
    leaf = ref()
    if kind == "pool":
        return [LiveMap(lambda v, w: leaf(v), None, None, like.new_zeros(math.prod(out)),
                        shape, out, kind="avgpool")]
    per = math.prod(out) // (leaf.out_channels if kind == "conv" else out[-1])
    bias = leaf.bias
    if bias is None:
        bias = leaf.weight.new_zeros(math.prod(out))
    elif kind == "conv":  # flat C order: each channel's bias over its positions
        bias = bias.repeat_interleave(per)
    elif kind == "linear_last":
        bias = bias.repeat(per)
    if kind == "linear":
        return [Affine(leaf.weight, bias, terms=leaf.in_features + 2)]
    if kind == "linear_last":
        return [LiveMap(lambda v, w: F.linear(v, w), lambda a, w: a @ w, leaf.weight, bias,
                        shape, out, kind="linear", squares=True)]
    apply, adjoint, squares = conv_maps(leaf, shape, out)
    # contiguous (not channels-last) weights: no layout copies of the flat C-order rows
    return [LiveMap(apply, adjoint, leaf.weight.contiguous(), bias, shape, out,
                    kind="conv", squares=squares)]


def _unwrap(module):
    """The module inside DDP, DataParallel or the library's ``SynchronisedView``."""
    while True:
        if isinstance(module, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            module = module.module
        elif isinstance(getattr(getattr(module, "parallel", None), "module", None), nn.Module):
            module = module.parallel.module  # SynchronisedView(DDP(module))
        else:
            return module


def _plan(module, sample, like):
    """The reading of ``module`` for samples of shape ``sample``: read and checked once
    per module structure, shape, dtype and device, then reused."""
    fingerprint = (tuple(map(id, module.modules())), sample, like.dtype, like.device)
    cached = _PLANS.get(module)
    if cached is not None and cached[0] == fingerprint and all(
            entry[1] is None or entry[1]() is not None for entry in cached[1]):
        return cached[1]
    top = type(module).__name__
    for name, sub in module.named_modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            raise TypeError(
                f"{top}.{name}: certified training does not support BatchNorm "
                f"({type(sub).__name__}): in train mode it normalises by the batch's "
                f"statistics, which is not a fixed affine map of each input. Build the "
                f"network without BatchNorm (e.g. SmallCNN(..., batch_norm=False)).")
    leaves = list(_leaves(module, top))  # every refusal before any work
    shape = sample
    first = next((leaf for _, leaf in leaves if isinstance(leaf, (nn.Linear, nn.Conv1d,
                                                                  nn.Conv2d))), None)
    if isinstance(first, nn.Conv2d) and len(shape) == 2 and first.in_channels == 1:
        shape = (1, *shape)  # (N, H, W) batches of a one-channel CNN (SmallCNN's rule)
    plan = []
    for name, leaf in leaves:
        entry, shape = _read(leaf, shape, name, like.device)
        plan.append(entry)
    _check(module, plan, sample, like)
    _PLANS[module] = (fingerprint, plan)
    return plan


def _check(module, plan, sample, like):
    """The plan computes the eval-mode module's forward (once, on a few random inputs)."""
    probe = torch.rand((4, *sample), generator=torch.Generator().manual_seed(0))
    probe = 2 * probe.to(like) - 1
    with frozen(module), torch.no_grad(), torch.autocast(like.device.type, enabled=False):
        layers = [layer for entry in plan for layer in _build(entry, like)]
        if not any(isinstance(layer, Affine) for layer in layers):
            raise ValueError(f"{type(module).__name__} has no affine layer to bound.")
        expected = module(probe).reshape(4, -1)
        got = forward_layers(layers, probe.reshape(4, -1))
    scale = 1.0 + expected.abs().max().item()
    tolerance = math.sqrt(torch.finfo(like.dtype).eps) * scale
    if got.shape != expected.shape or (got - expected).abs().max().item() > tolerance:
        raise ValueError(
            f"the layers read from {type(module).__name__} do not compute its forward (in "
            f"eval mode); if it declares sequential_layers(), that list must compose to "
            f"its forward on inputs of shape (N, *{sample}).")


def _batch(module, x, y):
    """``x`` in the module's dtype and device, ``y`` (N,) long, checked cheaply."""
    param = next(iter(module.parameters()), None)
    if param is None:
        raise ValueError(f"{type(module).__name__} has no parameters to train.")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError("x must be a floating-point torch.Tensor of shape (N, ...).")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch (N, ...), got shape {tuple(x.shape)}.")
    if x.device != param.device:
        raise ValueError(f"x is on {x.device}, the module on {param.device}.")
    x = x.to(param.dtype)
    y = torch.as_tensor(y, device=x.device)
    if y.shape != (x.shape[0],) or y.is_floating_point() or y.dtype == torch.bool:
        raise ValueError(f"y must hold integer class indices of shape ({x.shape[0]},), "
                         f"got {y.dtype} of shape {tuple(y.shape)}.")
    return x, y.long()


def training_margin_bounds(module, x, y, *, eps, norm="linf", lower=None, upper=None,
                           crown_weight=0.0):
    """(N, C) lower bounds of ``z_y - z_j`` over the ball, differentiable in the
    module's parameters.

    The bounds of certified training: IBP (Gowal et al. 2018) and CROWN-IBP (Zhang et
    al. 2020), computed on the live module in its dtype, so that a loss of them trains
    the network, e.g. ``cross_entropy(-bounds, y)`` (the worst-case logits). The layers
    are built on every call from the parameters themselves (convolutions applied as
    convolutions, never as matrices) and run through the verifiers' own IBP and CROWN.
    No rounding slack is subtracted: these bound the network in exact arithmetic, for
    training; certify with :func:`ibp_margin_bounds` or :func:`crown_margin_bounds`.
    Autocast is off inside (bounds in the parameters' dtype).

    Parameters
    ----------
    module : torch.nn.Module
        The model, returning logits, read by the rules of :func:`network_layers` (the
        same chains and refusals) on its eval-mode function: dropout is the identity.
        BatchNorm is refused (its train-mode output is no fixed affine map). A
        ``DistributedDataParallel`` or the library's ``SynchronisedView`` is read
        through its ``module`` (the caller keeps DDP's one synchronised forward, e.g.
        for a clean loss term). The reading is checked once per module and shape.
    x : torch.Tensor of shape (N, ...)
        Clean points, on the module's device (cast to its dtype); the per-sample shape
        is ``x.shape[1:]`` (``(H, W)`` for a one-channel CNN taking ``(N, H, W)``).
        Gradients flow to ``x`` too.
    y : torch.Tensor of int of shape (N,)
        The true classes.
    eps : float
        Radius of the ball (``>= 0``).
    norm : {'linf', 'l2', 'l1'}, default='linf'
        Norm of the ball (l_1 builds the first layer's matrix when it is a convolution).
    lower, upper : None, float or torch.Tensor, default=None
        The box the inputs live in (e.g. ``0`` and ``1`` for images): scalars or tensors
        broadcasting to one sample or to ``x``; ``None`` leaves that side open.
    crown_weight : float in [0, 1], default=0.0
        ``beta`` of CROWN-IBP: the bounds are ``beta * crown_ibp + (1 - beta) * ibp``.
        ``0``: IBP only, with elision at the last layer (no backward pass). ``crown_ibp``
        is one CROWN pass from the margins to the input with IBP's bounds at every ReLU
        and max pool, never below IBP (the larger of the two, as
        :func:`crown_margin_bounds` with ``intermediate='ibp'``).

    Returns
    -------
    torch.Tensor of shape (N, C)
        Lower bounds of ``z_y - z_j``, in the module's dtype, ``0`` at ``j = y``.

    See Also
    --------
    ibp_margin_bounds, crown_margin_bounds : The verifiers' certified bounds.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust.verify import training_margin_bounds
    >>> _ = torch.manual_seed(0)
    >>> model = torch.nn.Sequential(
    ...     torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    ...     torch.nn.Flatten(), torch.nn.Linear(64, 3))
    >>> x, y = torch.rand(5, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1])
    >>> bounds = training_margin_bounds(model, x, y, eps=0.01, lower=0, upper=1,
    ...                                 crown_weight=0.5)
    >>> bounds.shape
    torch.Size([5, 3])
    >>> z = model(x)
    >>> bool((bounds <= z.gather(1, y[:, None]) - z + 1e-5).all())
    True
    >>> torch.nn.functional.cross_entropy(-bounds, y).backward()
    >>> model[0].weight.grad.abs().sum() > 0
    tensor(True)
    """
    eps = check_eps(eps, "eps", _CALLER)
    norm = check_norm(norm, "norm", _CALLER)
    beta = float(check_scalar_param(crown_weight, "crown_weight",
                                    [Interval(Real, 0, 1, closed="both")], _CALLER))
    module = _unwrap(module)
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}.")
    x, y = _batch(module, x, y)
    plan = _plan(module, tuple(x.shape[1:]), x)
    n, flat = x.shape[0], x.reshape(x.shape[0], -1)
    sides = [box_side(side, name, tuple(x.shape[1:]), n, x.device, x.dtype)
             for side, name in ((lower, "lower"), (upper, "upper"))]
    if sides[0] is not None and sides[1] is not None and bool((sides[0] > sides[1]).any()):
        raise ValueError("lower must be <= upper everywhere.")
    # x itself belongs to the set (a rounding's worth outside the box is absorbed)
    lower = None if sides[0] is None else torch.minimum(sides[0], flat)
    upper = None if sides[1] is None else torch.maximum(sides[1], flat)
    with torch.autocast(x.device.type, enabled=False):
        layers = [layer for entry in plan for layer in _build(entry, x)]
        n_out = layers_out(layers)
        low, high = torch.aminmax(y)
        if int(low) < 0 or int(high) >= n_out:
            raise ValueError(f"y must hold class indices in [0, {n_out}), got values in "
                             f"[{int(low)}, {int(high)}].")
        input_set = InputSet(flat, eps, norm, lower, upper)
        chain, outputs = interval_bounds(layers, input_set)
        at_y = y[:, None]
        ibp = interval_margins(layers, input_set, y, chain=chain, outputs=outputs)
        ibp = ibp.scatter(1, at_y, 0.0)
        if beta == 0.0 or n_out == 1:
            return ibp
        ibp_inputs = nonlinear_inputs(chain, outputs, input_set)
        _, relaxed = relaxations(layers, input_set, ibp_inputs, tighten=False,
                                 repropagate=False)
        # the C - 1 classes j != y (row j = y is 0): j + (j >= y), without a sync
        rows = torch.arange(n_out - 1, device=y.device).expand(n, -1)
        classes = rows + (rows >= at_y).long()
        stop, a, const = margin_spec(layers, y, n_out, classes)
        crown = input_set.minimum(*backward(layers, stop, a, const, relaxed))
        crown = torch.maximum(ibp.new_zeros(ibp.shape).scatter(1, classes, crown), ibp)
        return crown if beta == 1.0 else beta * crown + (1.0 - beta) * ibp
