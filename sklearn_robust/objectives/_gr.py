"""Gradient regularisation by finite differences (GR, "TULIP", Finlay & Oberman 2021)."""

import math
import numbers

import torch
import torch.nn.functional as F

from ._base import Objective, check_non_negative, mask_replay


def check_positive(value, name):
    """``float(value)`` if it is a finite real number > 0, else ``ValueError`` naming it."""
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return float(value)


def _l2_direction(grad):
    norms = grad.flatten(1).norm(p=2, dim=1).clamp_min(1e-12)
    return grad / norms.view(-1, *([1] * (grad.dim() - 1)))


class GradientRegularization(Objective):
    """``mean_i [CE_i(x) + lam * ((CE_i(x + h d_i) - CE_i(x)) / h)^2]``: no attack.

    ``CE_i(x)`` is sample ``i``'s cross-entropy and ``d_i`` its input gradient normalised
    in the threat model's norm: ``d = threat.direction(grad_x CE)``, that is ``g / ||g||_2``
    for ``norm='l2'`` and ``sign(g)`` for ``norm='linf'``. The finite difference is then an
    estimate of the directional derivative ``grad . d``, the dual norm of the input
    gradient (``||g||_2`` or ``||g||_1``), whose square is penalised.

    Implementation choices:

    - the input gradient is taken with ``torch.autograd.grad(..., create_graph=False)``
      from the same (train-mode) forward pass as the loss, and ``d`` is detached: the
      finite difference replaces double back-propagation, which is the point of the
      method. Parameter gradients flow through ``CE(x + h d)`` and ``CE(x)`` only;
    - ``x + h d`` is neither projected onto an ``eps``-ball nor clamped to the input
      bounds: it is a finite-difference probe, not an adversarial example. So the threat
      model contributes its ``norm`` only (``eps``, ``steps``, ``step_size`` and ``bounds``
      are not used); ``threat=None`` means the l2 direction;
    - with ``norm='l2'`` and ``h = 1`` this is the reference recipe (Finlay & Oberman's code,
      also used by Yang et al. 2020 for MNIST and CIFAR-10).

    Parameters
    ----------
    lam : float, default=0.1
        Weight of the squared finite difference (Yang et al. use 1, 0.1 and 0.01).
    h : float, default=1.0
        Finite-difference step (> 0), in input units along the unit-norm direction.

    References
    ----------
    C. Finlay, A. M. Oberman. "Scaleable input gradient regularization for adversarial
    robustness", Machine Learning with Applications, 2021 (arXiv:1905.11468).

    Y.-Y. Yang et al. "A Closer Look at Accuracy vs. Robustness", NeurIPS 2020.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.objectives import GradientRegularization
    >>> model = torch.nn.Linear(3, 2)
    >>> x, y = torch.rand(5, 3), torch.tensor([0, 1, 0, 1, 1])
    >>> loss, _ = GradientRegularization(lam=0.1)(model, x, y, ThreatModel(eps=0.1))
    >>> bool(loss >= 0)
    True
    """

    def __init__(self, lam=0.1, h=1.0):
        self.lam = check_non_negative(lam, "lam")
        self.h = check_positive(h, "h")

    def __call__(self, module, x, y, threat):
        x = x.detach().requires_grad_(True)
        replay = mask_replay(x)
        with replay():
            logits = module(x)
        ce = F.cross_entropy(logits, y, reduction="none")
        (grad,) = torch.autograd.grad(ce.sum(), x, retain_graph=True, create_graph=False)
        direction = _l2_direction(grad) if threat is None else threat.direction(grad)
        probe = (x + self.h * direction).detach()
        # the finite difference must compare the network under the same dropout masks
        with replay():
            ce_probe = F.cross_entropy(module(probe), y, reduction="none")
        finite_difference = (ce_probe - ce) / self.h
        loss = ce.mean() + self.lam * finite_difference.pow(2).mean()
        return loss, logits
