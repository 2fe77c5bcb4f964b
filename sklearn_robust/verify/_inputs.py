"""The input set ``{x' : ||x' - x||_p <= eps} ∩ [lower, upper]`` per point, checked.

:class:`InputSet` holds one batch of it (flat rows: float64 for the verifiers, the
module's dtype for certified training) and gives the two things every bound needs: an
enclosing box, and the minimum of a linear function over the set.
"""

import math

import numpy as np
import torch

from ..utils import check_eps, check_int, check_norm
from ._layers import Affine, MaxPool, ReLU
from ._network import layers_in, layers_out

__all__ = ["InputSet", "box_side", "check_inputs"]

_CALLER = "the verifier"
#: Points of x may lie this far outside [lower, upper] (rounding); the box is widened.
_TOLERANCE = 1e-6


def check_inputs(layers, x, y, eps, norm, lower, upper, *, batch_size=None,
                 caller=_CALLER):
    """Validate everything before any bound work; return float64 flat tensors.

    Returns ``(x (N, d), y (N,) long or None, eps, norm, lower (N, d) or None,
    upper (N, d) or None, batch_size)`` on the layers' device.
    """
    if not isinstance(layers, (list, tuple)) or not layers or not all(
            isinstance(layer, (Affine, ReLU, MaxPool)) for layer in layers):
        raise TypeError("layers must be the list network_layers(module, sample_shape) "
                        "returns.")
    eps = check_eps(eps, "eps", caller)
    norm = check_norm(norm, "norm", caller)
    if batch_size is not None:
        batch_size = check_int(batch_size, "batch_size", caller)
    device = _device_of(layers)
    x = _as_tensor(x, "x", device)
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch (N, ...), got shape {tuple(x.shape)}.")
    width = layers_in(layers)
    if math.prod(x.shape[1:]) != width:
        raise ValueError(f"x has samples of shape {tuple(x.shape[1:])} "
                         f"({math.prod(x.shape[1:])} values); the network takes {width}.")
    if not torch.isfinite(x).all():
        raise ValueError("x must be finite (it holds NaN or inf).")
    sample = tuple(x.shape[1:])
    n = x.shape[0]
    flat = x.reshape(n, width)
    lower = box_side(lower, "lower", sample, n, device)
    upper = box_side(upper, "upper", sample, n, device)
    if lower is not None and upper is not None and bool((lower > upper).any()):
        raise ValueError("lower must be <= upper everywhere.")
    for side, name, outside in ((lower, "lower", lambda b: flat < b - _TOLERANCE),
                                (upper, "upper", lambda b: flat > b + _TOLERANCE)):
        if side is not None and bool(outside(side).any()):
            raise ValueError(f"x has values outside the box: below lower or above upper "
                             f"(check {name}).")
    if lower is not None:
        lower = torch.minimum(lower, flat)
    if upper is not None:
        upper = torch.maximum(upper, flat)
    if y is not None:
        y = _labels(y, n, layers_out(layers), device)
    return flat, y, eps, norm, lower, upper, batch_size


def _device_of(layers):
    for layer in layers:
        if isinstance(layer, Affine):
            return layer.bias.device
    return torch.device("cpu")


def _as_tensor(value, name, device, dtype=torch.float64):
    if isinstance(value, torch.Tensor):
        return value.detach().to(device=device, dtype=dtype)
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold numbers.") from None
    return torch.as_tensor(array, device=device, dtype=dtype)


def box_side(value, name, sample, n, device, dtype=torch.float64):
    """``None`` or an ``(N, d)`` tensor of ``dtype`` from a scalar, one sample or a
    batch (a view: expanded, not copied, for a scalar or one sample)."""
    if value is None:
        return None
    side = _as_tensor(value, name, device, dtype)
    if torch.isnan(side).any():
        raise ValueError(f"{name} must not hold NaN.")
    shape = tuple(side.shape)
    try:
        if side.dim() <= len(sample):
            side = side.broadcast_to(sample).reshape(1, -1).expand(n, -1)
        else:
            side = side.broadcast_to((n, *sample)).reshape(n, -1)
    except RuntimeError:
        raise ValueError(f"{name} must be a scalar or broadcast to one sample's shape "
                         f"{sample} or to x's shape {(n, *sample)}, got shape {shape}."
                         ) from None
    return side


