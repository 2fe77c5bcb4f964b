"""AutoAttack (Croce & Hein 2020): APGD-CE, APGD-T, FAB-T and Square as a cascade.

A preset of :class:`~sklearn_robust.attacks.Cascade`: the stage list and its budgets.
The per-stage counts tell whether the black-box stage broke points that the gradient
attacks missed, a sign of gradient masking.
"""

from sklearn import config_context

from ..utils import POSITIVE_INT, StrOptions
from ._apgd import APGD, APGDTargeted
from ._base import Attack, check_threat
from ._cascade import Cascade
from ._docs import docs
from ._fab import FABTargeted
from ._square import Square
from ._warnings import warn_once

# Budgets of the versions; explicit steps / n_target_classes / n_queries override them.
VERSIONS = {
    "standard": {"steps": 100, "n_target_classes": 9, "n_queries": 5000, "eot_iter": 1},
    "fast": {"steps": 20, "n_target_classes": 3, "n_queries": 500, "eot_iter": 1},
    "rand": {"steps": 100, "n_target_classes": 9, "n_queries": 5000, "eot_iter": 20},
}


# AutoAttack's l_1 'standard' (set_version in autoattack/autoattack.py): APGD-CE with 5
# restarts, APGD-T on 5 targets, both with use_largereps (radii 3, 2, 1 times eps).
L1_STANDARD = {"apgd_restarts": 5, "apgd_targets": 5}


def _stages(threat, version, budget, explicit_targets=False):
    """The stage list of ``version`` with ``budget``, in AutoAttack's order."""
    steps, targets = budget["steps"], budget["n_target_classes"]
    if version == "rand":  # expectation over transformation, no targeted or black-box stage
        return [(f"apgd-{loss}", APGD(threat, loss=loss, steps=steps,
                                      eot_iter=budget["eot_iter"]))
                for loss in ("ce", "dlr")]
    l1 = threat.norm == "l1"
    restarts, apgd_targets = 1, targets
    if l1 and version == "standard":
        restarts = L1_STANDARD["apgd_restarts"]
        apgd_targets = targets if explicit_targets else L1_STANDARD["apgd_targets"]
    apgd = {"steps": steps, "shrinking_eps": l1}
    return [
        ("apgd-ce", APGD(threat, loss="ce", restarts=restarts, **apgd)),
        ("apgd-t", APGDTargeted(threat, n_target_classes=apgd_targets, **apgd)),
        ("fab-t", FABTargeted(threat, n_target_classes=targets, steps=steps)),
        # 'standard' keeps the p schedule of a 10000-query run (resc_schedule=False);
        # the fast preset stretches it over its few queries so the windows still shrink.
        ("square", Square(threat, n_queries=budget["n_queries"],
                          rescale_schedule=version != "standard")),
    ]


