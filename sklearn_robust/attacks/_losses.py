"""Per-sample attack losses on logits: cross-entropy and (targeted) DLR."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(logits, y):
    """Cross-entropy per sample."""
    return F.cross_entropy(logits, y, reduction="none")


def dlr(logits, y):
    """Croce & Hein's difference of logits ratio, per sample (needs >= 3 classes).

    ``-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12)`` with ``z`` sorted descending.
    Invariant to shifting and scaling the logits, which defeats some gradient masking.
    """
    if logits.shape[1] < 3:
        raise ValueError("the DLR loss needs at least 3 classes.")
    sorted_logits, _ = logits.sort(dim=1, descending=True)
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    top_is_y = logits.argmax(dim=1) == y
    z_other = torch.where(top_is_y, sorted_logits[:, 1], sorted_logits[:, 0])
    scale = sorted_logits[:, 0] - sorted_logits[:, 2] + 1e-12
    return -(z_y - z_other) / scale


def dlr_targeted(logits, y, target):
    """Targeted DLR per sample (needs >= 4 classes): pushes ``z_target`` above ``z_y``."""
    if logits.shape[1] < 4:
        raise ValueError("the targeted DLR loss needs at least 4 classes.")
    sorted_logits, _ = logits.sort(dim=1, descending=True)
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    z_t = logits.gather(1, target[:, None]).squeeze(1)
    scale = sorted_logits[:, 0] - 0.5 * (sorted_logits[:, 2] + sorted_logits[:, 3]) + 1e-12
    return -(z_y - z_t) / scale


def _dlr_or_ce(logits, y):
    # DLR is undefined with fewer than 3 classes: fall back to cross-entropy.
    return dlr(logits, y) if logits.shape[1] >= 3 else cross_entropy(logits, y)


LOSSES = {"ce": cross_entropy, "dlr": _dlr_or_ce}


def get_loss(name):
    """The per-sample loss called ``name`` (``'ce'`` or ``'dlr'``)."""
    if callable(name):
        return name
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {name!r}.") from None
