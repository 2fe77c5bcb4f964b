"""How far the model's own floating-point forward pass can be from exact arithmetic.

The bounds hold for the network computed exactly (in real numbers). The model computes
in float32, so each margin lower bound is lowered by a bound on how far rounding can move
that margin. For an affine layer ``z = W a + b`` summed in any order (blocked, pairwise,
with or without fused multiply-adds) over ``n`` terms, the standard result (Higham,
*Accuracy and Stability of Numerical Algorithms*, 2002, ch. 3) is

    fl(W a_hat + b) = W a_hat + b + delta,  |delta| <= gamma_n (|W| |a_hat| + |b|),

``gamma_n = n u / (1 - n u)``, ``u`` the unit roundoff (``2**-24`` in float32), plus
``n eta`` (``eta = 2**-126``) for underflow, even flushed to zero. ``|a_hat|`` is bounded
by IBP's (or CROWN's) bounds of the exact activations widened by the error so far. ReLU
and max pooling are exact in floating point: ``relu(z_hat) - relu(z) = D (z_hat - z)``
with ``D`` diagonal in ``[0, 1]`` (0 for a unit off for both, 1 for a unit on for both:
decided from the bounds widened by the error), and a max pool's difference is a convex
combination of its window's differences. So the margin's error is
``sum_k c^T J_k delta_k`` with ``J_k = W_L D_{L-1} ... W_{k+1} D_k``, and each
``|c^T J_k|`` is enclosed by an interval backward pass over all admissible ``D``
(``delta_0 = u |x'|``: the model rounds its input). The slack of margin ``j`` is the
smaller of that sum and ``E_y + E_j`` (``E`` the forward bound
``E' = |W| E + |delta|`` of each logit's error), times 1.25: a margin for the float64
rounding of the bound computation itself (unit roundoff ``2**-53``, on magnitudes like
these some ``2**29`` times smaller than the float32 slack; not itself proven).
BatchNorm (about 8 float32 roundings) counts 16 terms; average pooling its window
plus 2.

Not covered: convolution algorithms that are not sums of products (Winograd, FFT, which
cuDNN may choose in benchmark mode), TF32 matrix products (``precision='tf32'``
covers them), float16/bfloat16 autocast.
"""

import torch

from ._layers import Affine, ReLU

__all__ = ["PRECISIONS", "margin_slack"]

#: Unit roundoff and underflow unit of each supported model precision.
PRECISIONS = {
    "float32": (2.0**-24, 2.0**-126),
    "tf32": (2.0**-11, 2.0**-126),
    "float64": (2.0**-53, 2.0**-1022),
}
#: Margin of the slack for the float64 rounding of the bounds themselves.
SAFETY = 1.25


def _gamma(n, u):
    nu = n * u
    if nu >= 0.5:
        raise ValueError(f"a layer sums {n} terms: the rounding error bound needs n * u < "
                         f"1/2 (u = {u:g}); use a higher precision.")
    return nu / (1 - nu)


def _local(layers, input_set, precision, known):
    """Forward pass: each affine layer's own rounding bound ``delta_k``, the error bound
    ``E`` after every layer, and the exact-value intervals of every layer's output."""
    u, eta = PRECISIONS[precision]
    lo, hi = input_set.box()
    error = u * torch.maximum(lo.abs(), hi.abs())  # the model rounds x' to its precision
    size = torch.maximum(lo.abs(), hi.abs()) + error  # bounds |a_hat|, the rounded input
    deltas, states = [error], []
    for k, layer in enumerate(layers):
        if isinstance(layer, Affine):
            gamma = _gamma(layer.terms, u)
            mid, radius = layer.forward((lo + hi) / 2), layer.forward_abs((hi - lo) / 2)
            lo, hi = mid - radius, mid + radius
            delta = gamma * (layer.forward_abs(size) + layer.bias_magnitude) \
                + layer.terms * eta
            error = layer.forward_abs(error) + delta
            size = torch.maximum(lo.abs(), hi.abs()) + error
            deltas.append(delta)
            states.append(None)
            continue
        if k in known:
            lo, hi = torch.maximum(lo, known[k][0]), torch.minimum(hi, known[k][1])
        if isinstance(layer, ReLU):
            # both z and z_hat lie in [lo - E, hi + E]: on for both, off for both, or not
            on, off = lo - error >= 0, hi + error <= 0
            states.append((on, off))
            reach = (hi + error).clamp_min(0)
            lo, hi = lo.clamp_min(0), hi.clamp_min(0)
            error, size = torch.minimum(error, reach), reach
        else:  # max pooling: the same unit wins for both, or any may
            low = layer.gather(lo - error, -torch.inf)
            high = layer.gather(hi + error, -torch.inf)
            first = low.argmax(dim=-1, keepdim=True)
            rivals = high.scatter(-1, first, -torch.inf).amax(dim=-1, keepdim=True)
            dominated = (low.gather(-1, first) >= rivals).squeeze(-1)
            winner = layer.safe_index.expand(lo.shape[0], -1, -1).gather(-1, first)
            states.append((dominated, winner.squeeze(-1)))
            lo, hi = layer.forward(lo), layer.forward(hi)
            error = layer.gather(error, 0.0).amax(dim=-1)
            size = layer.gather(size, 0.0).amax(dim=-1)
    return deltas, states, error


