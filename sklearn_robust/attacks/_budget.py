"""What an evaluation will cost, said before it starts.

A strong attack spends its whole budget on every point it cannot break: AutoAttack's
'standard' version runs 1,900 gradient and 5,900 forward passes of the model per
robust point, which for a robust 28x28 CNN on a CPU is hours for a thousand points. Each
attack states the most a point can cost (:meth:`Attack.passes_per_point`); here one
gradient pass and one forward pass are timed on the first batch, and an evaluation that
may take longer than :data:`LONG_EVALUATION_SECONDS` is announced with a
:class:`LongEvaluationWarning` before any attack step runs.
"""

import statistics
import time
import warnings
from contextlib import contextmanager

import torch

from ._parallel import sample_footprint

#: ``batch_size='auto'``: values of the widest tensor of a batch (64 MB in float32) ...
_AUTO_BATCH_VALUES = 1 << 24
#: ... and the fewest points of a batch.
_AUTO_BATCH_MIN = 256
#: The most points the model is timed on.
_TIMED_POINTS = 128

#: An evaluation whose estimate exceeds this many seconds is announced by a warning.
LONG_EVALUATION_SECONDS = 60.0

#: Below this many model passes in all (points times passes per point) nothing is timed:
#: such an evaluation is short on any model (and the timing would cost a visible share).
_TIMED_FROM_PASSES = 100_000


class LongEvaluationWarning(UserWarning):
    """An attack's evaluation may take long: at most how long, measured on this machine.

    Issued once per call, before the attack starts, when the estimate (every point
    costing its whole budget, at the speed of the model on the first batch) exceeds a
    minute. Silence it with ``warnings.filterwarnings('ignore',
    category=LongEvaluationWarning)``.

    Examples
    --------
    >>> import warnings
    >>> from sklearn_robust.attacks import LongEvaluationWarning
    >>> warnings.filterwarnings("ignore", category=LongEvaluationWarning)
    >>> warnings.resetwarnings()
    """


def _seconds_per_point(run, x, repeats=5):
    # The median of a few calls after a first one, which pays for kernel selection. Not
    # the fastest: with the cores busy, some calls of several threads run while no thread
    # is descheduled, and the fastest of them hides what the typical one costs (SmallCNN
    # on 8x8 digits, 450 points, 2 threads beside a busy process: fastest 11.8 ms, median
    # 23.4 ms, against 16.4 ms with 1 thread).
    run(x)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(x)
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds) / x.shape[0]


@contextmanager
def intra_op_threads(n):
    """torch's intra-op threads set to ``n`` inside the block, restored after."""
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def pass_times(module, x):
    """Seconds per point of a gradient pass and of a forward pass of ``module`` on ``x``.

    A gradient pass is a forward pass and the backward pass of the summed logits to the
    input, as the gradient attacks take; ``module`` is expected frozen (no parameter
    gradient) and is not changed.

    Examples
    --------
    >>> import torch
    >>> gradient, forward = pass_times(torch.nn.Linear(4, 3), torch.zeros(8, 4))
    >>> gradient > 0 and forward > 0
    True
    """

    def gradient(z):
        z = z.detach().requires_grad_(True)
        with torch.enable_grad():
            torch.autograd.grad(module(z).sum(), z)

    def forward(z):
        with torch.no_grad():
            module(z)

    return _seconds_per_point(gradient, x), _seconds_per_point(forward, x)


def fastest_threads(module, x):
    """The intra-op threads, at most torch's setting, that run ``module`` fastest on ``x``,
    and the pass times (see :func:`pass_times`) with them.

    torch's setting, then half of it, down to one thread, as long as each is faster: on a
    machine whose cores are busy with other work, a parallel operation waits for its
    slowest thread, descheduled by the other work, at every one of the attack's
    thousands of small steps, and fewer threads finish sooner. On an idle machine the
    setting itself is usually fastest. CUDA tensors: torch's setting.
    """
    threads = torch.get_num_threads()
    times = pass_times(module, x)
    while threads > 1 and not x.is_cuda:
        fewer = threads // 2
        with intra_op_threads(fewer):
            fewer_times = pass_times(module, x)
        if sum(fewer_times) >= 0.9 * sum(times):  # a clear gain only
            break
        threads, times = fewer, fewer_times
    return threads, times


def resolve_batch_size(batch_size, module, x):
    """Points per batch: ``batch_size``, or for ``'auto'`` as many as keep the widest
    tensor of ``module``'s forward pass (:func:`sample_footprint`) under 2**24 values, and
    at least 256.

    One large batch makes fewer, larger calls of the model: on the SmallCNN of 8x8 digits
    Square took 8.6 s on 386 points in one batch against 11.7 s in two (CPU, 2 threads).
    The cap keeps a large network's batch (a CIFAR-10 WideResNet) at 256.

    Examples
    --------
    >>> import torch
    >>> resolve_batch_size(64, None, None)
    64
    >>> resolve_batch_size("auto", torch.nn.Linear(64, 10), torch.zeros(500, 64))
    262144
    """
    if batch_size != "auto":
        return batch_size
    if x.shape[0] <= _AUTO_BATCH_MIN:  # one batch whatever the network
        return _AUTO_BATCH_MIN
    return max(_AUTO_BATCH_MIN, _AUTO_BATCH_VALUES // sample_footprint(module, x))


def format_duration(seconds):
    """``'45 s'``, ``'12 min'`` or ``'3.4 h'``.

    Examples
    --------
    >>> format_duration(45.2), format_duration(720), format_duration(12240)
    ('45 s', '12 min', '3.4 h')
    """
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def plan_run(attack, module, x, n_points, n_classes):
    """The intra-op threads for attacking ``n_points``; a long run is announced first.

    ``x`` is the first batch (on the module's device), ``n_classes`` the model's number
    of outputs. An attack whose budget (:meth:`Attack.passes_per_point` times the points)
    is unknown or small keeps torch's setting and is not timed. Otherwise the model is
    timed on ``x`` (:func:`fastest_threads`) and, if every point costing its whole
    budget would take longer than :data:`LONG_EVALUATION_SECONDS`, a
    :class:`LongEvaluationWarning` says how long, before any attack step.
    """
    passes = attack.passes_per_point(n_classes)
    if passes is None or n_points * sum(passes) < _TIMED_FROM_PASSES:
        return torch.get_num_threads()
    gradients, forwards = passes
    threads, (gradient_seconds, forward_seconds) = fastest_threads(module, x[:_TIMED_POINTS])
    estimate = n_points * (gradients * gradient_seconds + forwards * forward_seconds)
    if estimate > LONG_EVALUATION_SECONDS:
        warnings.warn(
            f"{type(attack).__name__} on {n_points:,} points may take up to about "
            f"{format_duration(estimate)} here: a point it cannot break costs "
            f"{gradients:,} gradient and {forwards:,} forward passes of the model, which "
            f"take {gradient_seconds * 1e3:.2g} ms and {forward_seconds * 1e3:.2g} ms per "
            "point on the first batch; points broken early cost less. Fewer points, a "
            "smaller budget (AutoAttack(version='fast'), for a first look) or a GPU cut "
            "it; verbose=True shows progress.",
            LongEvaluationWarning, stacklevel=3,
        )
    return threads
