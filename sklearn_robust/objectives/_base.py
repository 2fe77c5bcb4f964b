"""The contract of a training objective, and the pieces objectives share."""

from __future__ import annotations

import math
import numbers
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from ..attacks import frozen


class Objective:
    """One training method: the loss of a batch, inner maximisation included.

    An objective is called as ``objective(module, x, y, threat)`` with ``module`` in train
    mode and returns ``(loss, logits)``: the scalar loss to back-propagate and the logits
    to report as the batch's predictions. The inner maximisation runs inside
    :func:`~sklearn_robust.attacks.frozen`, so it never updates BatchNorm statistics or
    parameter gradients.

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

    def __call__(self, module, x, y, threat):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


def check_non_negative(value, name):
    """``float(value)`` if it is a finite real number >= 0, else ``ValueError`` naming it."""
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
    return float(value)


def check_label_smoothing(ls):
    """``float(ls)`` if it is a number in ``[0, 1)``, else ``ValueError`` naming ``ls``."""
    ls = check_non_negative(ls, "ls")
    if ls >= 1:
        raise ValueError(f"ls must be in [0, 1), got {ls!r}.")
    return ls


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


def label_loss(logits, y, ls):
    """Mean cross-entropy of ``logits`` against the labels ``y`` smoothed by ``ls``."""
    if not ls:
        return F.cross_entropy(logits, y)
    targets = smoothed_targets(y, logits.shape[1], ls).to(logits.dtype)
    return F.cross_entropy(logits, targets)


def inner_maximise(module, x, threat, loss_fn, start):
    """Adversarial points around ``x`` that maximise ``loss_fn`` of the logits of ``module``.

    Runs with the module frozen (eval mode, no parameter gradients) and returns a detached
    tensor inside the threat model's ball and bounds.

    Examples
    --------
    >>> import torch
    >>> import torch.nn.functional as F
    >>> from sklearn_robust import ThreatModel
    >>> model, x, y = torch.nn.Linear(3, 2), torch.rand(4, 3), torch.zeros(4, dtype=torch.long)
    >>> threat = ThreatModel(eps=0.1, steps=5, bounds=(0, 1))
    >>> x_adv = inner_maximise(model, x, threat,
    ...                        lambda logits: F.cross_entropy(logits, y, reduction="none"),
    ...                        start="uniform")
    >>> bool(threat.contains(x_adv, x).all())
    True
    """
    with frozen(module):
        return threat.ascend(lambda x_adv: loss_fn(module(x_adv)), x, start=start)


def mask_replay(x):
    """A factory of RNG contexts that all replay one seed: same dropout masks in each.

    Finite-difference and linearity terms (GR, LLR) compare the network at two nearby
    inputs; with independent dropout masks the difference is dominated by the masks, and
    the cheapest way to shrink it is a constant network. The seed is drawn from the torch
    RNG (so a seeded fit stays reproducible); each context runs in a forked RNG.

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
    seed = int(torch.randint(0, 2**62, (1,)).item())
    devices = [x.device.index or 0] if x.device.type == "cuda" else []

    @contextmanager
    def replay():
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    return replay


def clean_probabilities(module, x):
    """Softmax of ``module(x)`` computed frozen and detached: the attack's fixed target."""
    with frozen(module), torch.no_grad():
        return F.softmax(module(x), dim=1)
