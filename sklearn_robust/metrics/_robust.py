"""Robust accuracy (astuteness) under an attack, and its scikit-learn scorer."""

import numpy as np
import torch
from sklearn.utils import column_or_1d

from ..bridge import predict_like
from ..utils import NON_NEGATIVE_INT, POSITIVE_INT, POSITIVE_INT_OR_AUTO
from ._attacks import SCHEDULE, AttackPlan
from ._base import PIPELINE_EXAMPLE, bridge_inputs, check_params, n_samples_of, untouched
from ._report import RobustAccuracyReport
from ._scorer import EstimatorScorer, scorer_settings

_CONSTRAINTS = {
    "batch_size": POSITIVE_INT_OR_AUTO,
    "steps": [None, *NON_NEGATIVE_INT],
    "restarts": [None, *POSITIVE_INT],
    "attack_params": [None, dict],
    "return_adversarial": ["boolean"],
    "return_details": ["boolean"],
}


def _labels_equal(a, b):
    """Elementwise ``a == b`` for label arrays of any types (mismatched types are unequal)."""
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    return np.array([bool(u == v) for u, v in zip(a.tolist(), b.tolist(), strict=True)], dtype=bool)


def _check_label_types(y, classes):
    """Refuse string labels for numeric classes and the reverse, as ``accuracy_score`` does."""
    kinds = {np.asarray(y).dtype.kind, np.asarray(classes).dtype.kind}
    if kinds & {"U", "S"} and kinds & {"b", "i", "u", "f"}:
        raise ValueError(
            f"y holds labels of dtype {np.asarray(y).dtype}, but the estimator's classes_ "
            f"have dtype {np.asarray(classes).dtype}: labels of different types never match."
        )


def _plan(caller, *, eps, norm, attack, steps, step_size, restarts, bounds, attack_params,
          batch_size, random_state, verbose, **flags):
    """Validate every argument but the data, once; returns ``(eps, AttackPlan)``.

    The plan checks the attacks' arguments without building them; ``plan.build`` builds
    them once, when the bounds are known.
    """
    settings = {"steps": steps, "step_size": step_size, "restarts": restarts}
    check_params(caller, {"eps": eps, "norm": norm, **settings, "bounds": bounds,
                          "attack_params": attack_params, "batch_size": batch_size,
                          "random_state": random_state, "verbose": verbose, **flags},
                 _CONSTRAINTS)
    plan = AttackPlan(
        attack, eps=float(eps), norm=norm, bounds=bounds, attack_params=attack_params,
        settings={key: settings[key] for key in SCHEDULE if settings[key] is not None},
        common={"batch_size": batch_size, "random_state": random_state, "verbose": verbose},
    )
    return float(eps), plan