def _labels(y, n, n_classes, device):
    if isinstance(y, torch.Tensor):
        array = y.detach().cpu().numpy()
    else:
        array = np.asarray(y)
    if array.shape != (n,):
        raise ValueError(f"y must have shape ({n},) like x's batch, got {array.shape}.")
    if array.dtype.kind not in "iu" and not (
            array.dtype.kind == "f" and np.all(np.isfinite(array))
            and np.all(array == np.round(array))):
        raise ValueError("y must hold integer class indices.")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= n_classes):
        raise ValueError(f"y must hold class indices in [0, {n_classes}), "
                         f"got values in [{array.min()}, {array.max()}].")
    return torch.as_tensor(array, device=device)


class InputSet:
    """One batch of the input set: rows ``x`` (N, d), ``eps``, ``norm``, box sides.

    Examples
    --------
    >>> import torch
    >>> s = InputSet(torch.zeros(1, 2, dtype=torch.float64), 0.5, "l2", None, None)
    >>> s.minimum(torch.tensor([[[3.0, 4.0]]], dtype=torch.float64), torch.zeros(1, 1))
    tensor([[-2.5000]], dtype=torch.float64)
    """

    def __init__(self, x, eps, norm, lower, upper):
        self.x, self.eps, self.norm = x, eps, norm
        self.has_box = lower is not None or upper is not None
        lo, hi = x - eps, x + eps
        if lower is not None:
            lo = torch.maximum(lo, lower)
        if upper is not None:
            hi = torch.minimum(hi, upper)
        self.lo, self.hi = lo, hi
        self.centre, self.radius = (lo + hi) / 2, (hi - lo) / 2

    def __getitem__(self, rows):
        """The sub-batch ``rows`` (a slice)."""
        sub = InputSet.__new__(InputSet)
        sub.x, sub.eps, sub.norm, sub.has_box = self.x[rows], self.eps, self.norm, \
            self.has_box
        for name in ("lo", "hi", "centre", "radius"):
            setattr(sub, name, getattr(self, name)[rows])
        return sub

    def box(self):
        """``(lo, hi)``: a box holding the set (the linf ball's box, clipped)."""
        return self.lo, self.hi

    def dual(self, a):
        """``||a||_*`` along the last axis: the dual norm of ``norm``."""
        if self.norm == "linf":
            return a.abs().sum(dim=-1)
        if self.norm == "l2":
            return a.norm(dim=-1)
        return a.abs().amax(dim=-1)

    def minimum(self, a, const):
        """Lower bound of ``a . x' + const`` over the set; ``a`` is (N, R, d) or (R, d).

        l_inf: the exact minimum over the box ``[x - eps, x + eps] ∩ [lower, upper]``.
        l_2, l_1: the larger of the minimum over the ball, ``a . x - eps ||a||_*``, and
        the minimum over the enclosing box (both hold on the intersection).
        """
        box = _matvec(a, self.centre) - _matvec(a.abs(), self.radius)
        if self.norm == "linf":
            return box + const
        ball = _matvec(a, self.x) - self.eps * self.dual(a)
        if self.has_box:
            ball = torch.maximum(ball, box)
        return ball + const

    def affine_bounds(self, layer):
        """``(lower, upper)`` of a first affine layer's output over the set (exact ball)."""
        mid = layer.forward(self.centre)
        radius = layer.forward_abs(self.radius)
        lo, hi = mid - radius, mid + radius
        if self.norm != "linf":
            centre = layer.forward(self.x)
            reach = self.eps * self._row_duals(layer)
            lo, hi = centre - reach, centre + reach
            if self.has_box:
                lo, hi = torch.maximum(lo, mid - radius), torch.minimum(hi, mid + radius)
        return lo, hi

    def _row_duals(self, layer):
        """``||w_i||_*`` of every row of an affine layer (a matrix-free one may give
        them without its matrix: ``row_dual_norms(norm)``, ``None`` when it cannot)."""
        if layer.diagonal is not None:
            return layer.diagonal.abs()
        rows = getattr(layer, "row_dual_norms", None)
        norms = rows(self.norm) if rows is not None else None
        return self.dual(layer.weight) if norms is None else norms


def _matvec(a, v):
    """``a . v`` per row: ``a`` (N, R, d) or (R, d), ``v`` (N, d) -> (N, R)."""
    if a.dim() == 2:
        return v @ a.T
    return torch.einsum("nrd,nd->nr", a, v)
