"""FAB (Croce & Hein 2020): the fast adaptive boundary attack, untargeted and targeted.

A minimum-norm attack: it walks to the decision boundary of the classifier linearised at
the current iterate, biased towards the original point, and steps back once it is
adversarial, so it finds adversarial points close to ``x``. Here a point counts as broken
as soon as an adversarial point within ``eps`` is found, and then leaves the search. The
norm is a projection object (``_projections.py``): the distance to a linearised
boundary, the least-norm step onto it inside the box, the random restart's direction.
"""

import torch

from ...utils import FRACTION, POSITIVE, POSITIVE_INT, per_sample
from .._base import Attack
from .._checks import check_gradient_rows, input_gradient
from .._docs import docs
from .._parallel import footprint, n_target_runs, sample_numel, side_by_side, target_runs
from .._working_set import WorkingSet
from ._projections import PROJECTIONS


@docs
class FAB(Attack):
    """FAB: fast adaptive boundary attack (minimum norm), untargeted.

    Each iteration linearises the classifier at the iterate ``x_i`` and picks the class
    ``s`` whose linearised boundary ``f_s - f_y = 0`` is closest (in the dual norm of the
    gradient difference). It then computes the least-norm steps ``delta_i`` from ``x_i``
    and ``delta_o`` from the original ``x`` onto that hyperplane inside the input box
    (an exact projection, see ``_projections.py``), and moves to the box-clipped
    ``(1 - a)(x_i + eta delta_i) + a(x + eta delta_o)`` with
    ``a = min(||delta_i|| / (||delta_i|| + ||delta_o||), alpha_max)``: a step biased
    towards ``x``, which keeps the found points close to it. An adversarial iterate is
    recorded, then pulled back towards ``x`` (``x + beta (x_i - x)``) to search for a
    closer one. The first run starts at ``x``; each restart from a random point at
    distance ``min(best, eps) / 2``, where ``best`` is the smallest adversarial
    distance found so far.

    A point is broken when an adversarial point within ``eps`` is found; it then leaves
    the search (the smaller norms FAB would go on to find do not change robust accuracy
    at ``eps``). Every point returns its closest adversarial point projected onto the
    ball and the bounds (the point itself when none was found). Points already
    misclassified are returned unchanged. Untargeted FAB differentiates every class's
    logit: ``C`` backward passes per iteration.

    Parameters
    ----------
    threat : ThreatModel
        Norm (``'linf'``, ``'l2'`` or ``'l1'``), ``eps`` and bounds.
    steps : int, default=100
        Iterations per run (``n_iter`` in Croce & Hein's code).
    restarts : int, default=1
        Runs, each on the points not yet broken; all but the first from a random start.
    alpha_max : float, default=0.1
        Largest weight of the step from the original point.
    eta : float, default=1.05
        Overshoot of the steps onto the linearised boundary.
    beta : float, default=0.9
        Backward step: an adversarial iterate ``x_i`` becomes ``x + beta (x_i - x)``.
    %(attack_kwargs)s

    See Also
    --------
    FABTargeted : FAB towards the most likely other classes, one run each.

    %(fab_refs)s

    %(attack_example)s
    >>> from sklearn_robust.attacks import FAB
    >>> fab = FAB(ThreatModel(eps=0.5, bounds=(0, 1)), steps=10, random_state=0)
    >>> X_adv = fab(model, X, y)
    >>> bool(fab.threat.contains(X_adv, X).all()), bool((model(X_adv).argmax(1) != y).any())
    (True, True)
    """

    name = "fab"
    schedule_params = ("steps", "restarts")
    _parameter_constraints = {
        **Attack._parameter_constraints,
        "steps": POSITIVE_INT,
        "restarts": POSITIVE_INT,
        "alpha_max": FRACTION,
        "eta": POSITIVE,
        "beta": FRACTION,
    }

    def __init__(self, threat, *, steps=100, restarts=1, alpha_max=0.1, eta=1.05, beta=0.9,
                 **kwargs):
        super().__init__(threat, **kwargs)
        self._set_params(steps=steps, restarts=restarts, alpha_max=alpha_max, eta=eta,
                         beta=beta)

    def passes_per_point(self, n_classes):
        """Per step a forward pass and a gradient of each logit (FAB-T: of one
        difference), then a forward pass at the new iterate."""
        steps = self.steps * self._n_runs(n_classes)
        per_step = 1 if isinstance(self, FABTargeted) else n_classes
        return steps * per_step, steps

    def _n_runs(self, n_classes):
        return self.restarts

    def _runs(self, logits, y):
        """One run per restart; ``None`` is the untargeted run (closest boundary)."""
        return [None] * self.restarts

    def perturb(self, module, x, y, generator):
        """Adversarial points for one batch (see :meth:`Attack.perturb`).

        The runs (restarts; FAB-T: targets times restarts) go in groups side by side in
        one batch (see ``_parallel``), each on the points no earlier group has broken;
        a point keeps the closest adversarial point of all its runs. As in AutoAttack,
        only restarts after the first start at random (``min(best, eps) / 2`` away).
        """
        eps = self.threat.eps
        with torch.no_grad():
            logits = module(x)
        runs = self._runs(logits, y)
        weight = logits.shape[1] if runs[0] is None else 1  # untargeted: a gradient per class
        # The score is minus the distance of the closest adversarial point found.
        far = torch.full((x.shape[0],), -float("inf"), dtype=x.dtype, device=x.device)
        points = WorkingSet(x.clone(), logits.argmax(dim=1) == y, score=far)
        for group, rows, copies, target in side_by_side(
                points, runs, sample_numel(x), weight, footprint(module, x, runs)):
            radius = None
            if any(r % self.restarts for r in group):
                start = (-points.score[rows]).clamp(max=eps) / 2
                radius = torch.cat([start if r % self.restarts else torch.zeros_like(start)
                                    for r in group])
            found, dist = self._run(module, x[copies], y[copies], target, radius, generator)
            # The closest point of the group's runs (the first of equals, as in turn).
            closest, best = found.chunk(len(group)), dist.chunk(len(group))
            found, dist = closest[0], best[0]
            for other, other_dist in zip(closest[1:], best[1:], strict=True):
                closer = other_dist < dist
                found = torch.where(per_sample(closer, found), other, found)
                dist = torch.where(closer, other_dist, dist)
            points.offer(found, dist <= eps, -dist)
        return self.threat.project(points.found, x)

    def _boundary(self, module, x, y, target, check):
        """Value and input gradient of ``f_s - f_y`` at ``x``, ``s`` the chosen class."""
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = module(x)
            z_y = logits.gather(1, y[:, None]).squeeze(1)
            if target is not None:
                diff = logits.gather(1, target[:, None]).squeeze(1) - z_y
                return diff.detach(), input_gradient(diff.sum(), x, self.name.upper(),
                                                     check=check)
            # All the logits' gradients (one backward pass each), then the closest plane.
            n_classes = logits.shape[1]
            grads = torch.stack([
                input_gradient(logits[:, k].sum(), x, self.name.upper(), check=False,
                               retain_graph=k < n_classes - 1)
                for k in range(n_classes)
            ], dim=1)
        rows = torch.arange(x.shape[0], device=x.device)
        diffs = logits.detach() - z_y.detach()[:, None]
        grad_diffs = grads - grads[rows, y][:, None]
        dist = PROJECTIONS[self.threat.norm].distance(diffs, grad_diffs.flatten(2))
        dist.scatter_(1, y[:, None], float("inf"))
        s = dist.argmin(dim=1)
        grad = grad_diffs[rows, s]
        if check:
            grad = check_gradient_rows(grad, self.name.upper())
        return diffs.gather(1, s[:, None]).squeeze(1), grad

    def _run(self, module, x, y, target, radius, generator):
        """One FAB run (or several side by side, each row its own).

        Returns the closest adversarial point found for each row (the row itself when
        none was found) and its distance (``inf``).
        """
        threat = self.threat
        projection = PROJECTIONS[threat.norm]
        bounds = threat.bounds_like(x)
        low, high = (None, None) if bounds is None else bounds
        low_f = None if low is None else low.expand_as(x[:1]).flatten(1)
        high_f = None if high is None else high.expand_as(x[:1]).flatten(1)
        x_start = x.clone() if radius is None else self._random_start(x, radius, generator)
        far = torch.full((x.shape[0],), -float("inf"), dtype=x.dtype, device=x.device)
        points = WorkingSet(x.clone(), torch.ones_like(y, dtype=torch.bool), score=far)
        s = points.follow(x=x, y=y, target=target, x_cur=x_start)
        for k in range(self.steps):
            value, w = self._boundary(module, s.x_cur, s.y, s.target, check=k == 0)
            w = w.flatten(1)
            # The steps onto the linearised boundary from the iterate and from x.
            b_orig = value + (w * (s.x - s.x_cur).flatten(1)).sum(dim=1)
            steps = projection.onto_hyperplane(
                torch.cat([s.x_cur.flatten(1), s.x.flatten(1)]), torch.cat([w, w]),
                torch.cat([value, b_orig]), low_f, high_f).view(2, *s.x_cur.shape)
            d_cur, d_orig = threat.norms(steps[0]), threat.norms(steps[1])
            a = (d_cur / (d_cur + d_orig).clamp_min(1e-12)).clamp(0, self.alpha_max)
            a = per_sample(a, s.x_cur)
            x_cur = threat.clamp((1 - a) * (s.x_cur + self.eta * steps[0])
                                 + a * (s.x + self.eta * steps[1]), bounds)
            with torch.no_grad():
                adversarial = module(x_cur).argmax(dim=1) != s.y
            dist = threat.distance(x_cur, s.x)
            # An adversarial iterate steps back towards x, to look for a closer one.
            back = per_sample(adversarial, x_cur)
            s.x_cur = torch.where(back, s.x + self.beta * (x_cur - s.x), x_cur)
            score = torch.where(adversarial, -dist, torch.full_like(dist, -float("inf")))
            points.offer(x_cur, adversarial & (dist <= threat.eps), score)
            if not len(points):
                break
        return points.found, -points.score

    def _random_start(self, x, radius, generator):
        # A random direction scaled to norm ``radius`` (``min(best, eps) / 2``).
        noise = PROJECTIONS[self.threat.norm].random_direction(x, generator)
        noise = noise / per_sample(self.threat.norms(noise).clamp_min(1e-12), x)
        return self.threat.clamp(x + per_sample(radius, x) * noise)


