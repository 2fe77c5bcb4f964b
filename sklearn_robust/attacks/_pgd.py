"""Projected gradient descent (Madry et al. 2018) and FGSM (Goodfellow et al. 2015)."""

from __future__ import annotations

import numbers

import torch

from ._base import Attack, margin_fooled
from ._losses import get_loss


class PGD(Attack):
    """Projected gradient ascent on a loss, from a uniform random start, with restarts.

    A point counts as broken as soon as any iterate of any restart (or the clean point
    itself) is misclassified; for points never broken the iterate with the highest loss
    is returned.

    Parameters
    ----------
    threat : ThreatModel
        Norm, ``eps``, number of steps, step size and bounds.
    restarts : int, default=1
        Independent random starts per point.
    loss : {'ce', 'dlr'}, default='ce'
        Loss to ascend: cross-entropy or Croce & Hein's difference of logits ratio
        (needs at least 3 classes; with fewer, cross-entropy is used).
    random_start : bool, default=True
        Start from a uniform point in the ball rather than from ``x``.
    **kwargs
        ``batch_size``, ``random_state``, ``verbose`` of :class:`Attack`.

    See Also
    --------
    APGD : PGD with momentum and a self-tuning step size.

    References
    ----------
    .. [1] A. Madry, A. Makelov, L. Schmidt, D. Tsipras and A. Vladu, "Towards deep
       learning models resistant to adversarial attacks", ICLR 2018.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.attacks import PGD
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Linear(4, 3)
    >>> X, y = torch.rand(8, 4), torch.zeros(8, dtype=torch.long)
    >>> attack = PGD(ThreatModel(eps=0.1, steps=5, bounds=(0, 1)), random_state=0)
    >>> X_adv = attack(model, X, y)
    >>> bool(((X_adv - X).abs() <= 0.1 + 1e-6).all())
    True
    """

    name = "pgd"

    def __init__(self, threat, *, restarts=1, loss="ce", random_start=True, **kwargs):
        super().__init__(threat, **kwargs)
        if (not isinstance(restarts, numbers.Integral) or isinstance(restarts, bool)
                or restarts < 1):
            raise ValueError(f"restarts must be a positive integer, got {restarts!r}.")
        self.restarts = int(restarts)
        self.loss = loss
        self._loss_fn = get_loss(loss)
        self.random_start = random_start

    def _perturb_batch(self, module, x, y, generator):
        loss_fn = self._loss_fn
        best = x.clone()
        best_loss = torch.full((x.shape[0],), -float("inf"), device=x.device)
        fooled = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)

        def record(x_adv, logits):
            # Keep the first fooling iterate of each point, else its highest-loss one.
            with torch.no_grad():
                losses = loss_fn(logits.detach(), y)
                now_fooled = margin_fooled(logits.detach(), y) & ~fooled
                better = ~fooled & (losses > best_loss)
                take = now_fooled | better
                best[take] = x_adv.detach()[take]
                best_loss[take] = losses[take]
                fooled.logical_or_(now_fooled)

        def objective(x_adv):
            logits = module(x_adv)
            record(x_adv, logits)
            return loss_fn(logits, y)

        # The clean point is in the ball too: a misclassified one stays broken, so robust
        # accuracy never exceeds clean accuracy.
        with torch.no_grad():
            record(x, module(x))
        start = "uniform" if self.random_start else "none"
        for _ in range(self.restarts):
            if bool(fooled.all()):
                break
            x_last = self.threat.ascend(objective, x, start=start, generator=generator)
            with torch.no_grad():
                record(x_last, module(x_last))
        return best


class FGSM(PGD):
    """Fast gradient sign method: one step of length ``eps`` from ``x`` (or ``alpha``).

    With ``random_start=True`` this is the FGSM of Wong et al. (2020): a uniform start in
    the ball and one step of ``1.25 * eps``.

    Parameters
    ----------
    threat : ThreatModel
        Norm, ``eps`` and bounds (``steps`` and ``step_size`` are not used).
    random_start : bool, default=False
        Start from a uniform point in the ball and step ``1.25 * eps``.
    **kwargs
        ``loss``, ``batch_size``, ``random_state``, ``verbose`` of :class:`PGD`.

    References
    ----------
    .. [1] I. Goodfellow, J. Shlens and C. Szegedy, "Explaining and harnessing
       adversarial examples", ICLR 2015.
    .. [2] E. Wong, L. Rice and J. Z. Kolter, "Fast is better than free: revisiting
       adversarial training", ICLR 2020.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.attacks import FGSM
    >>> model = torch.nn.Linear(2, 2)
    >>> X_adv = FGSM(ThreatModel(eps=0.5))(model, torch.zeros(3, 2), torch.tensor([0, 1, 0]))
    >>> bool((X_adv.abs() <= 0.5 + 1e-6).all())
    True
    """

    name = "fgsm"

    def __init__(self, threat, *, random_start=False, **kwargs):
        alpha = 1.25 * threat.eps if random_start else threat.eps
        threat = type(threat)(
            eps=threat.eps, norm=threat.norm, steps=1, step_size=alpha or None,
            bounds=threat.bounds,
        )
        super().__init__(threat, restarts=1, random_start=random_start, **kwargs)

