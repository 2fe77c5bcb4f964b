"""The threat model: one object for the norm ball, its step rule and the input bounds.

Training objectives and evaluation attacks both take a :class:`ThreatModel`, so "what the
adversary may do" is written once. Everything here is pure torch and works per sample on
batches of any shape ``(N, ...)``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

NORMS = ("linf", "l2")


def _is_real_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_norm(norm, name="norm"):
    """Return ``norm`` if it is a supported norm name, else raise ``ValueError``."""
    if norm not in NORMS:
        raise ValueError(f"{name} must be one of {NORMS}, got {norm!r}.")
    return norm


def check_eps(eps, name="eps"):
    """Return ``float(eps)`` if it is a finite real number >= 0, else raise."""
    if not _is_real_number(eps) or not np.isfinite(eps):
        raise ValueError(f"{name} must be a finite real number, got {eps!r}.")
    if eps < 0:
        raise ValueError(f"{name} must be >= 0, got {eps!r}.")
    return float(eps)


def check_bounds(bounds, name="bounds"):
    """Validate ``bounds``: None or a ``(low, high)`` pair of scalars or arrays.

    Returns ``None`` or a pair of float32 numpy arrays (0-d for scalars). Raises
    ``ValueError`` when an entry is not finite or when ``low > high`` anywhere.
    """
    if bounds is None:
        return None
    if isinstance(bounds, str) or not hasattr(bounds, "__len__") or len(bounds) != 2:
        raise ValueError(f"{name} must be None, 'auto' or a (low, high) pair, got {bounds!r}.")
    try:
        low, high = (np.asarray(b, dtype=np.float64) for b in bounds)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must hold numbers, got {bounds!r}.") from exc
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError(f"{name} must be finite, got {bounds!r}.")
    try:
        np.broadcast_shapes(low.shape, high.shape)
    except ValueError as exc:
        raise ValueError(
            f"{name}: low and high have incompatible shapes {low.shape} and {high.shape}."
        ) from exc
    if np.any(low > high):
        raise ValueError(f"{name} must satisfy low <= high everywhere, got low > high.")
    return low.astype(np.float32), high.astype(np.float32)


def check_bounds_contain(bounds, X, name="bounds"):
    """:func:`check_bounds`, then check the bounds fit one sample of ``X`` and contain ``X``.

    Returns ``None`` or the ``(low, high)`` pair; raises ``ValueError`` naming the problem
    (shapes that do not broadcast to one sample, or data outside the bounds: values are
    never clipped silently).

    Examples
    --------
    >>> import numpy as np
    >>> check_bounds_contain((0.0, 1.0), np.array([[0.2, 0.9]]))
    (array(0., dtype=float32), array(1., dtype=float32))
    >>> check_bounds_contain((0.0, 0.5), np.array([[0.2, 0.9]]))
    Traceback (most recent call last):
    ...
    ValueError: X has values outside the declared bounds (0.0, 0.5); widen them.
    """
    checked = check_bounds(bounds, name)
    if checked is None:
        return None
    low, high = checked
    sample_shape = tuple(np.shape(X)[1:])
    for b in (low, high):
        try:
            np.broadcast_shapes(b.shape, sample_shape)
        except ValueError:
            raise ValueError(
                f"{name} must be scalars or broadcast to one sample's shape {sample_shape}, "
                f"got shape {b.shape}."
            ) from None
    if np.any(X < low - 1e-6) or np.any(X > high + 1e-6):
        raise ValueError(f"X has values outside the declared {name} {bounds!r}; widen them.")
    return low, high


@dataclass(frozen=True)
class ThreatModel:
    """The adversary's budget: an ``eps``-ball in a norm, a step rule and input bounds.

    Parameters
    ----------
    eps : float
        Radius of the ball around each input (``>= 0``).
    norm : {'linf', 'l2'}, default='linf'
        ``'linf'`` takes sign-gradient steps and projects by clipping;
        ``'l2'`` takes normalised-gradient steps and projects by rescaling.
    steps : int, default=10
        Number of ascent steps of the inner maximisation (``>= 0``).
    step_size : float or None, default=None
        Step length. ``None`` uses ``2.5 * eps / steps`` (Madry et al.'s rule, which lets
        a walk from the ball's edge cross it).
    bounds : None or (low, high), default=None
        Valid input range; scalars or arrays broadcastable to one sample's shape. Every
        adversarial point is clamped into it after the projection onto the ball.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> threat = ThreatModel(eps=0.1, norm="linf", steps=10, bounds=(0.0, 1.0))
    >>> threat.alpha
    0.025
    >>> x = torch.tensor([[0.0, 0.5, 1.0]])
    >>> threat.project(x + 0.3, x)
    tensor([[0.1000, 0.6000, 1.0000]])
    """

    eps: float
    norm: str = "linf"
    steps: int = 10
    step_size: float | None = None
    bounds: Any = None
    _bounds: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "eps", check_eps(self.eps))
        check_norm(self.norm)
        if not isinstance(self.steps, numbers.Integral) or isinstance(self.steps, bool):
            raise ValueError(f"steps must be an integer >= 0, got {self.steps!r}.")
        if self.steps < 0:
            raise ValueError(f"steps must be an integer >= 0, got {self.steps!r}.")
        if self.step_size is not None:
            if not _is_real_number(self.step_size) or not self.step_size > 0:
                raise ValueError(f"step_size must be None or a number > 0, got {self.step_size!r}.")
        object.__setattr__(self, "_bounds", check_bounds(self.bounds))

    # ------------------------------------------------------------------ geometry
    @property
    def alpha(self):
        """The step length actually used."""
        if self.step_size is not None:
            return float(self.step_size)
        return 2.5 * self.eps / max(self.steps, 1)

    def bounds_like(self, x):
        """``(low, high)`` as tensors on ``x``'s device and dtype, or ``None``."""
        if self._bounds is None:
            return None
        return tuple(torch.as_tensor(b, dtype=x.dtype, device=x.device) for b in self._bounds)

    def clamp(self, x, bounds=None):
        """Clamp ``x`` into the input bounds (no-op without bounds)."""
        bounds = self.bounds_like(x) if bounds is None else bounds
        if bounds is None:
            return x
        return torch.maximum(torch.minimum(x, bounds[1]), bounds[0])

    def _norms(self, v):
        flat = v.flatten(1)
        if self.norm == "linf":
            return flat.abs().amax(dim=1)
        return flat.norm(p=2, dim=1)

    def project(self, x_adv, x, bounds=None):
        """Project ``x_adv`` onto the ``eps``-ball around ``x`` intersected with the bounds."""
        delta = x_adv - x
        if self.norm == "linf":
            delta = delta.clamp(-self.eps, self.eps)
        else:
            norms = self._norms(delta).clamp_min(1e-12)
            factor = (self.eps / norms).clamp(max=1.0)
            delta = delta * factor.view(-1, *([1] * (x.dim() - 1)))
        return self.clamp(x + delta, bounds)

    def distance(self, x_adv, x):
        """Per-sample distance ``||x_adv - x||`` in the threat model's norm."""
        return self._norms(x_adv - x)

    def contains(self, x_adv, x, atol=1e-6):
        """Boolean tensor: which rows of ``x_adv`` lie in the ball and the bounds."""
        inside = self.distance(x_adv, x) <= self.eps + atol
        bounds = self.bounds_like(x)
        if bounds is not None:
            ok = (x_adv >= bounds[0] - atol) & (x_adv <= bounds[1] + atol)
            inside &= ok.flatten(1).all(dim=1)
        return inside

    # ------------------------------------------------------------------ starts and steps
    def uniform_start(self, x, generator=None):
        """A point drawn uniformly from the ball around ``x`` (then clamped to the bounds)."""
        if self.norm == "linf":
            noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            delta = (2 * noise - 1) * self.eps
        else:
            direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            direction = direction / self._norms(direction).clamp_min(1e-12).view(
                -1, *([1] * (x.dim() - 1))
            )
            dim = x[0].numel()
            radius = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=x.dtype)
            radius = self.eps * radius.pow(1.0 / dim)
            delta = direction * radius.view(-1, *([1] * (x.dim() - 1)))
        return self.clamp(x + delta)

    def gaussian_start(self, x, sigma=0.001, generator=None):
        """``x + sigma * N(0, 1)``, the TRADES/SCORE start, projected into the ball and bounds."""
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return self.project(x + sigma * noise, x)

    def start(self, x, kind, generator=None):
        """Dispatch on ``kind`` in ``{'uniform', 'gaussian', 'none'}``."""
        if kind == "uniform":
            return self.uniform_start(x, generator)
        if kind == "gaussian":
            return self.gaussian_start(x, generator=generator)
        if kind == "none":
            return x.clone()
        raise ValueError(f"start must be 'uniform', 'gaussian' or 'none', got {kind!r}.")

    def direction(self, grad):
        """Steepest-ascent direction of unit norm: ``sign(g)`` or ``g / ||g||_2``."""
        if self.norm == "linf":
            return grad.sign()
        norms = grad.flatten(1).norm(p=2, dim=1).clamp_min(1e-12)
        return grad / norms.view(-1, *([1] * (grad.dim() - 1)))

    def ascend(self, loss_fn, x, *, start="uniform", steps=None, alpha=None, generator=None):
        """Projected gradient ascent of ``loss_fn`` around ``x``.

        ``loss_fn(x_adv)`` returns one loss per sample (shape ``(N,)``); gradients are taken
        with respect to the input only (``torch.autograd.grad``), so parameter ``.grad`` is
        never touched. Returns the last iterate (detached), always inside ball and bounds.
        """
        steps = self.steps if steps is None else steps
        alpha = self.alpha if alpha is None else alpha
        x = x.detach()
        bounds = self.bounds_like(x)
        x_adv = self.start(x, start, generator).detach()
        for _ in range(steps):
            x_adv.requires_grad_(True)
            with torch.enable_grad():
                loss = loss_fn(x_adv).sum()
                (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = self.project(x_adv.detach() + alpha * self.direction(grad), x, bounds)
        return x_adv.detach()
