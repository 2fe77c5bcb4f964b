"""The pieces of exact verification: input checks, interval bounds and the MILP encoding.

Private helpers of :mod:`._milp` (Tjeng et al. 2019). A network is a list of ``(W, b)``
float64 pairs, ``W`` of shape ``(out, in)``, with a ReLU after every pair but the last.
The input set is an l_inf or l_1 ball of radius ``eps`` around ``x`` intersected with the
box ``[lower, upper]``.
"""

import numpy as np
import torch
from scipy.optimize import LinearConstraint
from scipy.sparse import csr_array

NORMS = ("linf", "l1")


def check_layers(layers):
    """``layers`` as a list of float64 ``(W, b)`` pairs of matching shapes, else ValueError."""
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ValueError("layers must be a non-empty list of (W, b) pairs")
    checked, width = [], None
    for k, pair in enumerate(layers):
        try:
            W, b = pair
        except (TypeError, ValueError):
            raise ValueError(f"layers[{k}] must be a (W, b) pair") from None
        W, b = np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if W.ndim != 2 or b.shape != (W.shape[0],):
            raise ValueError(f"layers[{k}]: W must have shape (out, in) and b shape (out,), "
                             f"got {W.shape} and {b.shape}")
        if width is not None and W.shape[1] != width:
            raise ValueError(f"layers[{k}]: W takes {W.shape[1]} inputs but layers[{k - 1}] "
                             f"gives {width} outputs")
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ValueError(f"layers[{k}] holds NaN or infinite values")
        checked.append((W, b))
        width = W.shape[0]
    if width < 2:
        raise ValueError(f"the last layer must give at least 2 logits, got {width}")
    return checked


def check_threat(eps, norm):
    """``eps`` as a float after checking ``eps`` and ``norm``."""
    if norm == "l2":
        raise ValueError("norm='l2' is not supported: exact verification supports 'linf' and "
                         "'l1' (an l_2 ball is not polyhedral)")
    if norm not in NORMS:
        raise ValueError(f"norm must be 'linf' or 'l1', got {norm!r}")
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise TypeError(f"eps must be a number, got {eps!r}") from None
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, got {eps}")
    return eps


def check_box(lower, upper, d):
    """``(lower, upper)`` as float64 arrays of shape ``(d,)``; None is unbounded."""
    box = []
    for name, value, default in (("lower", lower, -np.inf), ("upper", upper, np.inf)):
        value = np.full(d, default) if value is None else np.asarray(value, dtype=np.float64)
        if value.ndim > 1 or value.size not in (1, d):
            raise ValueError(f"{name} must be a scalar or of shape ({d},), got {value.shape}")
        if np.isnan(value).any():
            raise ValueError(f"{name} holds NaN")
        box.append(np.broadcast_to(value.reshape(-1), (d,)).copy())
    if (box[0] > box[1]).any():
        raise ValueError("lower must not exceed upper")
    return box[0], box[1]


def check_point(x, d, lower, upper, name="x"):
    """``x`` as a finite float64 array of shape ``(d,)`` inside the box."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (d,):
        raise ValueError(f"{name} must have shape ({d},) to match layers[0], got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    if (x < lower).any() or (x > upper).any():
        raise ValueError(f"{name} lies outside the box [lower, upper]")
    return x


def check_label(y, n_classes, name="y"):
    """``y`` as an int in ``[0, n_classes)``."""
    if isinstance(y, (bool, np.bool_)) or not isinstance(y, (int, np.integer)):
        raise TypeError(f"{name} must be an integer class index, got {y!r}")
    if not 0 <= y < n_classes:
        raise ValueError(f"{name}={y} is not a class index in [0, {n_classes})")
    return int(y)


def check_options(time_limit, margin_target):
    """``(time_limit or None, margin_target)`` after checking them."""
    if time_limit is not None:
        if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float, np.number)):
            raise TypeError(f"time_limit must be a number of seconds or None, got {time_limit!r}")
        if not time_limit > 0:
            raise ValueError(f"time_limit must be > 0 seconds, got {time_limit}")
    try:
        margin_target = float(margin_target)
    except (TypeError, ValueError):
        raise TypeError(f"margin_target must be a number, got {margin_target!r}") from None
    if not np.isfinite(margin_target):
        raise ValueError(f"margin_target must be finite, got {margin_target}")
    return (None if time_limit is None or time_limit == np.inf else float(time_limit),
            margin_target)


def check_batch(X, Y, d, n_classes, lower, upper):
    """``X`` of shape ``(n, d)`` inside the box and ``Y`` a list of ``n`` labels."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != d:
        raise ValueError(f"X must have shape (n, {d}) to match layers[0], got {X.shape}")
    Y = np.asarray(Y)
    if Y.shape != (X.shape[0],):
        raise ValueError(f"Y must have shape ({X.shape[0]},) to match X, got {Y.shape}")
    for i, row in enumerate(X):
        check_point(row, d, lower, upper, f"X[{i}]")
    return X, [check_label(label, n_classes, f"Y[{i}]") for i, label in enumerate(Y.tolist())]


