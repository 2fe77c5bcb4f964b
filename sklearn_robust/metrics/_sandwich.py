"""The sandwich: per radius, the interval in which the true robust accuracy lies.

Certificates (IBP, CROWN) and the decided-robust points of the exact MILP bound the
robust accuracy from below; the attack, and the points the MILP did not prove robust,
from above. :func:`robustness_sandwich` computes them all at every radius and checks,
point by point, that no lower bound exceeds an upper one; the report of the bounds is
:class:`SandwichReport` (``_sandwich_report.py``).
"""

import warnings

import numpy as np
from sklearn.utils import column_or_1d

from ..bridge import predict_like
from ..separation import r_separation
from ..utils import NON_NEGATIVE_INT, POSITIVE, check_eps
from ._base import PIPELINE_EXAMPLE, check_params, n_samples_of, untouched
from ._certified import METHOD_NORMS, certified_accuracy_score
from ._robust import _labels_equal, _plan, robust_accuracy_score
from ._sandwich_report import SandwichReport

#: The methods whose certificates are lower bounds of the estimator's own robust accuracy.
BOUND_METHODS = ("ibp", "crown")

_CONSTRAINTS = {
    "exact": ["boolean"],
    "time_limit": [None, *POSITIVE],
    "alpha_steps": NON_NEGATIVE_INT,
}


def _attack_name(attack):
    if isinstance(attack, str):
        return attack
    if isinstance(attack, (list, tuple)):
        return " + ".join(_attack_name(a) for a in attack)
    return (attack if isinstance(attack, type) else type(attack)).__name__


def _check_certify(certify, norm, exact):
    methods = (certify,) if isinstance(certify, str) else tuple(certify)
    for method in methods:
        if method == "exact":
            raise ValueError("certify takes 'ibp' and 'crown'; ask for the exact MILP with "
                             "exact=True.")
        if method == "smoothing":
            raise ValueError("method='smoothing' certifies the smoothed classifier, not this "
                             "estimator: its certificates bound another model's robust "
                             "accuracy. certify takes 'ibp' and 'crown'.")
        if method not in BOUND_METHODS:
            raise ValueError(f"certify takes methods among {list(BOUND_METHODS)}, got "
                             f"{method!r}.")
    if len(set(methods)) != len(methods):
        raise ValueError(f"certify names a method twice: {list(methods)}.")
    for method in methods + (("exact",) if exact else ()):
        if norm not in METHOD_NORMS[method]:
            raise ValueError(f"{method!r} certifies the norms {list(METHOD_NORMS[method])}, "
                             f"not norm={norm!r}.")
    return methods


def _check_eps_list(eps):
    values = [eps] if np.ndim(eps) == 0 else list(np.asarray(eps, dtype=object).ravel())
    if not values:
        raise ValueError("eps must hold at least one radius.")
    return tuple(check_eps(e, name="eps" if np.ndim(eps) == 0 else f"eps[{i}]",
                           caller="robustness_sandwich") for i, e in enumerate(values))


