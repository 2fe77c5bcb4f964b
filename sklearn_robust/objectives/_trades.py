"""TRADES (Zhang et al. 2019)."""

import torch.nn.functional as F

from ._base import (
    Objective,
    check_label_smoothing,
    check_non_negative,
    clean_probabilities,
    inner_maximise,
    label_loss,
)


def kl_per_sample(p, log_p, log_q):
    """``KL(p || q)`` per row, from ``p``, ``log p`` and ``log q``."""
    return (p * (log_p - log_q)).sum(dim=1)


class TRADES(Objective):
    """``CE(f(x), y_ls) + beta * sum_i KL(p(x_i) || p(x'_i)) / B``.

    The attack maximises ``KL(p(x) || p(x'))`` from ``x + 0.001 N(0, 1)``, targeting the
    clean prediction (not the label). In the outer loss the clean branch keeps its
    gradient, as in the reference implementation.

    Parameters
    ----------
    beta : float, default=6.0
        Weight of the robust (boundary) term; ``1 / lambda`` in the paper.
    ls : float, default=0.0
        Label smoothing of the clean cross-entropy, in ``[0, 1)``: the target is ``1 - ls``
        on the true class and ``ls / (C - 1)`` on each other class (as in SCORE).

    References
    ----------
    H. Zhang, Y. Yu, J. Jiao, E. Xing, L. El Ghaoui, M. Jordan. "Theoretically Principled
    Trade-off between Robustness and Accuracy", ICML 2019.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.objectives import TRADES
    >>> model = torch.nn.Linear(3, 2)
    >>> x, y = torch.rand(5, 3), torch.tensor([0, 1, 0, 1, 1])
    >>> loss, _ = TRADES(beta=6.0)(model, x, y, ThreatModel(eps=0.1, steps=3))
    >>> bool(loss >= 0)
    True
    """

    def __init__(self, beta=6.0, ls=0.0):
        self.beta = check_non_negative(beta, "beta")
        self.ls = check_label_smoothing(ls)

    def __call__(self, module, x, y, threat):
        p_clean = clean_probabilities(module, x)
        log_p_clean = p_clean.clamp_min(1e-12).log()
        x_adv = inner_maximise(
            module, x, threat,
            lambda logits: kl_per_sample(p_clean, log_p_clean, F.log_softmax(logits, dim=1)),
            start="gaussian",
        )
        logits = module(x)
        logits_adv = module(x_adv)
        log_p = F.log_softmax(logits, dim=1)
        robust = kl_per_sample(log_p.exp(), log_p, F.log_softmax(logits_adv, dim=1))
        loss = label_loss(logits, y, self.ls) + self.beta * robust.sum() / x.shape[0]
        return loss, logits
