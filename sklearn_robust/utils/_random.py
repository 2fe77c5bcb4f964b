"""Random streams owned by one fit, so that fits running side by side never share draws.

A fit seeded with ``random_state`` draws everything the library draws (batch order, attack
starts, augmentation, the library networks' dropout masks) from generators it owns, made
active for the fit's thread by :func:`drawing_from`. Code below the estimators asks for
them with :func:`active_generator`; outside a fit it gets ``None``, torch's global stream.

torch's global stream is still touched in two places, both guarded by one process-wide
lock: building a network (constructors draw their initial weights from it, and a user's
module can only be built that way) and forking it (:func:`forked_rng`).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import torch

__all__ = [
    "FitStreams",
    "active_generator",
    "active_streams",
    "building_from",
    "cuda_devices",
    "drawing_from",
    "forked_rng",
    "global_stream_lock",
    "mix_seed",
]

#: Serialises every save, seed and restore of torch's global stream done by the library.
global_stream_lock = threading.RLock()

_ACTIVE: ContextVar[FitStreams | None] = ContextVar("sklearn_robust_fit_streams",
                                                    default=None)


def cuda_devices():
    """Indices of every visible CUDA device (empty without CUDA)."""
    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def mix_seed(seed, *keys):
    """A seed mixed from ``seed`` and integer ``keys`` (numpy's ``SeedSequence``).

    Examples
    --------
    >>> mix_seed(0, 1) == mix_seed(0, 1) != mix_seed(1, 0)
    True
    """
    return int(np.random.SeedSequence([int(seed), *keys]).generate_state(1)[0])


class FitStreams:
    """The random streams of one fit: one ``torch.Generator`` per device, from one seed.

    The CPU generator exists from the start; a generator for a CUDA device is made, seeded
    with the same seed, the first time that device asks (as ``torch.manual_seed`` seeds
    every device's global stream). A fit seeded with ``s`` therefore draws the numbers a
    fit drawing from torch's global streams after ``torch.manual_seed(s)`` would draw.

    Parameters
    ----------
    seed : int
        The seed of every stream.

    Examples
    --------
    >>> import torch
    >>> streams = FitStreams(0)
    >>> a = torch.rand(2, generator=streams.generator("cpu"))
    >>> _ = torch.manual_seed(0)
    >>> bool(torch.equal(a, torch.rand(2)))
    True
    """

    def __init__(self, seed):
        self.seed = int(seed)
        self._generators = {}
        self.generator("cpu")

    def generator(self, device="cpu"):
        """The generator of ``device`` (a ``torch.device`` or a string)."""
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[key]

    def reseed(self, seed):
        """Restart every stream from ``seed`` (a data-parallel rank's own seed)."""
        self.seed = int(seed)
        for generator in self._generators.values():
            generator.manual_seed(self.seed)

    def draw_seed(self):
        """A fresh seed drawn from the CPU stream (for a stream of its own)."""
        return int(torch.randint(0, 2**62, (1,), generator=self.generator("cpu")).item())


@contextmanager
def drawing_from(streams):
    """Make ``streams`` the active fit's streams in this thread (and context) for the block.

    Examples
    --------
    >>> with drawing_from(FitStreams(0)):
    ...     active_generator("cpu") is not None
    True
    >>> active_generator("cpu") is None
    True
    """
    token = _ACTIVE.set(streams)
    try:
        yield streams
    finally:
        _ACTIVE.reset(token)


def active_streams():
    """The active fit's :class:`FitStreams`, or ``None`` outside a fit."""
    return _ACTIVE.get()


def active_generator(device="cpu"):
    """The active fit's generator for ``device``, or ``None`` (torch's global stream)."""
    streams = _ACTIVE.get()
    return None if streams is None else streams.generator(device)


@contextmanager
def forked_rng(seed=None):
    """Fork the CPU and every CUDA global stream; seed them if ``seed`` is given.

    The global streams are restored on exit, so seeding inside changes nothing outside.
    Saving, seeding and restoring take :data:`global_stream_lock`, so a fork never lands
    in the middle of a network being built by another thread.

    Examples
    --------
    >>> import torch
    >>> with forked_rng(0):
    ...     a = torch.rand(2)
    >>> with forked_rng(0):
    ...     b = torch.rand(2)
    >>> bool(torch.equal(a, b))
    True
    """
    devices = cuda_devices()
    with global_stream_lock:
        cpu_state = torch.get_rng_state()
        cuda_states = [torch.cuda.get_rng_state(d) for d in devices]
        if seed is not None:
            torch.manual_seed(seed)
    try:
        yield
    finally:
        with global_stream_lock:
            torch.set_rng_state(cpu_state)
            for device, state in zip(devices, cuda_states, strict=True):
                torch.cuda.set_rng_state(state, device)


@contextmanager
def building_from(streams):
    """Build a user's network inside the block from ``streams``' CPU stream.

    Constructors draw their initial weights from torch's global stream, the only one a
    user's module can be built from (the library's networks draw from the fit's stream
    directly). Under :data:`global_stream_lock` the global stream is
    set to the fit's CPU stream, and the fit's stream continues from where construction
    left it; the global stream is then restored. Two fits building at once take turns.

    Examples
    --------
    >>> import torch
    >>> def build():
    ...     with building_from(FitStreams(0)):
    ...         return torch.nn.Linear(2, 2).weight
    >>> bool(torch.equal(build(), build()))
    True
    """
    if streams is None:
        yield
        return
    cpu = streams.generator("cpu")
    # Inside, the library's own networks (a user's module may hold one) draw from the
    # global stream too, so that every draw of the construction comes from one stream.
    with global_stream_lock, forked_rng(), drawing_from(None):
        torch.set_rng_state(cpu.get_state())
        yield
        cpu.set_state(torch.get_rng_state())
