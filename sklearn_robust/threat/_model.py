"""The threat model: the ball the adversary may move in, and the input bounds.

Training objectives and evaluation attacks both take a :class:`ThreatModel`, so "what the
adversary may do" is written once. How the adversary searches the ball (steps, step
size, restarts) belongs to the attack or objective that searches. Everything here is
pure torch and works per sample on batches of any shape ``(N, ...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..utils import (
    active_generator,
    check_bounds,
    check_eps,
    check_fraction,
    check_norm,
    per_sample,
)
from ._l1 import L1_FRACTION, project_l1_box, sparse_direction, uniform_l1


@dataclass(frozen=True)
class ThreatModel:
    """The adversary's budget: an ``eps``-ball in a norm, inside the input bounds.

    Parameters
    ----------
    eps : float
        Radius of the ball around each input (``>= 0``).
    norm : {'linf', 'l2', 'l1'}, default='linf'
        ``'linf'``: steepest-ascent steps are signs and the projection clips;
        ``'l2'``: steps are normalised gradients and the projection rescales;
        ``'l1'``: steps are sparse (the signs of the largest gradient entries, see
        :meth:`direction`) and the projection is the exact one onto the l_1 ball
        intersected with the bounds (Croce & Hein 2021), not onto the ball and then
        clipped.
    bounds : None or (low, high), default=None
        Valid input range; scalars or arrays broadcastable to one sample's shape. Every
        adversarial point is clamped into it after the projection onto the ball.

    See Also
    --------
    sklearn_robust.threat.ascend : Projected gradient ascent inside a threat model.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> threat = ThreatModel(eps=0.1, norm="linf", bounds=(0.0, 1.0))
    >>> threat
    ThreatModel(eps=0.1, norm='linf', bounds=(0.0, 1.0))
    >>> x = torch.tensor([[0.0, 0.5, 1.0]])
    >>> threat.project(x + 0.3, x)
    tensor([[0.1000, 0.6000, 1.0000]])
    """

    eps: float
    norm: str = "linf"
    bounds: Any = None
    _bounds: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "eps", check_eps(self.eps, caller="ThreatModel"))
        check_norm(self.norm, caller="ThreatModel")
        object.__setattr__(self, "_bounds", check_bounds(self.bounds))

    # ------------------------------------------------------------------ geometry
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

    def norms(self, v):
        """Per-sample norm of ``v`` in the threat model's norm."""
        flat = v.flatten(1)
        if self.norm == "linf":
            return flat.abs().amax(dim=1)
        if self.norm == "l1":
            return flat.abs().sum(dim=1)
        return flat.norm(p=2, dim=1)

    def project(self, x_adv, x, bounds=None):
        """Project ``x_adv`` onto the ``eps``-ball around ``x`` intersected with the bounds."""
        delta = x_adv - x
        if self.norm == "l1":
            return self._project_l1(delta, x, self.bounds_like(x) if bounds is None else bounds)
        if self.norm == "linf":
            delta = delta.clamp(-self.eps, self.eps)
        else:
            factor = (self.eps / self.norms(delta).clamp_min(1e-12)).clamp(max=1.0)
            delta = delta * per_sample(factor, x)
        return self.clamp(x + delta, bounds)

    def _project_l1(self, delta, x, bounds):
        # The box of delta is [low - x, high - x]: exact in float64, then in x's dtype.
        flat_x = x.flatten(1)
        low = high = None
        if bounds is not None:
            low = (bounds[0].expand_as(x).flatten(1) - flat_x).clamp(max=0)
            high = (bounds[1].expand_as(x).flatten(1) - flat_x).clamp(min=0)
        d = project_l1_box(delta.flatten(1), low, high, self.eps).view_as(x)
        out = self.clamp(x + d, bounds)
        # Rounding x + d can add up to a few ulps over many coordinates: shrink those rows
        # (towards x, which stays in the box) until their float norm is within eps.
        for _ in range(4):
            dist = self.norms(out - x)
            over = dist > self.eps
            if not bool(over.any()):
                break
            factor = torch.where(over, self.eps / dist.clamp_min(1e-30) * (1 - 1e-6),
                                 torch.ones_like(dist))
            out = self.clamp(x + (out - x) * per_sample(factor, x), bounds)
        return out

    def distance(self, x_adv, x):
        """Per-sample distance ``||x_adv - x||`` in the threat model's norm."""
        return self.norms(x_adv - x)

    def contains(self, x_adv, x, atol=1e-6):
        """Boolean tensor: which rows of ``x_adv`` lie in the ball and the bounds."""
        inside = self.distance(x_adv, x) <= self.eps + atol
        bounds = self.bounds_like(x)
        if bounds is not None:
            ok = (x_adv >= bounds[0] - atol) & (x_adv <= bounds[1] + atol)
            inside &= ok.flatten(1).all(dim=1)
        return inside

    def direction(self, grad, x_adv=None, bounds=None, *, fraction=L1_FRACTION):
        """Ascent direction of unit norm: ``sign(g)``, ``g / ||g||_2`` or a sparse l_1 step.

        Under ``'l1'`` the exact steepest ascent moves a single coordinate, which makes
        slow progress; the step is SLIDE's (Tramer & Boneh 2019): the signs of the
        ``ceil(fraction * D)`` largest ``|g|`` entries, scaled to unit l_1 norm. Given
        the iterate ``x_adv`` (and the bounds), coordinates sitting on a bound with the
        gradient pointing out of it are left out, so the step is not wasted on them
        (the box matters, Croce & Hein 2021). ``x_adv``, ``bounds`` and ``fraction``
        are used only under ``'l1'``.
        """
        if self.norm == "linf":
            return grad.sign()
        if self.norm == "l2":
            return l2_normalise(grad)
        check_fraction(fraction, "fraction", "ThreatModel.direction")
        flat = grad.flatten(1)
        bounds = self.bounds_like(grad) if bounds is None else bounds
        movable = None
        if x_adv is not None and bounds is not None:
            at_low = x_adv <= bounds[0].expand_as(x_adv)
            at_high = x_adv >= bounds[1].expand_as(x_adv)
            movable = ~(((grad > 0) & at_high) | ((grad < 0) & at_low)).flatten(1)
        return sparse_direction(flat, fraction, movable).view_as(grad)

    # ------------------------------------------------------------------ starts
    def uniform_start(self, x, generator=None):
        """A point drawn uniformly from the ball around ``x`` (then clamped to the bounds).

        Clamping only moves coordinates towards ``x``, so the point stays in the ball.
        ``generator=None`` draws from the active fit's stream for ``x``'s device
        (:func:`~sklearn_robust.utils.active_generator`), or torch's global stream
        outside a fit.
        """
        if generator is None:
            generator = active_generator(x.device)
        if self.norm == "linf":
            noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            delta = (2 * noise - 1) * self.eps
        elif self.norm == "l1":
            delta = uniform_l1((x.shape[0], x[0].numel()), self.eps, generator, x.device,
                               x.dtype).view_as(x)
        else:
            direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            direction = l2_normalise(direction)
            dim = x[0].numel()
            radius = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=x.dtype)
            delta = direction * per_sample(self.eps * radius.pow(1.0 / dim), x)
        return self.clamp(x + delta)

    def gaussian_start(self, x, sigma=0.001, generator=None):
        """``x + sigma * N(0, 1)``, the TRADES/SCORE start, projected into the ball and bounds."""
        if generator is None:
            generator = active_generator(x.device)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return self.project(x + sigma * noise, x)

    def start(self, x, kind, generator=None):
        """Dispatch on ``kind`` in ``{'uniform', 'gaussian', 'none'}``.

        """
        if kind == "uniform":
            return self.uniform_start(x, generator)
        if kind == "gaussian":
            return self.gaussian_start(x, generator=generator)
        if kind == "none":
            return x.clone()
        raise ValueError(f"start must be 'uniform', 'gaussian' or 'none', got {kind!r}.")


def l2_normalise(v):
    """``v`` divided by its per-sample l_2 norm (zero rows stay zero).

    Examples
    --------
    >>> import torch
    >>> l2_normalise(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    tensor([[0.6000, 0.8000],
            [0.0000, 0.0000]])
    """
    return v / per_sample(v.flatten(1).norm(p=2, dim=1).clamp_min(1e-12), v)
