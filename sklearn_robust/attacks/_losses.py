"""Per-sample attack losses: cross-entropy, (targeted) DLR and the margin.

Every loss takes scores of shape ``(N, C)`` and labels ``(N,)`` and returns one value per
sample, so attacks can take input gradients of ``loss.sum()`` and still compare points
one by one.

References
----------
.. [1] F. Croce and M. Hein, "Reliable evaluation of adversarial robustness with an
   ensemble of diverse parameter-free attacks", ICML 2020 (DLR and targeted DLR).
.. [2] M. Andriushchenko, F. Croce, N. Flammarion and M. Hein, "Square Attack: a
   query-efficient black-box adversarial attack via random search", ECCV 2020 (margin).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(logits, y):
    """Cross-entropy per sample.

    Parameters
    ----------
    logits : torch.Tensor of shape (N, C)
        Unnormalised class scores.
    y : torch.Tensor of shape (N,)
        Class indices.

    Returns
    -------
    torch.Tensor of shape (N,)

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust.attacks import cross_entropy
    >>> cross_entropy(torch.zeros(2, 4), torch.tensor([0, 3]))
    tensor([1.3863, 1.3863])
    """
    return F.cross_entropy(logits, y, reduction="none")


def dlr(logits, y):
    """Croce & Hein's difference of logits ratio, per sample (needs >= 3 classes).

    ``-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12)`` with ``z`` sorted in
    decreasing order. Invariant to shifting and positive scaling of the logits, which
    defeats gradient masking by saturated softmax outputs.

    Parameters
    ----------
    logits : torch.Tensor of shape (N, C), C >= 3
        Unnormalised class scores.
    y : torch.Tensor of shape (N,)
        Class indices.

    Returns
    -------
    torch.Tensor of shape (N,)
        Positive exactly for misclassified points.

    References
    ----------
    .. [1] F. Croce and M. Hein, "Reliable evaluation of adversarial robustness with an
       ensemble of diverse parameter-free attacks", ICML 2020.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust.attacks import dlr
    >>> dlr(torch.tensor([[3.0, 1.0, 0.0]]), torch.tensor([0]))
    tensor([-0.6667])
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
    """Targeted DLR per sample (needs >= 4 classes): pushes ``z_target`` above ``z_y``.

    ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)`` with ``z`` sorted in
    decreasing order.

    Parameters
    ----------
    logits : torch.Tensor of shape (N, C), C >= 4
        Unnormalised class scores.
    y : torch.Tensor of shape (N,)
        True class indices.
    target : torch.Tensor of shape (N,)
        Target class indices.

    Returns
    -------
    torch.Tensor of shape (N,)

    References
    ----------
    .. [1] F. Croce and M. Hein, "Reliable evaluation of adversarial robustness with an
       ensemble of diverse parameter-free attacks", ICML 2020.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust.attacks import dlr_targeted
    >>> logits = torch.tensor([[4.0, 2.0, 1.0, 0.0]])
    >>> dlr_targeted(logits, torch.tensor([0]), torch.tensor([1]))
    tensor([-0.5714])
    """
    if logits.shape[1] < 4:
        raise ValueError("the targeted DLR loss needs at least 4 classes.")
    sorted_logits, _ = logits.sort(dim=1, descending=True)
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    z_t = logits.gather(1, target[:, None]).squeeze(1)
    scale = sorted_logits[:, 0] - 0.5 * (sorted_logits[:, 2] + sorted_logits[:, 3]) + 1e-12
    return -(z_y - z_t) / scale


def margin(scores, y):
    """Margin ``s_y - max_{i != y} s_i`` per sample, on logits or probabilities.

    Negative when another class scores higher than ``y``. Square Attack minimises it
    from forward passes alone.

    Parameters
    ----------
    scores : torch.Tensor of shape (N, C)
        Logits or probabilities.
    y : torch.Tensor of shape (N,)
        Class indices.

    Returns
    -------
    torch.Tensor of shape (N,)

    References
    ----------
    .. [1] M. Andriushchenko, F. Croce, N. Flammarion and M. Hein, "Square Attack: a
       query-efficient black-box adversarial attack via random search", ECCV 2020.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust.attacks import margin
    >>> margin(torch.tensor([[2.0, 1.0, 0.5], [0.0, 3.0, 1.0]]), torch.tensor([0, 0]))
    tensor([ 1., -3.])
    """
    z_y = scores.gather(1, y[:, None]).squeeze(1)
    others = scores.scatter(1, y[:, None], -float("inf"))
    return z_y - others.amax(dim=1)


def _dlr_or_ce(logits, y):
    # DLR is undefined with fewer than 3 classes: fall back to cross-entropy.
    return dlr(logits, y) if logits.shape[1] >= 3 else cross_entropy(logits, y)


LOSSES = {"ce": cross_entropy, "dlr": _dlr_or_ce}


def get_loss(name):
    """The per-sample loss called ``name`` (``'ce'`` or ``'dlr'``), or ``name`` if callable.

    ``'dlr'`` falls back to cross-entropy on fewer than 3 classes.

    Parameters
    ----------
    name : {'ce', 'dlr'} or callable
        Loss name, or a function ``loss(logits, y) -> (N,)`` returned unchanged.

    Returns
    -------
    callable

    Examples
    --------
    >>> from sklearn_robust.attacks._losses import get_loss
    >>> get_loss("ce").__name__
    'cross_entropy'
    """
    if callable(name):
        return name
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {name!r}.") from None
