"""The points of a batch an attack still works on: the loop every attack shares."""

from types import SimpleNamespace


def margin_fooled(logits, y):
    """Boolean per sample: the predicted class differs from ``y``."""
    return logits.argmax(dim=1) != y


class WorkingSet:
    """The points of a batch an attack still works on, and what it found for each.

    Every attack runs one loop: attack the points still standing, keep each point's
    first success, drop the broken points, stop when none is left. This is its
    bookkeeping, written once. :attr:`found` holds the batch's answers, :attr:`rows`
    the batch indices of the points still standing, and :attr:`state` the search's
    per-point tensors, which follow the points when some leave.

    Parameters
    ----------
    found : torch.Tensor of shape (n, ...)
        The batch's answers so far (usually the points themselves); updated in place.
    standing : torch.Tensor of shape (n,), bool
        The points to attack; the others keep their answer.
    score : torch.Tensor of shape (n,) or None, default=None
        With a score (PGD's loss, FAB's distance negated), a point never broken keeps
        its highest-scoring answer; without, only successes change answers. Updated in
        place.

    Attributes
    ----------
    rows : torch.Tensor of shape (m,)
        Batch indices of the points still standing, in order.
    standing : torch.Tensor of shape (n,), bool
        Which points of the batch still stand.
    state : types.SimpleNamespace
        Per-point tensors of the search, one row per standing point (or ``None``); set
        by :meth:`follow` or by assigning attributes.

    Examples
    --------
    >>> import torch
    >>> points = WorkingSet(torch.zeros(3, 2), torch.tensor([True, True, False]))
    >>> state = points.follow(x=torch.arange(6.0).view(3, 2))
    >>> points.offer(state.x + 1, hit=torch.tensor([True, False]))
    >>> points.rows, state.x
    (tensor([1]), tensor([[2., 3.]]))
    >>> points.found
    tensor([[1., 2.],
            [0., 0.],
            [0., 0.]])
    """

    def __init__(self, found, standing, score=None):
        self.found = found
        self.standing = standing.clone()
        self.score = score
        self.rows = standing.nonzero().squeeze(1)
        self.state = SimpleNamespace()

    def __len__(self):
        return self.rows.numel()

    def take(self, *tensors):
        """The rows of batch ``tensors`` (shape ``(n, ...)``) at the standing points."""
        return tuple(t[self.rows] for t in tensors)

    def follow(self, **tensors):
        """A new :attr:`state` from batch ``tensors``, restricted to the standing points.

        Each is a copy (``None`` stays ``None``); the state's tensors follow the points
        from then on.
        """
        self.state = SimpleNamespace(**{name: None if t is None else t[self.rows]
                                        for name, t in tensors.items()})
        return self.state

    def offer(self, points, hit, score=None, rows=None):
        """Answers for the standing points; the broken ones (``hit``) leave.

        A hit's answer is kept for good. Otherwise, with a ``score``, an answer scoring
        higher than the point's best replaces it.

        Parameters
        ----------
        points : torch.Tensor of shape (m, ...)
            The answers.
        hit : torch.Tensor of shape (m,), bool
            Which answers break their point.
        score : torch.Tensor of shape (m,) or None, default=None
            Their scores (needs a ``score`` at construction).
        rows : torch.Tensor of shape (m,) or None, default=None
            The batch rows answered (default: :attr:`rows`, whose order the answers and
            :attr:`state` share); answers for points no longer standing are ignored.
        """
        if rows is None:
            rows, open_ = self.rows, None
        else:
            open_ = self.standing[rows]
            hit = hit & open_
        if score is not None:
            take = hit | (score > self.score[rows])
            if open_ is not None:
                take &= open_
            self.found[rows[take]] = points[take]
            self.score[rows[take]] = score[take]
        elif bool(hit.any()):
            self.found[rows[hit]] = points[hit]
        else:
            return
        self.standing[rows[hit]] = False
        self._keep(~hit if open_ is None else self.standing[self.rows])

    def update(self, points, score=None):
        """Set the answers (and scores) of all the standing points, in :attr:`rows` order."""
        self.found[self.rows] = points
        if score is not None:
            self.score[self.rows] = score

    def _keep(self, keep):
        if bool(keep.all()):
            return
        self.rows = self.rows[keep]
        for name, value in vars(self.state).items():
            if value is not None:
                setattr(self.state, name, value[keep])
