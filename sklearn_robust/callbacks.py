"""skorch callbacks: robustness measured during training, and training-recipe pieces."""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np
from skorch.callbacks import Callback
from skorch.utils import data_from_dataset

from .metrics import local_lipschitz_score, robust_accuracy_score

__all__ = ["AttackStepsSchedule", "RobustScoring", "WeightAveraging"]


class RobustScoring(Callback):
    """Record robust accuracy (and optionally the local Lipschitz constant) every epoch.

    Unlike skorch's ``EpochScoring`` with its default ``use_caching=True``, which replays
    the cached clean predictions, this callback attacks the network as it is at the end
    of the epoch, so ``EarlyStopping(monitor=name)``, ``Checkpoint(monitor=name + '_best')``
    and ``LRScheduler`` can follow the robust figure.

    Parameters
    ----------
    eps : float
        Radius of the evaluation attack.
    norm : {'linf', 'l2'}, default='linf'
        Norm of the threat ball.
    attack : str, default='pgd'
        Attack name (see :data:`sklearn_robust.attacks.ATTACKS`).
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
        ``bounds``, ``random_state``, ...).

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
    """

    def __init__(self, eps, *, norm="linf", attack="pgd", on_train=False, every=1,
                 name="valid_robust_acc", lipschitz=False, max_samples=None, **score_params):
        self.eps = eps
        self.norm = norm
        self.attack = attack
        self.on_train = on_train
        self.every = every
        self.name = name
        self.lipschitz = lipschitz
        self.max_samples = max_samples
        self.score_params = score_params

    def initialize(self):
        if not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"every must be a positive integer, got {self.every!r}.")
        self.best_ = -np.inf
        self.last_ = None
        return self

    def _data(self, net, dataset):
        X, y = data_from_dataset(dataset)
        X, y = np.asarray(X), net.classes_[np.asarray(y)]  # skorch holds encoded labels
        if self.max_samples is not None and len(y) > self.max_samples:
            rng = np.random.RandomState(0)
            idx = np.sort(rng.choice(len(y), self.max_samples, replace=False))
            X, y = X[idx], y[idx]
        return X, y

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        dataset = dataset_train if self.on_train else dataset_valid
        if dataset is None:
            raise ValueError(
                f"{type(self).__name__}: there is no validation split (train_split=None); "
                "pass on_train=True or set train_split."
            )
        epoch = len(net.history)
        if self.last_ is None or (epoch - 1) % self.every == 0:
            X, y = self._data(net, dataset)
            robust = robust_accuracy_score(
                net, X, y, eps=self.eps, norm=self.norm, attack=self.attack, **self.score_params
            )
            lipschitz = None
            if self.lipschitz:
                lipschitz = local_lipschitz_score(
                    net, X, eps=self.eps, norm=self.norm,
                    random_state=self.score_params.get("random_state"),
                )
            self.last_ = (robust, lipschitz)
        robust, lipschitz = self.last_
        net.history.record(self.name, robust)
        is_best = robust > self.best_
        if is_best:
            self.best_ = robust
        net.history.record(self.name + "_best", bool(is_best))
        if self.lipschitz:
            net.history.record(self.name + "_lipschitz", lipschitz)


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
        if (
            not isinstance(self.decay, numbers.Real)
            or isinstance(self.decay, bool)
            or not 0.0 < self.decay < 1.0
        ):
            raise ValueError(f"decay must be a number in (0, 1), got {self.decay!r}.")
        if (
            not isinstance(self.start_epoch, numbers.Integral)
            or isinstance(self.start_epoch, bool)
            or self.start_epoch < 1
        ):
            raise ValueError(f"start_epoch must be an integer >= 1, got {self.start_epoch!r}.")
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
    keep the inner maximisation honest as the model becomes robust. With
    ``step_size=None`` the step follows the number of steps (``2.5 eps / steps``). The
    estimator's own ``threat_model_`` is restored when training ends.

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
    >>> clf.history[:, "attack_steps"], clf.threat_model_.steps
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
            for name, value in (("epoch", epoch), ("steps", steps)):
                if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                    raise ValueError(
                        f"schedule {name}s must be integers >= 1, got {value!r} in "
                        f"{self.schedule!r}."
                    )
        return self

    def on_train_begin(self, net, **kwargs):
        if getattr(net, "threat_model_", None) is None:
            raise ValueError(
                f"{type(self).__name__} needs an adversarially trained estimator, got "
                f"{type(net).__name__}."
            )
        self.original_ = net.threat_model_

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history)
        due = [e for e in self.schedule if e <= epoch]
        if due:
            steps = self.schedule[max(due)]
            if net.threat_model_.steps != steps:
                net.threat_model_ = dataclasses.replace(net.threat_model_, steps=steps)
        net.history.record("attack_steps", net.threat_model_.steps)

    def on_train_end(self, net, **kwargs):
        net.threat_model_ = self.original_
