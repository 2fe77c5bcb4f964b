"""Gradient regularisation by finite differences (GR, "TULIP", Finlay & Oberman 2021)."""

import torch
import torch.nn.functional as F

from ..threat import l2_normalise
from ..utils import NON_NEGATIVE, POSITIVE, StrOptions
from ._base import Objective, mask_replay

#: How the squared finite difference is weighted against the cross-entropy.
WEIGHTINGS = ("mean", "yang2020")


class GradientRegularization(Objective):
    """``mean_i [CE_i(x) + lam * ((CE_i(x + h d_i) - CE_i(x)) / h)^2]``: no attack.

    ``CE_i(x)`` is sample ``i``'s cross-entropy and ``d_i = g_i / ||g_i||_2`` its input
    gradient normalised in l_2 (``d_i = 0`` where ``g_i = 0``), as in the reference code
    of Finlay & Oberman and of Yang et al. 2020. The finite difference estimates the
    directional derivative ``g . d = ||g||_2``, whose square is penalised. The direction is
    l_2 whatever threat a model is later evaluated under: a sign direction with ``h = 1``
    would move every feature by 1, far outside any ball of interest.

    ``weighting`` sets the scale of ``lam``:

    - ``'mean'`` (default): the loss above, means over the batch;
    - ``'yang2020'``: the weighting of the code behind Yang et al.'s table, which adds
      ``lam * sum_i fd_i^2 / 2`` to a summed cross-entropy whose gradient it counts twice
      (once in the finite-difference pass, once in the final backward). Its gradient is
      ``2 B`` times that of ``mean CE + (lam / 4) mean fd^2``, which is what this option
      computes: the same training direction (Adam ignores the constant factor), and a loss
      still on the scale of a mean. A Yang ``lam`` is therefore 4 times a ``'mean'`` one.

    Implementation choices:

    - the input gradient is taken with ``torch.autograd.grad(..., create_graph=False)``
      from the same (train-mode) forward pass as the loss, and ``d`` is detached: the
      finite difference replaces double back-propagation, which is the point of the
      method. Parameter gradients flow through ``CE(x + h d)`` and ``CE(x)`` only;
    - ``x + h d`` is neither projected onto a ball nor clamped to input bounds: it is a
      finite-difference probe, not an adversarial example, so the threat model is not used
      (training is not adversarial; the estimator has no ``threat_model_``);
    - both forward passes replay the same dropout masks.

    Parameters
    ----------
    lam : float, default=0.25
        Weight of the squared finite difference. The default is Yang et al.'s
        ``lambda = 1`` expressed in the ``'mean'`` weighting.
    h : float, default=1.0
        Finite-difference step (> 0), in input units along the unit-l_2 direction.
    weighting : {'mean', 'yang2020'}, default='mean'
        Scale of ``lam`` (see above).

    References
    ----------
    C. Finlay, A. M. Oberman. "Scaleable input gradient regularization for adversarial
    robustness", Machine Learning with Applications, 2021 (arXiv:1905.11468).

    Y.-Y. Yang et al. "A Closer Look at Accuracy vs. Robustness", NeurIPS 2020.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust.objectives import GradientRegularization
    >>> model = torch.nn.Linear(3, 2)
    >>> x, y = torch.rand(5, 3), torch.tensor([0, 1, 0, 1, 1])
    >>> mean, _ = GradientRegularization(lam=0.25)(model, x, y, None)
    >>> yang, _ = GradientRegularization(lam=1.0, weighting="yang2020")(model, x, y, None)
    >>> bool(torch.isclose(mean, yang))
    True
    """

    adversarial = False
    _parameter_constraints = {
        "lam": NON_NEGATIVE,
        "h": POSITIVE,
        "weighting": [StrOptions(set(WEIGHTINGS))],
    }

    def __init__(self, lam=0.25, h=1.0, weighting="mean"):
        self._set_params(lam=lam, h=h, weighting=weighting)

    criterion_term = ("the mean cross-entropy (the finite-difference penalty keeps the "
                      "plain per-sample cross-entropy)")

    def __call__(self, module, x, y, threat=None, criterion=None):
        x = x.detach().requires_grad_(True)
        replay = mask_replay(x)
        with replay():
            logits = module(x)
        ce = F.cross_entropy(logits, y, reduction="none")
        (grad,) = torch.autograd.grad(ce.sum(), x, retain_graph=True, create_graph=False)
        probe = (x + self.h * l2_normalise(grad)).detach()
        # the finite difference must compare the network under the same dropout masks
        with replay():
            ce_probe = F.cross_entropy(module(probe), y, reduction="none")
        finite_difference = (ce_probe - ce) / self.h
        lam = self.lam / 4.0 if self.weighting == "yang2020" else self.lam
        natural = ce.mean() if criterion is None else criterion(logits, y)
        loss = natural + lam * finite_difference.pow(2).mean()
        return loss, logits
