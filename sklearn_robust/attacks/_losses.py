"""Per-sample attack losses and the one registry the attacks take them from.

Every loss takes scores of shape ``(N, C)`` and labels ``(N,)`` and returns one value per
sample, so attacks can take input gradients of ``loss.sum()`` and still compare points
one by one.

The registry has one fallback rule for losses that need more classes than the model has:
DLR needs at least 3 classes and falls back to cross-entropy; targeted DLR needs at least
4 and falls back to untargeted DLR (then, with 2 classes, to cross-entropy). Every
attack resolves its loss through :func:`resolve_loss`, which warns once per attack call
when it falls back.

References
----------
.. [1] F. Croce and M. Hein, "Reliable evaluation of adversarial robustness with an
   ensemble of diverse parameter-free attacks", ICML 2020 (DLR and targeted DLR).
.. [2] M. Andriushchenko, F. Croce, N. Flammarion and M. Hein, "Square Attack: a
   query-efficient black-box adversarial attack via random search", ECCV 2020 (margin).
"""

import torch
import torch.nn.functional as F

from ._docs import docs
from ._warnings import warn_once


@docs
def cross_entropy(logits, y):
    """Cross-entropy per sample.

    Parameters
    ----------
    %(loss_inputs)s

    %(loss_returns)s

    %(loss_example)s
    >>> from sklearn_robust.attacks import cross_entropy
    >>> cross_entropy(logits, y)
    tensor([0.1852, 3.4402])
    """
    return F.cross_entropy(logits, y, reduction="none")


@docs
def dlr(logits, y):
    """Croce & Hein's difference of logits ratio, per sample (needs >= 3 classes).

    ``-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12)`` with ``z`` sorted in
    decreasing order. Invariant to shifting and positive scaling of the logits, which
    defeats gradient masking by saturated softmax outputs.

    Parameters
    ----------
    %(loss_inputs)s

    Returns
    -------
    torch.Tensor of shape (N,)
        Positive exactly for misclassified points.

    %(croce_hein_refs)s

    %(loss_example)s
    >>> from sklearn_robust.attacks import dlr
    >>> dlr(logits, y) > 0  # positive where misclassified
    tensor([False,  True])
    >>> dlr(3 * logits - 1, y)  # the same under positive scaling and shifts
    tensor([-0.6667,  1.5000])
    """
    _need_classes("dlr", logits)
    sorted_logits, _ = logits.sort(dim=1, descending=True)
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    top_is_y = logits.argmax(dim=1) == y
    z_other = torch.where(top_is_y, sorted_logits[:, 1], sorted_logits[:, 0])
    scale = sorted_logits[:, 0] - sorted_logits[:, 2] + 1e-12
    return -(z_y - z_other) / scale


@docs
def dlr_targeted(logits, y, target):
    """Targeted DLR per sample (needs >= 4 classes): pushes ``z_target`` above ``z_y``.

    ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)`` with ``z`` sorted in
    decreasing order.

    Parameters
    ----------
    %(loss_inputs)s
    target : torch.Tensor of shape (N,)
        Target class indices.

    %(loss_returns)s

    %(croce_hein_refs)s

    %(loss_example)s
    >>> from sklearn_robust.attacks import dlr_targeted
    >>> dlr_targeted(logits, y, target=torch.tensor([1, 1]))
    tensor([-0.5714,  1.2000])
    """
    _need_classes("dlr-targeted", logits)
    sorted_logits, _ = logits.sort(dim=1, descending=True)
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    z_t = logits.gather(1, target[:, None]).squeeze(1)
    scale = sorted_logits[:, 0] - 0.5 * (sorted_logits[:, 2] + sorted_logits[:, 3]) + 1e-12
    return -(z_y - z_t) / scale


@docs
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

    %(loss_returns)s

    %(square_refs)s

    %(loss_example)s
    >>> from sklearn_robust.attacks import margin
    >>> margin(logits, y), margin(logits.softmax(dim=1), y) < 0
    (tensor([ 2., -3.]), tensor([False,  True]))
    """
    z_y = scores.gather(1, y[:, None]).squeeze(1)
    others = scores.scatter(1, y[:, None], -float("inf"))
    return z_y - others.amax(dim=1)


#: The attack losses by name. ``'dlr-targeted'`` takes a third argument, the targets.
LOSSES = {"ce": cross_entropy, "dlr": dlr, "dlr-targeted": dlr_targeted}
#: The fewest classes each loss is defined for, and what it falls back to below that.
MIN_CLASSES = {"ce": 2, "dlr": 3, "dlr-targeted": 4}
FALLBACK = {"dlr": "ce", "dlr-targeted": "dlr"}
_FALLBACK_LABELS = {"ce": "cross-entropy", "dlr": "untargeted DLR"}
_LABELS = {"ce": "cross-entropy", "dlr": "DLR", "dlr-targeted": "targeted DLR"}


def _need_classes(name, logits):
    if logits.shape[1] < MIN_CLASSES[name]:
        what = "the targeted DLR loss" if name == "dlr-targeted" else "the DLR loss"
        raise ValueError(f"{what} needs at least {MIN_CLASSES[name]} classes.")


def resolve_loss(name, n_classes, caller="attack"):
    """The loss an attack uses for ``name`` on a model with ``n_classes`` classes.

    The one fallback rule: a loss defined for fewer classes replaces one the model has
    too few classes for (``'dlr-targeted'`` -> ``'dlr'`` below 4 classes, ``'dlr'`` ->
    ``'ce'`` below 3). Falling back warns (``UserWarning``) once per attack call.

    Parameters
    ----------
    name : {'ce', 'dlr', 'dlr-targeted'}
        The loss asked for.
    n_classes : int
        Classes of the model.
    caller : str, default='attack'
        Who asks, named in the warning.

    Returns
    -------
    str
        A key of :data:`LOSSES`.

    Examples
    --------
    >>> import warnings
    >>> from sklearn_robust.attacks import resolve_loss
    >>> resolve_loss("dlr-targeted", 10)
    'dlr-targeted'
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     resolve_loss("dlr-targeted", 3, "APGD-T")
    'dlr'
    >>> print(caught[0].message)
    APGD-T: targeted DLR needs at least 4 classes, the model has 3: falling back to \
untargeted DLR.
    """
    resolved = name
    while n_classes < MIN_CLASSES[resolved]:
        resolved = FALLBACK[resolved]
    if resolved != name:
        warn_once(
            f"{caller}: {_LABELS[name]} needs at least {MIN_CLASSES[name]} classes, the "
            f"model has {n_classes}: falling back to {_FALLBACK_LABELS[resolved]}.",
            stacklevel=3,
        )
    return resolved


def get_loss(loss, n_classes, caller="attack"):
    """The per-sample function for ``loss`` on ``n_classes`` classes (see :func:`resolve_loss`).

    A callable ``loss(logits, y) -> (N,)`` is returned unchanged.

    Examples
    --------
    >>> from sklearn_robust.attacks._losses import get_loss
    >>> get_loss("ce", 10).__name__
    'cross_entropy'
    """
    if callable(loss):
        return loss
    return LOSSES[resolve_loss(loss, n_classes, caller)]
