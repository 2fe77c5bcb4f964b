"""Square Attack (Andriushchenko et al. 2020): a score-based black-box attack.

Random search over perturbations that are constant on small squares, accepted when they
lower the margin of the true class. It queries the model's scores only and never takes a
gradient, so it is not fooled by gradient masking: when it breaks points that the
gradient attacks could not, the gradient attacks were misled.
"""

from __future__ import annotations

import math
from functools import partial

import torch

from ..utils import check_fraction, check_int, check_scalar_param
from ._base import Attack
from ._docs import docs
from ._square_l1 import search_l1
from ._square_l2 import search_l2
from ._square_oracle import Oracle

# Iterations (out of a 10000-query budget) after which the square's area is halved.
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
# Fresh signs drawn for a proposal that would not change the point (reference: unbounded).
_MAX_RESAMPLE = 10


@docs
class Square(Attack):
    """Square Attack: random search over square-shaped perturbations, l_inf, l_2 or l_1.

    l_inf: starts from vertical stripes of ``+-eps`` (one random sign per channel and column).
    Each iteration picks, for every point not yet broken, a random window of side ``s``
    (its area a fraction ``p`` of the image, ``p`` falling from ``p_init`` on a fixed
    schedule) and sets the perturbation inside it to ``+-eps``, one random sign per
    channel; the proposal is kept if it lowers the margin ``s_y - max_{i != y} s_i``.
    Only forward passes (one query per point and iteration), never a gradient.

    l_2 (the paper's l_2 variant): starts from a 5 x 5 grid of tiles, each holding the
    paper's pattern (concentric squares of weights ``sum_k 1 / (k + 1)^2``, positive on
    one half of the tile and negative on the other, random sign per channel), scaled to
    norm ``eps``. Each iteration picks two random windows of the same side ``s``
    (``p`` of the image, at least 3, odd): per channel, the perturbation's mass in both
    windows (plus any unused budget) moves into the first, as the old content of that
    window plus a fresh pattern, and the second is emptied; the whole perturbation is
    then rescaled to norm ``eps``, so every proposal is on the sphere (before clipping
    to the bounds).

    l_1 (Croce & Hein 2021): as l_2, with the l_1 pattern (weights
    ``sum_k 1 / (k + 1)^4``) and budgets, and every proposal projected exactly onto the
    l_1 ball intersected with the bounds (see :meth:`ThreatModel.project`).

    Inputs are viewed as images: a sample of shape ``(C, H, W)`` gets square windows;
    ``(features,)`` and ``(C, length)`` samples are rows, with windows that are
    intervals of ``p * length`` features.

    Parameters
    ----------
    threat : ThreatModel
        Norm (``'linf'``, ``'l2'`` or ``'l1'``), ``eps`` and bounds.
    n_queries : int, default=5000
        Model queries per point, the stripe initialisation included (plus one query of
        the clean point; points already misclassified are not attacked).
    p_init : float, default=0.8
        Initial fraction of the input covered by a window.
    rescale_schedule : bool, default=True
        ``True``: the schedule of ``p`` (halvings at iterations 10, 50, 200, ..., 8000 of
        a 10000-query run) is stretched to ``n_queries``, so the windows always shrink
        to ``p_init / 512`` by the end. ``False``: the halvings stay at those
        iterations, so a 5000-query run uses the first half of the schedule and ends at
        ``p_init / 128`` (``resc_schedule=False``, as AutoAttack's ``'standard'`` runs
        Square).
    %(attack_kwargs)s

    Notes
    -----
    The model may be a ``torch.nn.Module`` or any callable returning logits or
    probabilities for a batch; it is queried under ``torch.no_grad()``. A module is put
    in eval mode for the attack and restored after; a callable is queried as it is, so
    a model inside it should already be in eval mode.

    %(square_refs)s

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> from sklearn_robust.attacks import Square
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Linear(4, 3)
    >>> X, y = torch.rand(8, 4), torch.zeros(8, dtype=torch.long)
    >>> attack = Square(ThreatModel(eps=0.1, bounds=(0, 1)), n_queries=50, random_state=0)
    >>> X_adv = attack(lambda x: model(x).softmax(dim=1), X, y)  # scores only
    >>> bool(attack.threat.contains(X_adv, X).all())
    True
    """

    name = "square"
    uses_gradients = False
    schedule_params = ()

    def __init__(self, threat, *, n_queries=5000, p_init=0.8, rescale_schedule=True,
                 **kwargs):
        super().__init__(threat, **kwargs)
        self.n_queries = check_int(n_queries, "n_queries", "Square")
        self.p_init = check_fraction(p_init, "p_init", "Square")
        self.rescale_schedule = check_scalar_param(rescale_schedule, "rescale_schedule",
                                                   ["boolean"], "Square")

    def __repr__(self):
        return f"{type(self).__name__}(threat={self.threat!r}, n_queries={self.n_queries})"

    def p_schedule(self, iteration):
        """Fraction of the input a window covers at ``iteration``.

        ``p_init`` halved at iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000 and
        8000 of a 10000-query budget, rescaled to ``n_queries`` unless
        ``rescale_schedule=False``.

        Examples
        --------
        >>> from sklearn_robust import ThreatModel
        >>> from sklearn_robust.attacks import Square
        >>> square = Square(ThreatModel(eps=0.1), n_queries=1000)
        >>> square.p_schedule(0), square.p_schedule(3), square.p_schedule(999)
        (0.8, 0.4, 0.0015625)
        >>> Square(ThreatModel(eps=0.1), n_queries=1000,
        ...        rescale_schedule=False).p_schedule(999)
        0.05
        """
        scaled = iteration
        if self.rescale_schedule:
            scaled = int(iteration / self.n_queries * 10000)
        return self.p_init / 2 ** sum(scaled > t for t in _HALVINGS)

    @staticmethod
    def _window_sides(p, height, width):
        if height == 1:  # rows: an interval of about p * width features
            return 1, min(max(round(p * width), 1), max(width - 1, 1))
        side = round(math.sqrt(p * height * width))
        side = min(max(side, 1), max(min(height, width) - 1, 1))
        return side, side

    def perturb(self, module, x, y, generator):
        """Adversarial points for one batch (see :meth:`Attack.perturb`); no gradients."""
        oracle = Oracle(self.threat, module, x, generator)
        # Forward passes only: inference mode skips autograd's bookkeeping on every
        # operation; the clone hands back an ordinary tensor.
        with torch.inference_mode():
            search = {"linf": self._search, "l2": partial(search_l2, self),
                      "l1": partial(search_l1, self)}[self.threat.norm]
            x_adv = search(oracle, x, y)
        return x_adv.clone()

    def _search(self, oracle, x, y):
        eps = self.threat.eps
        c, h, w = oracle.image_shape

        # Initialisation: vertical stripes of +-eps, one sign per channel and column.
        x_img, x_best, m_best, fooled = oracle.start(
            x, y, lambda n: eps * oracle.signs((n, c, 1, w)))
        # Every pixel of a standing point sits on a face of the ball clamped to the bounds,
        # ``up`` (+eps) or ``down`` (-eps); where the bounds leave less than 1e-7 of room
        # (the reference's test of an unchanged pixel) it is pinned to ``down``. A proposal
        # differs from the point only inside its window, so each iteration reads and
        # writes the window's cells (``side**2`` per channel), never the whole image.
        up, down = oracle.clamp(x_img + eps).flatten(1), oracle.clamp(x_img - eps).flatten(1)
        movable = up - down >= 1e-7
        standing = (~fooled).nonzero().squeeze(1)
        best = torch.where(movable, x_best.flatten(1), down)[standing]
        up, down, movable = up[standing], down[standing], movable[standing]
        m_standing, y_standing = m_best[standing], y[standing]

        for iteration in range(1, self.n_queries):
            b = standing.numel()
            if b == 0:
                break
            cells = oracle.window_cells(*self._window_sides(self.p_schedule(iteration), h, w))
            where = cells.indices(oracle.positions(b, cells))  # (b, c * side_h * side_w)
            old, hi, lo = best.gather(1, where), up.gather(1, where), down.gather(1, where)
            free = movable.gather(1, where)
            # A sign changes a channel when some movable cell of its window is on the
            # other face.
            can_up = ((old < hi) & free).view(b, c, -1).any(dim=2)
            can_down = ((old > lo) & free).view(b, c, -1).any(dim=2)
            sign_up = self._signs(oracle, can_up, can_down)  # (b, c)
            take_up = sign_up[:, :, None].expand(b, c, cells.per_channel).reshape(b, -1) & free
            new = torch.where(take_up, hi, lo)
            best.scatter_(1, where, new)  # the proposals, queried in place
            m_new, hit = oracle.query(best, y_standing)
            accept = (m_new < m_standing) | hit
            best.scatter_(1, where, torch.where(accept[:, None], new, old))
            m_standing = torch.where(accept, m_new, m_standing)
            if bool(hit.any()):
                x_best[standing[hit]] = best[hit].view(-1, c, h, w)
                rest = ~hit
                standing, m_standing, y_standing, best, up, down, movable = (
                    t[rest] for t in (standing, m_standing, y_standing, best, up, down, movable)
                )
        x_best[standing] = best.view(-1, c, h, w)
        return x_best.reshape(x.shape)

    @staticmethod
    def _signs(oracle, can_up, can_down):
        """One sign per channel and point (True: up) whose proposal changes the point.

        The paper's code redraws a point's signs until its window changes. One channel:
        a fair coin among the changing signs (a coin too if both or neither change),
        exactly where redrawing ends. Several: ``1 + _MAX_RESAMPLE`` draws at once, each
        point taking its first changing one (its last if none changes), as drawing in
        turn would, without a loop.
        """
        b, c = can_up.shape
        if c == 1:
            coin = torch.randint(0, 2, (b, 1), generator=oracle.generator,
                                 device=oracle.device).bool()
            return torch.where(can_up == can_down, coin, can_up)
        draws = torch.randint(0, 2, (b, 1 + _MAX_RESAMPLE, c),
                              generator=oracle.generator, device=oracle.device).bool()
        changes = torch.where(draws, can_up[:, None], can_down[:, None]).any(dim=2)
        changes[:, -1] = True
        first = changes.byte().argmax(dim=1)  # argmax returns the first maximum
        return draws[torch.arange(b, device=oracle.device), first]  # (b, c)
