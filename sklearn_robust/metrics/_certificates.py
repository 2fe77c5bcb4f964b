"""What a certification proved about each point."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Certificates:
    """What :func:`certified_accuracy_score` proved about each point.

    Attributes
    ----------
    status : ndarray of str, shape (n_samples,)
        ``'certified'`` (correct and proven robust), ``'counterexample'`` (``'exact'``
        found a point of the ball the model misclassifies, checked by a forward pass and
        by ``predict``), ``'unknown'`` (not proven: the bound is not positive, the MILP
        ran out of time, or smoothing's radius is below ``eps``), ``'misclassified'`` (wrong
        at the point itself), ``'abstain'`` (smoothing could not decide).
    margin_lower : ndarray of shape (n_samples,)
        A certified lower bound of ``min_j z_y - z_j`` over the ball (``'ibp'``,
        ``'crown'``, ``'exact'`` where robust); NaN where not computed.
    counterexamples : ndarray of shape (n_samples, ...)
        The counterexample of each point found by ``'exact'``, NaN rows elsewhere.
    radius : ndarray of shape (n_samples,)
        Smoothing's certified l_2 radius (NaN for the other methods or an abstention).
    method, eps, norm : str, float, str
        The call's settings.
    time : float
        Seconds the certification took.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_robust.datasets import load_digits_images
    >>> from sklearn_robust import NaturalClassifier
    >>> from sklearn_robust.metrics import certified_accuracy_score
    >>> X_train, X_test, y_train, y_test = load_digits_images()
    >>> clf = NaturalClassifier(max_epochs=2, random_state=0).fit(X_train, y_train)
    >>> score, cert = certified_accuracy_score(clf, X_test[:40], y_test[:40], eps=0.01,
    ...                                        method="ibp", return_certificates=True)
    >>> set(cert.counts()) <= {"certified", "misclassified", "unknown"}
    True
    >>> bool(score == cert.certified.mean())
    True
    """

    status: np.ndarray
    margin_lower: np.ndarray
    counterexamples: np.ndarray
    radius: np.ndarray
    method: str
    eps: float
    norm: str
    time: float = field(default=0.0)

    @property
    def certified(self):
        """Boolean mask of the certified points."""
        return self.status == "certified"

    def counts(self):
        """``{status: number of points}``."""
        values, counts = np.unique(self.status, return_counts=True)
        return dict(zip(values.tolist(), counts.tolist(), strict=True))
