"""SCORE (Pang et al. 2022): TRADES with the KL divergence replaced by a distance."""

import torch
import torch.nn.functional as F

from ._base import Objective, check_non_negative, clean_probabilities, inner_maximise


def squared_error(p, q):
    """``||p - q||_2^2`` per row."""
    return (p - q).pow(2).sum(dim=1)


DISTANCES = {"se": squared_error}


class SCORE(Objective):
    """``mean ||p(x) - y_ls||^2 + beta * mean D(p(x), p(x'))`` with ``D`` squared error.

    The attack maximises ``D(p(x), p(x'))`` from ``x + 0.001 N(0, 1)``; ``y_ls`` is the
    one-hot label smoothed by ``ls`` (true class ``1 - ls``, others ``ls / (C - 1)``).

    Parameters
    ----------
    beta : float, default=4.0
        Weight of the robust term (the paper uses 3 or 4).
    distance : {'se'}, default='se'
        The distance ``D`` between probability vectors.
    ls : float, default=0.0
        Label smoothing of the natural term, in ``[0, 1)``.

    References
    ----------
    T. Pang, M. Lin, X. Yang, J. Zhu, S. Yan. "Robustness and Accuracy Could Be
    Reconcilable by (Proper) Definition", ICML 2022.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.objectives import SCORE
    >>> model = torch.nn.Linear(3, 2)
    >>> x, y = torch.rand(5, 3), torch.tensor([0, 1, 0, 1, 1])
    >>> loss, _ = SCORE(beta=4.0)(model, x, y, ThreatModel(eps=0.1, steps=3))
    >>> bool(loss >= 0)
    True
    """

    def __init__(self, beta=4.0, distance="se", ls=0.0):
        self.beta = check_non_negative(beta, "beta")
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {sorted(DISTANCES)}, got {distance!r}.")
        self.distance = distance
        ls = check_non_negative(ls, "ls")
        if ls >= 1:
            raise ValueError(f"ls must be in [0, 1), got {ls!r}.")
        self.ls = ls

    def smoothed_targets(self, y, n_classes):
        """One-hot ``y`` with label smoothing ``ls`` spread over the other classes."""
        off = self.ls / max(n_classes - 1, 1)
        targets = torch.full((y.shape[0], n_classes), off, device=y.device)
        return targets.scatter_(1, y[:, None], 1.0 - self.ls)

    def __call__(self, module, x, y, threat):
        dist = DISTANCES[self.distance]
        p_clean = clean_probabilities(module, x)
        x_adv = inner_maximise(
            module, x, threat, lambda logits: dist(F.softmax(logits, dim=1), p_clean),
            start="gaussian",
        )
        logits = module(x)
        p = F.softmax(logits, dim=1)
        p_adv = F.softmax(module(x_adv), dim=1)
        natural = squared_error(p, self.smoothed_targets(y, logits.shape[1]).to(p.dtype))
        loss = natural.mean() + self.beta * dist(p_adv, p).mean()
        return loss, logits
