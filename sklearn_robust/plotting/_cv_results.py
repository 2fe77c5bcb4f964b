"""A search's ``cv_results_`` read for the trade-off plot: scorer and parameter columns.

The clean and robust scores are the ``mean_test_<key>`` (and ``std_test_<key>``)
columns of a multi-metric search; a parameter is found with or without its ``param_``
prefix or pipeline path; a column of a grid whose candidates lack the parameter is a
masked array. Every refusal names what the results hold.
"""

from collections.abc import Mapping

import numpy as np

#: The prefixes of the score columns and the parameter columns of ``cv_results_``.
MEAN, STD, PARAM = "mean_test_", "std_test_", "param_"


def short_param(name):
    """``'param_tradesclassifier__beta'`` -> ``'beta'``."""
    if name is None:
        return None
    name = name[len(PARAM):] if name.startswith(PARAM) else name
    return name.rsplit("__", 1)[-1]


def unmask(column):
    """A cv_results_ parameter column as a list, with None where a candidate lacks it."""
    mask = np.ma.getmaskarray(column) if np.ma.isMaskedArray(column) else None
    values = list(np.ma.getdata(column)) if mask is not None else list(column)
    if mask is not None:
        values = [None if m else v for v, m in zip(values, mask, strict=True)]
    return values


def results_of(search_or_cv_results):
    """The ``cv_results_`` dict of a fitted search (or the dict itself), else a ValueError."""
    if isinstance(search_or_cv_results, Mapping):
        return search_or_cv_results
    results = getattr(search_or_cv_results, "cv_results_", None)
    if results is None:
        if hasattr(search_or_cv_results, "get_params"):
            raise ValueError(
                f"{type(search_or_cv_results).__name__} has no cv_results_: fit the search "
                "before plotting it."
            )
        raise ValueError(
            "search_or_cv_results must be a fitted search (GridSearchCV, "
            "RandomizedSearchCV...) or its cv_results_ dict, got "
            f"{type(search_or_cv_results).__name__}."
        )
    return results


def metric_columns(results, key, role):
    """``('mean_test_<key>', 'std_test_<key>' or None)`` for a scorer key or its mean column."""
    if not isinstance(key, str):
        raise ValueError(f"{role} must be a scorer name (a string), got {key!r}.")
    name = key[len(MEAN):] if key.startswith(MEAN) else key
    mean = MEAN + name
    if mean not in results:
        available = sorted(k[len(MEAN):] for k in results if k.startswith(MEAN))
        raise ValueError(
            f"{role}={key!r}: the cv results have no column {mean!r}. Scorers available: "
            f"{available}. Search with multi-metric scoring, e.g. scoring={{'clean': "
            f"'accuracy', 'robust': make_robust_scorer(eps=...)}}, and name its keys."
        )
    std = STD + name
    return mean, (std if std in results else None)


def param_column(results, param, role):
    """The ``param_*`` column of a parameter given with or without prefix or pipeline path."""
    if not isinstance(param, str):
        raise ValueError(f"{role} must be a parameter name (a string), got {param!r}.")
    name = param[len(PARAM):] if param.startswith(PARAM) else param
    if PARAM + name in results:
        return PARAM + name
    available = sorted(k[len(PARAM):] for k in results if k.startswith(PARAM))
    # 'beta' also finds a pipeline's or meta-estimator's 'tradesclassifier__beta'.
    nested = [k for k in available if k.endswith("__" + name)]
    if len(nested) == 1:
        return PARAM + nested[0]
    if len(nested) > 1:
        raise ValueError(
            f"{role}={param!r} is ambiguous: it matches the parameters {nested}; give the full "
            "name."
        )
    raise ValueError(
        f"{role}={param!r}: the cv results have no column {PARAM + name!r}. Parameters "
        f"searched: {available}."
    )
