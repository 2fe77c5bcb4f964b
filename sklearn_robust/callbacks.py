"""skorch callbacks: robustness measured during training, and training-recipe pieces."""

import inspect
from numbers import Real

import numpy as np
from skorch.callbacks import Callback, EpochScoring, LRScheduler

from .metrics import local_lipschitz_score, robust_accuracy_score
from .utils import Interval, check_int, check_scalar_param

# An EMA decay: strictly between 0 (no memory) and 1 (no update).
_DECAY = [Interval(Real, 0, 1, closed="neither")]

__all__ = ["AttackStepsSchedule", "FixedLengthLRScheduler", "RobustScoring", "WeightAveraging"]


class RobustScoring(EpochScoring):
    """Record robust accuracy (and optionally the local Lipschitz constant) every epoch.

    skorch's ``EpochScoring`` with ``use_caching=False``, scoring with
    :func:`~sklearn_robust.metrics.robust_accuracy_score`: it attacks the network as it is
    at the end of the epoch (the default ``use_caching=True`` would replay the cached clean
    predictions), so ``EarlyStopping(monitor=name)``, ``Checkpoint(monitor=name + '_best')``
    and ``LRScheduler`` can follow the robust figure. The best score is tracked by
    ``EpochScoring`` (``best_score_``, the ``name + '_best'`` column) and restored from the
    history when training resumes (``partial_fit``, ``warm_start=True``).

    Parameters
    ----------
    eps : float
        Radius of the evaluation attack.
    norm : {'linf', 'l2', 'l1'}, default='linf'
        Norm of the threat ball.
    attack : str, Attack subclass or list of these, default='pgd'
        The attack (see :func:`~sklearn_robust.metrics.robust_accuracy_score`).
    on_train : bool, default=False
        Score the training data instead of the validation split (needed when
        ``train_split=None``).
    every : int, default=1
        Score every ``every`` epochs; other epochs record the last value again, so the
        history column is complete.
    name : str, default='valid_robust_acc'
        History key (``name + '_best'`` marks improvements).
    lipschitz : bool, default=False
        Also record ``local_lipschitz_score`` under ``name + '_lipschitz'``.
    max_samples : int or None, default=None
        Score a fixed random subset of at most this many points, to bound the cost.
    **score_params
        Passed to :func:`~sklearn_robust.metrics.robust_accuracy_score` (``steps``,
        ``bounds``, ``random_state``, ...); part of ``get_params``, so ``clone`` keeps them.

    Attributes
    ----------
    best_score_ : float
        The best robust accuracy so far (skorch's ``EpochScoring``).

    Examples
    --------
    >>> from sklearn_robust import TRADESClassifier
    >>> from sklearn_robust.callbacks import RobustScoring
    >>> from sklearn_robust.datasets import load_digits_images
    >>> X_train, X_test, y_train, y_test = load_digits_images(flat=True)
    >>> scoring = RobustScoring(eps=0.1, on_train=True, steps=5, max_samples=200,
    ...                         random_state=0)
    >>> clf = TRADESClassifier(max_epochs=2, attack_steps=2, callbacks=[scoring],
    ...                        random_state=0).fit(X_train, y_train)
    >>> robust = clf.history[:, "valid_robust_acc"]
    >>> len(robust), all(0.0 <= r <= 1.0 for r in robust)
    (2, True)
    >>> scoring.best_score_ == max(robust)
    True
    """

    def __init__(self, eps, *, norm="linf", attack="pgd", on_train=False, every=1,
                 name="valid_robust_acc", lipschitz=False, max_samples=None, **score_params):
        super().__init__(scoring=None, lower_is_better=False, on_train=on_train, name=name,
                         use_caching=False)
        self.eps = eps
        self.norm = norm
        self.attack = attack
        self.every = every
        self.lipschitz = lipschitz
        self.max_samples = max_samples
        self.score_params = score_params

    def _get_param_names(self):
        # The named constructor arguments (skorch's default lists every attribute, which
        # clone would pass back as score_params).
        return [name for name, p in inspect.signature(type(self).__init__).parameters.items()
                if name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD]

    def get_params(self, deep=True):
        """The constructor's parameters, those of ``score_params`` included (for ``clone``)."""
        return {**super().get_params(deep=deep), **self.score_params}

    def set_params(self, **params):
        """Set parameters; keywords of the metric go to ``score_params``."""
        own = set(self._get_param_names())
        self.score_params.update({k: v for k, v in params.items() if k not in own})
        super().set_params(**{k: v for k, v in params.items() if k in own})
        return self

    def initialize(self):
        check_int(self.every, "every", type(self).__name__)
        if self.max_samples is not None:
            check_int(self.max_samples, "max_samples", type(self).__name__)
        self.last_ = None
        return super().initialize()

    def on_batch_end(self, net, **kwargs):
        pass  # nothing to cache: the score attacks the network itself

    def get_test_data(self, dataset_train, dataset_valid, use_caching):
        """The data to score, never from the cache; an error without validation split."""
        if (dataset_train if self.on_train else dataset_valid) is None:
            raise ValueError(
                f"{type(self).__name__}: there is no validation split (train_split=None); "
                "pass on_train=True or set train_split."
            )
        return super().get_test_data(dataset_train, dataset_valid, use_caching=False)

    def _subset(self, net, X, y):
        X, y = np.asarray(X), net.classes_[np.asarray(y)]  # skorch holds encoded labels
        if self.max_samples is not None and len(y) > self.max_samples:
            rng = np.random.RandomState(0)
            idx = np.sort(rng.choice(len(y), self.max_samples, replace=False))
            X, y = X[idx], y[idx]
        return X, y

    def _scoring(self, net, X_test, y_test):
        """The robust accuracy of ``net`` now (or the last one, between ``every`` epochs)."""
        epoch = len(net.history)
        if self.last_ is None or (epoch - 1) % self.every == 0:
            X, y = self._subset(net, X_test, y_test)
            robust = robust_accuracy_score(net, X, y, eps=self.eps, norm=self.norm,
                                           attack=self.attack, **self.score_params)
            lipschitz = None
            if self.lipschitz:
                lipschitz = local_lipschitz_score(
                    net, X, eps=self.eps, norm=self.norm,
                    random_state=self.score_params.get("random_state"),
                )
            self.last_ = (robust, lipschitz)
        robust, lipschitz = self.last_
        if self.lipschitz:
            net.history.record(self.name_ + "_lipschitz", lipschitz)
        return robust


