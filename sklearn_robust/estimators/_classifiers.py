"""The public classifiers: each is the base plus the choice of an objective."""

from __future__ import annotations

from ..objectives import SCORE, TRADES, Natural, PGDAdversarial
from ._base import AdversarialNetClassifier, RobustNetClassifier

_DOCTEST_DATA = """
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.model_selection import train_test_split
    >>> X, y = load_digits(return_X_y=True)
    >>> X = (X / 16.0).reshape(-1, 1, 8, 8).astype("float32")
    >>> X_train, X_test, y_train, y_test = train_test_split(
    ...     X, y, test_size=0.25, stratify=y, random_state=0)"""


class NaturalClassifier(RobustNetClassifier):
    """Plain (non-adversarial) training with the same defaults: the fair baseline.

    Parameters
    ----------
    module, input_shape, random_state, **kwargs
        See :class:`RobustNetClassifier`.

    See Also
    --------
    ATClassifier, TRADESClassifier, SCOREClassifier

    Examples
    --------{data}
    >>> clf = NaturalClassifier(max_epochs=5, random_state=0).fit(X_train, y_train)
    >>> clf.score(X_test, y_test) > 0.9
    True
    """

    def make_objective(self):
        return Natural()


class ATClassifier(AdversarialNetClassifier):
    """PGD adversarial training (Madry et al. 2018): minimise the loss at the worst point.

    Each batch is replaced by PGD adversarial points (uniform random start,
    ``attack_steps`` steps of cross-entropy ascent) and the network is trained on them.

    Parameters
    ----------
    eps, norm, attack_steps, step_size, bounds
        The threat model; see :class:`AdversarialNetClassifier`.
    module, input_shape, random_state, **kwargs
        See :class:`RobustNetClassifier`.

    See Also
    --------
    TRADESClassifier, SCOREClassifier, NaturalClassifier

    References
    ----------
    A. Madry et al. "Towards Deep Learning Models Resistant to Adversarial Attacks",
    ICLR 2018.

    Examples
    --------{data}
    >>> clf = ATClassifier(eps=0.1, max_epochs=3, random_state=0).fit(X_train, y_train)
    >>> clf.score(X_test, y_test) > 0.8
    True
    """

    def make_objective(self):
        return PGDAdversarial()


class TRADESClassifier(AdversarialNetClassifier):
    """TRADES (Zhang et al. 2019): clean cross-entropy plus ``beta`` times a KL boundary term.

    Parameters
    ----------
    beta : float, default=6.0
        Weight of ``KL(p(x) || p(x'))``; larger is more robust and less accurate.
    eps, norm, attack_steps, step_size, bounds
        The threat model; see :class:`AdversarialNetClassifier`.
    module, input_shape, random_state, **kwargs
        See :class:`RobustNetClassifier`.

    See Also
    --------
    SCOREClassifier, ATClassifier, NaturalClassifier

    References
    ----------
    H. Zhang et al. "Theoretically Principled Trade-off between Robustness and Accuracy",
    ICML 2019.

    Examples
    --------{data}
    >>> clf = TRADESClassifier(eps=0.1, beta=6.0, max_epochs=3, random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.8
    True
    """

    def __init__(self, module=None, *, beta=6.0, **kwargs):
        super().__init__(module, **kwargs)
        self.beta = beta

    def make_objective(self):
        return TRADES(beta=self.beta)


class SCOREClassifier(AdversarialNetClassifier):
    """SCORE (Pang et al. 2022): TRADES with KL replaced by squared error on probabilities.

    Parameters
    ----------
    beta : float, default=4.0
        Weight of the robust term ``mean ||p(x') - p(x)||^2``.
    distance : {'se'}, default='se'
        Distance between probability vectors.
    ls : float, default=0.0
        Label smoothing of the natural term.
    eps, norm, attack_steps, step_size, bounds
        The threat model; see :class:`AdversarialNetClassifier`.
    module, input_shape, random_state, **kwargs
        See :class:`RobustNetClassifier`.

    See Also
    --------
    TRADESClassifier, ATClassifier, NaturalClassifier

    References
    ----------
    T. Pang et al. "Robustness and Accuracy Could Be Reconcilable by (Proper) Definition",
    ICML 2022.

    Examples
    --------{data}
    >>> clf = SCOREClassifier(eps=0.1, beta=4.0, max_epochs=3, random_state=0)
    >>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.8
    True
    """

    def __init__(self, module=None, *, beta=4.0, distance="se", ls=0.0, **kwargs):
        super().__init__(module, **kwargs)
        self.beta = beta
        self.distance = distance
        self.ls = ls

    def make_objective(self):
        return SCORE(beta=self.beta, distance=self.distance, ls=self.ls)


for _cls in (NaturalClassifier, ATClassifier, TRADESClassifier, SCOREClassifier):
    _cls.__doc__ = _cls.__doc__.replace("{data}", _DOCTEST_DATA)
del _cls