@PIPELINE_EXAMPLE
def robustness_sandwich(estimator, X, y, *, eps, norm="linf", bounds=None, attack="auto",
                        certify=("crown",), exact=False, time_limit=None, alpha_steps=0,
                        X_train=None, y_train=None, steps=None, restarts=None,
                        attack_params=None, batch_size=256, random_state=None,
                        verbose=False):
    """The interval of the true robust accuracy at each radius: certified below, attacked above.

    At every radius, :func:`certified_accuracy_score` with each method of ``certify``
    (lower bounds), :func:`robust_accuracy_score` with ``attack`` (an upper bound) and,
    with ``exact=True``, the exact MILP (its decided-robust points a lower bound, with
    the undecided ones an upper bound), all on the same ball (``norm``, ``eps``,
    ``bounds``). The bounds are checked point by point: a point certified by any method
    must resist the attack and have no exact counterexample. A contradiction (an unsound
    certificate, or an attack that left the ball) is reported in the report's
    ``consistent`` and ``violations`` and warned about, never hidden.

    Parameters
    ----------
    estimator : fitted classifier
        One of the library's classifiers, or a Pipeline of scalers ending in one.
    X : array-like of shape (n_samples, ...)
        Points, as ``predict`` takes them.
    y : array-like of shape (n_samples,)
        Their labels.
    eps : float or array-like of float
        Radius or radii (``>= 0``), in raw input units. ``eps=0`` gives the clean
        accuracy in every column.
    norm : {'linf', 'l2', 'l1'}, default='linf'
        Norm of the balls (the exact MILP takes linf and l1).
    bounds : None, 'estimator' or (low, high), default=None
        Valid input range in raw units, the same for the attack and the certificates.
        None: the whole ball. ``'estimator'``: the estimator's training bounds, as
        :func:`robust_accuracy_score` resolves them.
    attack : str, Attack subclass, Attack instance or list of these, default='auto'
        The attack of :func:`robust_accuracy_score` (``'auto'``: AutoAttack, the
        strongest upper bound). An instance carries one radius: a single ``eps`` only.
    certify : str or sequence of str, default=('crown',)
        Certification methods, among ``'ibp'`` and ``'crown'`` (an empty tuple for
        none). Smoothing certifies another classifier (the smoothed one) and is refused.
    exact : bool, default=False
        Also run the exact MILP (one per point and wrong class; slow beyond small
        networks).
    time_limit : float or None, default=None
        The exact MILP's seconds per point; a point not decided in time is undecided.
    alpha_steps : int, default=0
        Steps of alpha-CROWN's slope optimisation for ``'crown'`` (0: plain CROWN).
    X_train, y_train : array-like or None, default=None
        Training data; with them the report holds the r-separation ceiling at each
        radius (see :func:`~sklearn_robust.separation.r_separation`).
    steps, restarts : int or None, default=None
        The attack's iterations and restarts (None: the attack's defaults).
    attack_params : dict or None, default=None
        Further keyword arguments of the attack.
    batch_size : int, default=256
        Points attacked or bounded at once.
    random_state : int, RandomState instance or None, default=None
        Seeds the attack, the same at every radius.
    verbose : bool, default=False
        The attack's progress bar.

    Returns
    -------
    report : SandwichReport
        The bounds at each radius, with ``lower``, ``upper`` and ``consistent``.

    Raises
    ------
    ValueError
        For a negative radius, an unknown norm, attack or method, ``'exact'`` or
        ``'smoothing'`` in ``certify``, a norm a method does not certify, only one of
        ``X_train`` and ``y_train``, ``X`` and ``y`` of different lengths; before any
        attack or bound runs.

    See Also
    --------
    certified_accuracy_score : The lower bounds, one method and radius at a time.
    robust_accuracy_score : The upper bound.
    sklearn_robust.plotting.RobustnessCurveDisplay.from_sandwich : The report drawn.

    Examples
    --------
    %(pipeline_example)s
    >>> from sklearn_robust.metrics import robustness_sandwich
    >>> pipe = pipe.fit(X, y)
    >>> report = robustness_sandwich(pipe, X[:50], y[:50], eps=[0.0, 0.05], attack="pgd",
    ...                              certify=("ibp", "crown"), random_state=0)
    >>> report.consistent
    (True, True)
    >>> report.lower[0] == report.upper[0] == report.clean_accuracy
    True
    >>> report.certified["crown"][1] <= report.attacked[1]
    True
    >>> list(report.table())
    ['eps', 'clean', 'ibp', 'crown', 'attacked', 'lower', 'upper', 'consistent']
    """
    radii = _check_eps_list(eps)
    check_params("robustness_sandwich", {
        "norm": norm, "bounds": bounds, "exact": exact, "time_limit": time_limit,
        "alpha_steps": alpha_steps, "batch_size": batch_size, "random_state": random_state,
        "verbose": verbose}, _CONSTRAINTS)
    methods = _check_certify(certify, norm, exact)
    for radius in sorted(set(radii)):  # the attack's settings, at each radius
        _plan("robustness_sandwich", eps=radius, norm=norm, attack=attack, steps=steps,
              step_size=None, restarts=restarts, bounds=bounds, attack_params=attack_params,
              batch_size=batch_size, random_state=random_state, verbose=verbose)
    if (X_train is None) != (y_train is None):
        raise ValueError("X_train and y_train must be given together.")
    y = column_or_1d(y, warn=True)
    if n_samples_of(X) != y.shape[0]:
        raise ValueError(f"X and y have different lengths: {n_samples_of(X)} != {y.shape[0]}.")

    distances = None
    if X_train is not None:
        distances = r_separation(X_train, y_train, X, y, norm=norm).test_train_distances
    with untouched(estimator):
        correct = _labels_equal(np.asarray(estimator.predict(X)), y)
    shared = {"norm": norm, "bounds": bounds, "batch_size": batch_size}
    attack_kw = {"attack": attack, "steps": steps, "restarts": restarts,
                 "attack_params": attack_params, "random_state": random_state,
                 "verbose": verbose}
    rows = [_at_radius(estimator, X, y, radius, correct, methods, exact, shared, attack_kw,
                       {"time_limit": time_limit, "alpha_steps": alpha_steps})
            for radius in radii]
    column = lambda key: tuple(row[key] for row in rows)  # noqa: E731
    violations = tuple(line for row in rows for line in row["violations"])
    report = SandwichReport(
        eps=radii, norm=norm, n_points=int(y.shape[0]),
        clean_accuracy=float(correct.mean()) if y.shape[0] else 0.0,
        attack=_attack_name(attack), attacked=column("attacked"),
        certified={method: tuple(row["certified"][method] for row in rows)
                   for method in methods},
        exact_lower=column("exact_lower") if exact else None,
        exact_upper=column("exact_upper") if exact else None,
        exact_undecided=column("undecided") if exact else None,
        separation_ceiling=None if distances is None else tuple(
            1.0 - float(np.mean(distances <= 2.0 * radius)) for radius in radii),
        consistent=tuple(not row["violations"] for row in rows), violations=violations)
    if violations:
        warnings.warn(
            "robustness_sandwich: a lower bound exceeds an upper one, so a certificate is "
            "unsound or the attack left the ball: " + "; ".join(violations), stacklevel=2)
    return report


