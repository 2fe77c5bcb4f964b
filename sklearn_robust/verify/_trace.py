"""A module whose forward is a plain chain, read with ``torch.fx``; anything else refused."""

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["chain_of"]

_RELUS = (F.relu, torch.relu, torch.relu_)
_FLATTENS = (torch.flatten,)


def chain_of(module):
    """The modules a traced forward runs one after the other, or ``None``.

    ``None`` when ``torch.fx`` cannot trace the forward, or when the traced graph is not
    a chain: every step must take the previous step's output as its only tensor input
    and be a submodule call, ``relu`` (``F.relu``, ``torch.relu``, ``x.relu()``) or a
    per-sample ``flatten`` (``torch.flatten(x, 1)``, ``x.flatten(1)``). Residual
    additions, concatenations, other functions, shape arithmetic and parameters read
    inline all give ``None``.

    Examples
    --------
    >>> from torch import nn
    >>> import torch.nn.functional as F
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.a, self.b = nn.Linear(2, 3), nn.Linear(3, 1)
    ...     def forward(self, x):
    ...         return self.b(F.relu(self.a(x)))
    >>> chain_of(Net())
    [Linear(in_features=2, out_features=3, bias=True), ReLU(), Linear(...)]
    >>> class Residual(Net):
    ...     def forward(self, x):
    ...         return x + self.b(self.a(x))
    >>> chain_of(Residual()) is None
    True
    """
    try:
        graph_module = torch.fx.symbolic_trace(module)
    except Exception:  # noqa: BLE001 - any tracing failure means: not a plain chain
        return None
    chain, previous = [], None
    for node in graph_module.graph.nodes:
        if node.op == "placeholder":
            if previous is not None:
                return None  # a second input
            previous = node
            continue
        tensors = [a for a in _flat_args(node) if isinstance(a, torch.fx.Node)]
        if tensors != [previous] or len(previous.users) != 1:
            return None
        step = _step(graph_module, node)
        if step is None:
            return None
        if node.op != "output":
            chain.extend(step)
            previous = node
    return chain if previous is not None else None


def _flat_args(node):
    out = []
    for arg in (*node.args, *node.kwargs.values()):
        if isinstance(arg, (tuple, list)):
            out.extend(arg)
        else:
            out.append(arg)
    return out


def _step(graph_module, node):
    """The modules one node stands for, or ``None`` when it is not a chain step."""
    if node.op == "output":
        return []
    if node.op == "call_module":
        return [graph_module.get_submodule(node.target)]
    if node.op == "call_function" and node.target in _RELUS and _only_input(node):
        return [nn.ReLU()]
    if node.op == "call_method" and node.target in ("relu", "relu_") and _only_input(node):
        return [nn.ReLU()]
    flatten = (node.op == "call_function" and node.target in _FLATTENS) or (
        node.op == "call_method" and node.target == "flatten")
    if flatten:
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        if start == 1 and end == -1:
            return [nn.Flatten()]
    return None


def _only_input(node):
    """The call has no argument besides its input (``inplace=False`` allowed)."""
    return len(node.args) == 1 and set(node.kwargs) <= {"inplace"}
