"""What every attack shares: leaving the model as it was, batching, seeding, progress."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ..threat import ThreatModel
from ..utils import as_module, check_int, frozen, make_generator, module_device
from ._checks import check_model_outputs
from ._warnings import warning_scope


def margin_fooled(logits, y):
    """Boolean per sample: the predicted class differs from ``y``."""
    return logits.argmax(dim=1) != y


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

    def __init__(self, threat, *, batch_size=256, random_state=None, verbose=False):
        if not isinstance(threat, ThreatModel):
            raise TypeError(f"threat must be a ThreatModel, got {type(threat).__name__}.")
        self.threat = threat
        self.batch_size = check_int(batch_size, "batch_size", type(self).__name__)
        self.random_state = random_state
        self.verbose = verbose

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
        its stages) with the batch already on the module's device, inside
        :func:`~sklearn_robust.attacks.frozen`. Draw every random number from
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
