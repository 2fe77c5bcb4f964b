"""SCORE (Pang et al. 2022): TRADES with the KL divergence replaced by a distance."""

import torch
import torch.nn.functional as F

from ..utils import NON_NEGATIVE, StrOptions
from ._base import LABEL_SMOOTHING, clean_pass, fill_doc, smoothed_targets
from ._divergences import DISTANCES
from ._search import SearchingObjective

# Distances with a kink at p = q (a non-vanishing gradient there): 'auto' clips them.
_KINKED = ("l1", "l2")
# The reference code's clip bound is D(one-hot, one-hot smoothed by this much).
_AUTO_LS = 0.1


@fill_doc
class SCORE(SearchingObjective):
    """``mean ||p(x) - y_ls||^2 + beta * mean D(p(x), p(x'))``, ``D`` a distance of choice.

    The attack maximises ``sum_i D(p(x_i), p(x'_i))`` by ``steps`` steps of projected
    ascent from a uniform point of the ball, as the SCORE reference code does (TRADES
    starts from ``x + 0.001 N(0, 1)``; from a uniform start the first step already sees
    the ball, which is what the distance is measured over), with the
    clean prediction ``p(x)`` held fixed (computed frozen and detached). In
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

    With ``clip = c`` the robust term of each sample becomes ``relu(D - c)``: points whose
    distance is already below ``c`` stop contributing (the reference code's option). The
    clip applies to the outer loss only; the attack maximises the unclipped ``D`` (clipped,
    its gradient would vanish at the start, where ``D`` is close to 0).

    ``clip='auto'`` (the default) is no clip for the smooth distances (``'se'``, ``'kl'``,
    ``'js'``) and, for ``'l1'`` and ``'l2'``, the reference code's clip bound at its
    smoothing 0.1: ``c = D(e_y, s_y)`` with ``e_y`` one-hot and ``s_y`` the same smoothed
    by 0.1 (``0.2`` for ``'l1'``, ``0.1 sqrt(C / (C - 1))`` for ``'l2'``). Why: ``'l1'``
    and ``'l2'`` have a kink at ``p = q``, so the gradient of ``beta * D`` keeps its size
    (``beta`` per unit of output sensitivity) however close the two predictions are,
    like a lasso penalty on the network's input sensitivity. At initialisation, where
    ``p`` is near uniform, the squared-error term pulls the logits by about
    ``2 p (1 - p) ~ 0.18`` while the robust term pushes by about ``2 beta p ~ 0.8`` at
    ``beta=4``: the constant predictor is a local minimum and training stays there (loss
    0.9, chance accuracy on digits). The smooth distances have a zero gradient at
    ``p = q`` and never trap. With the clip, points whose ``D`` is below ``c`` stop
    pushing, the trap disappears, and training proceeds (digits, 5 epochs: 86% for
    ``'l1'``, 88% for ``'l2'``, against 10% and 42% unclipped).

    Parameters
    ----------
    beta : float, default=4.0
        Weight of the robust term (the paper uses 3 or 4).
    distance : {'se', 'kl', 'js', 'l1', 'l2'}, default='se'
        The distance ``D`` between probability vectors.
    ls : float, default=0.0
        Label smoothing of the natural term, in ``[0, 1)``.
    clip : float, None or 'auto', default='auto'
        Per-sample threshold ``c >= 0`` of the robust term, ``None`` for no clipping, or
        ``'auto'``: none for ``'se'``, ``'kl'``, ``'js'``, the reference bound for ``'l1'``
        and ``'l2'`` (see above).
    %(schedule)s

    References
    ----------
    T. Pang, M. Lin, X. Yang, J. Zhu, S. Yan. "Robustness and Accuracy Could Be
    Reconcilable by (Proper) Definition", ICML 2022.

    Examples
    --------
    %(batch)s
    >>> from sklearn_robust.objectives import SCORE
    >>> loss, _ = SCORE(beta=4.0, steps=3)(model, x, y, ThreatModel(eps=0.1))
    >>> bool(loss >= 0)
    True
    >>> loss, _ = SCORE(distance="js", clip=0.01, steps=3)(model, x, y,
    ...                                                   ThreatModel(eps=0.1))
    >>> bool(loss >= 0)
    True
    """

    _parameter_constraints = {
        **SearchingObjective._parameter_constraints,
        "beta": NON_NEGATIVE,
        "distance": [StrOptions(set(DISTANCES))],
        "ls": LABEL_SMOOTHING,
        "clip": [None, StrOptions({"auto"}), *NON_NEGATIVE],
    }

    def __init__(self, beta=4.0, distance="se", ls=0.0, clip="auto", steps=10,
                 step_size=None):
        self._set_params(beta=beta, distance=distance, ls=ls, clip=clip, steps=steps,
                         step_size=step_size)

    def clip_value(self, n_classes):
        """The threshold ``c`` in use (``None`` for none), ``'auto'`` resolved."""
        if self.clip != "auto":
            return self.clip
        if self.distance not in _KINKED:
            return None
        one_hot = smoothed_targets(torch.zeros(1, dtype=torch.long), n_classes, 0.0)
        smooth = smoothed_targets(torch.zeros(1, dtype=torch.long), n_classes, _AUTO_LS)
        return float(DISTANCES[self.distance](one_hot.log(), smooth.log()))

    def robust_term(self, log_p, log_q):
        """Per-sample ``D(p, q)``, clipped to ``relu(D - c)`` when a clip is in use."""
        term = DISTANCES[self.distance](log_p, log_q)
        clip = self.clip_value(log_p.shape[1])
        if clip is not None:
            term = F.relu(term - clip)
        return term

    def __call__(self, module, x, y, threat):
        dist = DISTANCES[self.distance]
        log_p_clean, clean_logits = clean_pass(module, x)
        x_adv = self.maximise(
            module, x, threat, lambda logits: dist(log_p_clean, F.log_softmax(logits, dim=1)),
            start="uniform",
        )
        logits = clean_logits()
        log_p = F.log_softmax(logits, dim=1)
        log_p_adv = F.log_softmax(module(x_adv), dim=1)
        targets = smoothed_targets(y, logits.shape[1], self.ls).to(log_p.dtype)
        natural = (log_p.exp() - targets).pow(2).sum(dim=1)
        loss = natural.mean() + self.beta * self.robust_term(log_p, log_p_adv).mean()
        return loss, logits
