"""A torch module as canonical layers: float64 affine maps, ReLUs and max pools.

The module is read, never changed: its parameters and buffers are copied to float64, no
mode is switched and no gradient is recorded. A module in train mode is read as in eval
mode (BatchNorm with its running statistics, dropout off): what is verified is the
eval-mode model, the one attacks and predictions use.
"""

import copy

import numpy as np
import torch
from torch import nn

from ._convert import DROPOUTS, SUPPORTED, SUPPORTED_NAMES, convert
from ._layers import Affine, MaxPool, ReLU, merged
from ._trace import chain_of

__all__ = ["dense_layers", "network_layers"]


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
            built, current = convert(leaf, current, name, device)
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
    elif isinstance(module, SUPPORTED):
        if isinstance(module, nn.MaxPool2d) and module.return_indices:
            raise TypeError(f"{name}: MaxPool2d with return_indices=True is not supported.")
        base = next(c for c in SUPPORTED if isinstance(module, c))
        if not isinstance(module, DROPOUTS) and type(module).forward is not base.forward:
            raise TypeError(
                f"{name}: {type(module).__name__} overrides the forward of {base.__name__}; "
                f"declare sequential_layers() on it listing what its forward computes.")
        yield name, module
    elif type(module).__module__.startswith("torch.nn"):
        raise TypeError(f"{name}: unsupported layer {type(module).__name__}: the verifiers "
                        f"handle {SUPPORTED_NAMES}.")
    else:
        chain = chain_of(module)
        if chain is None:
            raise TypeError(
                f"{name}: cannot verify {type(module).__name__}: its forward is not a plain "
                f"chain of supported layers ({SUPPORTED_NAMES}), and it declares no "
                f"sequential_layers(). Give {type(module).__name__} a method "
                f"sequential_layers() returning the list of modules whose composition is "
                f"its forward (residual connections and other activations cannot be "
                f"verified here).")
        for i, child in enumerate(chain):
            yield from _leaves(child, f"{name}.{type(child).__name__}[{i}]")


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
