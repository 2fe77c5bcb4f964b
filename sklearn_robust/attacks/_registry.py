"""Attacks by name, as the scorers and the command line ask for them."""

from __future__ import annotations

from functools import partial

from ._apgd import APGD
from ._apgd_targeted import APGDTargeted
from ._auto import AutoAttack
from ._fab import FAB, FABTargeted
from ._pgd import FGSM, PGD
from ._square import Square


def _preset(cls, **defaults):
    # A factory with fixed defaults that still says what the attack needs and accepts.
    factory = partial(cls, **defaults)
    factory.uses_gradients = cls.uses_gradients
    factory.schedule_params = cls.schedule_params
    return factory


#: The attacks by name: ``name -> factory(threat, **kwargs)``, as accepted by the
#: ``attack=`` argument of the scorers. Every factory has the attributes
#: ``uses_gradients`` (False: a black box) and ``schedule_params`` (the keywords among
#: ``'steps'``, ``'step_size'``, ``'restarts'`` it accepts).
ATTACKS = {
    "pgd": PGD,
    "fgsm": FGSM,
    "apgd-ce": _preset(APGD, loss="ce"),
    "apgd-dlr": _preset(APGD, loss="dlr"),
    "apgd-t": APGDTargeted,
    "fab": FAB,
    "fab-t": FABTargeted,
    "square": Square,
    "auto": AutoAttack,
}


def make_attack(name, threat, **kwargs):
    """Build the attack called ``name`` for ``threat``.

    Parameters
    ----------
    name : str
        One of :data:`ATTACKS`: ``'pgd'``, ``'fgsm'``, ``'apgd-ce'``, ``'apgd-dlr'``,
        ``'apgd-t'``, ``'fab'``, ``'fab-t'``, ``'square'`` (black box) or ``'auto'``
        (the AutoAttack cascade).
    threat : ThreatModel
        The ball and bounds.
    **kwargs
        Passed to the attack's constructor (``steps``, ``step_size``, ``restarts`` as
        its ``schedule_params`` allow, ``n_queries``, ``batch_size``, ``random_state``,
        ``verbose``...).

    Returns
    -------
    Attack

    Examples
    --------
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.attacks import ATTACKS, make_attack
    >>> make_attack("pgd", ThreatModel(eps=0.1), steps=10)
    PGD(threat=ThreatModel(eps=0.1, norm='linf', bounds=None))
    >>> make_attack("apgd-dlr", ThreatModel(eps=0.1), steps=20).loss
    'dlr'
    >>> ATTACKS["apgd-ce"].schedule_params
    ('steps', 'restarts')
    >>> make_attack("square", ThreatModel(eps=0.1)).uses_gradients
    False
    """
    if not isinstance(name, str) or name not in ATTACKS:
        raise ValueError(f"attack must be one of {sorted(ATTACKS)}, got {name!r}.")
    return ATTACKS[name](threat, **kwargs)
