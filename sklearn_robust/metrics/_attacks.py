"""The ``attack`` argument of the metrics: names, classes, instances, or a list of them.

Everything is checked once, when the plan is made, before any model is touched: the
names, the schedule settings each attack class accepts (its ``schedule_params``), the
arguments of each attack to build (by its class's ``check_params``, without building
it), the instances' threat models. The attacks are built once, when the bounds are
known, without checking their arguments again (scikit-learn's
``skip_parameter_validation``). A list becomes a
:class:`~sklearn_robust.attacks.Cascade`: the worst case per point over the attacks,
each run on the points the previous ones left standing.
"""

import numpy as np
from sklearn import config_context

from ..attacks import ATTACKS, Attack, Cascade
from ..bridge import ESTIMATOR_BOUNDS
from ..threat import ThreatModel

#: The schedule keywords the metrics forward to an attack when the user sets them.
SCHEDULE = ("steps", "step_size", "restarts")


def _unknown(attack):
    return ValueError(
        f"attack must be one of {sorted(ATTACKS)}, an Attack subclass, an Attack instance or a "
        f"list of these, got {attack!r}."
    )


class _Stage:
    """One attack of the plan: a factory with its keyword arguments, or a ready instance."""

    def __init__(self, spec, *, eps, norm, settings, attack_params, common):
        self.instance = spec if isinstance(spec, Attack) else None
        self.factory = None
        if self.instance is not None:
            threat = self.instance.threat
            if threat.norm != norm or not np.isclose(threat.eps, eps, rtol=1e-6, atol=1e-12):
                raise ValueError(
                    f"the attack instance's threat model (eps={threat.eps}, "
                    f"norm={threat.norm!r}) does not match eps={eps}, norm={norm!r}."
                )
            self.uses_gradients = self.instance.uses_gradients
            return
        if isinstance(spec, type) and issubclass(spec, Attack):
            self.factory, label = spec, spec.__name__
        elif isinstance(spec, str) and spec in ATTACKS:
            self.factory, label = ATTACKS[spec], repr(spec)
        else:
            raise _unknown(spec)
        accepted = tuple(getattr(self.factory, "schedule_params", ()))
        for key in settings:
            if key not in accepted:
                raise ValueError(
                    f"the attack {label} takes no {key!r}: its schedule parameters are "
                    f"{list(accepted)}. Leave {key}=None, or pass an Attack instance."
                )
        self.uses_gradients = getattr(self.factory, "uses_gradients", True)
        self.kwargs = {**common, **settings, **(attack_params or {})}
        self.factory.check_params(norm, self.kwargs)

    def build(self, threat):
        if self.instance is not None:
            return self.instance
        return self.factory(threat, **self.kwargs)


class AttackPlan:
    """A validated ``attack`` argument, ready to be built once the bounds are known.

    Parameters
    ----------
    attack : str, Attack subclass, Attack instance or list of these
        The metric's ``attack`` argument.
    eps : float
        Radius of the ball.
    norm : {'linf', 'l2', 'l1'}
        Norm of the ball.
    settings : dict
        The schedule keywords the user set (``steps``, ``step_size``, ``restarts`` that are
        not None): each attack built by name or class must accept them.
    attack_params : dict or None
        Further keyword arguments of every attack built by name or class.
    bounds : 'estimator', None or (low, high)
        The metric's ``bounds`` argument (an instance carries its own).
    common : dict
        ``batch_size``, ``random_state`` and ``verbose`` of the attack.
    """

    def __init__(self, attack, *, eps, norm, settings, attack_params, bounds, common):
        self.is_list = isinstance(attack, (list, tuple))
        specs = list(attack) if self.is_list else [attack]
        if not specs:
            raise ValueError("attack must hold at least one attack, got an empty list.")
        self.eps, self.norm, self.common = eps, norm, common
        self.stages = [
            _Stage(spec, eps=eps, norm=norm, settings=settings, attack_params=attack_params,
                   common=common)
            for spec in specs
        ]
        if all(stage.instance is not None for stage in self.stages):
            given = {**{key: True for key in settings}, "attack_params": bool(attack_params),
                     "bounds": not (isinstance(bounds, str) and bounds == ESTIMATOR_BOUNDS)}
            clash = sorted(name for name, set_ in given.items() if set_)
            if clash:
                raise ValueError(
                    f"{clash} cannot be combined with an Attack instance, which carries its "
                    "own threat model and settings: set them on the instance, or pass the "
                    "attack by name or class."
                )
        self.uses_gradients = any(stage.uses_gradients for stage in self.stages)

    def build(self, bounds):
        """The attack (a Cascade for a list) on the ball with these raw-space bounds.

        Its arguments were checked when the plan was made: the constructors skip their
        checks.
        """
        threat = ThreatModel(eps=self.eps, norm=self.norm, bounds=bounds)
        with config_context(skip_parameter_validation=True):
            attacks = [stage.build(threat) for stage in self.stages]
            if not self.is_list:
                return attacks[0]
            # The same attack twice (other settings, say) gets a numbered name: 'pgd',
            # 'pgd-2'.
            named, seen = [], {}
            for attack in attacks:
                seen[attack.name] = seen.get(attack.name, 0) + 1
                suffix = f"-{seen[attack.name]}" if seen[attack.name] > 1 else ""
                named.append((f"{attack.name}{suffix}", attack))
            return Cascade(threat, named, **self.common)
