"""skorch callbacks that measure robustness during training."""

from __future__ import annotations

import numpy as np
from skorch.callbacks import Callback
from skorch.utils import data_from_dataset

from .metrics import local_lipschitz_score, robust_accuracy_score

__all__ = ["RobustScoring"]


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
