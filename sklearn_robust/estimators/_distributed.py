"""Data-parallel training (``DistributedDataParallel``) under any training step.

Whoever wraps the network in DDP (skorch's or this library's ``AccelerateMixin``, or a
user's own mixin), the estimator's loss hook runs the objective on a
:class:`SynchronisedView` of it, and each rank draws from streams of its own.
"""

import torch
from torch.nn.parallel import DistributedDataParallel


class SynchronisedView(torch.nn.Module):
    """What the objective sees during a distributed step: one synchronised forward.

    DDP expects exactly one forward through its wrapper per backward. The objectives make
    several: the inner maximisation (module frozen: eval mode, no parameter gradients) and
    one or two outer forwards (TRADES: ``f(x)`` and ``f(x')``). The first forward in train
    mode with gradients enabled goes through the wrapper, which broadcasts rank 0's
    buffers and arms the gradient all-reduce; every other forward runs the unwrapped
    module. Gradients of all the outer forwards still reach each parameter's accumulator
    in the one backward pass, so DDP all-reduces their sum, once.

    Parameters
    ----------
    parallel : torch.nn.parallel.DistributedDataParallel
        The prepared module.

    Examples
    --------
    Any wrapper with a ``module`` attribute shows the rule:

    >>> import torch
    >>> class Wrapper(torch.nn.Module):
    ...     def __init__(self, module):
    ...         super().__init__()
    ...         self.module, self.calls = module, 0
    ...     def forward(self, x):
    ...         self.calls += 1
    ...         return self.module(x)
    >>> view = SynchronisedView(Wrapper(torch.nn.Linear(2, 2))).train()
    >>> with torch.no_grad():
    ...     _ = view(torch.ones(1, 2))  # no parameter graph: unwrapped
    >>> _ = view(torch.ones(1, 2)), view(torch.ones(1, 2))
    >>> view.parallel.calls
    1
    """

    def __init__(self, parallel):
        super().__init__()
        self.parallel = parallel
        self.synchronised = False

    def forward(self, x):
        if self.training and torch.is_grad_enabled() and not self.synchronised:
            self.synchronised = True
            return self.parallel(x)
        return self.parallel.module(x)


def synchronised(module):
    """What an objective trains during a step: the view of a DDP ``module``, else itself."""
    return SynchronisedView(module) if isinstance(module, DistributedDataParallel) else module


def data_parallel_rank(module):
    """This process's rank when ``module`` is wrapped for data-parallel training, else 0."""
    if isinstance(module, DistributedDataParallel) and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


__all__ = ["SynchronisedView", "data_parallel_rank", "synchronised"]
