"""TRADES (Zhang et al. 2019)."""

import torch.nn.functional as F

from ..utils import NON_NEGATIVE
from ._base import LABEL_SMOOTHING, clean_pass, fill_doc, label_loss
from ._divergences import kl_divergence
from ._search import SearchingObjective


@fill_doc
class TRADES(SearchingObjective):
    """``CE(f(x), y_ls) + beta * sum_i KL(p(x_i) || p(x'_i)) / B``.

    The attack maximises ``KL(p(x) || p(x'))`` by ``steps`` steps of projected ascent from
    ``x + 0.001 N(0, 1)``, targeting the clean prediction (not the label). In the outer
    loss the clean branch keeps its gradient, as in the reference implementation.

    Parameters
    ----------
    beta : float, default=6.0
        Weight of the robust (boundary) term; ``1 / lambda`` in the paper.
    ls : float, default=0.0
        Label smoothing of the clean cross-entropy, in ``[0, 1)``: the target is ``1 - ls``
        on the true class and ``ls / (C - 1)`` on each other class (as in SCORE).
    %(schedule)s

    References
    ----------
    H. Zhang, Y. Yu, J. Jiao, E. Xing, L. El Ghaoui, M. Jordan. "Theoretically Principled
    Trade-off between Robustness and Accuracy", ICML 2019.

    Examples
    --------
    %(batch)s
    >>> from sklearn_robust.objectives import TRADES
    >>> loss, _ = TRADES(beta=6.0, steps=3)(model, x, y, ThreatModel(eps=0.1))
    >>> bool(loss >= 0)
    True
    """

    _parameter_constraints = {
        **SearchingObjective._parameter_constraints,
        "beta": NON_NEGATIVE,
        "ls": LABEL_SMOOTHING,
    }
    criterion_term = "the clean cross-entropy (the KL term and the attack are unchanged)"

    def __init__(self, beta=6.0, ls=0.0, steps=10, step_size=None):
        self._set_params(beta=beta, ls=ls, steps=steps, step_size=step_size)

    def __call__(self, module, x, y, threat, criterion=None):
        log_p_clean, clean_logits = clean_pass(module, x)
        p_clean = log_p_clean.exp()
        x_adv = self.maximise(
            module, x, threat,
            lambda logits: kl_divergence(log_p_clean, F.log_softmax(logits, dim=1), p=p_clean),
            start="gaussian",
        )
        logits = clean_logits()
        logits_adv = module(x_adv)
        log_p = F.log_softmax(logits, dim=1)
        robust = kl_divergence(log_p, F.log_softmax(logits_adv, dim=1))
        loss = (label_loss(logits, y, self.ls, criterion)
                + self.beta * robust.sum() / x.shape[0])
        return loss, logits
