"""Local linearity regularisation (LLR, Qin et al. 2019)."""

import torch
import torch.nn.functional as F

from ..utils import NON_NEGATIVE, POSITIVE_INT, StrOptions, active_generator, frozen, per_sample
from ._base import mask_replay
from ._search import SearchingObjective, taped

#: The two forms of the loss: Qin et al.'s paper, and the code behind Yang et al.'s table.
FORMS = ("qin", "yang2020")


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


class LLR(SearchingObjective):
    """``mean_i [l(x) + lam * g(delta*; x) + mu * |dot(delta*, grad_x l(x))|]``, l the CE.

    ``g(delta; x) = |l(x + delta) - l(x) - delta . grad_x l(x)|`` measures how far the loss
    is from its linear approximation at ``x``. ``delta*`` maximises ``g`` over the threat
    ball (intersected with the bounds) by ``steps`` steps of projected ascent from a
    uniform start; that search runs frozen (eval mode, input gradients only), with
    ``l(x)`` and ``grad_x l(x)`` held fixed. In the outer loss the network is in train mode
    and ``grad_x l(x)`` is recomputed with ``create_graph=True`` (double back-propagation),
    so both regularisers are differentiable with respect to the parameters.

    The inner step length is ``step_size`` when set, else ``2.5 * eps / steps``.

    ``form='yang2020'`` is the loss of the code behind Yang et al. 2020's table (their LLR
    row), which differs from the paper in five ways:

    1. the linear term is the mean of the ``B x B`` matrix ``grad_i . delta_j`` over all
       pairs (not the per-sample ``grad_i . delta_i``), one scalar for the batch;
    2. ``g`` omits ``l(x)``: ``g = |sum_i l(x_i + delta_i) - linear|``, one scalar for the
       batch (the loss is summed over the batch);
    3. the ``mu`` term has no absolute value, and ``grad_x l(x)`` is computed once in eval
       mode without a graph, so the linear and ``mu`` terms carry no parameter gradient
       (no double back-propagation): the outer loss trains on ``l(x)`` and
       ``l(x + delta*)`` only;
    4. the search starts from ``x + 0.001 N(0, 1)`` and each step is the gradient divided
       by its per-sample ``norm`` (its largest absolute entry for l_inf, its l_2 norm for
       l_2; a zero gradient is replaced by Gaussian noise), not its sign;
    5. after each step the point is clamped to the bounds and ``delta`` rescaled to norm
       at most ``eps`` (a rescaling, not a clip, also for l_inf); the default step is
       ``eps / 2`` (``step_size=None``), the reference's for its 2 steps.

    The summed loss is divided by the batch size, so it reads on the scale of a mean
    (with Adam the constant factor does not change training).

    Parameters
    ----------
    lam : float, default=4.0
        Weight of the local-linearity term ``g`` (``lambda`` in the paper).
    mu : float, default=3.0
        Weight of the gradient term ``|delta* . grad_x l(x)|``.
    steps : int, default=2
        Ascent steps of the search for ``delta*`` (``>= 1``).
    step_size : float or None, default=None
        Step of the search; ``None`` is ``2.5 * eps / steps`` (``'qin'``) or ``eps / 2``
        (``'yang2020'``).
    form : {'qin', 'yang2020'}, default='qin'
        The paper's loss, or that of the code behind Yang et al.'s table (see above).

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

    _parameter_constraints = {
        **SearchingObjective._parameter_constraints,
        "lam": NON_NEGATIVE,
        "mu": NON_NEGATIVE,
        "steps": POSITIVE_INT,
        "form": [StrOptions(set(FORMS))],
    }

    def __init__(self, lam=4.0, mu=3.0, steps=2, step_size=None, form="qin"):
        self._set_params(lam=lam, mu=mu, steps=steps, step_size=step_size, form=form)

    criterion_term = ("the cross-entropy l(x) of the loss (the linearity terms and the "
                      "search keep the plain cross-entropy)")

    def __call__(self, module, x, y, threat, criterion=None):
        if self.form == "yang2020":
            return self._yang2020(module, x.detach(), y, threat, criterion)
        x = x.detach()
        with frozen(module):
            with torch.enable_grad():
                _, loss0, grad0 = _input_gradient(module, x, y, create_graph=False)
            loss0, grad0 = loss0.detach(), grad0.detach()

            def nonlinearity(x_adv):
                loss_adv = F.cross_entropy(module(x_adv), y, reduction="none")
                return (loss_adv - loss0 - _dot(x_adv - x, grad0)).abs()

            x_adv = self.search(threat, nonlinearity, x, start="uniform")
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
        if criterion is None:
            total = loss + self.lam * gap + self.mu * linear.abs()
            return total.mean(), logits
        penalty = self.lam * gap + self.mu * linear.abs()
        return criterion(logits, y) + penalty.mean(), logits

    def _yang2020(self, module, x, y, threat, criterion=None):
        """The batch-level loss of Yang et al.'s code (see the class docstring)."""
        n = x.shape[0]
        with frozen(module):
            with torch.enable_grad():
                _, _, grad0 = _input_gradient(module, x, y, create_graph=False)
            grad_sum = grad0.detach().flatten(1).sum(dim=0)

            def linear(delta):  # mean over the B x B matrix of grad_i . delta_j
                return grad_sum @ delta.flatten(1).sum(dim=0) / n**2

            def gap(delta):
                loss = F.cross_entropy(module(x + delta), y, reduction="sum")
                return (loss - linear(delta)).abs()

            delta = taped(lambda: _yang2020_search(gap, x, threat, self.steps,
                                                   self.step_size))
        logits = module(x)
        if criterion is None:
            natural = F.cross_entropy(logits, y, reduction="sum")
            total = natural + self.lam * gap(delta) + self.mu * linear(delta)
            return total / n, logits
        penalty = self.lam * gap(delta) + self.mu * linear(delta)
        return criterion(logits, y) + penalty / n, logits


def _normal_like(x):
    """Standard normal noise shaped like ``x``, from the fit's stream."""
    return torch.randn(x.shape, generator=active_generator(x.device), device=x.device,
                       dtype=x.dtype)


def _yang2020_search(gap, x, threat, steps, step_size):
    """``delta`` ascending ``gap`` by normalised-gradient steps, rescaled into the ball."""
    alpha = threat.eps / 2 if step_size is None else step_size
    delta = 0.001 * _normal_like(x)
    for _ in range(steps):
        delta.requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(gap(delta), delta)
        norms = threat.norms(grad)
        # a zero gradient would give 0/0: the reference steps along noise there
        grad = torch.where(per_sample(norms == 0, grad), _normal_like(grad),
                           grad / per_sample(norms.clamp_min(1e-12), grad))
        delta = threat.clamp(x + delta.detach() + alpha * grad) - x
        scale = (threat.eps / threat.norms(delta).clamp_min(1e-12)).clamp(max=1.0)
        delta = delta * per_sample(scale, delta)
    return delta.detach()
