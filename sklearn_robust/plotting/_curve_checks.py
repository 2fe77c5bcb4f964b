"""What a robustness curve is drawn from, checked: the radii, the accuracies, the attack.

The radii are finite and ``>= 0``, each checked with its position; accuracies are
fractions in ``[0, 1]``, one per radius; the attack is named in the axis label, and an
Attack instance (which carries one radius) is found in a list.
"""

import numpy as np

from ..attacks import Attack
from ..utils import check_eps
from ._base import check_1d, check_same_length


def check_eps_grid(eps):
    """eps as a 1-D float array of finite values >= 0, each checked with its position."""
    if np.isscalar(eps):
        eps = [eps]
    try:
        values = list(eps)
    except TypeError:
        raise ValueError(f"eps must be a sequence of radii >= 0, got {eps!r}.") from None
    if not values:
        raise ValueError("eps must hold at least one radius.")
    return np.array([check_eps(e, name=f"eps[{i}]", caller="RobustnessCurveDisplay")
                     for i, e in enumerate(values)])


def check_accuracy(values, name, eps):
    """Fractions in ``[0, 1]``, one per radius."""
    values = check_1d(values, name)
    check_same_length(eps, "eps", values, name)
    if np.any((values < 0) | (values > 1)):
        raise ValueError(f"{name} must lie in [0, 1] (a fraction, not a percentage), got "
                         f"{values.tolist()}.")
    return values


def has_instance(attack):
    """Whether ``attack`` is an Attack instance, or a list holding one."""
    if isinstance(attack, (list, tuple)):
        return any(has_instance(a) for a in attack)
    return isinstance(attack, Attack)


def attack_label(attack):
    """``'pgd'``, a class name, or ``'fgsm + pgd'`` for a list."""
    if attack is None or isinstance(attack, str):
        return attack
    if isinstance(attack, (list, tuple)):
        return " + ".join(str(attack_label(a)) for a in attack)
    cls = attack if isinstance(attack, type) else type(attack)
    return cls.__name__