class _EMAUpdate:
    """torch's EMA update for ``AveragedModel``, as a picklable object.

    ``get_ema_multi_avg_fn`` returns a closure, which ``pickle`` cannot store; holding the
    decay here keeps a fitted estimator with :class:`WeightAveraging` picklable.
    """

    def __init__(self, decay):
        self.decay = decay

    def __call__(self, averaged_params, current_params, num_averaged):
        from torch.optim.swa_utils import get_ema_multi_avg_fn

        get_ema_multi_avg_fn(self.decay)(averaged_params, current_params, num_averaged)


class WeightAveraging(Callback):
    """An exponential moving average (EMA) of the weights, used once training ends.

    After every training batch the average is updated as ``avg = decay * avg + (1 - decay)
    * weights`` (with :class:`torch.optim.swa_utils.AveragedModel`, BatchNorm buffers
    included); when training ends, also after a ``KeyboardInterrupt``, the network takes
    the averaged weights. Averaging smooths the noisy last epochs of adversarial training,
    which raises robust accuracy and narrows its spread across seeds.

    The network is trained on its own weights throughout: inner maximisation, history
    and callbacks that score during training (``RobustScoring``, ``Checkpoint``) see the
    live weights, not the average.

    Parameters
    ----------
    decay : float, default=0.995
        Weight of the old average at each update, in ``(0, 1)``. The average spans about
        ``1 / (1 - decay)`` batches: keep that well below the number of batches of a fit.
    start_epoch : int, default=1
        First epoch (1-based) whose batches enter the average; earlier weights are
        skipped, which helps when the first epochs are far from the final model.

    Attributes
    ----------
    average_ : torch.optim.swa_utils.AveragedModel
        The running average of the last fit.

    Examples
    --------
    >>> from sklearn_robust import ATClassifier
    >>> from sklearn_robust.callbacks import WeightAveraging
    >>> from sklearn_robust.datasets import load_digits_images
    >>> X_train, X_test, y_train, y_test = load_digits_images(flat=True)
    >>> clf = ATClassifier(max_epochs=2, attack_steps=2, random_state=0,
    ...                    callbacks=[WeightAveraging(decay=0.9)]).fit(X_train, y_train)
    >>> int(clf.callbacks[0].average_.n_averaged)  # 2 epochs of 22 batches
    44
    """

    def __init__(self, decay=0.995, *, start_epoch=1):
        self.decay = decay
        self.start_epoch = start_epoch

    def initialize(self):
        check_scalar_param(self.decay, "decay", _DECAY, type(self).__name__)
        check_int(self.start_epoch, "start_epoch", type(self).__name__)
        self.average_ = None
        return self

    def on_train_begin(self, net, **kwargs):
        from torch.optim.swa_utils import AveragedModel

        self.average_ = AveragedModel(
            net.module_, multi_avg_fn=_EMAUpdate(self.decay), use_buffers=True
        )

    def on_batch_end(self, net, training=False, **kwargs):
        if training and len(net.history) >= self.start_epoch:
            self.average_.update_parameters(net.module_)

    def on_train_end(self, net, **kwargs):
        if self.average_ is not None and int(self.average_.n_averaged) > 0:
            net.module_.load_state_dict(self.average_.module.state_dict())