def check_preact(preact, layers):
    """One sound ``(lower, upper)`` pair per hidden layer, as float64 arrays.

    Also taken: a last pair for the logits (ignored) and arrays of shape ``(1, width)``.
    """
    preact = list(preact)
    if len(preact) not in (len(layers) - 1, len(layers)):
        raise ValueError(f"preact must hold one (lower, upper) pair per hidden layer, "
                         f"{len(layers) - 1}, got {len(preact)}")
    checked = []
    for k, ((W, _), pair) in enumerate(zip(layers[:-1], preact, strict=False)):
        zl, zu = (np.asarray(v, dtype=np.float64) for v in pair)
        zl, zu = (v.reshape(-1) if v.shape == (1, W.shape[0]) else v for v in (zl, zu))
        if zl.shape != (W.shape[0],) or zu.shape != (W.shape[0],):
            raise ValueError(f"preact[{k}] must hold two arrays of shape ({W.shape[0]},), "
                             f"got {zl.shape} and {zu.shape}")
        if np.isnan(zl).any() or np.isnan(zu).any() or (zl > zu).any():
            raise ValueError(f"preact[{k}] holds NaN or a lower bound above its upper bound")
        if not (np.isfinite(zl).all() and np.isfinite(zu).all()):
            raise ValueError(f"preact[{k}] must be finite (the encoding needs finite bounds)")
        checked.append((zl, zu))
    return checked


def input_box(x, eps, lower, upper):
    """The smallest box around the ball of either norm intersected with the box."""
    return np.maximum(x - eps, lower), np.minimum(x + eps, upper)


def affine_box(W, b, lo, hi):
    """Interval image of the box ``[lo, hi]`` under ``W h + b``."""
    centre, radius = W @ ((lo + hi) / 2) + b, np.abs(W) @ ((hi - lo) / 2)
    return centre - radius, centre + radius


def interval_preact(layers, x, eps, norm, lower, upper):
    """IBP bounds of every hidden pre-activation (already checked arguments)."""
    lo, hi = input_box(x, eps, lower, upper)
    bounds = []
    for k, (W, b) in enumerate(layers[:-1]):
        zl, zu = affine_box(W, b, lo, hi)
        if k == 0 and norm == "l1":  # the exact bound over the l_1 ball, then the box's
            centre, radius = W @ x + b, eps * np.abs(W).max(axis=1)
            zl, zu = np.maximum(zl, centre - radius), np.minimum(zu, centre + radius)
        bounds.append((zl, zu))
        lo, hi = np.maximum(zl, 0.0), np.maximum(zu, 0.0)
    return bounds


