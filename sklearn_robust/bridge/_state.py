"""Leaving a scored estimator as it was found: module modes and the global random streams."""

from contextlib import contextmanager

from sklearn.pipeline import Pipeline
from torch import nn

from ..utils import forked_rng
from ._affine import flatten_pipeline


def torch_modules(estimator):
    """Every torch module held by ``estimator`` (pipeline steps searched recursively).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> torch_modules(LogisticRegression())
    []
    """
    found = []
    if isinstance(estimator, Pipeline):
        for _, step in flatten_pipeline(estimator):
            found.extend(torch_modules(step))
        return found
    for value in vars(estimator).values():
        if isinstance(value, nn.Module):
            found.append(value)
    return found


@contextmanager
def preserved_state(estimator):
    """Restore the train/eval flags of ``estimator``'s torch modules and the torch RNG on exit.

    skorch's ``predict`` switches its modules to eval mode and leaves them so, and each
    DataLoader it builds draws a seed from the global torch RNG; the scorers call
    ``predict`` and must leave the model, and the random state, as they found them. The
    CPU stream and every CUDA device's stream are forked.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust import NaturalClassifier
    >>> clf = NaturalClassifier(max_epochs=1, random_state=0).fit(
    ...     torch.rand(20, 4).numpy(), [0, 1] * 10)
    >>> _ = clf.module_.train()
    >>> state = torch.get_rng_state()
    >>> with preserved_state(clf):
    ...     _ = clf.predict(torch.rand(5, 4).numpy())
    >>> clf.module_.training, bool(torch.equal(state, torch.get_rng_state()))
    (True, True)
    """
    modes = [(m, m.training) for module in torch_modules(estimator) for m in module.modules()]
    try:
        with forked_rng():
            yield
    finally:
        for m, mode in modes:
            m.training = mode
