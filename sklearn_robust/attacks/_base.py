"""What every attack shares: parameters, batching, seeding, the model left as it was."""

import inspect
from numbers import Integral

import torch
from sklearn import get_config
from tqdm.auto import tqdm

from ..threat import ThreatModel
from ..utils import (
    POSITIVE_INT_OR_AUTO,
    Interval,
    as_module,
    frozen,
    make_generator,
    module_device,
    validate_params_of,
)
from ._budget import intra_op_threads, plan_run, resolve_batch_size
from ._checks import check_model_outputs
from ._warnings import warning_scope


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
    batch_size : int or 'auto', default='auto'
        Points attacked at once. ``'auto'``: as many as keep the widest tensor of the
        network's forward pass (or the input) under 2**24 values (64 MB in float32), and
        at least 256: every point of a small model's evaluation in one batch (fewer,
        larger model calls: faster on CPU and GPU), 256 for a CIFAR-10 WideResNet.
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
    gradient attack, look like probabilities rather than logits. A call with a large
    budget (:meth:`passes_per_point` times the points) times the model on the first
    batch: it runs with the fewest intra-op threads, up to torch's setting, that are
    fastest there (fewer than the setting only when the cores are busy with other
    work), and if it may take more than a minute it says so, with its estimate, by a
    :class:`LongEvaluationWarning` before it starts.

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
        "batch_size": POSITIVE_INT_OR_AUTO,
        "random_state": "no_validation",
        "verbose": "no_validation",
    }

    def __init__(self, threat, *, batch_size="auto", random_state=None, verbose=False):
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
        with warning_scope(), frozen(module):
            outputs = check_model_outputs(self, module, X)
            batch = resolve_batch_size(self.batch_size, module, X)
            threads = torch.get_num_threads()
            if outputs is not None and outputs.dim() == 2:
                threads = plan_run(self, module, X[:batch], X.shape[0], outputs.shape[1])
            with intra_op_threads(threads):
                starts = range(0, X.shape[0], batch)
                for start in tqdm(starts, desc=self.name, disable=not self.verbose,
                                  leave=False):
                    rows = slice(start, start + batch)
                    out[rows] = self._attack_batch(module, X[rows], y[rows], generator)
        return out

    def _attack_batch(self, module, x, y, generator):
        # A ball of radius 0 holds only the point itself: nothing to search, nothing drawn.
        if self.threat.eps == 0:
            return x
        return self.perturb(module, x, y, generator)

    def passes_per_point(self, n_classes):
        """``(gradient, forward)`` passes of the model a point may cost, or ``None``.

        The whole budget, spent on a point the attack cannot break (others leave early);
        used to announce long evaluations (``LongEvaluationWarning``). ``None``: unknown.
        """
        return None

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