def _sensitivity(layers, spec, deltas, states):
    """``sum_k max_D |c^T J_k| . delta_k`` for the rows ``spec`` (N, R, C)."""
    mid, rad = spec, torch.zeros_like(spec)
    total = spec.new_zeros(spec.shape[:2])
    affine = len(deltas) - 1
    for k in range(len(layers) - 1, -1, -1):
        layer, state = layers[k], states[k]
        if isinstance(layer, Affine):
            total = total + torch.einsum("nrd,nd->nr", mid.abs() + rad, deltas[affine])
            affine -= 1
            mid, rad = layer.backward(mid), layer.backward_abs(rad)
            continue
        low, high = mid - rad, mid + rad
        if isinstance(layer, ReLU):
            on, off = state[0][:, None, :], state[1][:, None, :]
            low = torch.where(on, low, torch.where(off, 0.0, low.clamp_max(0)))
            high = torch.where(on, high, torch.where(off, 0.0, high.clamp_min(0)))
        else:
            low, high = _pool_back(layer, state, low, high)
        mid, rad = (low + high) / 2, (high - low) / 2
    return total + torch.einsum("nrd,nd->nr", mid.abs() + rad, deltas[0])


def _pool_back(layer, state, low, high):
    """Interval coefficients of a max pool's inputs: the winner's, or any window unit's
    share in [0, 1] of the output's coefficient."""
    dominated, winner = state[0][:, None, :], state[1]
    n, rows, _ = low.shape
    index = layer.safe_index.reshape(1, 1, -1).expand(n, rows, -1)
    valid = layer.valid.reshape(1, 1, -1)
    out = []
    for bound, clamp in ((low, lambda v: v.clamp_max(0)), (high, lambda v: v.clamp_min(0))):
        shared = torch.where(dominated, 0.0, clamp(bound))
        spread = shared[..., None].expand(-1, -1, -1, layer.index.shape[1]).reshape(n, rows, -1)
        acc = bound.new_zeros((n, rows, layer.in_features))
        acc = acc.scatter_add(2, index, torch.where(valid, spread, 0.0))
        acc = acc.scatter_add(2, winner[:, None, :].expand(n, rows, -1),
                              torch.where(dominated, bound, 0.0))
        out.append(acc)
    return out


def margin_slack(layers, input_set, y, spec, precision="float32", known=None):
    """``(N, C)``: the amount taken off each margin bound (0 at ``j = y``).

    ``spec`` (N, C, C): the margin rows ``e_y - e_j``; ``known``: tighter bounds
    ``{k: (lo, hi)}`` of the input of the ReLU or max pool ``layers[k]``.
    """
    if precision is None:
        return spec.new_zeros(spec.shape[:2])
    deltas, states, errors = _local(layers, input_set, precision, known or {})
    forward = errors + errors.gather(1, y[:, None])
    slack = torch.minimum(forward, _sensitivity(layers, spec, deltas, states))
    return (SAFETY * slack).scatter(1, y[:, None], 0.0)