@docs
class FABTargeted(FAB):
    """FAB-T: FAB towards each of the most likely other classes in turn.

    The targets of a point are the ``n_target_classes`` classes other than its label
    with the highest clean logits, best first; each run (``restarts`` per target) steps
    onto the linearised boundary between the label and its target only, one backward
    pass per iteration, and attacks only the points no earlier run has broken. A point
    counts as broken when it is misclassified (as any class) within ``eps``. This is the
    third stage of AutoAttack's ``'standard'`` version (9 targets, 100 iterations).

    Parameters
    ----------
    threat : ThreatModel
        Norm (``'linf'``, ``'l2'`` or ``'l1'``), ``eps`` and bounds.
    n_target_classes : int, default=9
        Target classes per point, capped at ``n_classes - 1``.
    steps : int, default=100
        Iterations per run.
    restarts : int, default=1
        Runs per target class; all but the first from a random start.
    alpha_max, eta, beta : float
        As in :class:`FAB` (defaults 0.1, 1.05, 0.9).
    %(attack_kwargs)s

    See Also
    --------
    FAB : The untargeted attack, and the algorithm.
    AutoAttack : APGD-CE, APGD-T, FAB-T and Square as a cascade.

    %(fab_refs)s

    %(attack_example)s
    >>> from sklearn_robust.attacks import FABTargeted
    >>> threat = ThreatModel(eps=1.0, norm="l2", bounds=(0, 1))
    >>> X_adv = FABTargeted(threat, n_target_classes=2, steps=10, random_state=0)(
    ...     model, X, y)
    >>> bool((threat.distance(X_adv, X) <= 1.0 + 1e-6).all())  # in the l_2 ball
    True
    """

    name = "fab-t"
    _parameter_constraints = {
        **FAB._parameter_constraints,
        "n_target_classes": POSITIVE_INT,
    }

    def __init__(self, threat, *, n_target_classes=9, steps=100, restarts=1, **kwargs):
        super().__init__(threat, steps=steps, restarts=restarts, **kwargs)
        self._set_params(n_target_classes=n_target_classes)

    def __repr__(self):
        return (f"{type(self).__name__}(threat={self.threat!r}, "
                f"n_target_classes={self.n_target_classes})")

    def _n_runs(self, n_classes):
        return n_target_runs(self.n_target_classes, n_classes, self.restarts)

    def _runs(self, logits, y):
        """``restarts`` runs per target class."""
        return target_runs(logits, y, self.n_target_classes, self.restarts)
