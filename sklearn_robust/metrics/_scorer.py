"""Scorers built on a metric that needs the estimator itself, not its predictions.

scikit-learn's :func:`~sklearn.metrics.make_scorer` builds scorers from functions of
``(y_true, y_pred)``; attacks need the model, so these scorers are plain callables with
the signature every ``scoring=`` argument accepts, ``scorer(estimator, X, y)``.
"""

import inspect


def scorer_settings(score_func, kwargs, caller, *, fixed):
    """The keyword settings of ``score_func`` that ``kwargs`` sets, defaults filled in.

    ``fixed`` names keywords the scorer decides itself (its own parameters, return flags);
    any other keyword ``score_func`` does not take is a ``TypeError`` naming the allowed.
    """
    params = inspect.signature(score_func).parameters
    allowed = {name for name, p in params.items()
               if p.kind is inspect.Parameter.KEYWORD_ONLY} - set(fixed)
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(
            f"{caller} got unexpected keyword arguments {unknown}; allowed: {sorted(allowed)}."
        )
    return {name: kwargs.get(name, params[name].default) for name in allowed}


class EstimatorScorer:
    """``scorer(estimator, X, y) -> sign * score_func(estimator, X[, y], **kwargs)``.

    Parameters
    ----------
    score_func : callable
        The metric, ``score_func(estimator, X, y, **kwargs)`` (``(estimator, X, **kwargs)``
        with ``needs_y=False``).
    kwargs : dict
        Its keyword arguments, in the order shown by the repr.
    name : str
        The scorer's name (``'neg_...'`` when ``sign=-1``), used in messages.
    sign : {1, -1}, default=1
        ``-1`` for a metric where smaller is better, so that greater is better.
    needs_y : bool, default=True
        Whether the metric takes the true labels (otherwise they are ignored).
    """

    def __init__(self, score_func, kwargs, *, name, sign=1, needs_y=True):
        self._score_func = score_func
        self._kwargs = dict(kwargs)
        self._sign = sign
        self.name = name
        self.needs_y = needs_y

    def __call__(self, estimator, X, y=None, sample_weight=None):
        """The score of the fitted ``estimator`` on ``X`` and ``y`` (greater is better)."""
        if sample_weight is not None:
            raise ValueError(f"the {self.name} scorer does not support sample_weight.")
        if not self.needs_y:
            return self._sign * self._score_func(estimator, X, **self._kwargs)
        if y is None:
            raise ValueError(f"the {self.name} scorer needs the true labels y.")
        return self._sign * self._score_func(estimator, X, y, **self._kwargs)

    def _accept_sample_weight(self):
        # Asked by scikit-learn's multi-metric scorer before routing sample_weight.
        return False

    def __repr__(self):
        sign = "" if self._sign > 0 else ", greater_is_better=False"
        kwargs = "".join(f", {key}={value!r}" for key, value in self._kwargs.items())
        return f"make_scorer({self._score_func.__name__}{sign}{kwargs})"
