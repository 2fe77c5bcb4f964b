"""Projected gradient descent (Madry et al. 2018) and FGSM (Goodfellow et al. 2015)."""

import torch

from ..threat import L1_FRACTION, step_length
from ..utils import FRACTION, NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, StrOptions
from ._base import Attack
from ._docs import docs
from ._losses import get_loss
from ._working_set import WorkingSet, margin_fooled


@docs
class PGD(Attack):
    """Projected gradient ascent on a loss, from a uniform random start, with restarts.

    A point counts as broken as soon as any iterate of any restart (or the clean point
    itself) is misclassified; for points never broken the iterate with the highest loss
    is returned.

    Parameters
    ----------
    threat : ThreatModel
        Norm, ``eps`` and bounds.
    steps : int, default=20
        Gradient steps per restart (``0``: the start point only).
    step_size : float or None, default=None
        Step length; ``None`` is ``2.5 * eps / steps`` (see
        :func:`~sklearn_robust.threat.step_length`).
    restarts : int, default=1
        Independent random starts per point, each on the points not yet broken.
    loss : {'ce', 'dlr'} or callable, default='ce'
        Loss to ascend: cross-entropy, Croce & Hein's difference of logits ratio (needs
        at least 3 classes; with fewer, cross-entropy is used and a ``UserWarning`` says
        so), or a function ``loss(logits, y) -> (N,)``.
    random_start : bool, default=True
        Start from a uniform point in the ball rather than from ``x``.
    l1_fraction : float in (0, 1] or None, default=None
        ``norm='l1'`` only: fraction of the coordinates a step moves. Each step is
        SLIDE's sparse step (Tramer & Boneh 2019): the signs of the largest gradient
        entries, scaled to l_1 length ``step_size``, leaving out coordinates the bounds
        stop (see :meth:`~sklearn_robust.ThreatModel.direction`); then the exact
        projection onto the l_1 ball inside the bounds. ``None`` is SLIDE's default,
        the top 1 per cent (above the 99th percentile of ``|gradient|``). Refused for
        other norms.
    %(attack_kwargs)s

    See Also
    --------
    APGD : PGD with momentum and a self-tuning step size.

    References
    ----------
    .. [1] A. Madry, A. Makelov, L. Schmidt, D. Tsipras and A. Vladu, "Towards deep
       learning models resistant to adversarial attacks", ICLR 2018.

    %(attack_example)s
    >>> from sklearn_robust.attacks import PGD
    >>> X_adv = PGD(ThreatModel(eps=0.1, bounds=(0, 1)), steps=5, random_state=0)(model, X, y)
    >>> bool(((X_adv - X).abs() <= 0.1 + 1e-6).all())  # in the l_inf ball
    True
    """

    name = "pgd"
    schedule_params = ("steps", "step_size", "restarts")
    _parameter_constraints = {
        **Attack._parameter_constraints,
        "steps": NON_NEGATIVE_INT,
        "step_size": [None, *POSITIVE],
        "restarts": POSITIVE_INT,
        "loss": [StrOptions({"ce", "dlr"}), callable],
        "random_start": ["boolean"],
        "l1_fraction": [None, *FRACTION],
    }

    def __init__(self, threat, *, steps=20, step_size=None, restarts=1, loss="ce",
                 random_start=True, l1_fraction=None, **kwargs):
        super().__init__(threat, **kwargs)
        self._set_params(steps=steps, step_size=step_size, restarts=restarts, loss=loss,
                         random_start=random_start, l1_fraction=l1_fraction)

    @classmethod
    def _check_norm_rules(cls, norm, params):
        # Only the l_1 step has a sparsity: a value for another norm would be ignored.
        if params.get("l1_fraction") is not None and norm != "l1":
            raise ValueError(
                f"l1_fraction is for norm='l1' only; {cls.__name__} has norm={norm!r}."
            )

    def passes_per_point(self, n_classes):
        """One gradient pass per step and restart."""
        return self.steps * self.restarts, 0

    def perturb(self, module, x, y, generator):
        """Adversarial points for one batch (see :meth:`Attack.perturb`)."""
        # Written out rather than through ``threat.ascend``: a point's output is fixed once
        # it is misclassified, so it leaves the working set and later steps attack only
        # the points still standing (each point's iterates are its own: same result).
        threat = self.threat
        alpha = step_length(threat.eps, self.steps, self.step_size)
        fraction = L1_FRACTION if self.l1_fraction is None else self.l1_fraction
        bounds = threat.bounds_like(x)
        # The clean point is in the ball too: a misclassified one stays broken, so robust
        # accuracy never exceeds clean accuracy. A point never broken keeps its
        # highest-loss iterate.
        with torch.no_grad():
            logits = module(x)
        loss_fn = get_loss(self.loss, logits.shape[1], "PGD")
        points = WorkingSet(x.clone(), ~margin_fooled(logits, y), score=loss_fn(logits, y))
        start = "uniform" if self.random_start else "none"
        for _ in range(self.restarts):
            if not len(points):
                break
            # The start is drawn for the whole batch, as the random stream expects.
            s = points.follow(x=x, y=y, x_adv=threat.start(x, start, generator))
            for _ in range(self.steps):
                x_adv = s.x_adv.requires_grad_(True)
                with torch.enable_grad():
                    logits = module(x_adv)
                    losses = loss_fn(logits, s.y)
                    (grad,) = torch.autograd.grad(losses.sum(), x_adv)
                x_adv = x_adv.detach()
                step = threat.direction(grad, x_adv, bounds, fraction=fraction)
                s.x_adv = threat.project(x_adv + alpha * step, s.x, bounds)
                points.offer(x_adv, margin_fooled(logits, s.y), losses.detach())
                if not len(points):
                    break
            if len(points):
                with torch.no_grad():
                    logits = module(s.x_adv)
                points.offer(s.x_adv, margin_fooled(logits, s.y), loss_fn(logits, s.y))
        return points.found


class FGSM(PGD):
    """Fast gradient sign method: one step of length ``eps`` from ``x``.

    With ``random_start=True`` this is the FGSM of Wong et al. (2020): a uniform start in
    the ball and one step of ``1.25 * eps``. The schedule is fixed, so FGSM takes none of
    ``steps``, ``step_size`` or ``restarts``.

    Parameters
    ----------
    threat : ThreatModel
        Norm, ``eps`` and bounds.
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
    schedule_params = ()
    _parameter_constraints = {
        key: kinds for key, kinds in PGD._parameter_constraints.items()
        if key not in PGD.schedule_params
    }

    def __init__(self, threat, *, random_start=False, **kwargs):
        eps = getattr(threat, "eps", 0.0)  # a wrong threat is refused by Attack
        step = 1.25 * eps if random_start else eps
        super().__init__(threat, steps=1, step_size=step or None, restarts=1,
                         random_start=random_start, **kwargs)
