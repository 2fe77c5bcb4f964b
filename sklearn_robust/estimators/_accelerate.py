"""Hugging Face Accelerate: skorch's ``AccelerateMixin`` with our training step.

In one process this is skorch's mixin with the objective step. Across processes
(``torchrun``/``accelerate launch``, torch's ``DistributedDataParallel``) it also decides
which forward passes go through the DDP wrapper (only the first one of a step that builds
the parameter graph), keeps parameterless criteria out of DDP, gives each rank its own
random stream, and leaves a fitted estimator that every rank can use alone.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from skorch.hf import AccelerateMixin as SkorchAccelerateMixin

from ._precision import AUTOCAST_DTYPES
from ._seeding import rank_seed


def _trainable(obj):
    return isinstance(obj, torch.nn.Module) and any(p.requires_grad for p in obj.parameters())


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


class AccelerateMixin(SkorchAccelerateMixin):
    """Train any classifier of this library with an ``accelerate.Accelerator``.

    Compose it in front of a classifier, ``class Net(AccelerateMixin, TRADESClassifier)``,
    and pass ``accelerator=Accelerator(...)`` (and ``device=None``, as skorch requires
    when the accelerator places the data). Everything is skorch's
    :class:`skorch.hf.AccelerateMixin` (preparing module, optimizer and data loaders,
    gradient accumulation, gathering predictions, unwrapping after training) except the
    training step, which stays the classifier's objective step: the objective, inner
    maximisation included, runs under the accelerator's autocast and its loss goes
    through ``accelerator.backward``. skorch's own step would train ``criterion(module(X),
    y)``, silently dropping the objective.

    Across several processes (launched by ``torchrun`` or ``accelerate launch``) the
    training is data-parallel (``DistributedDataParallel``): each rank trains on its
    shard of every batch, runs the inner maximisation on the unwrapped module with input
    gradients only, and the parameter gradients are all-reduced once per step (see
    :class:`SynchronisedView`). BatchNorm keeps per-rank batch statistics; rank 0's
    running statistics are broadcast at every step and at the end of training.
    ``random_state`` seeds rank 0 as a single process would be seeded and every other
    rank with a distinct, reproducible seed. After ``fit`` (with skorch's default
    ``unwrap_after_train=True``) the estimator is a plain local model on every rank:
    ``predict``, ``score``, the robust metrics and pickling need no other rank.

    Mixed precision is the accelerator's (``Accelerator(mixed_precision='bf16')``): the
    classifier's ``precision`` must stay ``None`` or ``'fp32'``.

    Examples
    --------
    >>> from sklearn_robust import TRADESClassifier
    >>> from sklearn_robust.estimators import AccelerateMixin
    >>> class AcceleratedTRADES(AccelerateMixin, TRADESClassifier):
    ...     pass
    >>> AcceleratedTRADES.train_step_single is AccelerateMixin.train_step_single
    True

    With ``accelerate`` installed (``pip install sklearn-robust[accelerate]``):

    >>> from accelerate import Accelerator  # doctest: +SKIP
    >>> clf = AcceleratedTRADES(accelerator=Accelerator(), device=None,
    ...                         attack_steps=2)  # doctest: +SKIP
    >>> clf.fit(X_train, y_train)  # doctest: +SKIP
    """

    def train_step_single(self, batch, **fit_params):
        """The classifier's objective step (not skorch's criterion step)."""
        with self._step_module():
            return self.objective_step(batch, **fit_params)

    @contextmanager
    def _step_module(self):
        """During a distributed step, ``module_`` is the :class:`SynchronisedView`."""
        parallel = self.module_
        if not isinstance(parallel, torch.nn.parallel.DistributedDataParallel):
            yield
            return
        self.module_ = SynchronisedView(parallel)
        try:
            yield
        finally:
            self.module_ = parallel

    def _initialize_accelerator(self):
        # skorch prepares the criterion too; DDP refuses a module without trainable
        # parameters (CrossEntropyLoss), and the objectives never call criterion_.
        criteria = self._criteria
        self._criteria = [name for name in criteria if _trainable(getattr(self, name + "_"))]
        try:
            return super()._initialize_accelerator()
        finally:
            self._criteria = criteria

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        # partial_fit (warm start) after a fit that unwrapped: wrap again, or each rank
        # would train its own copy on all the data.
        self._initialize_accelerator()
        # Inside fit's seeded block: the initial weights came from the shared seed (and
        # DDP broadcast rank 0's anyway); from here dropout, attack starts and the like
        # draw from each rank's own stream. The data order is accelerate's: its sampler
        # generator is synchronised from rank 0 at every epoch.
        rank = self.accelerator.process_index
        if self.random_state is not None and rank > 0:
            torch.manual_seed(rank_seed(self.random_state, rank))

    def on_train_end(self, net, X=None, y=None, **kwargs):
        if self._wrapped_with_accelerator and self.accelerator.num_processes > 1:
            # Per-rank BatchNorm statistics: the last step updated each rank's own copy.
            for buffer in self.accelerator.unwrap_model(self.module_).buffers():
                torch.distributed.broadcast(buffer, src=0)
        return super().on_train_end(net, X=X, y=y, **kwargs)

    def get_iterator(self, dataset, training=False):
        # Shard (and gather, below) only while training: a fitted, unwrapped estimator
        # predicts on the whole input in each process, without waiting for the others.
        if self._wrapped_with_accelerator:
            return super().get_iterator(dataset, training=training)
        return super(SkorchAccelerateMixin, self).get_iterator(dataset, training=training)

    def evaluation_step(self, batch, training=False):
        if self._wrapped_with_accelerator:
            return super().evaluation_step(batch, training=training)
        return super(SkorchAccelerateMixin, self).evaluation_step(batch, training=training)

    def logits_module(self):
        """The unwrapped network: attacks need no gradient synchronisation."""
        return self.accelerator.unwrap_model(super().logits_module())

    def _autocast(self, device_type):
        return self.accelerator.autocast()

    def _backward(self, loss):
        self.accelerator.backward(loss)

    def _check_params(self):
        super()._check_params()
        if self.precision in AUTOCAST_DTYPES:
            raise ValueError(
                f"precision={self.precision!r} cannot be combined with an accelerator: leave "
                "precision=None and pass Accelerator(mixed_precision=...)."
            )
