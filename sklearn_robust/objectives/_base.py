"""The contract of a training objective, and the pieces objectives share."""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from numbers import Integral, Real

import torch
import torch.nn.functional as F

from ..utils import (
    FitStreams,
    Interval,
    Substitution,
    active_generator,
    drawing_from,
    forked_rng,
    frozen,
    mode_independent,
    validate_params_of,
)

#: Shared docstring blocks of the objectives: the attack schedule and a doctest batch.
fill_doc = Substitution(
    schedule="""\
steps : int, default=10
    Ascent steps of the attack (``>= 0``).
step_size : float or None, default=None
    Step of the attack; ``None`` is ``2.5 * eps / steps``.""",
    batch="""\
>>> import torch
>>> from sklearn_robust import ThreatModel
>>> model = torch.nn.Linear(3, 2)
>>> x, y = torch.rand(5, 3), torch.tensor([0, 1, 0, 1, 1])""",
)

#: Label smoothing: a fraction of the target mass in ``[0, 1)``.
LABEL_SMOOTHING = [Interval(Real, 0, 1, closed="left")]


class Objective:
    """One training method: the loss of a batch, inner maximisation included.

    An objective is called as ``objective(module, x, y, threat)`` with ``module`` in train
    mode and returns ``(loss, logits)``: the scalar loss to back-propagate and the logits
    to report as the batch's predictions. An inner maximisation runs with the module
    frozen (see :func:`inner_maximise`), so it never updates BatchNorm statistics or
    parameter gradients. Random draws (attack starts) come from the fit's own streams
    (:func:`~sklearn_robust.utils.active_generator`; torch's global stream outside a fit).

    An objective with a cross-entropy term that an estimator's ``criterion`` may replace
    (class weights, label smoothing) says which in ``criterion_term`` and takes a
    keyword ``criterion=None``: a callable ``criterion(logits, targets)`` returning the
    mean loss (the estimator's ``criterion_``), ``None`` for the plain cross-entropy.
    Objectives whose ``criterion_term`` is ``None`` are never given one; an estimator
    refuses a criterion for them.

    The constructor arguments are the objective's parameters: they are validated against
    ``_parameter_constraints`` when it is built, listed by :meth:`get_params` and changed
    by :meth:`replace`, which returns a new objective (an objective is never modified in
    place, so a callback may swap the one an estimator trains with).

    Examples
    --------
    A new method is one small class; here, training on uniform noise in the ball:

    >>> import torch
    >>> import torch.nn.functional as F
    >>> from sklearn_robust import ThreatModel
    >>> class NoiseTraining(Objective):
    ...     def __call__(self, module, x, y, threat):
    ...         logits = module(threat.uniform_start(x))
    ...         return F.cross_entropy(logits, y), logits
    >>> loss, logits = NoiseTraining()(torch.nn.Linear(3, 2), torch.zeros(4, 3),
    ...                                torch.zeros(4, dtype=torch.long), ThreatModel(eps=0.1))
    >>> logits.shape
    torch.Size([4, 2])
    """

    #: Whether the objective uses the threat model (False for natural training).
    adversarial = True

    #: The cross-entropy term an estimator's criterion replaces, in words (``None``: none).
    criterion_term = None

    #: Constraints of the constructor arguments (scikit-learn's format).
    _parameter_constraints: dict = {}

    def __call__(self, module, x, y, threat):  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_params(self, **params):
        """Validate the constructor's arguments, then store them (numbers as int or float)."""
        validate_params_of(self._parameter_constraints, params, type(self).__name__)
        for name, value in params.items():
            setattr(self, name, _as_number(value, self._parameter_constraints.get(name, ())))

    @classmethod
    def _param_names(cls):
        signature = inspect.signature(cls.__init__)
        return [p.name for p in signature.parameters.values()
                if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]

    def get_params(self):
        """The constructor arguments, as a dict.

        Examples
        --------
        >>> from sklearn_robust.objectives import TRADES
        >>> TRADES(beta=3.0).get_params()
        {'beta': 3.0, 'ls': 0.0, 'steps': 10, 'step_size': None}
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def replace(self, **changes):
        """A new objective of the same class with the arguments in ``changes`` changed.

        Examples
        --------
        >>> from sklearn_robust.objectives import TRADES
        >>> TRADES(beta=3.0).replace(steps=3)
        TRADES(beta=3.0, ls=0.0, steps=3, step_size=None)
        """
        unknown = sorted(set(changes) - set(self._param_names()))
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has no parameter(s) {unknown}; its parameters are "
                f"{self._param_names()}."
            )
        return type(self)(**{**self.get_params(), **changes})

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


def _as_number(value, constraints):
    # Store numbers as Python numbers (np.int64(3) -> 3), so reprs and pickles stay plain.
    for constraint in constraints:
        if isinstance(constraint, Interval) and isinstance(value, constraint.type):
            return int(value) if constraint.type is Integral else float(value)
    return value


def smoothed_targets(y, n_classes, ls):
    """One-hot ``y`` with label smoothing ``ls``: true class ``1 - ls``, others ``ls / (C - 1)``.

    Examples
    --------
    >>> import torch
    >>> smoothed_targets(torch.tensor([1]), 3, 0.2)
    tensor([[0.1000, 0.8000, 0.1000]])
    """
    off = ls / max(n_classes - 1, 1)
    targets = torch.full((y.shape[0], n_classes), off, device=y.device)
    return targets.scatter_(1, y[:, None], 1.0 - ls)


def label_loss(logits, y, ls=0.0, criterion=None):
    """Mean cross-entropy of ``logits`` against the labels ``y`` smoothed by ``ls``.

    ``criterion`` (an estimator's ``criterion_``, say ``CrossEntropyLoss(weight=w)``)
    replaces the plain cross-entropy; it gets the smoothed targets as probabilities.

    Examples
    --------
    >>> import torch
    >>> logits, y = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    >>> weighted = torch.nn.CrossEntropyLoss(weight=torch.tensor([2.0, 1.0]))
    >>> bool(label_loss(logits, y) == label_loss(logits, y, criterion=weighted))
    True
    >>> bool(label_loss(logits, y, 0.1, weighted) > label_loss(logits, y, 0.1))
    True
    """
    loss = F.cross_entropy if criterion is None else criterion
    if not ls:
        return loss(logits, y)
    targets = smoothed_targets(y, logits.shape[1], ls).to(logits.dtype)
    return loss(logits, targets)


def mask_replay(x):
    """A factory of RNG contexts that all replay one seed: same dropout masks in each.

    Finite-difference and linearity terms (GR, LLR) compare the network at two nearby
    inputs; with independent dropout masks the difference is dominated by the masks, and
    the cheapest way to shrink it is a constant network. The seed is drawn from the fit's
    stream (so a seeded fit stays reproducible); each context replays it both in torch's
    global stream (where ``nn.Dropout`` draws; forked) and as the fit's stream (where the
    library networks' dropout draws).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5)).train()
    >>> replay = mask_replay(torch.ones(1))
    >>> with replay():
    ...     a = net(torch.ones(2, 4))
    >>> with replay():
    ...     b = net(torch.ones(2, 4))
    >>> bool(torch.equal(a, b))
    True
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=active_generator("cpu")).item())
    return lambda: _replayed(seed)


@contextmanager
def _replayed(seed):
    with forked_rng(seed), drawing_from(FitStreams(seed)):
        yield


def clean_pass(module, x):
    """The attack's target ``log p(x)`` (frozen, detached) and the train-mode clean logits.

    Returns ``(log_p_target, logits_fn)``: ``logits_fn()`` gives ``module(x)`` in train
    mode with the parameter graph, for the outer loss. The reference computes the target
    in eval mode and the outer logits after the attack, in train mode: two forwards. When
    the module computes the same function in both modes (:func:`~sklearn_robust.utils.\
mode_independent`: no BatchNorm, no dropout) one forward gives both, with the same
    result; otherwise (BatchNorm would update its statistics before the attack, dropout
    would draw masks) the two forwards run in the reference's order.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 2)
    >>> log_p, logits_fn = clean_pass(model, torch.zeros(4, 3))
    >>> log_p.requires_grad, logits_fn().requires_grad
    (False, True)
    """
    if torch.is_grad_enabled() and mode_independent(module):
        logits = module(x)
        return F.log_softmax(logits.detach(), dim=1), lambda: logits
    with frozen(module), torch.no_grad():
        log_p_target = F.log_softmax(module(x), dim=1)
    return log_p_target, lambda: module(x)
