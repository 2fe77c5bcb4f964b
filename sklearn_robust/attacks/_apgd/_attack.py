"""Auto-PGD (Croce & Hein 2020): PGD with momentum and a self-tuning step size.

APGD starts with step size ``2 * eps`` and halves it, restarting from the best point
found so far, at checkpoints where the loss stopped rising. No step size to tune, which
makes it a reliable baseline for robustness evaluation. The step rule is the norm's
(``_steps.py``); ``APGDTargeted`` (``_targeted.py``) runs it once per target class on
the targeted DLR loss.
"""

import torch

from ...threat import ThreatModel
from ...utils import FRACTION, POSITIVE_INT, StrOptions, per_sample
from .._base import Attack
from .._checks import input_gradient
from .._docs import docs
from .._losses import get_loss
from .._parallel import footprint, sample_numel, side_by_side
from .._working_set import WorkingSet, margin_fooled
from ._steps import MomentumSteps, SparseSteps, phases


@docs
class APGD(Attack):
    """Auto-PGD: projected gradient ascent with momentum and step-size halving.

    One run of ``steps`` iterations: from a uniform random start, steps of size
    ``eta`` (initially ``2 * eps``) along the threat model's steepest-ascent direction,
    averaged with the previous step by momentum. At each checkpoint (see
    :func:`apgd_checkpoints`) the step size of a point is halved, and the point restarts
    from its best iterate, when (1) the loss rose in fewer than ``rho`` of the steps
    since the previous checkpoint, or (2) the step size was not halved at the previous
    checkpoint and the best loss has not improved since. Every point has its own step
    size; everything is vectorised over the batch.

    Each point returns its first misclassified iterate over all restarts; a point never
    misclassified returns its highest-loss iterate. Points already misclassified are
    returned unchanged.

    Parameters
    ----------
    threat : ThreatModel
        Norm (``'linf'``, ``'l2'`` or ``'l1'``), ``eps`` and bounds.
    loss : {'ce', 'dlr'}, default='ce'
        Cross-entropy or the difference of logits ratio. DLR needs at least 3 classes;
        with fewer, cross-entropy is used and a ``UserWarning`` says so.
    steps : int, default=100
        Iterations per run (``n_iter`` in Croce & Hein's AutoAttack code). APGD sets its
        own step size, so it takes no ``step_size``.
    restarts : int, default=1
        Runs from independent random starts, each on the points not yet broken.
    rho : float, default=0.75
        Fraction of loss-increasing steps below which the step size is halved.
    momentum : float, default=0.75
        Weight of the new gradient step; ``1 - momentum`` goes to the previous step.
    eot_iter : int, default=1
        Forward and backward passes averaged per iteration (expectation over
        transformation, ``eot_iter`` in Croce & Hein's code): 20 in AutoAttack's
        ``'rand'`` version, for randomised models.
    shrinking_eps : bool, default=False
        ``norm='l1'`` only: run 30 %, 30 % and 40 % of the steps at radii ``3 eps``,
        ``2 eps`` and ``eps``, each phase from the previous one's best point
        (AutoAttack's ``use_largereps``, on in its l_1 ``'standard'`` version). Needs
        ``steps >= 2``.
    %(attack_kwargs)s

    Notes
    -----
    Under ``norm='l1'`` the run is l1-APGD (Croce & Hein 2021): sparse steps whose
    sparsity and step size adapt to the sparsity of the best point, no momentum (so
    ``rho`` and ``momentum`` are not used); the step rules of both are in
    ``_apgd/_steps.py``.

    See Also
    --------
    APGDTargeted : APGD on the targeted DLR loss, one run per target class.
    PGD : Fixed step size.

    %(croce_hein_refs)s

    %(attack_example)s
    >>> from sklearn_robust.attacks import APGD
    >>> threat = ThreatModel(eps=0.1, bounds=(0, 1))
    >>> apgd = APGD(threat, loss="dlr", steps=10, random_state=0)
    >>> bool(threat.contains(apgd(model, X, y), X).all())
    True
    """

    name = "apgd"
    schedule_params = ("steps", "restarts")
    _parameter_constraints = {
        **Attack._parameter_constraints,
        "loss": [StrOptions({"ce", "dlr"})],
        "steps": POSITIVE_INT,
        "restarts": POSITIVE_INT,
        "rho": FRACTION,
        "momentum": FRACTION,
        "eot_iter": POSITIVE_INT,
        "shrinking_eps": ["boolean"],
    }

    def __init__(self, threat, *, loss="ce", steps=100, restarts=1, rho=0.75,
                 momentum=0.75, eot_iter=1, shrinking_eps=False, **kwargs):
        super().__init__(threat, **kwargs)
        self._set_params(loss=loss, steps=steps, restarts=restarts, rho=rho,
                         momentum=momentum, eot_iter=eot_iter, shrinking_eps=shrinking_eps)
        self.name = f"apgd-{loss}"

    @classmethod
    def _check_norm_rules(cls, norm, params):
        if params.get("shrinking_eps") and norm != "l1":
            raise ValueError(
                f"shrinking_eps is for norm='l1' only; {cls.__name__} has norm={norm!r}."
            )
        if params.get("shrinking_eps") and params["steps"] < 2:
            raise ValueError("shrinking_eps needs steps >= 2 (three phases), got "
                             f"steps={params['steps']}.")

    @property
    def expects_randomness(self):
        """Whether the attack averages over the model's randomness (``eot_iter > 1``)."""
        return self.eot_iter > 1

    @property
    def _caller(self):
        return self.name.upper()

    def __repr__(self):
        return f"{type(self).__name__}(threat={self.threat!r}, loss={self.loss!r})"

    def passes_per_point(self, n_classes):
        """Every run's steps, each ``eot_iter`` gradient passes."""
        return self.steps * self._n_runs(n_classes) * self.eot_iter, 0

    def _n_runs(self, n_classes):
        return self.restarts

    def _runs(self, logits, y):
        """The loss and the runs: one per restart, each untargeted (``None``)."""
        return get_loss(self.loss, logits.shape[1], self._caller), [None] * self.restarts

    def perturb(self, module, x, y, generator):
        """Adversarial points for one batch (see :meth:`Attack.perturb`).

        The runs go in groups side by side in one batch (see ``_parallel``), each group
        on the points no earlier group has broken; within a group the results are taken
        in run order, as if the runs had gone one after the other: a point keeps the
        first run that fooled it, or else the run of highest loss.
        """
        with torch.no_grad():
            logits = module(x)
        loss_fn, runs = self._runs(logits, y)
        lowest = torch.full((x.shape[0],), -float("inf"), dtype=x.dtype, device=x.device)
        points = WorkingSet(x.clone(), ~margin_fooled(logits, y), score=lowest)
        for group, rows, copies, target in side_by_side(
                points, runs, sample_numel(x), activation=footprint(module, x, runs)):
            found, broken, loss = self._run(module, x[copies], y[copies], target, loss_fn,
                                            generator)
            for part in zip(*(t.chunk(len(group)) for t in (found, broken, loss)), strict=True):
                points.offer(*part, rows=rows)
        return points.found

    def _run(self, module, x, y, target, loss_fn, generator):
        """One APGD run, or several side by side (each row is its own run).

        Returns ``(points, broken, loss)`` per row: a broken row's first misclassified
        iterate, the others' highest-loss iterate and its loss. With ``shrinking_eps``
        the run is three phases (see ``_steps.phases``), each from the previous one's
        best points.
        """
        plan = phases(self.threat.eps, self.steps, self.shrinking_eps)
        x_start = None
        for number, (radius, steps) in enumerate(plan):
            rule = self._step_rule(radius, steps)
            x_start = rule.enter(rule.start(x, generator) if number == 0 else x_start, x)
            last = number == len(plan) - 1
            x_start, broken, loss = self._ascend(module, x, y, target, loss_fn, x_start, rule,
                                                 counts=last, check=number == 0)
        return x_start, broken, loss

    def _step_rule(self, radius, steps):
        threat = self.threat
        if threat.norm != "l1":
            return MomentumSteps(threat, steps, self.rho, self.momentum)
        ball = threat if radius == threat.eps else ThreatModel(eps=radius, norm="l1",
                                                                bounds=threat.bounds)
        return SparseSteps(ball, steps, warm=self.shrinking_eps)

    def _ascend(self, module, x, y, target, loss_fn, x_cur, rule, *, counts, check):
        """``rule.steps`` iterations inside ``rule.ball`` from ``x_cur``.

        With ``counts`` (the threat's own ball), a point misclassified by an iterate is
        broken: it keeps that iterate and leaves the search. Returns the points, the
        broken mask and the best losses (see :meth:`_run`).
        """
        loss, grad, logits = self._gradient(module, x_cur, y, target, loss_fn, check=check)
        broken = margin_fooled(logits, y) if counts else torch.zeros_like(y, dtype=torch.bool)
        points = WorkingSet(x_cur.clone(), ~broken, score=loss.clone())
        s = points.follow(x=x, y=y, target=target, x_cur=x_cur, grad=grad, loss=loss,
                          x_best=x_cur, f_best=loss, grad_best=grad)
        rule.init(s)
        bounds = rule.ball.bounds_like(x)
        for k in range(rule.steps):
            if not len(points):
                break
            s.x_cur = rule.step(s, k, bounds)
            loss, s.grad, logits = self._gradient(module, s.x_cur, s.y, s.target, loss_fn)
            rule.observe(s, loss)
            s.loss = loss
            better = s.loss > s.f_best
            s.x_best[better] = s.x_cur[better]
            s.grad_best[better] = s.grad[better]
            s.f_best = torch.where(better, s.loss, s.f_best)
            if counts:
                points.offer(s.x_cur, margin_fooled(logits, s.y))
            restart = rule.adapt(s, k)
            if restart is not None:  # from the best iterate
                s.x_cur = torch.where(per_sample(restart, s.x_cur), s.x_best, s.x_cur)
                s.grad = torch.where(per_sample(restart, s.grad), s.grad_best, s.grad)
                s.loss = torch.where(restart, s.f_best, s.loss)
        points.update(s.x_best, s.f_best)
        return points.found, ~points.standing, points.score

    def _gradient(self, module, x, y, target, loss_fn, *, check=False):
        """Per-sample loss, its input gradient and the logits at ``x`` (all detached).

        With ``eot_iter > 1`` all three are means over that many forward and backward
        passes (expectation over transformation, for randomised models). A gradient that
        is missing, zero or NaN warns (see ``_checks.input_gradient``).
        """
        loss_sum = grad_sum = logits_sum = 0
        for _ in range(self.eot_iter):
            x_req = x.detach().requires_grad_(True)
            with torch.enable_grad():
                logits = module(x_req)
                loss = loss_fn(logits, y) if target is None else loss_fn(logits, y, target)
                grad = input_gradient(loss.sum(), x_req, self._caller, check=check)
            loss_sum = loss_sum + loss.detach()
            grad_sum = grad_sum + grad
            logits_sum = logits_sum + logits.detach()
        if self.eot_iter == 1:
            return loss_sum, grad_sum, logits_sum
        n = self.eot_iter
        return loss_sum / n, grad_sum / n, logits_sum / n
