"""Robust accuracy (astuteness) under an attack, and its scikit-learn scorer."""

from __future__ import annotations

import inspect
import numbers

import numpy as np
import torch
from sklearn.utils import column_or_1d
from sklearn.utils.validation import check_is_fitted

from .._threat import ThreatModel, check_eps, check_norm
from ..attacks import ATTACKS, Attack
from ._bridge import (
    as_torch_classifier,
    check_bounds_arg,
    predict_like,
    preserved_state,
    resolve_bounds,
)

# Evaluation steps of PGD when ``steps=None`` (REFERENCE: K 20-40).
DEFAULT_STEPS = 20


def _resolve_attack(attack):
    """``(factory, instance)`` for an attack name, class or instance; the other is None."""
    if isinstance(attack, Attack):
        return None, attack
    if isinstance(attack, type) and issubclass(attack, Attack):
        return attack, None
    if isinstance(attack, str) and attack in ATTACKS:
        return ATTACKS[attack], None
    raise ValueError(
        f"attack must be one of {sorted(ATTACKS)}, an Attack subclass or an Attack instance, "
        f"got {attack!r}."
    )


def _explicit_params(factory):
    """Keyword parameters a factory names explicitly (not those swallowed by ``**kwargs``)."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins without signature
        return set()
    return {p.name for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD}


def _check_positive_int(value, name):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


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


def _build_attack(attack, *, eps, norm, steps, step_size, restarts, bounds, attack_params,
                  batch_size, random_state, verbose):
    """Validate the attack arguments; returns a function ``threat_bounds -> Attack``."""
    factory, instance = _resolve_attack(attack)
    if instance is not None:
        threat = instance.threat
        if threat.norm != norm or not np.isclose(threat.eps, eps, rtol=1e-6, atol=1e-12):
            raise ValueError(
                f"the attack instance's threat model (eps={threat.eps}, norm={threat.norm!r}) "
                f"does not match eps={eps}, norm={norm!r}."
            )
        given = {
            "steps": steps is not None, "step_size": step_size is not None,
            "restarts": restarts != 1, "attack_params": bool(attack_params),
            "bounds": not (isinstance(bounds, str) and bounds == "estimator"),
        }
        clash = sorted(name for name, set_ in given.items() if set_)
        if clash:
            raise ValueError(
                f"{clash} cannot be combined with an Attack instance, which carries its own "
                "threat model and settings: set them on the instance, or pass the attack by "
                "name or class."
            )
        return instance.uses_gradients, lambda threat_bounds: instance

    restarts = _check_positive_int(restarts, "restarts")
    batch_size = _check_positive_int(batch_size, "batch_size")
    if attack_params is not None and not isinstance(attack_params, dict):
        raise ValueError(f"attack_params must be a dict or None, got {attack_params!r}.")
    n_steps = DEFAULT_STEPS if steps is None else steps
    ThreatModel(eps=eps, norm=norm, steps=n_steps, step_size=step_size)  # validates
    explicit = _explicit_params(factory)
    kwargs = {"batch_size": batch_size, "random_state": random_state, "verbose": verbose}
    if restarts != 1:
        if "restarts" not in explicit:
            raise ValueError(f"the attack {attack!r} takes no restarts; leave restarts=1.")
        kwargs["restarts"] = restarts
    if steps is not None and "n_iter" in explicit:
        kwargs["n_iter"] = steps
    kwargs.update(attack_params or {})
    uses_gradients = getattr(factory, "uses_gradients", True)

    def make(threat_bounds):
        threat = ThreatModel(eps=eps, norm=norm, steps=n_steps, step_size=step_size,
                             bounds=threat_bounds)
        return factory(threat, **kwargs)

    return uses_gradients, make


def robust_accuracy_score(estimator, X, y, *, eps, norm="linf", attack="pgd", steps=None,
                          step_size=None, restarts=1, bounds="estimator", attack_params=None,
                          batch_size=256, random_state=None, verbose=False,
                          return_adversarial=False):
    """Robust accuracy: the share of points classified correctly at ``x`` and under attack.

    A point counts as robust only if the estimator predicts its label at the clean point
    and still predicts it at the adversarial point the attack found in the ``eps``-ball
    around it. The denominator is the number of ALL points (as in Madry et al. 2018 and
    Yang et al. 2020; ART's ``adversarial_accuracy`` divides by the initially correct
    ones), so the score is at most the clean accuracy, and equals it for ``eps=0``. Only
    clean-correct points are attacked. The attack can only find adversarial points, so
    the score is an upper bound on the true robust accuracy: use strong attacks
    (``'auto'``, more ``steps``, ``restarts``) before trusting it.

    The attack runs in the raw input space of ``estimator`` (see
    :func:`as_torch_classifier`): for a pipeline of scalers ending in a classifier of this
    library, ``eps`` is measured on the data given to ``predict``, not on the scaled data.
    The verdict at the clean and adversarial points comes from ``estimator.predict``.

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
    norm : {'linf', 'l2'}, default='linf'
        Norm of the ball.
    attack : str, Attack subclass or Attack instance, default='pgd'
        A name from :data:`sklearn_robust.attacks.ATTACKS` (``'pgd'``, ``'fgsm'``,
        ``'apgd-ce'``, ``'apgd-dlr'``, ``'apgd-t'``, ``'square'``, ``'auto'``), an
        :class:`~sklearn_robust.attacks.Attack` subclass built as ``cls(threat, **kw)``,
        or an instance, used as it is (its threat model must have this ``eps`` and
        ``norm``; ``steps``, ``step_size``, ``restarts``, ``bounds`` and
        ``attack_params`` must then be left at their defaults).
    steps : int or None, default=None
        Attack iterations: the threat model's steps (PGD), and ``n_iter`` of attacks
        that have one (APGD, AutoAttack). ``None``: 20 PGD steps and each attack's own
        default ``n_iter``.
    step_size : float or None, default=None
        PGD step; ``None`` is ``2.5 * eps / steps``.
    restarts : int, default=1
        Random restarts, for attacks that take them (PGD, APGD).
    bounds : 'estimator', None or (low, high), default='estimator'
        Valid input range in raw units. ``'estimator'``: the training bounds of the
        estimator's threat model (``threat_model_.bounds`` of an adversarially trained
        classifier), mapped back through the pipeline's scalers to raw units and widened
        where needed to contain ``X``; None when the estimator has none (naturally trained,
        or a black-box pipeline). None: unbounded. A pair of scalars or per-feature arrays:
        used as given, and ``X`` must lie inside.
    attack_params : dict or None, default=None
        Further keyword arguments of the attack (``n_queries`` of Square, ``version`` of
        AutoAttack, ``loss`` of PGD...).
    batch_size : int, default=256
        Points attacked at once.
    random_state : int, RandomState instance or None, default=None
        Seeds the attack's own generator; the global torch RNG is not touched.
    verbose : bool, default=False
        Progress bar over batches.
    return_adversarial : bool, default=False
        Also return the adversarial points.

    Returns
    -------
    score : float
        Robust accuracy in ``[0, clean accuracy]``.
    X_adv : ndarray of shape X.shape, float32
        Only with ``return_adversarial=True``: the adversarial points in raw units (the
        clean point for points not attacked).

    Raises
    ------
    ValueError
        For a negative ``eps``, an unknown ``norm`` or ``attack``, ``X`` and ``y`` of
        different lengths, labels of another type than ``classes_``, a gradient attack on
        a model without input gradients (the message names the step), before any attack
        runs.
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
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_robust import NaturalClassifier
    >>> from sklearn_robust.metrics import robust_accuracy_score
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), NaturalClassifier(max_epochs=2, random_state=0))
    >>> pipe = pipe.fit(X, y)
    >>> robust = robust_accuracy_score(pipe, X, y, eps=1.0, random_state=0)
    >>> 0.0 <= robust <= pipe.score(X, y)
    True
    >>> robust_accuracy_score(pipe, X, y, eps=0.0) == pipe.score(X, y)
    True
    """
    eps = check_eps(eps)
    check_norm(norm)
    check_bounds_arg(bounds)
    uses_gradients, make_attack = _build_attack(
        attack, eps=eps, norm=norm, steps=steps, step_size=step_size, restarts=restarts,
        bounds=bounds, attack_params=attack_params, batch_size=batch_size,
        random_state=random_state, verbose=verbose,
    )
    y = column_or_1d(y, warn=True)
    n_samples = X.shape[0] if hasattr(X, "shape") else len(X)
    if n_samples != y.shape[0]:
        raise ValueError(f"X and y have different lengths: {n_samples} != {y.shape[0]}.")
    check_is_fitted(estimator)
    bridge = as_torch_classifier(estimator, gradients=uses_gradients)
    _check_label_types(y, bridge.classes_)
    X_tensor = bridge.to_tensor(X)

    with preserved_state(estimator):
        pred = np.asarray(estimator.predict(X))
        correct = _labels_equal(pred, y)
        X_adv = X_tensor.detach().cpu().numpy().copy() if return_adversarial else None
        robust = correct.copy()
        idx = np.flatnonzero(correct)
        if eps > 0 and idx.size:
            attack_obj = make_attack(resolve_bounds(bounds, bridge, X_tensor))
            # Clean-correct points: the label is the prediction, a member of classes_.
            index = {label: i for i, label in enumerate(np.asarray(bridge.classes_).tolist())}
            # Built outside inference mode: autograd cannot save inference tensors (a caller
            # under torch.inference_mode() would otherwise make the attack fail).
            with torch.inference_mode(False), torch.enable_grad():
                targets = torch.as_tensor([index[label] for label in pred[idx].tolist()],
                                          dtype=torch.long)
                adv = attack_obj(bridge, X_tensor[torch.as_tensor(idx)].clone(), targets)
            adv = adv.detach().cpu().numpy()
            robust[idx] = _labels_equal(predict_like(estimator, adv, X), y[idx])
            if X_adv is not None:
                X_adv[idx] = adv
    score = float(robust.mean())
    if return_adversarial:
        return score, X_adv
    return score


# ---------------------------------------------------------------------------- scorers
def _format_kwargs(kwargs):
    return "".join(f", {key}={value!r}" for key, value in kwargs.items())


class _EstimatorScorer:
    """A scorer ``scorer(estimator, X, y)`` that needs the estimator, not its predictions.

    scikit-learn's :func:`~sklearn.metrics.make_scorer` builds scorers from functions of
    ``(y_true, y_pred)``; attacks need the model itself, so these scorers are plain
    callables with the signature every ``scoring=`` argument accepts.
    """

    _score_func = None
    _sign = 1
    name = "score"

    def __init__(self, **kwargs):
        self._kwargs = kwargs

    def __call__(self, estimator, X, y=None, sample_weight=None):
        """The score of the fitted ``estimator`` on ``X`` and ``y`` (greater is better)."""
        if sample_weight is not None:
            raise ValueError(f"the {self.name} scorer does not support sample_weight.")
        return self._sign * self._score(estimator, X, y)

    def _accept_sample_weight(self):
        # Asked by scikit-learn's multi-metric scorer before routing sample_weight.
        return False

    def __repr__(self):
        func = type(self)._score_func.__name__
        sign = "" if self._sign > 0 else ", greater_is_better=False"
        return f"make_scorer({func}{sign}{_format_kwargs(self._kwargs)})"


class _RobustScorer(_EstimatorScorer):
    _score_func = staticmethod(robust_accuracy_score)
    name = "robust_accuracy"

    def _score(self, estimator, X, y):
        if y is None:
            raise ValueError("the robust_accuracy scorer needs the true labels y.")
        return robust_accuracy_score(estimator, X, y, **self._kwargs)


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
    norm : {'linf', 'l2'}, default='linf'
        Norm of the ball.
    attack : str, Attack subclass or Attack instance, default='pgd'
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
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.model_selection import cross_validate
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_robust import NaturalClassifier
    >>> from sklearn_robust.metrics import make_robust_scorer
    >>> scorer = make_robust_scorer(eps=0.5, steps=5, random_state=0)
    >>> scorer
    make_scorer(robust_accuracy_score, eps=0.5, norm='linf', attack='pgd', steps=5, random_state=0)
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), NaturalClassifier(max_epochs=2, random_state=0))
    >>> cv = cross_validate(pipe, X, y, cv=2, scoring={"acc": "accuracy", "robust": scorer})
    >>> bool((cv["test_robust"] <= cv["test_acc"]).all())
    True
    """
    eps = check_eps(eps)
    check_norm(norm)
    _resolve_attack(attack)
    allowed = set(inspect.signature(robust_accuracy_score).parameters) - {
        "estimator", "X", "y", "eps", "norm", "attack", "return_adversarial"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(
            f"make_robust_scorer got unexpected keyword arguments {unknown}; allowed: "
            f"{sorted(allowed)}."
        )
    params = inspect.signature(robust_accuracy_score).parameters
    settings = {name: kwargs.get(name, params[name].default) for name in (
        "steps", "step_size", "restarts", "bounds", "attack_params", "batch_size",
        "random_state", "verbose")}
    check_bounds_arg(settings["bounds"])  # fail now, not in the middle of a search
    _build_attack(attack, eps=eps, norm=norm, **settings)
    return _RobustScorer(eps=eps, norm=norm, attack=attack, **kwargs)