@docs
class AutoAttack(Cascade):
    """AutoAttack: APGD-CE, APGD-T, FAB-T and Square as a cascade (or a fast preset).

    Clean-misclassified points are not attacked. Each stage then runs only on the points
    still robust; a point broken by a stage keeps that stage's adversarial example and
    the other points are returned unchanged (see :class:`Cascade`). After a call,
    :attr:`stage_counts_` says how many points each stage broke.

    ``version='standard'`` is AutoAttack's standard evaluation (Croce & Hein 2020), for
    l_inf and l_2: APGD-CE (100 iterations), APGD-T (9 targets, 100 iterations each),
    FAB-T (9 targets, 100 iterations each), Square (5000 queries, the p schedule of a
    10000-query run as in ``resc_schedule=False``). ``version='rand'``, for randomised
    models: APGD-CE and APGD-DLR, 100 iterations, each gradient the mean of 20 samples
    (expectation over transformation). ``version='fast'`` is *not* AutoAttack but a
    quick preset of the same stages: 20 iterations, 3 targets, 500 queries.

    Under ``norm='l1'`` the stages are l_1 ones, with the budgets of AutoAttack's l_1
    ``'standard'`` version (Croce & Hein 2021): l1-APGD-CE with 5 restarts and l1-APGD-T
    on 5 targets, both with ``shrinking_eps`` (30/30/40 % of the steps at 3, 2, 1 times
    eps: ``use_largereps``), FAB-T (l_1, 9 targets) and Square l_1
    (:class:`Square` under l_1, 5000 queries).
    ``n_target_classes`` given explicitly sets both targeted stages. ``'fast'`` under
    l_1 keeps ``shrinking_eps`` with one restart; ``'rand'`` runs plain l1-APGD, as
    AutoAttack does.

    Fallbacks and checks, each announced by a ``UserWarning``: with 2 classes the APGD-T
    stage is skipped; with 3 classes it runs untargeted APGD-DLR (see
    :class:`APGDTargeted`); Square breaking more than 0.2 % of the points after the
    gradient stages flags gradient masking; so do missing or zero input gradients, and
    randomised or probability outputs (see :class:`Attack`).

    Parameters
    ----------
    threat : ThreatModel
        Norm, ``eps`` and bounds shared by all stages.
    version : {'standard', 'fast', 'rand'}, default='standard'
        Stages and budgets, as above.
    steps : int or None, default=None
        Iterations per run of APGD and FAB (``n_iter`` in Croce & Hein's code); ``None``
        takes the version's.
    n_target_classes : int or None, default=None
        Target classes of APGD-T and FAB-T; ``None`` takes the version's.
    n_queries : int or None, default=None
        Square queries per point; ``None`` takes the version's.
    %(attack_kwargs)s

    %(cascade_attributes)s

    See Also
    --------
    Cascade : The generic cascade over any list of attacks.
    APGD, APGDTargeted, FABTargeted, Square : The stages.

    %(autoattack_refs)s

    %(attack_example)s
    >>> from sklearn_robust.attacks import AutoAttack
    >>> attack = AutoAttack(ThreatModel(eps=0.3, bounds=(0, 1)), version="fast",
    ...                     random_state=0)
    >>> X_adv = attack(model, X, y)
    >>> list(attack.stage_counts_)
    ['apgd-ce', 'apgd-t', 'fab-t', 'square']
    >>> attack.robust_ == int((model(X_adv).argmax(dim=1) == y).sum())
    True
    """

    name = "auto"
    uses_gradients = True
    schedule_params = ("steps",)

    _parameter_constraints = {
        **Attack._parameter_constraints,
        "version": [StrOptions(set(VERSIONS))],
        "steps": [None, *POSITIVE_INT],
        "n_target_classes": [None, *POSITIVE_INT],
        "n_queries": [None, *POSITIVE_INT],
    }

    def __init__(self, threat, *, version="standard", steps=None, n_target_classes=None,
                 n_queries=None, **kwargs):
        self.threat = check_threat(threat)
        self._set_params(version=version, steps=steps, n_target_classes=n_target_classes,
                         n_queries=n_queries)
        budget = dict(VERSIONS[version])
        for key in ("steps", "n_target_classes", "n_queries"):
            if getattr(self, key) is not None:
                budget[key] = getattr(self, key)
        # The stages' settings follow from those checked here: they skip their checks.
        with config_context(skip_parameter_validation=True):
            stages = _stages(threat, version, budget,
                             explicit_targets=n_target_classes is not None)
        super().__init__(threat, stages, **kwargs)

    @property
    def expects_randomness(self):
        """``True`` for ``version='rand'``, built for randomised models."""
        return self.version == "rand"

    def __repr__(self):
        return f"{type(self).__name__}(threat={self.threat!r}, version={self.version!r})"

    def _skips(self, name, n_classes):
        # On 2 classes APGD-T would fall back to APGD-CE, the stage that already ran.
        if name == "apgd-t" and n_classes < 3:
            warn_once(
                f"AutoAttack: the model has {n_classes} classes, APGD-T needs at least 4 "
                "(DLR at least 3): the APGD-T stage is skipped.",
                stacklevel=4,
            )
            return True
        return False
