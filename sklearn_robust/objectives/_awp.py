"""Adversarial weight perturbation (Wu et al. 2020), around any searching objective."""

from contextlib import contextmanager

import torch
from torch import nn
from torch.func import functional_call

from ..utils import POSITIVE
from ._base import Objective
from ._search import SearchingObjective, recorded_searches

# Added to a gradient's norm before dividing by it (the reference's constant).
_TINY = 1e-20


class WeightPerturbation(Objective):
    """AWP: ``objective``'s loss at weights pushed, per layer, in its ascent direction.

    For each batch (Wu et al.'s "adversarial weight perturbation"):

    1. ``objective`` runs as usual at the weights ``w``: its search finds the
       adversarial points, and its loss ``L(w)`` is computed on them;
    2. for every weight matrix or kernel ``w_l`` (parameters with more than one
       dimension; biases and normalisation scales are left alone) the offset is
       ``v_l = gamma * ||w_l|| * g_l / ||g_l||``, with ``g_l`` the gradient of ``L`` at
       ``w`` (one normalised ascent step, relative to each layer's size);
    3. the loss returned is ``objective``'s loss at ``w + v`` on the *same* adversarial
       points (the search is replayed, not run again), and its gradient is taken with
       respect to ``w``: the optimiser steps the weights themselves by the gradient at
       the perturbed point.

    The network's parameters are never modified: the perturbed forward passes run
    through :func:`torch.func.functional_call` with ``w + v``. BatchNorm statistics are
    updated once per batch, by the forward passes at ``w + v`` (step 1 restores them),
    as in the reference code, where step 1 runs on a copy of the network. A batch costs
    one extra outer forward and backward pass (the search, the expensive part, runs
    once). In data-parallel training each process perturbs by the gradient of its own
    shard; only the final gradients are all-reduced (tested with two processes against
    a one-process simulation of the same).

    Parameters
    ----------
    objective : SearchingObjective
        The training method whose loss is perturbed (TRADES, SCORE, PGD-AT, RST, LLR).
    gamma : float, default=0.005
        Size of the perturbation relative to each layer's weight norm (``> 0``). The
        reference uses 0.005 with TRADES and 0.01 with PGD-AT (CIFAR-10).

    References
    ----------
    D. Wu, S.-T. Xia, Y. Wang. "Adversarial Weight Perturbation Helps Robust
    Generalization", NeurIPS 2020.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.objectives import TRADES, WeightPerturbation
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(),
    ...                             torch.nn.Linear(8, 2))
    >>> x, y = torch.rand(5, 3), torch.tensor([0, 1, 0, 1, 1])
    >>> awp = WeightPerturbation(TRADES(steps=3), gamma=0.01)
    >>> loss, logits = awp(model, x, y, ThreatModel(eps=0.1))
    >>> loss.backward()  # gradients at the perturbed weights, on the weights themselves
    >>> model[0].weight.grad.shape
    torch.Size([8, 3])
    >>> awp.replace(steps=5)
    WeightPerturbation(objective=TRADES(beta=6.0, ls=0.0, steps=5, step_size=None), gamma=0.01)
    """

    _parameter_constraints = {"objective": [SearchingObjective], "gamma": POSITIVE}

    def __init__(self, objective, gamma=0.005):
        self._set_params(objective=objective, gamma=gamma)

    # The search schedule is the wrapped objective's (AttackStepsSchedule reads it here).
    @property
    def steps(self):
        return self.objective.steps

    @property
    def step_size(self):
        return self.objective.step_size

    def replace(self, **changes):
        """A new perturbation; parameters other than its own change the wrapped objective.

        Examples
        --------
        >>> from sklearn_robust.objectives import PGDAdversarial, WeightPerturbation
        >>> WeightPerturbation(PGDAdversarial()).replace(gamma=0.01, steps=3).steps
        3
        """
        own = {k: v for k, v in changes.items() if k in self._param_names()}
        inner = {k: v for k, v in changes.items() if k not in own}
        objective = own.pop("objective", self.objective)
        if inner:
            objective = objective.replace(**inner)
        return type(self)(objective=objective, gamma=own.get("gamma", self.gamma))

    @property
    def criterion_term(self):
        """The wrapped objective's (weight perturbation adds no loss of its own)."""
        return self.objective.criterion_term

    @property
    def ls(self):
        return getattr(self.objective, "ls", 0.0)

    def __call__(self, module, x, y, threat, criterion=None):
        # the criterion goes in only where the wrapped objective has a place for it
        given = {} if criterion is None else {"criterion": criterion}
        weights = {name: p for name, p in module.named_parameters()
                   if p.requires_grad and p.dim() > 1}
        if not weights:
            return self.objective(module, x, y, threat, **given)
        with recorded_searches() as record, _statistics_kept(module):
            loss, _ = self.objective(module, x, y, threat, **given)
            # inside the block: BatchNorm's backward reads the statistics it saw
            grads = torch.autograd.grad(loss, list(weights.values()), allow_unused=True)
        offsets = {}
        for (name, weight), grad in zip(weights.items(), grads, strict=True):
            if grad is not None:
                scale = self.gamma * weight.detach().norm() / (grad.norm() + _TINY)
                offsets[name] = scale * grad
        with record.replayed():
            return self.objective(PerturbedWeights(module, offsets), x, y, threat, **given)


class PerturbedWeights(nn.Module):
    """``module`` run with ``offsets`` added to its parameters (a differentiable view).

    The forward pass calls ``module`` through :func:`torch.func.functional_call` with
    ``p + offsets[name]`` in place of each named parameter ``p``: the parameters are not
    modified, and gradients flow back to them. Train/eval mode and buffers are
    ``module``'s own.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(2, 1, bias=False)
    >>> with torch.no_grad():
    ...     _ = model.weight.fill_(1.0)
    >>> shifted = PerturbedWeights(model, {"weight": torch.tensor([[0.5, 0.0]])})
    >>> shifted(torch.ones(1, 2)).item(), model(torch.ones(1, 2)).item()
    (2.5, 2.0)
    """

    #: The forward does not read ``self.training`` (``module``'s own layers do).
    mode_independent_forward = True

    def __init__(self, module, offsets):
        super().__init__()
        self.module = module
        self.offsets = offsets

    def forward(self, x):
        params = {name: p + self.offsets[name]
                  for name, p in self.module.named_parameters() if name in self.offsets}
        return functional_call(self.module, params, (x,))


@contextmanager
def _statistics_kept(module):
    """Restore ``module``'s buffers (BatchNorm statistics) on leaving the block."""
    saved = [(b, b.detach().clone()) for b in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)