@PIPELINE_EXAMPLE
def robust_accuracy_score(estimator, X, y, *, eps, norm="linf", attack="pgd", steps=None,
                          step_size=None, restarts=None, bounds="estimator", attack_params=None,
                          batch_size="auto", random_state=None, verbose=False,
                          return_adversarial=False, return_details=False):
    """Robust accuracy: the share of points classified correctly at ``x`` and under attack.

    A point counts as robust only if the estimator predicts its label at the clean point
    and still predicts it at the adversarial point the attack found in the ``eps``-ball
    around it. The denominator is the number of ALL points (as in Madry et al. 2018 and
    Yang et al. 2020; ART's ``adversarial_accuracy`` divides by the initially correct
    ones), so the score is at most the clean accuracy, and equals it for ``eps=0``. Only
    clean-correct points are attacked. The attack can only find adversarial points, so
    the score is an upper bound on the true robust accuracy: use strong attacks
    (``'auto'``, a list of attacks, more ``steps``, ``restarts``) before trusting it.

    The attack runs in the raw input space of ``estimator`` (see
    :func:`~sklearn_robust.bridge.as_torch_classifier`): for a pipeline of scalers ending
    in a classifier of this library, ``eps`` is measured on the data given to
    ``predict``, not on the scaled data. The verdict at the clean and adversarial points
    comes from ``estimator.predict``.

    Parameters
    ----------
    estimator : estimator or Pipeline
        A fitted classifier of this library, or a :class:`~sklearn.pipeline.Pipeline` of
        scalers ending in one. With a black-box attack (``attack='square'``), any fitted
        classifier with ``predict_proba``.
    X : array-like of shape (n_samples, ...)
        Inputs, as given to ``estimator.predict``.
    y : array-like of shape (n_samples,)
        True labels. Labels the estimator never saw (not in ``classes_``) cannot be
        predicted: their points count as clean-incorrect, as in ``accuracy_score``.
        String labels for numeric ``classes_`` (or the reverse) are an error.
    eps : float
        Radius of the threat ball, ``>= 0``, in raw input units.
    norm : {'linf', 'l2', 'l1'}, default='linf'
        Norm of the ball.
    attack : str, Attack subclass, Attack instance or list of these, default='pgd'
        A name from :data:`sklearn_robust.attacks.ATTACKS` (``'pgd'``, ``'fgsm'``,
        ``'apgd-ce'``, ``'apgd-dlr'``, ``'apgd-t'``, ``'fab'``, ``'fab-t'``, ``'square'``,
        ``'auto'``), an
        :class:`~sklearn_robust.attacks.Attack` subclass built as ``cls(threat, **kw)``,
        or an instance, used as it is (its threat model must have this ``eps`` and
        ``norm``; ``steps``, ``step_size``, ``restarts``, ``bounds`` and
        ``attack_params`` must then be left at their defaults). A list is the worst case
        per point over its attacks (:class:`~sklearn_robust.attacks.Cascade`): each runs
        on the points the earlier ones left standing, and ``return_details=True`` says
        what each added. The settings below go to every attack of the list given by
        name or class; instances in the list are used as they are.
    steps : int or None, default=None
        Iterations of the attack (PGD, APGD, APGD-T, AutoAttack); None keeps the
        attack's own default (20 for PGD, 100 for APGD). An attack without iterations
        (Square, FGSM) refuses it.
    step_size : float or None, default=None
        Step of PGD; None keeps PGD's ``2.5 * eps / steps``.
    restarts : int or None, default=None
        Random restarts of attacks that take them (PGD, APGD); None keeps the attack's
        default (1).
    bounds : 'estimator', None or (low, high), default='estimator'
        Valid input range in raw units. ``'estimator'``: the training bounds of the
        estimator's threat model, mapped back through the pipeline's scalers to raw
        units and widened where needed to contain ``X``; None when the estimator has none
        (naturally trained, or a black-box pipeline). None: unbounded. A pair of scalars
        or per-feature arrays: used as given, and ``X`` must lie inside.
    attack_params : dict or None, default=None
        Further keyword arguments of the attack (``n_queries`` of Square, ``version`` of
        AutoAttack, ``loss`` of PGD...).
    batch_size : int or 'auto', default='auto'
        Points attacked at once; ``'auto'`` as many as the network's widest tensor
        allows (see :class:`~sklearn_robust.attacks.Attack`), at least 256.
    random_state : int, RandomState instance or None, default=None
        Seeds the attack's own generator; the global torch RNG is not touched.
    verbose : bool, default=False
        Progress bar over batches.
    return_adversarial : bool, default=False
        Also return the adversarial points.
    return_details : bool, default=False
        Also return a :class:`RobustAccuracyReport`: the counts of clean-correct, broken
        (per attack, for a list or AutoAttack) and robust points.

    Returns
    -------
    score : float
        Robust accuracy in ``[0, clean accuracy]``.
    X_adv : ndarray of shape X.shape, float32
        Only with ``return_adversarial=True``: the adversarial points in raw units (the
        clean point for points not attacked).
    report : RobustAccuracyReport
        Only with ``return_details=True`` (last).

    Raises
    ------
    ValueError
        For a negative ``eps``, an unknown ``norm`` or ``attack``, a schedule setting the
        attack does not take (the message names both), ``X`` and ``y`` of different
        lengths, labels of another type than ``classes_``, a gradient attack on a model
        without input gradients (the message names the step), before any attack runs.
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.

    See Also
    --------
    make_robust_scorer : The same as a scorer for ``GridSearchCV`` and ``cross_validate``.
    local_lipschitz_score : Empirical local Lipschitz constant.

    Notes
    -----
    The model is left exactly as it was: parameters, buffers, gradients, the train/eval
    mode of every submodule and the global torch RNG state.

    References
    ----------
    .. [1] A. Madry, A. Makelov, L. Schmidt, D. Tsipras and A. Vladu, "Towards Deep
       Learning Models Resistant to Adversarial Attacks", ICLR 2018.
    .. [2] F. Croce and M. Hein, "Reliable evaluation of adversarial robustness with an
       ensemble of diverse parameter-free attacks", ICML 2020.
    .. [3] Y.-Y. Yang, C. Rashtchian, H. Zhang, R. Salakhutdinov and K. Chaudhuri, "A
       Closer Look at Accuracy vs. Robustness", NeurIPS 2020.

    Examples
    --------
    %(pipeline_example)s
    >>> from sklearn_robust.metrics import robust_accuracy_score
    >>> pipe = pipe.fit(X, y)
    >>> robust = robust_accuracy_score(pipe, X, y, eps=1.0, random_state=0)
    >>> 0.0 <= robust <= pipe.score(X, y)
    True
    >>> robust_accuracy_score(pipe, X, y, eps=0.0) == pipe.score(X, y)
    True

    The worst case over two attacks, and what each one added:

    >>> score, report = robust_accuracy_score(
    ...     pipe, X, y, eps=1.0, attack=["fgsm", "pgd"], random_state=0, return_details=True)
    >>> score <= robust, list(report.broken_by)
    (True, ['fgsm', 'pgd'])
    >>> report.clean_correct - sum(report.broken_by.values()) == report.robust
    True
    """
    eps, plan = _plan(
        "robust_accuracy_score", eps=eps, norm=norm, attack=attack, steps=steps,
        step_size=step_size, restarts=restarts, bounds=bounds, attack_params=attack_params,
        batch_size=batch_size, random_state=random_state, verbose=verbose,
        return_adversarial=return_adversarial, return_details=return_details,
    )
    y = column_or_1d(y, warn=True)
    if n_samples_of(X) != y.shape[0]:
        raise ValueError(f"X and y have different lengths: {n_samples_of(X)} != {y.shape[0]}.")
    bridged = bridge_inputs(estimator, X, gradients=plan.uses_gradients, bounds=bounds)
    _check_label_types(y, bridged.model.classes_)

    with untouched(estimator):
        pred = np.asarray(estimator.predict(X))
        correct = _labels_equal(pred, y)
        X_adv = bridged.X.detach().cpu().numpy().copy() if return_adversarial else None
        robust = correct.copy()
        idx = np.flatnonzero(correct)
        attack_obj = None
        if eps > 0 and idx.size:
            attack_obj = plan.build(bridged.bounds)
            # Clean-correct points: the label is the prediction, a member of classes_.
            index = {label: i for i, label in enumerate(bridged.model.classes_.tolist())}
            targets = torch.as_tensor([index[label] for label in pred[idx].tolist()],
                                      dtype=torch.long)
            adv = attack_obj(bridged.model, bridged.X[torch.as_tensor(idx)].clone(), targets)
            adv = adv.detach().cpu().numpy()
            robust[idx] = _labels_equal(predict_like(estimator, adv, X), y[idx])
            if X_adv is not None:
                X_adv[idx] = adv
    score = float(robust.mean())
    out = (score,) + ((X_adv,) if return_adversarial else ())
    if return_details:
        out += (_report(attack_obj, score, correct, robust),)
    return out if len(out) > 1 else score


