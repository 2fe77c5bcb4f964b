"""Square Attack (Andriushchenko et al. 2020): a score-based black-box attack.

Random search over perturbations that are constant on small squares, accepted when they
lower the margin of the true class. It queries the model's scores only and never takes a
gradient, so it is not fooled by gradient masking: when it breaks points that the
gradient attacks could not, the gradient attacks were misled. The search is one loop;
the norm is a proposal object (``_proposals.py``).
"""

import torch

from ...utils import FRACTION, POSITIVE_INT
from .._base import Attack
from .._docs import docs
from .._working_set import WorkingSet
from ._oracle import Oracle
from ._proposals import PROPOSALS

# Iterations (out of a 10000-query budget) after which the square's area is halved.
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


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

    %(attack_example)s
    >>> from sklearn_robust.attacks import Square
    >>> square = Square(ThreatModel(eps=0.1, bounds=(0, 1)), n_queries=50, random_state=0)
    >>> X_adv = square(lambda x: model(x).softmax(dim=1), X, y)  # scores only
    >>> bool(square.threat.contains(X_adv, X).all())
    True
    """

    name = "square"
    uses_gradients = False
    schedule_params = ()
    _parameter_constraints = {
        **Attack._parameter_constraints,
        "n_queries": POSITIVE_INT,
        "p_init": FRACTION,
        "rescale_schedule": ["boolean"],
    }

    def __init__(self, threat, *, n_queries=5000, p_init=0.8, rescale_schedule=True,
                 **kwargs):
        super().__init__(threat, **kwargs)
        self._set_params(n_queries=n_queries, p_init=p_init,
                         rescale_schedule=rescale_schedule)

    def __repr__(self):
        return f"{type(self).__name__}(threat={self.threat!r}, n_queries={self.n_queries})"

    def passes_per_point(self, n_classes):
        """One forward pass per query."""
        return 0, self.n_queries

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

    def perturb(self, module, x, y, generator):
        """Adversarial points for one batch (see :meth:`Attack.perturb`); no gradients."""
        oracle = Oracle(self.threat, module, x, generator)
        proposals = PROPOSALS[self.threat.norm](self.threat, oracle)
        # Forward passes only: inference mode skips autograd's bookkeeping on every
        # operation; the clone hands back an ordinary tensor.
        with torch.inference_mode():
            x_adv = self._search(oracle, proposals, x, y)
        return x_adv.clone()

    def _search(self, oracle, proposals, x, y):
        """The random search: a candidate per standing point and iteration, kept when it
        lowers the point's margin; a point leaves once misclassified."""
        x_rows = x.reshape(x.shape[0], -1)
        _, broken = oracle.query(x_rows, y)
        points = WorkingSet(x_rows.clone(), ~broken)
        if not len(points):
            return proposals.finish(points.found, x)
        s = points.follow(x=x_rows, y=y)
        x_init = proposals.initial(s.x)  # the start, always taken
        s.margin, hit = oracle.query(x_init, s.y)
        proposals.start(s, x_init)
        points.update(x_init)
        points.offer(x_init, hit)
        for iteration in range(1, self.n_queries):
            if not len(points):
                break
            candidate, change = proposals.propose(s, self.p_schedule(iteration))
            margin, hit = oracle.query(candidate, s.y)
            accepted = (margin < s.margin) | hit
            proposals.accept(s, candidate, change, accepted)
            s.margin = torch.where(accepted, margin, s.margin)
            points.offer(s.best, hit)
        if len(points):
            points.update(s.best)
        return proposals.finish(points.found, x)
