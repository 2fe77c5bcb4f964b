"""Robust accuracy of a large test set, attacked by several processes at once."""

import numpy as np
import torch
import torch.distributed as dist
from sklearn.utils import column_or_1d

from ..utils import POSITIVE_INT, check_scalar_param, seed_from
from ._base import bridge_inputs, n_samples_of
from ._robust import _plan, robust_accuracy_score

_REFUSED = ("return_adversarial", "return_details")


def _world():
    """``(rank, world_size)`` of the default process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _chunk_seed(random_state, chunk):
    if random_state is None:
        return None
    return int(np.random.SeedSequence([random_state, chunk]).generate_state(1)[0])


def _take(X, index):
    return X.iloc[index] if hasattr(X, "iloc") else np.asarray(X)[index]


def sharded_robust_accuracy_score(estimator, X, y, *, eps, chunk_size=256, bounds="estimator",
                                  random_state=None, **kwargs):
    """:func:`robust_accuracy_score` with the attack work shared by the processes of a job.

    Every process (rank of the default ``torch.distributed`` process group, as set up by
    ``torchrun``, ``accelerate launch`` or an ``Accelerator``) calls this with the whole
    test set and the same arguments. The points are cut into chunks of ``chunk_size``;
    chunk ``c`` goes to rank ``c % world_size`` and is attacked with its own seed, drawn
    from ``(random_state, c)``; the robust counts are summed across ranks
    (``all_reduce``), and every rank returns the same figure. Because chunks and their
    seeds do not depend on the number of processes, the figure is the same for 1, 2 or
    ``N`` processes (and without any process group). For a deterministic attack (FGSM,
    PGD with ``attack_params={'random_start': False}``, APGD from the clean point) it
    equals :func:`robust_accuracy_score` on the whole set; with random starts it
    equals it in distribution (its points start from other random draws).

    Parameters
    ----------
    estimator, X, y, eps
        As in :func:`robust_accuracy_score`; ``X`` and ``y`` are the whole test set, on
        every rank.
    chunk_size : int, default=256
        Points per chunk (the unit of work shared out and seeded).
    bounds : 'estimator', None or (low, high), default='estimator'
        As in :func:`robust_accuracy_score`; ``'estimator'`` is resolved once on the
        whole ``X`` (widened to contain it), so that every chunk attacks in the same box.
    random_state : int or None, default=None
        Seeds each chunk's attack; an integer gives a reproducible figure.
    **kwargs
        The other arguments of :func:`robust_accuracy_score` (``norm``, ``attack``,
        ``steps``, ``restarts``, ``attack_params``, ``batch_size``...), except
        ``return_adversarial`` and ``return_details``.

    Returns
    -------
    float
        Robust accuracy over all points, identical on every rank.

    Examples
    --------
    Without a process group, all chunks run here:

    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_robust import ATClassifier
    >>> from sklearn_robust.metrics import robust_accuracy_score
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), ATClassifier(eps=0.1, max_epochs=3,
    ...                                                     random_state=0)).fit(X, y)
    >>> fgsm = dict(eps=1.0, attack="fgsm")
    >>> sharded = sharded_robust_accuracy_score(pipe, X, y, chunk_size=100, **fgsm)
    >>> sharded == robust_accuracy_score(pipe, X, y, **fgsm)
    True
    """
    caller = "sharded_robust_accuracy_score"
    refused = sorted(set(kwargs) & set(_REFUSED))
    if refused:
        raise TypeError(f"{caller} returns the score only; it does not take {refused}.")
    check_scalar_param(chunk_size, "chunk_size", POSITIVE_INT, caller)
    _, plan = _plan(
        caller, eps=eps, norm=kwargs.get("norm", "linf"), attack=kwargs.get("attack", "pgd"),
        steps=kwargs.get("steps"), step_size=kwargs.get("step_size"),
        restarts=kwargs.get("restarts"), bounds=bounds,
        attack_params=kwargs.get("attack_params"), batch_size=kwargs.get("batch_size", "auto"),
        random_state=random_state, verbose=kwargs.get("verbose", False),
    )
    y = column_or_1d(y, warn=True)
    n = n_samples_of(X)
    if n != y.shape[0]:
        raise ValueError(f"X and y have different lengths: {n} != {y.shape[0]}.")
    box = bridge_inputs(estimator, X, gradients=plan.uses_gradients, bounds=bounds).bounds
    seed = None if random_state is None else seed_from(random_state)

    rank, world = _world()
    robust = 0
    for chunk, start in enumerate(range(0, n, chunk_size)):
        if chunk % world != rank:
            continue
        index = np.arange(start, min(start + chunk_size, n))
        score = robust_accuracy_score(estimator, _take(X, index), y[index], eps=eps,
                                      bounds=box, random_state=_chunk_seed(seed, chunk),
                                      **kwargs)
        robust += round(score * index.size)
    if world > 1:
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        total = torch.tensor([robust], dtype=torch.int64, device=device)
        dist.all_reduce(total)
        robust = int(total.item())
    return robust / n
