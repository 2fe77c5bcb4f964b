"""Torch helpers shared by every layer: freezing a model, devices, random streams.

Nothing here knows about attacks, objectives or estimators; they all use it.
"""

import numbers
from contextlib import contextmanager

import torch
from sklearn.utils import check_random_state
from torch import nn

__all__ = [
    "CallableModule",
    "as_module",
    "frozen",
    "make_generator",
    "mode_independent",
    "module_device",
    "per_sample",
    "resolve_device",
    "seed_from",
]


#: torch.nn layers whose forward reads ``self.training`` (or whose eval mode differs).
_MODE_DEPENDENT = (
    nn.modules.batchnorm._NormBase,  # BatchNorm and InstanceNorm: batch statistics
    nn.modules.dropout._DropoutNd,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
    nn.RReLU,
    nn.MultiheadAttention,
    nn.TransformerEncoderLayer,
    nn.TransformerDecoderLayer,
)


def mode_independent(module):
    """Whether ``module`` computes the same function in train and in eval mode.

    True when no submodule is one whose forward depends on the mode (BatchNorm,
    InstanceNorm, dropout, RReLU, attention) and every submodule's own forward is known
    not to read ``self.training``: torch's layers and containers, and classes that declare
    ``mode_independent_forward = True`` (the library's networks). A user's class without
    that declaration counts as dependent, since its forward may branch on the mode. The
    objectives use it to share one forward between an attack's target (eval mode) and the
    outer loss (train mode).

    Examples
    --------
    >>> from torch import nn
    >>> mode_independent(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    True
    >>> mode_independent(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1)))
    False
    """
    for sub in module.modules():
        if isinstance(sub, _MODE_DEPENDENT):
            return False
        declared = type(sub).__dict__.get("mode_independent_forward")
        if declared is None and not type(sub).__module__.startswith("torch.nn."):
            return False
        if declared is False:
            return False
    return True


@contextmanager
def frozen(module):
    """Run ``module`` as a fixed function of its input, then restore it exactly.

    Inside the block every submodule is in eval mode (dropout off, BatchNorm uses and does
    not update its running statistics) and parameters do not require gradients, so an
    attack builds no parameter graph. On exit each submodule's ``training`` flag and each
    parameter's ``requires_grad`` are restored one by one, even after an exception.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5)).train()
    >>> with frozen(model):
    ...     model.training, model[0].weight.requires_grad
    (False, False)
    >>> model.training, model[0].weight.requires_grad
    (True, True)
    """
    modes = [(m, m.training) for m in module.modules()]
    needs_grad = [(p, p.requires_grad) for p in module.parameters()]
    module.eval()
    for p, _ in needs_grad:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for m, mode in modes:
            m.training = mode
        for p, flag in needs_grad:
            p.requires_grad_(flag)


def module_device(module):
    """The device of ``module``'s first parameter or buffer (CPU for a parameterless one).

    Examples
    --------
    >>> import torch
    >>> module_device(torch.nn.Linear(2, 2))
    device(type='cpu')
    """
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    device = getattr(module, "device", None)  # a bridge module may declare where it runs
    return torch.device(device) if device is not None else torch.device("cpu")


def resolve_device(device):
    """The concrete torch device string for a ``device`` parameter.

    ``'auto'`` picks ``'cuda'`` when CUDA is available and ``'cpu'`` otherwise. Asking for
    CUDA (or a CUDA index) that this machine does not have raises ``ValueError``. ``None``
    is skorch's "do not move" and is returned unchanged.

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    >>> resolve_device("auto") in ("cpu", "cuda")
    True
    """
    if device is None:
        return None
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}."
        ) from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on this machine; "
                "use device='auto' or 'cpu'."
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but only {torch.cuda.device_count()} "
                "CUDA device(s) exist."
            )
    elif parsed.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError(f"device={device!r} was requested but MPS is not available.")
    return str(parsed) if not isinstance(device, str) else device


def seed_from(random_state):
    """An integer seed from a scikit-learn ``random_state`` (an int is used as it is)."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def make_generator(random_state, device):
    """A ``torch.Generator`` on ``device`` seeded from a sklearn-style ``random_state``.

    Attacks draw their noise from it, never from the global RNG, so measuring a model
    does not change the global random state.

    Examples
    --------
    >>> import torch
    >>> a = torch.rand(2, generator=make_generator(0, "cpu"))
    >>> b = torch.rand(2, generator=make_generator(0, "cpu"))
    >>> bool(torch.equal(a, b))
    True
    """
    seed = int(check_random_state(random_state).randint(0, 2**31 - 1))
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def per_sample(values, like):
    """``values`` of shape ``(N,)`` viewed to broadcast against ``like`` of shape ``(N, ...)``.

    Examples
    --------
    >>> import torch
    >>> per_sample(torch.ones(2), torch.zeros(2, 3, 4)).shape
    torch.Size([2, 1, 1])
    """
    return values.view(-1, *([1] * (like.dim() - 1)))


class CallableModule(nn.Module):
    """Wrap a function ``f(x) -> scores`` as a parameterless module.

    The output may be a tensor or an array (converted to a float tensor on ``x``'s
    device). Lets attacks take a model given only as a callable.

    Parameters
    ----------
    function : callable
        Maps a batch ``(N, ...)`` to scores ``(N, C)``: logits or probabilities.

    Examples
    --------
    >>> import torch
    >>> CallableModule(lambda x: x.sum(1, keepdim=True))(torch.ones(2, 3))
    tensor([[3.],
            [3.]])
    """

    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x):
        """Scores of ``x`` as a float tensor on ``x``'s device."""
        out = self.function(x)
        if not isinstance(out, torch.Tensor):
            out = torch.as_tensor(out, dtype=x.dtype, device=x.device)
        return out


def as_module(model):
    """``model`` itself if it is an ``nn.Module``, else :class:`CallableModule` around it.

    Examples
    --------
    >>> import torch
    >>> linear = torch.nn.Linear(2, 2)
    >>> as_module(linear) is linear
    True
    >>> type(as_module(lambda x: x)).__name__
    'CallableModule'
    """
    if isinstance(model, nn.Module):
        return model
    if not callable(model):
        raise TypeError(f"model must be a torch module or a callable, got {type(model).__name__}.")
    return CallableModule(model)
