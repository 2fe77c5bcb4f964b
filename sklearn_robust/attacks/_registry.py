"""Attacks by name, as the scorers and the command line ask for them."""

from ._apgd import APGD, APGDTargeted
from ._auto import AutoAttack
from ._fab import FAB, FABTargeted
from ._pgd import FGSM, PGD
from ._square import Square


class _Preset:
    """An attack class with defaults of its own, that still says what it needs and accepts."""

    def __init__(self, cls, **defaults):
        self.cls, self.defaults = cls, defaults
        self.uses_gradients = cls.uses_gradients
        self.schedule_params = cls.schedule_params

    def __call__(self, threat, **kwargs):
        return self.cls(threat, **{**self.defaults, **kwargs})

    def check_params(self, norm, params):
        """The class's :meth:`~sklearn_robust.attacks.Attack.check_params`, the preset's
        defaults included."""
        self.cls.check_params(norm, {**self.defaults, **params})

    def __repr__(self):
        defaults = "".join(f", {key}={value!r}" for key, value in self.defaults.items())
        return f"{self.cls.__name__}(threat{defaults}, ...)"


#: The attacks by name: ``name -> factory(threat, **kwargs)``, as accepted by the
#: ``attack=`` argument of the scorers. Every factory has the attributes
#: ``uses_gradients`` (False: a black box) and ``schedule_params`` (the keywords among
#: ``'steps'``, ``'step_size'``, ``'restarts'`` it accepts), and the method
#: ``check_params(norm, params)`` (see :meth:`Attack.check_params`).
ATTACKS = {
    "pgd": PGD,
    "fgsm": FGSM,
    "apgd-ce": _Preset(APGD, loss="ce"),
    "apgd-dlr": _Preset(APGD, loss="dlr"),
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
