"""``random_state`` for a whole fit: streams the fit owns, one set per data-parallel rank."""

from contextlib import contextmanager

import torch
from torch.utils.data import RandomSampler

from ..utils import FitStreams, active_generator, drawing_from, mix_seed, seed_from


def streams_for(random_state):
    """The :class:`~sklearn_robust.utils.FitStreams` of a fit seeded with ``random_state``.

    An integer (a numpy one included) is the seed itself; ``None`` draws a seed from
    torch's global stream, so that a fit without ``random_state`` still follows
    ``torch.manual_seed``.

    Examples
    --------
    >>> streams_for(3).seed
    3
    """
    if random_state is None:
        return FitStreams(int(torch.randint(0, 2**62, (1,)).item()))
    return FitStreams(seed_from(random_state))


@contextmanager
def fit_randomness(random_state):
    """The block of a fit: its own streams active in this thread, yielded.

    Examples
    --------
    >>> import torch
    >>> from sklearn_robust.utils import active_generator
    >>> with fit_randomness(0):
    ...     a = torch.rand(1, generator=active_generator())
    >>> with fit_randomness(0):
    ...     b = torch.rand(1, generator=active_generator())
    >>> bool(torch.equal(a, b))
    True
    """
    with drawing_from(streams_for(random_state)) as streams:
        yield streams


def module_stream_seed(seed):
    """The seed of torch's global stream while a fit trains a module that draws from it.

    A module's own draws (a user's dropout) can only come from the global stream; it is
    forked and seeded for the fit from this seed, mixed from the fit's so that it does not
    replay the draws of the fit's own streams.
    """
    return mix_seed(seed, 0x6D6F64)


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
    return mix_seed(seed, rank)


class StreamSampler(RandomSampler):
    """torch's ``RandomSampler``, drawing each epoch's seed from the fit's CPU stream.

    Without a generator of its own, torch's sampler seeds each epoch's permutation with a
    draw from the global stream, which concurrent fits share. This one draws that seed
    from the active fit's stream (:func:`~sklearn_robust.utils.active_generator`), in the
    same place, so a seeded fit shuffles as it did before and whatever runs beside it. A
    generator given to the sampler (Accelerate gives one, synchronised across processes)
    is used as torch's sampler uses it.

    Examples
    --------
    >>> from sklearn_robust.utils import FitStreams, drawing_from
    >>> def order():
    ...     with drawing_from(FitStreams(0)):
    ...         return list(StreamSampler(range(5)))
    >>> order() == order()
    True
    """

    def __iter__(self):
        stream = active_generator("cpu")
        if self.generator is not None or stream is None:
            return super().__iter__()
        seed = int(torch.empty((), dtype=torch.int64).random_(generator=stream).item())
        epoch = RandomSampler(self.data_source, replacement=self.replacement,
                              num_samples=self._num_samples,
                              generator=torch.Generator().manual_seed(seed))
        return iter(epoch)
