"""CROWN (Zhang et al. 2018): linear bounds propagated backwards through the network.

A linear objective ``a . v + c`` of the input ``v`` of layer ``k`` is rewritten layer by
layer towards the input: an affine map exactly (``a W``, ``c + a . b``); a ReLU with
bounds ``l, u`` of its input by a linear relaxation chosen per sign of ``a``'s entries
(upper line ``u (z - l) / (u - l)`` and lower line ``alpha z`` for an unstable unit,
``alpha = 1`` if ``u > -l`` else 0, or optimised: alpha-CROWN; exact for stable units);
a max pool by ``max_i z_i >= z_{i*}`` (``i*`` the largest lower bound) below and, above,
``max_i z_i <= L + sum_i (u_i - L)^+ (z_i - l_i) / (u_i - l_i)`` (``L = max_i l_i``; exact
when ``i*`` dominates the window) or the constant ``max_i u_i``, whichever is lower at
the box's centre. The result, a linear function of the network's input, is minimised
over the input set in closed form (:meth:`InputSet.minimum`).

Pre-activation bounds of every ReLU and max pool come either from CROWN itself, layer by
layer ("full CROWN"), or from IBP ("CROWN-IBP"); either way they are intersected with
IBP's, so CROWN is never looser than IBP there.
"""

import torch

from ._layers import Affine, ReLU

__all__ = ["backward", "relaxations", "spec_bounds"]

#: Elements of the largest (N, rows, width) tensor one backward pass holds: 8 MiB of
#: float64, under glibc's mmap threshold, so temporaries are reused rather than mapped
#: and faulted in afresh (64 MiB chunks spent half of full CROWN's time in the kernel).
BUDGET = 2**20
#: Stands for -inf on a max pool's padding where arithmetic must stay finite.
_FLOOR = -1e300


def _floor(dtype):
    """:data:`_FLOOR`, or the most negative finite value of a narrower ``dtype``."""
    return max(_FLOOR, torch.finfo(dtype).min)


class ReLURelaxation:
    """The linear bounds of one ReLU given the bounds ``lo, hi`` (N, d) of its input."""

    def __init__(self, lo, hi):
        self.unstable = (lo < 0) & (hi > 0)
        active = (lo >= 0).to(lo.dtype)
        # 1 where the slope is not used: a finite quotient keeps gradients finite there
        width = torch.where(self.unstable, hi - lo, 1.0)
        self.upper_slope = torch.where(self.unstable, hi / width, active)
        self.upper_offset = torch.where(self.unstable, -self.upper_slope * lo, 0.0)
        self.lower_slope = torch.where(self.unstable, (hi > -lo).to(lo.dtype), active)

    def backward(self, a, const, alpha=None):
        lower = self.lower_slope[:, None, :]
        if alpha is not None:
            lower = torch.where(self.unstable[:, None, :], alpha, lower)
        out = a * lower
        # pos * lower + neg * upper (pos = a - neg): the slopes differ only on unstable
        # units, so the sign-dependent part runs over the batch's unstable columns only
        cols = self.unstable.any(dim=0).nonzero().squeeze(1)
        if cols.numel() == 0:
            return out, const
        neg = a[:, :, cols].clamp_max(0)
        gap = self.upper_slope[:, None, cols] - lower[:, :, cols]
        out[:, :, cols] += neg * gap
        const = const + torch.bmm(neg, self.upper_offset[:, cols, None]).squeeze(-1)
        return out, const


class MaxPoolRelaxation:
    """The linear bounds of one max pool given the bounds ``lo, hi`` of its input."""

    def __init__(self, layer, lo, hi):
        self.layer = layer
        floor = _floor(lo.dtype)
        low, high = layer.gather(lo, floor), layer.gather(hi, floor)
        top = low.amax(dim=-1, keepdim=True)  # L: the largest lower bound of the window
        choice = low.argmax(dim=-1, keepdim=True)
        self.chosen = layer.safe_index.expand(lo.shape[0], -1, -1).gather(
            2, choice).squeeze(-1)  # (N, out): the flat input index of z_{i*}
        over = (high > top) & layer.valid
        # over implies high > low; 1 elsewhere keeps the unused quotient (and its
        # gradient) finite
        slope = torch.where(over, (high - top) / torch.where(over, high - low, 1.0), 0.0)
        offset = top.squeeze(-1) - (slope * torch.where(over, low, 0.0)).sum(-1)
        ceiling = high.amax(dim=-1)
        linear = (high - top).clamp_min(0).sum(-1) / 2 <= ceiling - top.squeeze(-1)
        self.slope = torch.where(linear[..., None], slope, 0.0)  # (N, out, k)
        self.offset = torch.where(linear, offset, ceiling)  # (N, out)

    def backward(self, a, const, alpha=None):
        n, rows, _ = a.shape
        pos, neg = a.clamp_min(0), a.clamp_max(0)
        out = a.new_zeros((n, rows, self.layer.in_features))
        out.scatter_add_(2, self.chosen[:, None, :].expand(n, rows, -1), pos)
        values = (neg[..., None] * self.slope[:, None]).reshape(n, rows, -1)
        index = self.layer.safe_index.reshape(1, 1, -1).expand(n, rows, -1)
        out.scatter_add_(2, index, values)
        return out, const + torch.einsum("nrd,nd->nr", neg, self.offset)