class AttackStepsSchedule(Callback):
    """Change the number of steps of the training attack at given epochs.

    Cheap attacks early and strong ones late: the first epochs learn the easy part of the
    data, where a few steps already find the worst case; late epochs need more steps to
    keep the inner maximisation honest as the model becomes robust. The objective owns
    its schedule, so each change is ``net.objective_ = net.objective_.replace(steps=s)``;
    with ``step_size=None`` the step follows the number of steps (``2.5 eps / steps``).
    The estimator's own objective is restored when training ends, and the history
    records the steps of each epoch under ``'attack_steps'``.

    Parameters
    ----------
    schedule : dict of {int: int}
        ``{epoch: steps}``: from that epoch on (1-based), the training attack runs
        ``steps`` steps, until the next epoch in the schedule.

    Examples
    --------
    >>> from sklearn_robust import TRADESClassifier
    >>> from sklearn_robust.callbacks import AttackStepsSchedule
    >>> from sklearn_robust.datasets import load_digits_images
    >>> X_train, X_test, y_train, y_test = load_digits_images(flat=True)
    >>> clf = TRADESClassifier(max_epochs=2, attack_steps=1, random_state=0,
    ...                        callbacks=[AttackStepsSchedule({2: 3})]).fit(X_train, y_train)
    >>> clf.history[:, "attack_steps"], clf.objective_.steps
    ([1, 3], 1)
    """

    def __init__(self, schedule):
        self.schedule = schedule

    def initialize(self):
        if not isinstance(self.schedule, dict) or not self.schedule:
            raise ValueError(
                f"schedule must be a non-empty dict {{epoch: steps}}, got {self.schedule!r}."
            )
        for epoch, steps in self.schedule.items():
            check_int(epoch, "schedule epoch", type(self).__name__)
            check_int(steps, "schedule steps", type(self).__name__)
        return self

    def on_train_begin(self, net, **kwargs):
        objective = getattr(net, "objective_", None)
        if getattr(objective, "steps", None) is None:
            raise ValueError(
                f"{type(self).__name__} needs an estimator whose training objective searches "
                f"in steps (AT, TRADES, SCORE, RST, LLR), got {type(net).__name__}."
            )
        self.original_ = objective

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history)
        due = [e for e in self.schedule if e <= epoch]
        if due:
            steps = self.schedule[max(due)]
            if net.objective_.steps != steps:
                net.objective_ = net.objective_.replace(steps=steps)
        net.history.record("attack_steps", net.objective_.steps)

    def on_train_end(self, net, **kwargs):
        net.objective_ = self.original_



class FixedLengthLRScheduler(LRScheduler):
    """skorch's ``LRScheduler`` for a schedule of a fixed number of epochs, such as one-cycle.

    A schedule like ``OneCycleLR(total_steps=n)`` stepped every epoch is defined for ``n``
    epochs and no more; torch fails at the end of the first epoch past it ("Tried to step
    ... times"). This scheduler refuses, when training starts, a ``partial_fit`` (or a
    ``warm_start`` fit) whose epochs would run past the end, naming the ways to go on. It
    does not extend the schedule: a new cycle would warm the learning rate up again on a
    trained model, and holding the final rate (``max_lr / 1e5`` for one-cycle) would train
    almost nothing, so either is the user's choice, not a default.

    Parameters are skorch's ``LRScheduler``'s; ``total_steps`` (the schedule's length in
    epochs) is required and ``step_every`` must be ``'epoch'``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust.callbacks import FixedLengthLRScheduler
    >>> FixedLengthLRScheduler(torch.optim.lr_scheduler.OneCycleLR, total_steps=3,
    ...                        max_lr=1e-3).kwargs
    {'total_steps': 3, 'max_lr': 0.001}
    """

    def on_train_begin(self, net, **kwargs):
        total, done = self.kwargs["total_steps"], len(net.history)
        if done and self.step_every == "epoch" and done + net.max_epochs > total:
            name = next((n for n, cb in net.callbacks_ if cb is self), "lr_schedule")
            raise ValueError(
                f"the {name!r} learning-rate schedule spans {total} epochs and {done} are "
                f"done: {net.max_epochs} more would run past its end. Build the estimator "
                "again with max_epochs covering all the training (e.g. a new robust_recipe), "
                "or train on without the schedule, at the optimizer's current learning rate: "
                f"net.set_params(callbacks__{name}=None).initialize_callbacks()."
            )
        super().on_train_begin(net, **kwargs)
