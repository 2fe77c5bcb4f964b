"""SCORE (Pang et al. 2022): TRADES with the KL divergence replaced by a distance."""

import math
import numbers

import torch
import torch.nn.functional as F

from ..attacks import frozen
from ._base import (
    Objective,
    check_label_smoothing,
    check_non_negative,
    inner_maximise,
    smoothed_targets,
)

# Every distance takes the log-probabilities of the clean point (``log p``) and of the
# adversarial point (``log q``), rows are samples, and returns one value per row. Working
# from log-probabilities keeps the KL and JS terms finite when a probability underflows.


def squared_error(log_p, log_q):
    """``||p - q||_2^2`` per row."""
    return (log_p.exp() - log_q.exp()).pow(2).sum(dim=1)


# Log-probabilities are floored here so that a probability of exactly 0 (log = -inf)
# contributes 0 to a KL term instead of 0 * inf = nan; softmax outputs never get this low.
_LOG_FLOOR = -1e4


def kl_divergence(log_p, log_q):
    """``KL(p || q) = sum_k p_k (log p_k - log q_k)`` per row."""
    log_p, log_q = log_p.clamp_min(_LOG_FLOOR), log_q.clamp_min(_LOG_FLOOR)
    return (log_p.exp() * (log_p - log_q)).sum(dim=1)


def js_divergence(log_p, log_q):
    """``JS(p, q) = KL(p || m) / 2 + KL(q || m) / 2`` with ``m = (p + q) / 2``, per row."""
    log_m = torch.logaddexp(log_p, log_q) - math.log(2.0)
    return 0.5 * (kl_divergence(log_p, log_m) + kl_divergence(log_q, log_m))


def l1_distance(log_p, log_q):
    """``||p - q||_1`` per row."""
    return (log_p.exp() - log_q.exp()).abs().sum(dim=1)


def l2_distance(log_p, log_q):
    """``||p - q||_2`` (not squared) per row; its gradient at ``p = q`` is taken as 0."""
    return torch.linalg.vector_norm(log_p.exp() - log_q.exp(), ord=2, dim=1)


DISTANCES = {
    "js": js_divergence,
    "kl": kl_divergence,
    "l1": l1_distance,
    "l2": l2_distance,
    "se": squared_error,
}


class SCORE(Objective):
    """``mean ||p(x) - y_ls||^2 + beta * mean D(p(x), p(x'))``, ``D`` a distance of choice.

    The attack maximises ``sum_i D(p(x_i), p(x'_i))`` from ``x + 0.001 N(0, 1)`` with the
    clean prediction ``p(x)`` held fixed (computed frozen and detached), as in TRADES. In
    the outer loss the clean branch keeps its gradient. ``y_ls`` is the one-hot label
    smoothed by ``ls`` (true class ``1 - ls``, others ``ls / (C - 1)``). The natural term is
    the squared error whatever ``D`` is: ``distance`` only changes the robust term ("SCORE:
    substitute KL by any distance metric D").

    Distances, with ``p = p(x)`` and ``q = p(x')`` (softmax outputs, summed over classes):

    - ``'se'``: squared error ``||p - q||_2^2`` (the paper's recipe);
    - ``'kl'``: ``KL(p || q) = sum_k p_k log(p_k / q_k)``;
    - ``'js'``: Jensen-Shannon ``KL(p || m) / 2 + KL(q || m) / 2``, ``m = (p + q) / 2``;
    - ``'l1'``: ``||p - q||_1 = sum_k |p_k - q_k|``;
    - ``'l2'``: ``||p - q||_2`` (not squared).

    ``'l1'`` and ``'l2'`` are not smooth at ``p = q``: their gradient keeps its size as the
    two predictions meet, so a large ``beta`` can pull a freshly initialised network to a
    constant prediction (on digits, ``'l1'`` with ``beta=4`` does; ``beta=1`` trains).

    With ``clip = c`` the robust term of each sample becomes ``relu(D - c)``: points whose
    distance is already below ``c`` stop contributing (the reference code's option). The
    clip applies to the outer loss only; the attack maximises the unclipped ``D`` (clipped,
    its gradient would vanish at the start, where ``D`` is close to 0).

    Parameters
    ----------
    beta : float, default=4.0
        Weight of the robust term (the paper uses 3 or 4).
    distance : {'se', 'kl', 'js', 'l1', 'l2'}, default='se'
        The distance ``D`` between probability vectors.
    ls : float, default=0.0
        Label smoothing of the natural term, in ``[0, 1)``.
    clip : float or None, default=None
        Per-sample threshold ``c >= 0`` of the robust term, or ``None`` for no clipping.

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
    >>> loss, _ = SCORE(distance="js", clip=0.01)(model, x, y, ThreatModel(eps=0.1, steps=3))
    >>> bool(loss >= 0)
    True
    """

    def __init__(self, beta=4.0, distance="se", ls=0.0, clip=None):
        self.beta = check_non_negative(beta, "beta")
        if not isinstance(distance, str) or distance not in DISTANCES:
            raise ValueError(f"distance must be one of {sorted(DISTANCES)}, got {distance!r}.")
        self.distance = distance
        self.ls = check_label_smoothing(ls)
        if clip is not None and not isinstance(clip, numbers.Real):
            raise ValueError(f"clip must be None or a finite number >= 0, got {clip!r}.")
        self.clip = None if clip is None else check_non_negative(clip, "clip")

    def robust_term(self, log_p, log_q):
        """Per-sample ``D(p, q)``, clipped to ``relu(D - clip)`` when ``clip`` is set."""
        term = DISTANCES[self.distance](log_p, log_q)
        if self.clip is not None:
            term = F.relu(term - self.clip)
        return term

    def __call__(self, module, x, y, threat):
        dist = DISTANCES[self.distance]
        with frozen(module), torch.no_grad():
            log_p_clean = F.log_softmax(module(x), dim=1)
        x_adv = inner_maximise(
            module, x, threat, lambda logits: dist(log_p_clean, F.log_softmax(logits, dim=1)),
            start="gaussian",
        )
        logits = module(x)
        log_p = F.log_softmax(logits, dim=1)
        log_p_adv = F.log_softmax(module(x_adv), dim=1)
        targets = smoothed_targets(y, logits.shape[1], self.ls).to(log_p.dtype)
        natural = (log_p.exp() - targets).pow(2).sum(dim=1)
        loss = natural.mean() + self.beta * self.robust_term(log_p, log_p_adv).mean()
        return loss, logits
