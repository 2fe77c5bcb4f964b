"""What every attack shares: parameters, batching, seeding, the model left as it was, and
the working set of points still standing."""

import inspect
from numbers import Integral
from types import SimpleNamespace

import torch
from sklearn import get_config
from tqdm.auto import tqdm

from ..threat import ThreatModel
from ..utils import (
    POSITIVE_INT,
    Interval,
    as_module,
    frozen,
    make_generator,
    module_device,
    validate_params_of,
)
from ._checks import check_model_outputs
from ._warnings import warning_scope


def margin_fooled(logits, y):
    """Boolean per sample: the predicted class differs from ``y``."""
    return logits.argmax(dim=1) != y


def check_threat(threat):
    """``threat`` if it is a :class:`~sklearn_robust.ThreatModel`, else ``TypeError``."""
    if not isinstance(threat, ThreatModel):
        raise TypeError(f"threat must be a ThreatModel, got {type(threat).__name__}.")
    return threat


class Attack:
    """Base class of the evaluation attacks.

    Subclasses implement :meth:`perturb` for one batch already on the module's device;
    this class handles batching, seeding, progress and the model's state. Call an attack
    as ``attack(module, X, y)``.

    Parameters
    ----------
    threat : ThreatModel
        The ball and bounds the adversarial points must stay in.
    batch_size : int, default=256
        Points attacked at once.
    random_state : int, RandomState instance or None, default=None
        Seeds the attack's own ``torch.Generator`` (random starts, Square's proposals).
    verbose : bool, default=False
        Show a progress bar over batches.

    Attributes
    ----------
    name : str
        Short name, as in :data:`~sklearn_robust.attacks.ATTACKS`.
    uses_gradients : bool
        Whether the attack differentiates the model (False: a black box, any callable).
    schedule_params : tuple of str
        The schedule keywords among ``('steps', 'step_size', 'restarts')`` the class
        accepts; the scorers refuse the others.
    expects_randomness : bool
        Whether the attack is built for randomised models (expectation over
        transformation); the others warn when two forward passes differ.

    Notes
    -----
    The constructor's arguments are checked against ``_parameter_constraints``
    (scikit-learn's format), unless a caller checked them (see :meth:`check_params`).

    Each call first runs AutoAttack's checks on the model (two forward passes of the
    first points): a ``UserWarning`` says so when the outputs are randomised or, for a
    gradient attack, look like probabilities rather than logits.

    Examples
    --------
    A subclass only writes the per-batch step; here, a random sign perturbation:

    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> class RandomSign(Attack):
    ...     def perturb(self, module, x, y, generator):
    ...         noise = torch.rand(x.shape, generator=generator, device=x.device)
    ...         return self.threat.project(x + self.threat.eps * (2 * noise - 1).sign(), x)
    >>> X_adv = RandomSign(ThreatModel(eps=0.1), random_state=0)(
    ...     torch.nn.Linear(3, 2), torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    >>> float(X_adv.abs().max())
    0.1...
    """

    name = "attack"
    uses_gradients = True
    schedule_params = ()
    expects_randomness = False

    #: Constraints of the constructor's arguments but ``threat`` (scikit-learn's format);
    #: a subclass extends them with its own, so that every argument is listed.
    _parameter_constraints = {
        "batch_size": POSITIVE_INT,
        "random_state": "no_validation",
        "verbose": "no_validation",
    }

    def __init__(self, threat, *, batch_size=256, random_state=None, verbose=False):
        self.threat = check_threat(threat)
        self._set_params(batch_size=batch_size, random_state=random_state, verbose=verbose)

    @classmethod
    def check_params(cls, norm, params):
        """Check constructor arguments without building the attack.

        What the constructor would refuse is refused here: a value outside
        ``_parameter_constraints`` or an option that does not apply to the norm
        (``ValueError``), and a keyword the class does not declare (``TypeError``; every
        attack of the package declares all its arguments, a subclass that declares none
        of its own leaves its keywords to its constructor). A caller that builds the
        attack later, once the model's bounds are known, checks here first and then
        builds under ``sklearn.config_context(skip_parameter_validation=True)``.

        Parameters
        ----------
        norm : {'linf', 'l2', 'l1'}
            The norm of the threat the attack will be built for.
        params : dict
            Keyword arguments of the constructor (``threat`` aside).

        Examples
        --------
        >>> from sklearn_robust.attacks import PGD
        >>> PGD.check_params("linf", {"steps": 10})
        >>> PGD.check_params("linf", {"l1_fraction": 0.1})
        Traceback (most recent call last):
        ...
        ValueError: l1_fraction is for norm='l1' only; PGD has norm='linf'.
        """
        unknown = sorted(set(params) - set(cls._parameter_constraints))
        if unknown and "_parameter_constraints" in vars(cls):
            raise TypeError(f"{cls.__name__} got unexpected keyword arguments {unknown}.")
        validate_params_of(cls._parameter_constraints, params, cls.__name__)
        defaults = {p.name: p.default for klass in reversed(cls.__mro__)
                    if "__init__" in vars(klass)
                    for p in inspect.signature(vars(klass)["__init__"]).parameters.values()
                    if p.default is not p.empty}
        cls._check_norm_rules(norm, {**defaults, **params})

    @classmethod
    def _check_norm_rules(cls, norm, params):
        """Refuse options that do not apply to ``norm`` (``params``: every argument)."""

    def _set_params(self, **params):
        """Check the constructor's arguments (unless the caller did), then store them."""
        constraints = self._parameter_constraints
        if not get_config()["skip_parameter_validation"]:
            validate_params_of(constraints, params, type(self).__name__)
            self._check_norm_rules(self.threat.norm, params)
        for name, value in params.items():
            setattr(self, name, _as_number(value, constraints.get(name, ())))

    def __repr__(self):
        return f"{type(self).__name__}(threat={self.threat!r})"

    def __call__(self, module, X, y):
        """Adversarial points for ``X`` (tensor or array) with labels ``y`` (class indices).

        ``module`` is a ``torch.nn.Module`` or any callable returning scores for a batch.
        Returns a tensor of ``X``'s shape on the module's device; every row lies inside
        the threat model's ball around the corresponding row of ``X`` and its bounds.
        """
        module = as_module(module)
        device = module_device(module)
        X = torch.as_tensor(X, dtype=torch.float32).to(device)
        y = torch.as_tensor(y, dtype=torch.long).to(device)
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X and y have different lengths: {X.shape[0]} != {y.shape[0]}.")
        generator = make_generator(self.random_state, device)
        out = torch.empty_like(X)
        starts = range(0, X.shape[0], self.batch_size)
        with warning_scope(), frozen(module):
            check_model_outputs(self, module, X)
            for start in tqdm(starts, desc=self.name, disable=not self.verbose, leave=False):
                rows = slice(start, start + self.batch_size)
                out[rows] = self._attack_batch(module, X[rows], y[rows], generator)
        return out

    def _attack_batch(self, module, x, y, generator):
        # A ball of radius 0 holds only the point itself: nothing to search, nothing drawn.
        if self.threat.eps == 0:
            return x
        return self.perturb(module, x, y, generator)

    def perturb(self, module, x, y, generator):  # pragma: no cover - abstract
        """Adversarial points for one batch: the hook subclasses implement.

        Called by :meth:`__call__` (and by :class:`~sklearn_robust.attacks.Cascade` for
        its stages) with the batch already on the module's device, the module frozen
        (eval mode, parameters not requiring gradients). Draw every random number from
        ``generator``; never change ``module``.

        Parameters
        ----------
        module : torch.nn.Module
            The model, in eval mode, its parameters not requiring gradients.
        x : torch.Tensor of shape (n, ...)
            The points.
        y : torch.Tensor of shape (n,)
            Their labels (class indices).
        generator : torch.Generator
            The attack's random stream, on ``x``'s device.

        Returns
        -------
        torch.Tensor of shape (n, ...)
            Points inside the threat model's ball around ``x`` and its bounds.
        """
        raise NotImplementedError


def _as_number(value, constraints):
    # Numbers as Python numbers (np.int64(3) -> 3), so reprs and pickles stay plain.
    for constraint in constraints:
        if isinstance(constraint, Interval) and isinstance(value, constraint.type):
            return int(value) if constraint.type is Integral else float(value)
    return value


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
