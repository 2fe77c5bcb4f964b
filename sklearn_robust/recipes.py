"""Training recipes: estimators configured with the schedule, averaging and augmentation
that reach the best robust accuracy we measured (``docs/recipe.md``)."""

from numbers import Real

import torch

from .callbacks import AttackStepsSchedule, FixedLengthLRScheduler, WeightAveraging
from .estimators import ATClassifier, SCOREClassifier, TRADESClassifier
from .utils import NON_NEGATIVE, POSITIVE_INT, Interval, StrOptions, validate_params_of

__all__ = ["RECIPE_METHODS", "robust_recipe"]

#: The estimators :func:`robust_recipe` can configure, by name.
RECIPE_METHODS = {"trades": TRADESClassifier, "score": SCOREClassifier, "at": ATClassifier}


_CONSTRAINTS = {
    "method": [StrOptions(set(RECIPE_METHODS))],
    "eps": NON_NEGATIVE,
    "train_eps_factor": [Interval(Real, 1, None, closed="left")],
    "max_epochs": POSITIVE_INT,
}


def robust_recipe(
    method="trades",
    *,
    eps=0.1,
    train_eps_factor=1.5,
    max_epochs=180,
    lr=3e-3,
    ema_decay=0.995,
    ls=0.1,
    max_shift=0,
    attack_steps=10,
    late_attack_steps=None,
    random_state=None,
    **params,
):
    """An adversarially trained estimator with the recipe that leads on digits.

    The estimator is an ordinary one of this library (``fit``, ``GridSearchCV``,
    ``Pipeline``, ``save_params`` all work); the recipe is in its parameters and in named
    skorch callbacks:

    - training at a radius ``train_eps_factor`` times the evaluation radius ``eps``, which
      leaves a margin for the test points (their worst case lies farther from the
      training points than the training attack looked);
    - a one-cycle learning-rate schedule over the ``max_epochs`` epochs (warm-up to ``lr``
      in the first 30%, cosine decay to ``lr / 1e5``), with skorch's ``LRScheduler`` and
      torch's ``OneCycleLR`` (callback ``'lr_schedule'``, a
      :class:`~sklearn_robust.callbacks.FixedLengthLRScheduler`);
    - an exponential moving average of the weights, installed when training ends
      (:class:`~sklearn_robust.callbacks.WeightAveraging`, callback ``'weight_averaging'``);
    - label smoothing ``ls`` of the labels' loss term;
    - optionally random image shifts (``max_shift``) and more attack steps in the last
      quarter of training (``late_attack_steps``,
      :class:`~sklearn_robust.callbacks.AttackStepsSchedule`).

    Parameters
    ----------
    method : {'trades', 'score', 'at'}, default='trades'
        The training objective: :class:`~sklearn_robust.TRADESClassifier`,
        :class:`~sklearn_robust.SCOREClassifier` or :class:`~sklearn_robust.ATClassifier`.
    eps : float, default=0.1
        The radius the model should be robust at (the evaluation radius).
    train_eps_factor : float, default=1.5
        The training attack's radius is ``train_eps_factor * eps``; must be ``>= 1``.
    max_epochs : int, default=180
        Length of training; the learning-rate schedule spans exactly these epochs, so
        build a new recipe rather than changing ``max_epochs`` afterwards. Continuing
        with ``partial_fit`` past the schedule's end is refused with a ``ValueError``
        that names the ways on (see
        :class:`~sklearn_robust.callbacks.FixedLengthLRScheduler`).
    lr : float, default=3e-3
        Peak learning rate of the one-cycle schedule (Adam).
    ema_decay : float or None, default=0.995
        Decay of the weight average per batch; ``None`` trains without averaging.
    ls : float, default=0.1
        Label smoothing of the labels' loss term, in ``[0, 1)`` (the true class gets
        ``1 - ls``, each other class ``ls / (C - 1)``); ``0`` uses the plain labels.
    max_shift : int, default=0
        Random image translations of up to this many pixels (image input only).
    attack_steps : int, default=10
        Steps of the training attack.
    late_attack_steps : int or None, default=None
        Steps of the training attack in the last quarter of the epochs; ``None`` keeps
        ``attack_steps`` throughout.
    random_state : int or None, default=None
        Seed of the fit.
    **params
        Any other parameter of the estimator (``beta``, ``module__channels``, ``norm``,
        ``bounds``, ``device``...).

    Returns
    -------
    estimator : TRADESClassifier, SCOREClassifier or ATClassifier
        Unfitted.

    See Also
    --------
    sklearn_robust.callbacks.WeightAveraging, sklearn_robust.callbacks.AttackStepsSchedule

    Examples
    --------
    >>> from sklearn_robust.datasets import load_digits_images
    >>> from sklearn_robust.recipes import robust_recipe
    >>> X_train, X_test, y_train, y_test = load_digits_images()
    >>> clf = robust_recipe("trades", eps=0.1, max_epochs=3, attack_steps=2, max_shift=1,
    ...                     random_state=0)
    >>> clf.eps, [name for name, _ in clf.callbacks]
    (0.15, ['lr_schedule', 'weight_averaging'])
    >>> clf.fit(X_train, y_train).history[:, "event_lr"][-1] < 3e-3
    True
    """
    validate_params_of(_CONSTRAINTS, dict(method=method, eps=eps,
                                          train_eps_factor=train_eps_factor,
                                          max_epochs=max_epochs), "robust_recipe")
    if "callbacks" in params:
        raise ValueError(
            "robust_recipe builds its own callbacks; add yours to the returned estimator's "
            "callbacks list instead."
        )
    callbacks = [
        ("lr_schedule", FixedLengthLRScheduler(
            torch.optim.lr_scheduler.OneCycleLR, total_steps=max_epochs, max_lr=lr,
        )),
    ]
    if ema_decay is not None:
        callbacks.append(("weight_averaging", WeightAveraging(decay=ema_decay)))
    if late_attack_steps is not None:
        start = max(1, max_epochs - max_epochs // 4 + 1)
        callbacks.append(
            ("attack_steps_schedule", AttackStepsSchedule({start: late_attack_steps}))
        )
    return RECIPE_METHODS[method](
        eps=round(float(train_eps_factor * eps), 12),  # 0.15, not 0.15000000000000002
        attack_steps=attack_steps,
        max_epochs=max_epochs,
        lr=lr,
        ls=ls,
        max_shift=max_shift,
        random_state=random_state,
        callbacks=callbacks,
        **params,
    )
