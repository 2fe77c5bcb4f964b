"""A cascade of attacks: the worst case per point, each stage on the points still standing."""

import math
from collections.abc import Mapping

import torch

from ._base import Attack
from ._checks import check_black_box_gains
from ._docs import docs
from ._working_set import WorkingSet


def _named_stages(attacks):
    """``attacks`` (instances, ``(name, attack)`` pairs or a dict) as a dict name -> attack."""
    items = attacks.items() if isinstance(attacks, Mapping) else [
        item if isinstance(item, tuple) else (getattr(item, "name", None), item)
        for item in attacks
    ]
    stages = {}
    for name, attack in items:
        if not isinstance(attack, Attack):
            raise TypeError(
                f"a cascade's stages must be Attack instances, got {type(attack).__name__}."
            )
        if name in stages:
            raise ValueError(
                f"two stages are named {name!r}: give the cascade (name, attack) pairs with "
                "distinct names."
            )
        stages[name] = attack
    if not stages:
        raise ValueError("a cascade needs at least one attack.")
    return stages


@docs
class Cascade(Attack):
    """The worst case per point over several attacks, run one after the other.

    Clean-misclassified points are not attacked. Each stage then runs only on the points
    still standing (correct at ``x`` and not broken by an earlier stage); a point broken
    by a stage keeps that stage's adversarial example, the others are returned
    unchanged. So the cascade breaks every point that any of its stages breaks on its
    own turn, and costs less than running them all on every point. After a call,
    :attr:`stage_counts_` says how many points each stage broke.

    A black-box stage (``uses_gradients=False``) that breaks more than 0.2 % of the
    points after gradient stages raises a ``UserWarning``: the gradient attacks were
    probably misled (gradient masking), so their figure overstates robustness.

    The stages run on the cascade's batches and draw from the cascade's random stream
    (their own ``batch_size``, ``random_state`` and ``verbose`` are not used), through
    their public :meth:`Attack.perturb`.

    Parameters
    ----------
    threat : ThreatModel
        Norm, ``eps`` and bounds. Every stage must have the same ``eps`` and norm
        (``ValueError`` otherwise): the cascade's figure is for one threat.
    attacks : list of Attack or of (str, Attack) pairs, or dict
        The stages, in order. A bare attack is named by its ``name`` attribute; names
        must be distinct.
    %(attack_kwargs)s

    %(cascade_attributes)s

    See Also
    --------
    AutoAttack : The cascade APGD-CE, APGD-T, Square.

    %(attack_example)s
    >>> from sklearn_robust.attacks import APGD, PGD, Cascade
    >>> threat = ThreatModel(eps=0.2, bounds=(0, 1))
    >>> cascade = Cascade(threat, [PGD(threat, steps=5), ("apgd", APGD(threat, steps=10))],
    ...                   random_state=0)
    >>> X_adv = cascade(model, X, y)
    >>> list(cascade.stage_counts_)
    ['pgd', 'apgd']
    >>> cascade.clean_correct_ - sum(cascade.stage_counts_.values()) == cascade.robust_
    True
    """

    name = "cascade"
    #: ``attacks`` is checked by the cascade itself (``_named_stages``), always.
    _parameter_constraints = {**Attack._parameter_constraints, "attacks": "no_validation"}

    def __init__(self, threat, attacks, **kwargs):
        super().__init__(threat, **kwargs)
        self.attacks = _named_stages(attacks)
        for name, attack in self.attacks.items():
            other = attack.threat
            same_eps = math.isclose(other.eps, threat.eps, rel_tol=1e-6, abs_tol=1e-12)
            if other.norm != threat.norm or not same_eps:
                raise ValueError(
                    f"the stage {name!r} has a different threat (eps={other.eps}, "
                    f"norm={other.norm!r}) from the cascade's (eps={threat.eps}, "
                    f"norm={threat.norm!r}): every stage must attack the same threat."
                )

    @property
    def uses_gradients(self):
        """Whether any stage differentiates the model."""
        return any(attack.uses_gradients for attack in self.attacks.values())

    def passes_per_point(self, n_classes):
        """The stages' budgets added up (a point standing to the end runs them all)."""
        budgets = [attack.passes_per_point(n_classes) for attack in self.attacks.values()]
        if any(budget is None for budget in budgets):
            return None
        return tuple(sum(part) for part in zip(*budgets, strict=True))

    def __repr__(self):
        return f"{type(self).__name__}(threat={self.threat!r}, attacks={list(self.attacks)})"

    def __call__(self, module, X, y):
        """Adversarial points for ``X``; sets :attr:`stage_counts_` and the counts."""
        self.stage_counts_ = {}
        self.clean_correct_ = 0
        self.robust_ = 0
        out = super().__call__(module, X, y)
        self.n_points_ = out.shape[0]
        check_black_box_gains(self.attacks, self.stage_counts_, self.n_points_)
        return out

    def _attack_batch(self, module, x, y, generator):
        # Always through perturb, which counts the clean-correct points even at eps = 0.
        return self.perturb(module, x, y, generator)

    def _skips(self, name, n_classes):
        """Whether the stage ``name`` is left out on a model of ``n_classes`` classes."""
        return False

    def perturb(self, module, x, y, generator):
        """Adversarial points for one batch (see :meth:`Attack.perturb`); adds to the counts.

        Call :meth:`__call__` for counts of one call: this method adds to the counts of
        the last call (which a nested cascade, called stage by stage, never resets).
        """
        with torch.no_grad():
            logits = module(x)
        points = WorkingSet(x.clone(), logits.argmax(dim=1) == y)
        self.clean_correct_ = getattr(self, "clean_correct_", 0) + len(points)
        counts = self.stage_counts_ = getattr(self, "stage_counts_", {})
        stages = self.attacks.items() if self.threat.eps > 0 else ()
        for name, attack in stages:
            if self._skips(name, logits.shape[1]):
                continue
            counts.setdefault(name, 0)
            if not len(points):
                continue
            x_stage, y_stage = points.take(x, y)
            x_adv = attack.perturb(module, x_stage, y_stage, generator)
            with torch.no_grad():
                broken = module(x_adv).argmax(dim=1) != y_stage
            points.offer(x_adv, broken)
            counts[name] += int(broken.sum())
        self.robust_ = getattr(self, "robust_", 0) + len(points)
        return points.found
