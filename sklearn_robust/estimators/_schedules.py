"""Learning-rate schedules by name: ``lr_schedule=None|'piecewise'|'cosine'``.

The schedule is torch's scheduler (``MultiStepLR``, ``CosineAnnealingLR``) run by a
skorch ``LRScheduler`` callback that the estimator adds to ``callbacks_`` itself, so the
rates are skorch's own (history, Accelerate's skipped steps) and nothing is hand-rolled.
It spans the ``max_epochs`` epochs of one call of ``fit`` or ``partial_fit``.
"""

import torch
from skorch.callbacks import LRScheduler, PrintLog

from ..utils import StrOptions

#: The values of the ``lr_schedule`` parameter besides ``None``.
LR_SCHEDULES = ("piecewise", "cosine")
LR_SCHEDULE_CONSTRAINT = [None, StrOptions(set(LR_SCHEDULES))]
#: The name of the schedule's callback in ``callbacks_``.
SCHEDULE_CALLBACK = "lr_schedule"


def make_lr_scheduler(schedule, optimizer, max_epochs):
    """torch's scheduler for ``schedule`` over ``max_epochs`` epochs, stepped once per epoch.

    ``'piecewise'`` multiplies the rate by 0.1 at the first epoch ``e`` (counted from 0)
    with ``e >= 0.75 * max_epochs`` and by 0.1 again at the first with ``e >= 0.9 *
    max_epochs`` (TRADES' 100 epochs: 75 and 90); ``'cosine'`` is ``lr * (1 + cos(pi * e /
    max_epochs)) / 2``.

    Examples
    --------
    >>> import torch
    >>> weight = torch.zeros(1, requires_grad=True)
    >>> optimizer = torch.optim.SGD([weight], lr=1.0)
    >>> scheduler = make_lr_scheduler("piecewise", optimizer, max_epochs=10)
    >>> rates = []
    >>> for epoch in range(10):
    ...     rates.append(round(optimizer.param_groups[0]["lr"], 6))
    ...     optimizer.step()
    ...     scheduler.step()
    >>> rates
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.1, 0.01]
    """
    if schedule == "piecewise":
        # ceil(0.75 E) and ceil(0.9 E) in integers: no rounding surprise at E = 100.
        milestones = [-(-3 * max_epochs // 4), -(-9 * max_epochs // 10)]
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs)


def _restore_base_rates(optimizer):
    """Each parameter group back at the rate its schedule started from.

    torch's schedulers keep that rate as ``initial_lr`` and build on the current one, so a
    new call's schedule starts from ``lr`` only once this is undone; the key is dropped so
    that a rate changed between calls (``set_params(lr=...)``) is the next base.
    """
    for group in optimizer.param_groups:
        if "initial_lr" in group:
            group["lr"] = group.pop("initial_lr")


class ParameterLRSchedule(LRScheduler):
    """skorch's ``LRScheduler`` running the estimator's ``lr_schedule`` for one call.

    The scheduler is built when training starts, from the estimator's ``lr_schedule`` and
    ``max_epochs`` of that call (not from the history's length, as skorch's would), and
    the optimizer is left at its base rates when training ends. Each epoch's rate is
    recorded in the history as ``'event_lr'``.

    Examples
    --------
    >>> from sklearn_robust import NaturalClassifier
    >>> from sklearn_robust.datasets import load_digits_images
    >>> X, _, y, _ = load_digits_images()
    >>> clf = NaturalClassifier(lr_schedule="piecewise", max_epochs=4, random_state=0)
    >>> [round(lr, 6) for lr in clf.fit(X[:200], y[:200]).history[:, "event_lr"]]
    [0.001, 0.001, 0.001, 0.0001]
    """

    def __init__(self):
        super().__init__(policy=None, event_name="event_lr", step_every="epoch")

    def _get_scheduler(self, net, policy, **scheduler_kwargs):
        return make_lr_scheduler(net.lr_schedule, net.optimizer_, net.max_epochs)

    def on_train_begin(self, net, **kwargs):
        # A call that ended in an error left its last rate and initial_lr behind.
        _restore_base_rates(net.optimizer_)
        super().on_train_begin(net, **kwargs)

    def on_train_end(self, net, **kwargs):
        _restore_base_rates(net.optimizer_)


def _is_lr_scheduler(callback):
    return isinstance(callback, LRScheduler) or (
        isinstance(callback, type) and issubclass(callback, LRScheduler))


class ScheduleMixin:
    """The ``lr_schedule`` parameter: checked in ``fit``, its callback kept in ``callbacks_``."""

    def _check_lr_schedule(self):
        """Refuse a schedule beside the user's own ``LRScheduler`` (two would fight)."""
        if self.lr_schedule is None or not isinstance(self.callbacks, (list, tuple)):
            return
        for item in self.callbacks:
            name, callback = item if isinstance(item, (tuple, list)) else (None, item)
            if _is_lr_scheduler(callback) or name == SCHEDULE_CALLBACK:
                raise ValueError(
                    f"lr_schedule={self.lr_schedule!r} and the callback "
                    f"{name or type(callback).__name__!r} would both set the learning "
                    "rate: pass lr_schedule=None to keep the callback's schedule, or drop "
                    "the callback."
                )

    def _sync_lr_schedule(self):
        """``callbacks_`` holds the schedule's callback exactly when ``lr_schedule`` is set.

        Added here rather than among skorch's default callbacks, so that a change of
        ``lr_schedule`` between ``partial_fit`` calls takes effect without initialising
        the other callbacks again (and it runs even with ``callbacks='disable'``: the
        schedule is a parameter, not a callback of the user's).
        """
        current = [(name, cb) for name, cb in self.callbacks_
                   if not isinstance(cb, ParameterLRSchedule)]
        if self.lr_schedule is not None:
            ours = next((entry for entry in self.callbacks_
                         if isinstance(entry[1], ParameterLRSchedule)), None)
            ours = ours or (SCHEDULE_CALLBACK, ParameterLRSchedule().initialize())
            # Before the log, so that a printed epoch already holds its rate.
            at = next((i for i, (_, cb) in enumerate(current) if isinstance(cb, PrintLog)),
                      len(current))
            current.insert(at, ours)
        self.callbacks_ = current