def _report(attack, score, correct, robust):
    n_correct, n_robust = int(correct.sum()), int(robust.sum())
    if attack is None:
        broken_by = {}
    elif getattr(attack, "stage_counts_", None) is not None:  # a cascade counts its stages
        broken_by = dict(attack.stage_counts_)
    else:
        broken_by = {attack.name: n_correct - n_robust}
    return RobustAccuracyReport(score=score, n_points=len(correct), clean_correct=n_correct,
                                robust=n_robust, broken_by=broken_by)


@PIPELINE_EXAMPLE
def make_robust_scorer(*, eps, norm="linf", attack="pgd", **kwargs):
    """A scorer computing :func:`robust_accuracy_score`, for ``scoring=`` arguments.

    Usable wherever scikit-learn takes a scorer: ``GridSearchCV(scoring=...)``,
    ``cross_validate(scoring={'acc': 'accuracy', 'robust': make_robust_scorer(eps=0.1)})``,
    :func:`~sklearn.metrics.check_scoring`. Greater is better. It attacks the fitted
    estimator itself, so unlike skorch's cached ``EpochScoring`` it never replays clean
    predictions.

    Parameters
    ----------
    eps : float
        Radius of the threat ball, in raw input units.
    norm : {'linf', 'l2', 'l1'}, default='linf'
        Norm of the ball.
    attack : str, Attack subclass, Attack instance or list of these, default='pgd'
        See :func:`robust_accuracy_score`.
    **kwargs
        Other keyword arguments of :func:`robust_accuracy_score` (``steps``,
        ``step_size``, ``restarts``, ``bounds``, ``attack_params``, ``batch_size``,
        ``random_state``, ``verbose``).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float``, with the readable repr
        ``make_scorer(robust_accuracy_score, eps=..., norm=..., attack=...)``.

    Raises
    ------
    ValueError
        For an invalid ``eps``, ``norm``, ``attack`` or attack setting (``steps``,
        ``restarts``...), at construction.
    TypeError
        For a keyword that :func:`robust_accuracy_score` does not take.

    See Also
    --------
    robust_accuracy_score, make_lipschitz_scorer

    References
    ----------
    .. [1] A. Madry et al., "Towards Deep Learning Models Resistant to Adversarial
       Attacks", ICLR 2018.

    Examples
    --------
    >>> from sklearn_robust.metrics import make_robust_scorer
    >>> scorer = make_robust_scorer(eps=0.5, steps=5, random_state=0)
    >>> scorer
    make_scorer(robust_accuracy_score, eps=0.5, norm='linf', attack='pgd', steps=5, random_state=0)
    >>> from sklearn.model_selection import cross_validate
    %(pipeline_example)s
    >>> cv = cross_validate(pipe, X, y, cv=2, scoring={"acc": "accuracy", "robust": scorer})
    >>> bool((cv["test_robust"] <= cv["test_acc"]).all())
    True
    """
    settings = scorer_settings(
        robust_accuracy_score, kwargs, "make_robust_scorer",
        fixed=("eps", "norm", "attack", "return_adversarial", "return_details"),
    )
    eps, _ = _plan("make_robust_scorer", eps=eps, norm=norm, attack=attack, **settings)
    return EstimatorScorer(robust_accuracy_score, {"eps": eps, "norm": norm, "attack": attack,
                                                   **kwargs}, name="robust_accuracy")