class Encoding:
    """The MILP of one point: constraints shared by every wrong class, objective per class.

    Variables ``v``: the input (l_inf: ``x``; l_1: ``p, q >= 0`` with ``x = x0 + p - q``
    and ``sum(p + q) <= eps``), then per unstable ReLU its output ``a`` and indicator
    ``d``, and last a variable fixed to 1 that carries the objective's constant (HiGHS
    measures its relative gap on the whole objective). Every activation is an affine map
    ``A v + c``: a stable ReLU is 0 or its pre-activation (substituted, no variable), an
    unstable one is its ``a``.
    """

    def __init__(self, layers, preact, x, eps, norm, lower, upper):
        d = x.size
        lo, hi = input_box(x, eps, lower, upper)
        unstable = [np.flatnonzero((zl < 0) & (zu > 0)) for zl, zu in preact]
        n_in = d if norm == "linf" else 2 * d
        n_var = n_in + 2 * sum(idx.size for idx in unstable) + 1
        self.var_lb, self.var_ub = np.zeros(n_var), np.zeros(n_var)
        self.var_lb[-1] = self.var_ub[-1] = 1.0
        self.integrality = np.zeros(n_var, dtype=np.uint8)
        A, c = np.zeros((d, n_var)), np.zeros(d)
        rows, rhs = [], []
        if norm == "linf":
            A[:, :d] = np.eye(d)
            self.var_lb[:d], self.var_ub[:d] = lo, hi
        else:  # p <= upper - x, q <= x - lower keep x0 + p - q in the box
            A[:, :d], A[:, d:n_in], c = np.eye(d), -np.eye(d), x.copy()
            self.var_ub[:d], self.var_ub[d:n_in] = hi - x, x - lo
            rows.append(np.r_[np.ones(n_in), np.zeros(n_var - n_in)][None])
            rhs.append([eps])
        self.A_in, self.c_in = A.copy(), c.copy()
        col = n_in
        for (W, b), (zl, zu), idx in zip(layers[:-1], preact, unstable, strict=True):
            R, s = W @ A, W @ c + b
            active = (zl >= 0)[:, None]
            A, c = np.where(active, R, 0.0), np.where(active[:, 0], s, 0.0)
            k, ar = idx.size, np.arange(idx.size)
            a_col, d_col = col + ar, col + k + ar
            A[idx, a_col] = 1.0
            self.var_ub[a_col], self.var_ub[d_col] = zu[idx], 1.0
            self.integrality[d_col] = 1
            ge = R[idx].copy()  # a >= z:  z - a <= 0
            ge[ar, a_col] -= 1.0
            on = np.zeros((k, n_var))  # a <= u d
            on[ar, a_col], on[ar, d_col] = 1.0, -zu[idx]
            off = -R[idx]  # a <= z - l (1 - d)
            off[ar, a_col] += 1.0
            off[ar, d_col] -= zl[idx]
            rows += [ge, on, off]
            rhs += [-s[idx], np.zeros(k), s[idx] - zl[idx]]
            col += 2 * k
        self.A_out, self.c_out = A, c
        self.last_lo, self.last_hi = ((lo, hi) if not preact else
                                      (np.maximum(preact[-1][0], 0), np.maximum(preact[-1][1], 0)))
        self.n_binary = int(self.integrality.sum())
        self.constraints = None
        if rows:
            matrix = np.vstack(rows)
            matrix[np.abs(matrix) < 1e-12] = 0.0  # cancellation noise HiGHS would warn about
            self.constraints = LinearConstraint(csr_array(matrix), -np.inf, np.concatenate(rhs))

    def objective(self, layers, y, j, target):
        """Cost vector of ``z_y - z_j - target`` as a function of ``v``."""
        W, b = layers[-1]
        w = W[y] - W[j]
        cost = w @ self.A_out
        cost[-1] = w @ self.c_out + b[y] - b[j] - target
        return cost

    def interval_margin(self, layers, y, j):
        """A cheap lower bound of the margin from the box of the last activation."""
        W, b = layers[-1]
        lo, _ = affine_box((W[y] - W[j])[None], np.array([b[y] - b[j]]), self.last_lo,
                           self.last_hi)
        return float(lo[0])

    def point(self, v):
        """The input ``x`` of a solution ``v``."""
        return self.A_in @ v + self.c_in


def project(x_adv, x, eps, norm, lower, upper):
    """``x_adv`` moved into the ball around ``x`` and the box (float64)."""
    delta = x_adv - x
    if norm == "linf":
        delta = np.clip(delta, -eps, eps)
    elif np.abs(delta).sum() > eps:  # Euclidean projection onto the l_1 ball (sort-based)
        mag = np.sort(np.abs(delta))[::-1]
        cum = np.cumsum(mag) - eps
        rho = np.flatnonzero(mag > cum / np.arange(1, mag.size + 1))[-1]
        delta = np.sign(delta) * np.maximum(np.abs(delta) - cum[rho] / (rho + 1), 0.0)
    # the box holds x, so clipping only moves coordinates towards x: the ball still holds
    return np.clip(x + delta, lower, upper)


def float32_logits(layers32, x):
    """Logits of ``x`` by the float32 network (torch ``F.linear`` as ``nn.Linear`` runs)."""
    h = torch.as_tensor(np.asarray(x, dtype=np.float32)[None])
    with torch.no_grad():
        for k, (W, b) in enumerate(layers32):
            h = torch.nn.functional.linear(h, W, b)
            if k < len(layers32) - 1:
                h = torch.relu(h)
    return h[0].numpy()


def to_float32(layers):
    """The network's weights as float32 torch tensors."""
    return [(torch.as_tensor(W, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32))
            for W, b in layers]
