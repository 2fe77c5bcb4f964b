"""Attacks by name, as the scorers and the command line ask for them."""

from __future__ import annotations

from functools import partial

from ._apgd import APGD, APGDTargeted
from ._auto import AutoAttack
from ._pgd import FGSM, PGD
from ._square import Square


def _preset(cls, **defaults):
    # A factory with fixed defaults that still tells whether the attack needs gradients.
    factory = partial(cls, **defaults)
    factory.uses_gradients = cls.uses_gradients
    return factory


#: The attacks by name: ``name -> factory(threat, **kwargs)``, as accepted by the
#: ``attack=`` argument of the scorers. Every factory has a ``uses_gradients`` attribute.
ATTACKS = {
    "pgd": PGD,
    "fgsm": FGSM,
    "apgd-ce": _preset(APGD, loss="ce"),
    "apgd-dlr": _preset(APGD, loss="dlr"),
    "apgd-t": APGDTargeted,
    "square": Square,
    "auto": AutoAttack,
}


def make_attack(name, threat, **kwargs):
    """Build the attack called ``name`` for ``threat``.

    Parameters
    ----------
    name : str
        One of :data:`ATTACKS`: ``'pgd'``, ``'fgsm'``, ``'apgd-ce'``, ``'apgd-dlr'``,
        ``'apgd-t'``, ``'square'`` (black box) or ``'auto'`` (the AutoAttack cascade).
    threat : ThreatModel
        The ball and bounds.
    **kwargs
        Passed to the attack's constructor (``restarts``, ``n_iter``, ``n_queries``,
        ``batch_size``, ``random_state``, ``verbose``...).

    Returns
    -------
    Attack

    Examples
    --------
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.attacks import make_attack
    >>> make_attack("pgd", ThreatModel(eps=0.1))
    PGD(threat=ThreatModel(eps=0.1, norm='linf', steps=10, step_size=None, bounds=None))
    >>> make_attack("apgd-dlr", ThreatModel(eps=0.1), n_iter=20).loss
    'dlr'
    >>> make_attack("square", ThreatModel(eps=0.1)).uses_gradients
    False
    """
    if not isinstance(name, str) or name not in ATTACKS:
        raise ValueError(f"attack must be one of {sorted(ATTACKS)}, got {name!r}.")
    return ATTACKS[name](threat, **kwargs)
