"""Projected gradient ascent inside a threat model, with the searcher's own schedule."""

import torch

from ..utils import POSITIVE, check_int, check_scalar_param

#: Start points of the searches: uniform in the ball, ``x + 0.001 N(0, 1)``, or ``x``.
STARTS = ("uniform", "gaussian", "none")


def check_schedule(steps, step_size, caller, *, min_steps=0):
    """Validate a search schedule: ``steps`` an integer, ``step_size`` None or > 0.

    Returns ``(steps, step_size)`` unchanged; the error names ``caller``.

    Examples
    --------
    >>> check_schedule(10, None, "PGD")
    (10, None)
    >>> check_schedule(10, -0.1, "PGD")
    Traceback (most recent call last):
    ...
    sklearn.utils._param_validation.InvalidParameterError: The 'step_size' parameter of \
PGD must be a float in the range (0.0, inf). Got -0.1 instead.
    """
    check_int(steps, "steps", caller, low=min_steps)
    if step_size is not None:
        check_scalar_param(step_size, "step_size", POSITIVE, caller)
    return steps, step_size


def step_length(eps, steps, step_size=None):
    """The step of a ``steps``-step search: ``step_size``, or ``2.5 * eps / steps``.

    ``2.5 * eps / steps`` is Madry et al.'s rule: long enough for a walk from the ball's
    edge to cross it.

    Examples
    --------
    >>> step_length(0.1, 10)
    0.025
    >>> step_length(0.1, 10, step_size=0.01)
    0.01
    """
    if step_size is not None:
        return float(step_size)
    return 2.5 * eps / max(steps, 1)


def ascend(threat, loss_fn, x, *, steps, step_size=None, start="uniform", generator=None):
    """Projected gradient ascent of ``loss_fn`` around ``x`` inside ``threat``.

    ``loss_fn(x_adv)`` returns one loss per sample (shape ``(N,)``); each of the ``steps``
    steps moves along the threat model's steepest-ascent direction by
    :func:`step_length` and projects onto the ball and the bounds. Gradients are taken
    with respect to the input only (``torch.autograd.grad``), so parameter ``.grad`` is
    never touched. Returns the last iterate (detached), always inside ball and bounds.

    Parameters
    ----------
    threat : ThreatModel
        The ball and bounds.
    loss_fn : callable
        ``loss_fn(x_adv) -> (N,)`` tensor of losses to maximise.
    x : torch.Tensor of shape (N, ...)
        Centres of the balls.
    steps : int
        Ascent steps (``0`` returns the start point).
    step_size : float or None, default=None
        Step length; ``None`` is ``2.5 * eps / steps``.
    start : {'uniform', 'gaussian', 'none'}, default='uniform'
        Start point: uniform in the ball, ``x + 0.001 N(0, 1)``, or ``x`` itself.
    generator : torch.Generator or None, default=None
        Source of the random start (the global RNG when None).

    Returns
    -------
    torch.Tensor
        The adversarial points, detached.

    Examples
    --------
    >>> import torch
    >>> import torch.nn.functional as F
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.threat import ascend
    >>> model, x = torch.nn.Linear(3, 2), torch.rand(4, 3)
    >>> y = torch.zeros(4, dtype=torch.long)
    >>> threat = ThreatModel(eps=0.1, bounds=(0, 1))
    >>> x_adv = ascend(threat, lambda z: F.cross_entropy(model(z), y, reduction="none"),
    ...                x, steps=5)
    >>> bool(threat.contains(x_adv, x).all())
    True
    """
    alpha = step_length(threat.eps, steps, step_size)
    x = x.detach()
    bounds = threat.bounds_like(x)
    x_adv = threat.start(x, start, generator).detach()
    for _ in range(steps):
        x_adv.requires_grad_(True)
        with torch.enable_grad():
            loss = loss_fn(x_adv).sum()
            (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = x_adv.detach()
        step = threat.direction(grad, x_adv, bounds)  # l_1: skips coordinates stuck on a bound
        x_adv = threat.project(x_adv + alpha * step, x, bounds)
    return x_adv.detach()
