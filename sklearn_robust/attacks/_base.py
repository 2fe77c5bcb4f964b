"""What every attack shares: leaving the model as it was, batching, seeding, progress."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
from sklearn.utils import check_random_state
from tqdm.auto import tqdm

from .._threat import ThreatModel


@contextmanager
def frozen(module):
    """Run ``module`` as a fixed function of its input, then restore it exactly.

    Inside the block every submodule is in eval mode (dropout off, BatchNorm uses and does
    not update its running statistics) and parameters do not require gradients, so an
    attack builds no parameter graph. On exit each submodule's ``training`` flag and each
    parameter's ``requires_grad`` are restored one by one, even after an exception.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5)).train()
    >>> with frozen(model):
    ...     model.training, model[0].weight.requires_grad
    (False, False)
    >>> model.training, model[0].weight.requires_grad
    (True, True)
    """
    modes = [(m, m.training) for m in module.modules()]
    needs_grad = [(p, p.requires_grad) for p in module.parameters()]
    module.eval()
    for p, _ in needs_grad:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for m, mode in modes:
            m.training = mode
        for p, flag in needs_grad:
            p.requires_grad_(flag)


def module_device(module):
    """The device of ``module``'s first parameter or buffer (CPU for a parameterless one).

    Examples
    --------
    >>> import torch
    >>> module_device(torch.nn.Linear(2, 2))
    device(type='cpu')
    """
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def make_generator(random_state, device):
    """A ``torch.Generator`` on ``device`` seeded from a sklearn-style ``random_state``.

    Attacks draw their noise from it, never from the global RNG, so measuring a model
    does not change the global random state.

    Examples
    --------
    >>> import torch
    >>> a = torch.rand(2, generator=make_generator(0, "cpu"))
    >>> b = torch.rand(2, generator=make_generator(0, "cpu"))
    >>> bool(torch.equal(a, b))
    True
    """
    seed = int(check_random_state(random_state).randint(0, 2**31 - 1))
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def margin_fooled(logits, y):
    """Boolean per sample: the predicted class differs from ``y``."""
    return logits.argmax(dim=1) != y


class Attack:
    """Base class of the evaluation attacks.

    Subclasses implement ``_perturb_batch(module, x, y, generator)`` for one batch already
    on the module's device; this class handles batching, seeding, progress and the
    model's state. Call an attack as ``attack(module, X, y)``.

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

    Examples
    --------
    A subclass only writes the per-batch step; here, a random sign perturbation:

    >>> import torch
    >>> from sklearn_robust import ThreatModel
    >>> class RandomSign(Attack):
    ...     def _perturb_batch(self, module, x, y, generator):
    ...         noise = torch.rand(x.shape, generator=generator, device=x.device)
    ...         return self.threat.project(x + self.threat.eps * (2 * noise - 1).sign(), x)
    >>> X_adv = RandomSign(ThreatModel(eps=0.1), random_state=0)(
    ...     torch.nn.Linear(3, 2), torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    >>> float(X_adv.abs().max())
    0.1...
    """

    name = "attack"
    uses_gradients = True

    def __init__(self, threat, *, batch_size=256, random_state=None, verbose=False):
        if not isinstance(threat, ThreatModel):
            raise TypeError(f"threat must be a ThreatModel, got {type(threat).__name__}.")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self.threat = threat
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose

    def __repr__(self):
        return f"{type(self).__name__}(threat={self.threat!r})"

    def __call__(self, module, X, y):
        """Adversarial points for ``X`` (tensor or array) with labels ``y`` (class indices).

        Returns a tensor of ``X``'s shape on the module's device; every row lies inside
        the threat model's ball around the corresponding row of ``X`` and its bounds.
        """
        device = module_device(module)
        X = torch.as_tensor(X, dtype=torch.float32).to(device)
        y = torch.as_tensor(y, dtype=torch.long).to(device)
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X and y have different lengths: {X.shape[0]} != {y.shape[0]}.")
        generator = make_generator(self.random_state, device)
        out = torch.empty_like(X)
        starts = range(0, X.shape[0], self.batch_size)
        with frozen(module):
            for start in tqdm(starts, desc=self.name, disable=not self.verbose, leave=False):
                stop = start + self.batch_size
                if self.threat.eps == 0:
                    out[start:stop] = X[start:stop]
                    continue
                out[start:stop] = self._perturb_batch(
                    module, X[start:stop], y[start:stop], generator
                )
        return out

    def _perturb_batch(self, module, x, y, generator):  # pragma: no cover - abstract
        raise NotImplementedError
