"""Arrays handed back to an estimator in the format it was fitted or called with."""

import numpy as np


def _as_frame(array, columns):
    if columns is None or array.ndim != 2 or array.shape[1] != len(columns):
        return array
    import pandas as pd

    return pd.DataFrame(array, columns=columns)


def with_feature_names(estimator, array):
    """``array`` as a DataFrame when ``estimator`` was fitted on one (no name warnings).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[0.0], [1.0]])
    >>> with_feature_names(LogisticRegression().fit(X, [0, 1]), X) is X
    True
    """
    return _as_frame(array, getattr(estimator, "feature_names_in_", None))


def predict_like(estimator, array, X):
    """``estimator.predict`` on ``array`` given in the format (DataFrame or not) of ``X``.

    Adversarial points come back from torch as arrays; a pipeline fitted on a DataFrame
    wants the caller's columns again.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> clf = LogisticRegression().fit(X, [0, 0, 1, 1])
    >>> predict_like(clf, X + 0.1, X).tolist()
    [0, 0, 1, 1]
    """
    return np.asarray(estimator.predict(_as_frame(array, getattr(X, "columns", None))))
