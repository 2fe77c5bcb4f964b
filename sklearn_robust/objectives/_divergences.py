"""Distances between the predicted distributions of a clean and an adversarial point.

Every function takes the log-probabilities of the clean point (``log p``) and of the
adversarial point (``log q``), rows are samples, and returns one value per row. Working
from log-probabilities keeps the KL and JS terms finite when a probability underflows.
TRADES uses :func:`kl_divergence`; SCORE chooses any of :data:`DISTANCES`.
"""

import math

import torch

# Log-probabilities are floored here so that a probability of exactly 0 (log = -inf)
# contributes 0 to a KL term instead of 0 * inf = nan; softmax outputs never get this low.
_LOG_FLOOR = -1e4


def squared_error(log_p, log_q):
    """``||p - q||_2^2`` per row."""
    return (log_p.exp() - log_q.exp()).pow(2).sum(dim=1)


def kl_divergence(log_p, log_q, p=None):
    """``KL(p || q) = sum_k p_k (log p_k - log q_k)`` per row.

    ``p`` may be given when it is at hand (it is ``exp(log p)`` otherwise), so the value
    is computed from the very probabilities the caller holds.

    Examples
    --------
    >>> import torch
    >>> log_p = torch.tensor([[0.5, 0.5]]).log()
    >>> kl_divergence(log_p, log_p)
    tensor([0.])
    """
    log_p, log_q = log_p.clamp_min(_LOG_FLOOR), log_q.clamp_min(_LOG_FLOOR)
    p = log_p.exp() if p is None else p
    return (p * (log_p - log_q)).sum(dim=1)


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


#: The distances by name, as SCORE's ``distance`` parameter takes them.
DISTANCES = {
    "js": js_divergence,
    "kl": kl_divergence,
    "l1": l1_distance,
    "l2": l2_distance,
    "se": squared_error,
}
