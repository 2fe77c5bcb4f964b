"""The training step: skorch's hooks, the objective, and the randomness a fit owns.

skorch's step calls ``infer``, ``get_loss`` and ``backward``; here ``get_loss`` runs the
estimator's objective (the attack and the outer loss), so any step that calls these hooks
(skorch's own, its ``AccelerateMixin``'s, a user's mixin's) trains the method. A fit draws
only from streams it owns (:mod:`._seeding`), whatever runs beside it in other threads.
"""

from contextlib import contextmanager

import torch
from skorch import NeuralNet
from skorch.dataset import unpack_data

from ..utils import (
    active_generator,
    active_streams,
    forked_rng,
    global_stream_lock,
    mode_independent,
)
from ._augment import random_flip, random_shift
from ._distributed import data_parallel_rank, synchronised
from ._seeding import StreamSampler, fit_randomness, module_stream_seed, rank_seed


class TrainingStepMixin:
    """skorch's training hooks with the objective inside ``get_loss``; seeded training."""

    def _train(self, X, y, first):
        """Initialise (on a first call) and train, drawing only from the fit's streams."""
        with fit_randomness(self.random_state) as streams:
            if first:
                self.initialize()
            self._initialize_precision(keep=not first)
            self._sync_lr_schedule()
            if self.channels_last:
                # Parameters keep their identity (.data is converted): the optimizer's hold.
                self.module_.to(memory_format=torch.channels_last)
            with self._module_stream(streams):
                NeuralNet.partial_fit(self, X, y)

    def train_step(self, batch, **fit_params):
        """skorch's step (optimizer included), the objective reached through :meth:`get_loss`."""
        with self._objective_step():
            return super().train_step(batch, **fit_params)

    def train_step_single(self, batch, **fit_params):
        """skorch's step for one batch: ``infer``, ``get_loss``, backward.

        The same three hooks as skorch's own step (and its mixins'), under the
        ``precision`` autocast, with the fp16 loss scaling of ``precision='fp16'``. The
        training method lives in :meth:`get_loss`, so a mixin that replaces this step
        (skorch's ``AccelerateMixin``) still trains the objective.
        """
        with self._objective_step():
            self._set_training(True)
            Xi, yi = unpack_data(batch)
            with self._autocast(torch.device(self.device or "cpu").type):
                y_pred = self.infer(Xi, **fit_params)
                loss = self.get_loss(y_pred, yi, X=Xi, training=True)
            self._backward(loss)
        return {"loss": loss, "y_pred": y_pred}

    @contextmanager
    def _objective_step(self):
        """Mark a training step, in which :meth:`infer` leaves the forwards to the objective."""
        nested = vars(self).get("_in_objective_step", False)
        vars(self)["_in_objective_step"] = True
        try:
            yield
        finally:
            if not nested:
                vars(self).pop("_in_objective_step", None)

    def infer(self, x, **fit_params):
        """The network's output; during a training step, the place for the objective's.

        In a training step the objective makes its own forward passes (an attack first,
        then the outer loss), so ``infer`` runs none: it returns an empty tensor that
        :meth:`get_loss` fills with the logits the objective reports (the clean ones, or
        the adversarial ones for AT), which skorch then passes to the callbacks as the
        batch's predictions.
        """
        if vars(self).get("_in_objective_step") and self.module_.training:
            return torch.empty(0)
        return super().infer(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The objective's loss of a training batch; skorch's criterion otherwise.

        With ``training=True`` (skorch's training steps, its mixins' included) the
        objective computes the loss of the batch ``X, y_true``, inner maximisation
        included, and ``y_pred`` (from :meth:`infer`) receives its logits. The validation
        loss (``training=False``) is the criterion of the network's output.
        """
        if not training:
            return super().get_loss(y_pred, y_true, X=X, training=training)
        loss, logits = self.objective_loss(X, y_true)
        # The objective's logits become the step's predictions, values only.
        y_pred.data = logits.detach()
        return loss

    def objective_loss(self, X, y):
        """``(loss, logits)`` of the objective on one training batch (augmented first).

        The augmentation: random crops (``max_shift``), mirror images (``flip``), then
        Gaussian noise of std ``noise_std``, all drawn from the fit's own streams; with
        ``channels_last`` the batch then takes that memory format. The objective trains the
        network itself, or its :class:`SynchronisedView
        <sklearn_robust.estimators._distributed.SynchronisedView>` when it is wrapped for
        data-parallel training; the criterion goes in when the method has a place for it.
        """
        X, y = self._to_device(X), self._to_device(y)
        if self.max_shift:
            X = random_shift(X, self.max_shift, self._image_shape(),
                             generator=active_generator(X.device))
        if self.flip:
            X = random_flip(X, self._image_shape(), generator=active_generator(X.device))
        if self.noise_std:
            # Gaussian data augmentation (randomized smoothing's training), from the fit's
            # own stream like the shifts.
            X = X + self.noise_std * torch.randn(X.shape, generator=active_generator(X.device),
                                                 device=X.device, dtype=X.dtype)
        if self.channels_last and X.dim() == 4:
            X = X.contiguous(memory_format=torch.channels_last)
        loss, logits = self.objective_(synchronised(self.module_), X, y, self.threat_model_,
                                       **self.criterion_arguments())
        if not torch.isfinite(loss):
            epoch = len(self.history) if self.history is not None else 0
            raise FloatingPointError(
                f"the training loss became {loss.item()} in epoch {epoch}; lower lr or check "
                "the data and the network."
            )
        return loss, logits

    def get_iterator(self, dataset, training=False):
        """skorch's data loaders, drawing nothing from torch's global stream.

        A ``DataLoader`` draws a seed at every pass (for its workers) and, shuffling, a
        seed for each epoch's order, from the global stream that concurrent fits share.
        With skorch's default loaders these come from the fit's own CPU stream in
        training (:class:`StreamSampler <sklearn_robust.estimators._seeding.
        StreamSampler>`; the same draws, so a seeded fit shuffles as before), and from a
        private generator in prediction. A user's ``generator``, ``sampler`` or
        ``batch_sampler`` for the loader is used as given.
        """
        prefix = "iterator_train" if training else "iterator_valid"
        iterator, kwargs = getattr(self, prefix), self.get_params_for(prefix)
        if (not (isinstance(iterator, type) and issubclass(iterator, torch.utils.data.DataLoader))
                or {"generator", "sampler", "batch_sampler"} & set(kwargs)):
            return super().get_iterator(dataset, training=training)
        streams = active_streams() if training else None
        if streams is None:
            kwargs["generator"] = torch.Generator()
        else:
            kwargs["generator"] = streams.generator("cpu")
            if kwargs.pop("shuffle", False):
                kwargs["sampler"] = StreamSampler(dataset)
        batch_size = kwargs.pop("batch_size", self.batch_size)
        kwargs["batch_size"] = len(dataset) if batch_size == -1 else batch_size
        return iterator(dataset, **kwargs)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """A data-parallel rank other than 0 draws from streams of its own from here on.

        The initial weights came from the shared seed (DDP broadcasts rank 0's anyway);
        attack starts, augmentation and dropout then differ between the ranks, as their
        shards do. Rank 0 keeps the single-process streams.
        """
        super().on_train_begin(net, X=X, y=y, **kwargs)
        rank, streams = data_parallel_rank(self.module_), active_streams()
        if rank and streams is not None:
            streams.reseed(rank_seed(streams.seed, rank))
            if vars(self).get("_module_stream_forked"):
                with global_stream_lock:
                    torch.manual_seed(module_stream_seed(streams.seed))

    @contextmanager
    def _module_stream(self, streams):
        """torch's global stream forked and seeded for a module that may draw from it.

        A network whose forward may draw (dropout of a user's module; any module not known
        to be :func:`mode-independent <sklearn_robust.utils.mode_independent>`) can only
        draw from the global stream: it is seeded for the fit and restored after. Networks
        known not to draw leave it alone.
        """
        if mode_independent(self.module_):
            yield
            return
        vars(self)["_module_stream_forked"] = True
        try:
            with forked_rng(module_stream_seed(streams.seed)):
                yield
        finally:
            vars(self).pop("_module_stream_forked", None)