def relaxation(layer, lo, hi):
    """The relaxation of a ReLU or max-pool ``layer`` with input bounds ``lo, hi``."""
    if isinstance(layer, ReLU):
        return ReLURelaxation(lo, hi)
    return MaxPoolRelaxation(layer, lo, hi)


def backward(layers, stop, a, const, relaxed, alphas=None):
    """Rewrite ``a . v_stop + const`` (``v_stop``: the input of ``layers[stop]``) as a
    linear function of the network's input: returns ``(a', const')``, with
    ``a . v_stop + const >= a' . x + const'`` (``a`` is (N, R, width))."""
    for k in range(stop - 1, -1, -1):
        layer = layers[k]
        if isinstance(layer, Affine):
            const = const + a @ layer.bias
            a = layer.backward(a)
        else:
            alpha = None if alphas is None else alphas.get(k)
            a, const = relaxed[k].backward(a, const, alpha)
    return a, const


def spec_bounds(layers, stop, spec, offset, relaxed, input_set, *, upper=True):
    """Lower (and upper) bounds of ``spec . v_stop + offset`` over the input set.

    ``spec``: ``(N, R, width)`` (or ``(R, width)``, shared by the batch), ``offset``
    ``(N, R)`` (or ``(R,)``); rows are processed in chunks so no tensor exceeds
    :data:`BUDGET` elements. Returns ``(lower, upper)``, ``(N, R)`` each (``upper`` is
    ``None`` unless asked).
    """
    n = input_set.x.shape[0]
    if spec.dim() == 2:
        spec, offset = spec.expand(n, -1, -1), offset.expand(n, -1)
    widest = _widest(layers, stop, spec.shape[2])
    step = max(1, BUDGET // (n * widest * (2 if upper else 1)))
    lowers, uppers = [], []
    for start in range(0, spec.shape[1], step):
        a, const = spec[:, start:start + step], offset[:, start:start + step]
        if upper:
            a, const = torch.cat([a, -a], dim=1), torch.cat([const, -const], dim=1)
        a, c = backward(layers, stop, a, const, relaxed)
        bound = input_set.minimum(a, c)
        if upper:
            half = bound.shape[1] // 2
            lowers.append(bound[:, :half])
            uppers.append(-bound[:, half:])
        else:
            lowers.append(bound)
    lower = torch.cat(lowers, dim=1)
    return lower, (torch.cat(uppers, dim=1) if upper else None)


def _widest(layers, stop, width):
    """The widest row a backward pass from ``layers[stop]`` (rows of ``width``) holds."""
    return max([width] + [0 if isinstance(layer, ReLU)
                          else max(layer.in_features, layer.out_features)
                          for layer in layers[:stop]])


def relaxations(layers, input_set, ibp_inputs, *, tighten=True, repropagate=True):
    """Bounds and relaxations of every ReLU and max pool's input, in order.

    ``ibp_inputs``: IBP's ``(lo, hi)`` of each such input, in order, intersected (with
    ``repropagate``) with IBP run again from the bounds before. With ``tighten``, each
    is intersected with CROWN's bounds given the relaxations before it (full CROWN);
    else IBP's are used (CROWN-IBP; IBP run again then tightens nothing that rounding
    would not, so certified training skips it). Returns ``(bounds, relaxed)``, dicts by
    layer index.
    """
    bounds, relaxed, count, box = {}, {}, 0, None
    for k, layer in enumerate(layers):
        if isinstance(layer, Affine):
            if box is not None:  # IBP again from the tightened bounds (fewer unstable)
                mid = layer.forward((box[0] + box[1]) / 2)
                radius = layer.forward_abs((box[1] - box[0]) / 2)
                box = (mid - radius, mid + radius)
            continue
        lo, hi = ibp_inputs[count]
        count += 1
        if box is not None:
            lo, hi = torch.maximum(lo, box[0]), torch.minimum(hi, box[1])
        if tighten and k > 0:
            after = layers[k + 1] if k + 1 < len(layers) else None
            mask = _rows_to_tighten(layer, lo, hi, isinstance(after, ReLU))
            lo, hi = tightened(layers, k, mask, lo, hi, relaxed, input_set)
        bounds[k] = (lo, hi)
        relaxed[k] = relaxation(layer, lo, hi)
        if repropagate:
            box = ((lo.clamp_min(0), hi.clamp_min(0)) if isinstance(layer, ReLU)
                   else (layer.forward(lo), layer.forward(hi)))
    return bounds, relaxed


def tightened(layers, k, mask, lo, hi, relaxed, input_set):
    """``lo, hi`` (bounds of the input of ``layers[k]``, ``(N, width)``) intersected with
    CROWN's bounds where ``mask`` (``(N, width)`` bool) is set: each point bounds only
    its own units, padded to the longest list."""
    counts = mask.sum(dim=1)
    rows = int(counts.max()) if counts.numel() else 0
    if rows == 0:
        return lo, hi
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)[:, :rows]
    index = torch.where(torch.arange(rows, device=lo.device) < counts[:, None], order,
                        order[:, :1])  # (N, rows): the units, the first one repeated
    previous, n = layers[k - 1], lo.shape[0]
    step = max(1, BUDGET // (2 * n * _widest(layers, k, lo.shape[1])))
    lowers, uppers = [], []
    for start in range(0, rows, step):  # the previous layer's rows, a chunk at a time
        part = index[:, start:start + step]
        if isinstance(previous, Affine):
            spec, offset, stop = _rows_of(previous, part), previous.bias[part], k - 1
        else:
            spec = torch.nn.functional.one_hot(part, lo.shape[1]).to(lo.dtype)
            offset, stop = torch.zeros(part.shape, dtype=lo.dtype, device=lo.device), k
        lower, upper = spec_bounds(layers, stop, spec, offset, relaxed, input_set)
        lowers.append(lower)
        uppers.append(upper)
    lo = lo.scatter_reduce(1, index, torch.cat(lowers, dim=1), "amax")
    hi = hi.scatter_reduce(1, index, torch.cat(uppers, dim=1), "amin")
    return lo, hi


def _rows_of(layer, index):
    """Rows ``index`` (``(N, R)``) of an affine layer's matrix, ``(N, R, in)``; a native
    convolution gives them by its transpose, without its dense matrix."""
    if layer.native and layer._weight is None:
        one_hot = torch.nn.functional.one_hot(index, layer.out_features)
        return layer.backward(one_hot.to(layer.bias.dtype))
    return layer.weight[index]


def _rows_to_tighten(layer, lo, hi, relu_after=False):
    """``(N, width)`` bool: the units whose bounds matter, per point. Unstable ReLU
    inputs; for a max pool, the units that may win a window no unit dominates (and,
    before a ReLU, whose maximum may be > 0)."""
    if isinstance(layer, ReLU):
        return (lo < 0) & (hi > 0)
    low, high = layer.gather(lo, -torch.inf), layer.gather(hi, -torch.inf)
    top = low.amax(dim=-1, keepdim=True)
    contenders = (high > top) & layer.valid  # could be the maximum, above the best floor
    first = low.argmax(dim=-1, keepdim=True)
    open_windows = contenders.sum(-1) - contenders.gather(-1, first).squeeze(-1).long() > 0
    if relu_after:
        open_windows &= high.amax(dim=-1) > 0
    chosen = open_windows[..., None] & (contenders | (low == top)) & layer.valid
    index = layer.safe_index.reshape(1, -1).expand(lo.shape[0], -1)
    hits = torch.zeros(lo.shape, dtype=torch.long, device=lo.device)
    return hits.scatter_add(1, index, chosen.reshape(lo.shape[0], -1).long()) > 0


def margin_spec(layers, y, n_out, classes=None):
    """``(stop, a (N, R, width), const (N, R))``: the margins ``z_y - z_j`` as an
    objective on the input of the last layer (folded into it when it is affine with a
    matrix; a matrix-free one, such as a live convolution, is passed backwards).

    ``classes``: ``(N, R)`` long, the classes ``j`` of the rows; ``None``: all ``C``,
    in order (``R = C``).
    """
    last = layers[-1]
    if isinstance(last, Affine) and not getattr(last, "matrix_free", False):
        weight, bias = ((last.weight[None], last.bias[None]) if classes is None
                        else (last.weight[classes], last.bias[classes]))
        return len(layers) - 1, last.weight[y][:, None, :] - weight, \
            last.bias[y][:, None] - bias
    dtype = next(layer.bias.dtype for layer in layers if isinstance(layer, Affine))
    eye = torch.eye(n_out, dtype=dtype, device=y.device)
    a = eye[y][:, None, :] - (eye[None] if classes is None else eye[classes])
    return len(layers), a, torch.zeros(a.shape[:2], dtype=a.dtype, device=a.device)