def _at_radius(estimator, X, y, eps, correct, methods, exact, shared, attack_kw, milp):
    """Every bound at one radius, and the point-by-point contradictions between them."""
    n_points = max(int(y.shape[0]), 1)
    certified, masks = {}, {}
    for method in methods:
        score, cert = certified_accuracy_score(
            estimator, X, y, eps=eps, method=method, return_certificates=True,
            alpha_steps=milp["alpha_steps"], **shared)
        certified[method], masks[method] = score, cert.certified
    row = {"certified": certified}
    counterexample = None
    if exact:
        _, cert = certified_accuracy_score(estimator, X, y, eps=eps, method="exact",
                                           return_certificates=True,
                                           time_limit=milp["time_limit"], **shared)
        masks["exact"] = cert.certified
        undecided = int((cert.status == "unknown").sum())
        counterexample = cert.status == "counterexample"
        row.update(exact_lower=int(cert.certified.sum()) / n_points, undecided=undecided,
                   exact_upper=(int(cert.certified.sum()) + undecided) / n_points)
    attacked, X_adv = robust_accuracy_score(estimator, X, y, eps=eps, return_adversarial=True,
                                            **shared, **attack_kw)
    with untouched(estimator):
        resisted = correct & _labels_equal(predict_like(estimator, X_adv, X), y)
    row["attacked"] = attacked
    found = []
    for method, mask in masks.items():
        broken = int((mask & ~resisted).sum())
        if broken:
            found.append(f"eps={eps:g}: {method} certifies {broken} point(s) the attack broke")
        if counterexample is not None and method != "exact":
            refuted = int((mask & counterexample).sum())
            if refuted:
                found.append(f"eps={eps:g}: {method} certifies {refuted} point(s) with an "
                             "exact counterexample")
    lower = max([*certified.values(), row.get("exact_lower", 0.0)])
    upper = min(attacked, row.get("exact_upper", 1.0))
    if not found and lower > upper:
        found.append(f"eps={eps:g}: lower bound {lower:.4g} > upper bound {upper:.4g}")
    row["violations"] = found
    return row
