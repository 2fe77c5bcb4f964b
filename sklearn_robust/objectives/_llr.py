"""Local linearity regularisation (LLR, Qin et al. 2019)."""

import numbers

import torch
import torch.nn.functional as F

from ..attacks import frozen
from ._base import Objective, check_non_negative, mask_replay


def _dot(delta, grad):
    """Per-sample inner product ``delta_i . grad_i``."""
    return (delta * grad).flatten(1).sum(dim=1)


def _input_gradient(module, x, y, create_graph):
    """Per-sample ``l_i(x)`` (cross-entropy) and ``grad_x l_i(x)``."""
    x = x.detach().requires_grad_(True)
    logits = module(x)
    loss = F.cross_entropy(logits, y, reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), x, create_graph=create_graph)
    return logits, loss, grad


def _loss_gradient(logits, x, y):
    """``l(x)`` per sample and its input gradient, kept differentiable for the outer loss."""
    loss = F.cross_entropy(logits, y, reduction="none")
    (grad,) = torch.autograd.grad(loss.sum(), x, create_graph=True)
    return loss, grad


class LLR(Objective):
    """``mean_i [l(x) + lam * g(delta*; x) + mu * |dot(delta*, grad_x l(x))|]``, l the CE.

    ``g(delta; x) = |l(x + delta) - l(x) - delta . grad_x l(x)|`` measures how far the loss
    is from its linear approximation at ``x``. ``delta*`` maximises ``g`` over the threat
    ball (intersected with the bounds) by ``inner_steps`` steps of projected ascent from a
    uniform start; that search runs frozen (eval mode, input gradients only), with
    ``l(x)`` and ``grad_x l(x)`` held fixed. In the outer loss the network is in train mode
    and ``grad_x l(x)`` is recomputed with ``create_graph=True`` (double back-propagation),
    so both regularisers are differentiable with respect to the parameters.

    The inner step length is the threat model's ``step_size`` when set, else
    ``2.5 * eps / inner_steps``; the threat model's ``steps`` is not used.

    Parameters
    ----------
    lam : float, default=4.0
        Weight of the local-linearity term ``g`` (``lambda`` in the paper).
    mu : float, default=3.0
        Weight of the gradient term ``|delta* . grad_x l(x)|``.
    inner_steps : int, default=2
        Ascent steps of the search for ``delta*`` (``>= 1``).

    References
    ----------
    C. Qin, J. Martens, S. Gowal, D. Krishnan, K. Dvijotham, A. Fawzi, S. De, R. Stanforth,
    P. Kohli. "Adversarial Robustness through Local Linearization", NeurIPS 2019.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.objectives import LLR
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(),
    ...                             torch.nn.Linear(8, 2))
    >>> x, y = torch.rand(5, 3), torch.tensor([0, 1, 0, 1, 1])
    >>> loss, _ = LLR()(model, x, y, ThreatModel(eps=0.1, bounds=(0, 1)))
    >>> bool(loss >= 0)
    True
    """

    def __init__(self, lam=4.0, mu=3.0, inner_steps=2):
        self.lam = check_non_negative(lam, "lam")
        self.mu = check_non_negative(mu, "mu")
        if (
            not isinstance(inner_steps, numbers.Integral)
            or isinstance(inner_steps, bool)
            or inner_steps < 1
        ):
            raise ValueError(f"inner_steps must be an integer >= 1, got {inner_steps!r}.")
        self.inner_steps = int(inner_steps)

    def step_length(self, threat):
        """The inner ascent's step: ``threat.step_size`` or ``2.5 * eps / inner_steps``."""
        if threat.step_size is not None:
            return float(threat.step_size)
        return 2.5 * threat.eps / self.inner_steps

    def __call__(self, module, x, y, threat):
        x = x.detach()
        with frozen(module):
            with torch.enable_grad():
                _, loss0, grad0 = _input_gradient(module, x, y, create_graph=False)
            loss0, grad0 = loss0.detach(), grad0.detach()

            def nonlinearity(x_adv):
                loss_adv = F.cross_entropy(module(x_adv), y, reduction="none")
                return (loss_adv - loss0 - _dot(x_adv - x, grad0)).abs()

            x_adv = threat.ascend(
                nonlinearity, x, start="uniform", steps=self.inner_steps,
                alpha=self.step_length(threat),
            )
        delta = x_adv - x
        x_grad = x.clone().requires_grad_(True)
        # l(x) and l(x + delta) under the same dropout masks, or g measures the masks
        replay = mask_replay(x)
        with replay():
            logits = module(x_grad)
        with replay():
            logits_adv = module(x_adv)
        loss, grad = _loss_gradient(logits, x_grad, y)
        loss_adv = F.cross_entropy(logits_adv, y, reduction="none")
        linear = _dot(delta, grad)
        gap = (loss_adv - loss - linear).abs()
        total = loss + self.lam * gap + self.mu * linear.abs()
        return total.mean(), logits
