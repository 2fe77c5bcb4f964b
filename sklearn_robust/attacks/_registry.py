"""Attacks by name, as the scorers and the command line ask for them."""

from __future__ import annotations

from ._pgd import FGSM, PGD

# name -> factory(threat, **kwargs). Extended by the APGD, Square and AutoAttack modules.
ATTACKS = {
    "pgd": PGD,
    "fgsm": FGSM,
}


def make_attack(name, threat, **kwargs):
    """Build the attack called ``name`` for ``threat``.

    Parameters
    ----------
    name : str
        One of :data:`ATTACKS` (``'pgd'``, ``'fgsm'``, ...).
    threat : ThreatModel
        The ball and bounds.
    **kwargs
        Passed to the attack's constructor (``restarts``, ``batch_size``,
        ``random_state``, ``verbose``...).

    Examples
    --------
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.attacks import make_attack
    >>> make_attack("pgd", ThreatModel(eps=0.1))
    PGD(threat=ThreatModel(eps=0.1, norm='linf', steps=10, step_size=None, bounds=None))
    """
    if name not in ATTACKS:
        raise ValueError(f"attack must be one of {sorted(ATTACKS)}, got {name!r}.")
    return ATTACKS[name](threat, **kwargs)
