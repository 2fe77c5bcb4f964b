"""The inner maximisation every searching objective runs, with the objective's schedule."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

import torch.nn.functional as F

from ..threat import ascend
from ..utils import NON_NEGATIVE_INT, POSITIVE, frozen
from ._base import Objective


def inner_maximise(module, x, threat, loss_fn, *, steps, step_size=None, start="uniform"):
    """Adversarial points around ``x`` that maximise ``loss_fn`` of the logits of ``module``.

    Runs :func:`~sklearn_robust.threat.ascend` with the module frozen (eval mode, no
    parameter gradients) and returns a detached tensor inside the threat model's ball and
    bounds.

    Parameters
    ----------
    module : torch.nn.Module
        The network, returning logits.
    x : torch.Tensor of shape (N, ...)
        Centres of the balls.
    threat : ThreatModel
        The ball and bounds.
    loss_fn : callable
        ``loss_fn(logits) -> (N,)`` tensor of losses to maximise.
    steps, step_size, start
        The schedule and start point, as in :func:`~sklearn_robust.threat.ascend`.

    Returns
    -------
    torch.Tensor
        The adversarial points of ``module``, detached, in the ball and the bounds.

    Examples
    --------
    The module is left as it was (here in train mode, with dropout):

    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Dropout(0.5)).train()
    >>> x, threat = torch.rand(4, 3), ThreatModel(eps=0.1, norm="l2", bounds=(0, 1))
    >>> x_adv = inner_maximise(model, x, threat, lambda logits: logits[:, 0], steps=5)
    >>> bool(threat.contains(x_adv, x).all()), model.training
    (True, True)
    """
    def search():
        with frozen(module):
            return ascend(threat, lambda x_adv: loss_fn(module(x_adv)), x,
                          steps=steps, step_size=step_size, start=start)

    return taped(search)


class SearchRecord:
    """The points an objective's searches found in one call, in order, to be replayed.

    Made by :func:`recorded_searches`; inside :meth:`replayed`, every search (every
    :func:`taped` call) returns the next recorded result instead of searching again. A
    second evaluation of an objective then sees the same adversarial points as the first
    (weight perturbation evaluates the loss again at perturbed weights, on the points
    found at the weights themselves).
    """

    def __init__(self):
        self.points = []
        self._next = None  # index of the next point to replay; None while recording

    def take(self, search):
        if self._next is None:
            self.points.append(search())
            return self.points[-1]
        if self._next >= len(self.points):
            raise RuntimeError(
                f"the objective searched {self._next + 1} times when replayed but "
                f"{len(self.points)} times when recorded: its searches must not depend on "
                "the weights' values."
            )
        self._next += 1
        return self.points[self._next - 1]

    @contextmanager
    def replayed(self):
        """Replay the recorded points, in order, to the searches inside the block."""
        token = _TAPE.set(self)
        self._next = 0
        try:
            yield self
        finally:
            self._next = None
            _TAPE.reset(token)


_TAPE: ContextVar[SearchRecord | None] = ContextVar("sklearn_robust_search_tape",
                                                    default=None)


@contextmanager
def recorded_searches():
    """Record the result of every search run inside the block (a :class:`SearchRecord`).

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> model, x, threat = torch.nn.Linear(3, 2), torch.rand(4, 3), ThreatModel(eps=0.1)
    >>> with recorded_searches() as record:
    ...     first = inner_maximise(model, x, threat, lambda z: z[:, 0], steps=2)
    >>> with record.replayed():
    ...     again = inner_maximise(model, x, threat, lambda z: z[:, 1], steps=2)
    >>> again is first
    True
    """
    record = SearchRecord()
    token = _TAPE.set(record)
    try:
        yield record
    finally:
        _TAPE.reset(token)


def taped(search):
    """``search()`` (a function giving adversarial points), through the active record.

    Outside :func:`recorded_searches` it simply runs; inside, its result is recorded, or
    replayed inside :meth:`SearchRecord.replayed`. Every search of the objectives goes
    through here.
    """
    record = _TAPE.get()
    return search() if record is None else record.take(search)


class SearchingObjective(Objective):
    """An objective with an inner maximisation of ``steps`` steps of length ``step_size``.

    Subclasses store ``steps`` and ``step_size`` (through ``_set_params``) and call
    :meth:`maximise`, which runs :func:`inner_maximise` with that schedule; the schedule
    is the objective's, not the threat model's.

    Examples
    --------
    A new searching method: the cross-entropy at the PGD points plus a clean term.

    >>> import torch
    >>> import torch.nn.functional as F
    >>> from sklearn_robust import ThreatModel
    >>> class HalfAndHalf(SearchingObjective):
    ...     def __init__(self, steps=10, step_size=None):
    ...         self._set_params(steps=steps, step_size=step_size)
    ...     def __call__(self, module, x, y, threat):
    ...         x_adv = self.pgd_points(module, x, y, threat)
    ...         logits = module(x)
    ...         return (F.cross_entropy(logits, y) + F.cross_entropy(module(x_adv), y)) / 2, logits
    >>> objective = HalfAndHalf(steps=3)
    >>> objective.replace(steps=5)
    HalfAndHalf(steps=5, step_size=None)
    >>> loss, _ = objective(torch.nn.Linear(3, 2), torch.rand(4, 3),
    ...                     torch.tensor([0, 1, 0, 1]), ThreatModel(eps=0.1))
    >>> bool(loss > 0)
    True
    """

    _parameter_constraints = {"steps": NON_NEGATIVE_INT, "step_size": [None, *POSITIVE]}

    def maximise(self, module, x, threat, loss_fn, start):
        """:func:`inner_maximise` with this objective's ``steps`` and ``step_size``."""
        return inner_maximise(module, x, threat, loss_fn, steps=self.steps,
                              step_size=self.step_size, start=start)

    def pgd_points(self, module, x, y, threat):
        """PGD adversarial points: cross-entropy ascent of the labels from a uniform start."""
        return self.maximise(
            module, x, threat, lambda logits: F.cross_entropy(logits, y, reduction="none"),
            start="uniform",
        )

    def search(self, threat, loss_fn, x, start):
        """:func:`~sklearn_robust.threat.ascend` of ``loss_fn(x_adv)`` with this schedule.

        For a loss of the input itself (not only of the logits); the caller freezes the
        module.
        """
        return taped(lambda: ascend(threat, loss_fn, x, steps=self.steps,
                                    step_size=self.step_size, start=start))
