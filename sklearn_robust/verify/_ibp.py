"""Interval bound propagation (Gowal et al. 2018) on the canonical layers.

Consecutive affine maps are multiplied into one first (tighter boxes, same function),
except matrix-free ones (certified training's live convolutions), which stay apart.
The first affine map takes the exact ball (l_inf: ``|W| eps``; l_2: ``eps ||w_i||_2``;
l_1: ``eps ||w_i||_inf``; with a box, the tighter of the ball bound and the clipped-box
bound, per unit). Every later affine map takes a box: centre ``W c + b``, radius
``|W| r``; ReLU and max pooling map the two ends. The margins ``m_j = z_y - z_j`` come
from the last affine map's rows ``w_y - w_j`` directly ("elision").
"""

import torch

from ._layers import Affine, ReLU, merged

__all__ = ["interval_bounds", "interval_margins"]


def interval_bounds(layers, input_set):
    """IBP through ``merged(layers)`` (matrix-free layers are never merged).

    Returns ``(chain, outputs)``: the merged chain and the ``(lo, hi)`` of each of its
    layers' outputs, ``(N, width)`` each, in the layers' dtype.
    """
    chain = merged_dense(layers)
    outputs, lo, hi = [], *input_set.box()
    for k, layer in enumerate(chain):
        if isinstance(layer, Affine):
            if k == 0:
                lo, hi = input_set.affine_bounds(layer)
            else:
                mid, radius = layer.forward((lo + hi) / 2), layer.forward_abs((hi - lo) / 2)
                lo, hi = mid - radius, mid + radius
        elif isinstance(layer, ReLU):
            lo, hi = lo.clamp_min(0), hi.clamp_min(0)
        else:
            lo, hi = layer.forward(lo), layer.forward(hi)
        outputs.append((lo, hi))
    return chain, outputs


def merged_dense(layers):
    """:func:`merged`, leaving every matrix-free affine layer (``matrix_free = True``: a
    live convolution, applied natively) on its own: its dense product would be huge."""
    if not any(getattr(layer, "matrix_free", False) for layer in layers):
        return merged(layers)
    out, run = [], []
    for layer in layers:
        if getattr(layer, "matrix_free", False):
            out += merged(run) + [layer]
            run = []
        else:
            run.append(layer)
    return out + merged(run)


def nonlinear_inputs(chain, outputs, input_set):
    """``(lo, hi)`` of the input of every ReLU and max pool of ``chain``, in order."""
    bounds = []
    for k, layer in enumerate(chain):
        if not isinstance(layer, Affine):
            bounds.append(outputs[k - 1] if k else input_set.box())
    return bounds


def interval_margins(layers, input_set, y, *, chain=None, outputs=None):
    """``(N, C)`` lower bounds of ``z_y - z_j`` by IBP with elision; ``+inf`` at ``j = y``."""
    if chain is None:
        chain, outputs = interval_bounds(layers, input_set)
    last = chain[-1]
    if isinstance(last, Affine):
        if getattr(last, "matrix_free", False):  # the rows e_y - e_j taken through W^T
            eye = torch.eye(last.out_features, dtype=last.bias.dtype, device=y.device)
            spec = eye[y][:, None, :] - eye[None]
            rows, const = last.backward(spec), spec @ last.bias
        else:
            rows = last.weight[y][:, None, :] - last.weight[None]  # (N, C, d)
            const = last.bias[y][:, None] - last.bias[None]
        if len(chain) == 1:
            lower = input_set.minimum(rows, const)
        else:
            lo, hi = outputs[-2]
            centre, radius = (lo + hi) / 2, (hi - lo) / 2
            lower = (torch.einsum("ncd,nd->nc", rows, centre)
                     - torch.einsum("ncd,nd->nc", rows.abs(), radius) + const)
    else:
        lo, hi = outputs[-1]
        lower = lo.gather(1, y[:, None]) - hi
    return lower.scatter(1, y[:, None], torch.inf)
