"""Hugging Face Accelerate: skorch's ``AccelerateMixin``, finished for data parallelism.

skorch's own mixin trains every classifier of this library (the objective is reached
through ``infer`` and ``get_loss``, which skorch's step calls). This one adds what a
data-parallel fit needs after and between fits: it wraps the network again for
``partial_fit``, broadcasts rank 0's BatchNorm statistics at the end, and leaves a fitted
estimator that every rank can use alone.
"""

import torch
from skorch.hf import AccelerateMixin as SkorchAccelerateMixin


class AccelerateMixin(SkorchAccelerateMixin):
    """skorch's ``AccelerateMixin`` with what data-parallel fits of this library need.

    Compose it in front of a classifier, ``class Net(AccelerateMixin, TRADESClassifier)``,
    and pass ``accelerator=Accelerator(...)`` (and ``device=None``, as skorch requires
    when the accelerator places the data). Training is skorch's mixin's own (preparing
    module, optimizer and data loaders, gradient accumulation, its training step under
    the accelerator's autocast and ``accelerator.backward``): the classifier's objective,
    inner maximisation included, runs inside that step through ``get_loss``, so
    ``class Net(skorch.hf.AccelerateMixin, TRADESClassifier)`` trains the same model.

    Across several processes (launched by ``torchrun`` or ``accelerate launch``) the
    training is data-parallel (``DistributedDataParallel``): each rank trains on its
    shard of every batch, runs the inner maximisation on the unwrapped module with input
    gradients only, and the parameter gradients are all-reduced once per step (see
    :class:`~sklearn_robust.estimators._distributed.SynchronisedView`). ``random_state``
    seeds rank 0 as a single process would be seeded and every other rank with a
    distinct, reproducible seed. All of that holds with skorch's mixin as well. This
    mixin adds, after and between fits:

    - after ``fit`` (with skorch's default ``unwrap_after_train=True``) the estimator is a
      plain local model on every rank: ``predict``, ``score``, the robust metrics and
      pickling need no other rank (skorch's mixin shards and gathers every prediction,
      so all ranks must predict together);
    - rank 0's BatchNorm running statistics are broadcast at the end of training, so
      every rank keeps the same model (with skorch's mixin each keeps its own);
    - ``partial_fit`` after a fit wraps the network again (skorch's mixin would train
      each rank's unwrapped copy on its own).

    (Parameterless criteria, which DDP refuses, stay out of it with either mixin: the
    classifier marks them as prepared.)

    Mixed precision is the accelerator's (``Accelerator(mixed_precision='bf16')``): the
    classifier's ``precision`` must stay ``None`` or ``'fp32'``.

    Examples
    --------
    >>> from sklearn_robust import TRADESClassifier
    >>> from sklearn_robust.estimators import AccelerateMixin
    >>> class AcceleratedTRADES(AccelerateMixin, TRADESClassifier):
    ...     pass

    With ``accelerate`` installed (``pip install sklearn-robust[accelerate]``), it fits
    as any classifier does (``tests/test_scaling.py`` trains every classifier this way)::

        from accelerate import Accelerator

        clf = AcceleratedTRADES(accelerator=Accelerator(), device=None, attack_steps=2)
        clf.fit(X_train, y_train)
    """

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        # partial_fit (warm start) after a fit that unwrapped: wrap again, or each rank
        # would train its own copy on all the data. Then the classifier's own hook gives
        # each rank its streams (the data order is accelerate's: its sampler generator is
        # synchronised from rank 0 at every epoch).
        self._initialize_accelerator()
        super().on_train_begin(net, X=X, y=y, **kwargs)

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
