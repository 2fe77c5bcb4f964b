"""``random_state`` for a whole fit: a forked, seeded torch RNG, one stream per rank."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from ..utils import forked_rng, seed_from


def seeded(random_state):
    """A context seeding every torch stream from ``random_state``, restored on exit.

    ``None`` leaves the global streams as they are (no fork, no seed). An integer (a numpy
    one included) is the seed itself.

    Examples
    --------
    >>> import torch
    >>> with seeded(0):
    ...     a = torch.rand(1)
    >>> with seeded(0):
    ...     b = torch.rand(1)
    >>> bool(torch.equal(a, b))
    True
    """
    if random_state is None:
        return nullcontext()
    return forked_rng(seed_from(random_state))


def rank_seed(random_state, rank):
    """The seed of process ``rank`` in a data-parallel fit seeded with ``random_state``.

    Rank 0 gets the single-process seed (so it draws what one process would); every other
    rank a distinct seed mixed from ``(seed, rank)`` by numpy's ``SeedSequence``, so that
    ``random_state=0`` on rank 1 is not ``random_state=1`` on rank 0.

    Examples
    --------
    >>> rank_seed(0, 0)
    0
    >>> rank_seed(0, 1) == rank_seed(0, 1) != rank_seed(1, 0)
    True
    """
    seed = seed_from(random_state)
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])
