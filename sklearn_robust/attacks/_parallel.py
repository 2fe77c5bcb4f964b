"""Several runs of one attack as one batch: the restarts and targets of APGD and FAB.

AutoAttack runs its targeted stages one target class at a time, each on the points the
earlier targets left standing. Every run treats each point on its own (per-point step
sizes, checkpoints and working sets), so the runs can also share one batch: the point
repeated once per run, each copy with its own target. The work is the same on robust
points and the iterations (and their fixed cost per tensor operation, which dominates on
small inputs) are divided by the number of runs side by side. Groups are sized so that
one batch holds at most ``_BATCH_ELEMENTS`` input values, and the network's widest
activation (:func:`sample_footprint`) at most ``_ACTIVATION_ELEMENTS`` values: past that
the passes no longer run in cache, and batching runs became slower than running them in
turn (measured on CPU: FAB-T on 139 MNIST points, 9 targets, took 12 s one target at a
time and 19 s with all nine in one batch; on 8x8 digits the nine side by side took half
the time of nine in turn with an MLP, while with the SmallCNN, whose first activations
are 32 times its input, APGD-T's nine targets on 388 points took 8.6-9.4 s side by side
and the original AutoAttack's nine in turn 6.8 s).
"""

import math

import torch

#: Input values (rows x features) one batch of runs side by side may hold ...
_BATCH_ELEMENTS = 1 << 17
#: ... and values of the network's widest activation (rows x its values per sample).
_ACTIVATION_ELEMENTS = 1 << 19


def footprint(module, x, runs):
    """:func:`sample_footprint`, read only when there are ``runs`` to group (else 0)."""
    return sample_footprint(module, x) if len(runs) > 1 else 0


def run_groups(n_runs, n_points, sample_numel, weight=1, activation=0):
    """Consecutive groups of run indices that can share one batch of ``n_points`` each.

    ``weight`` counts the copies of the input a run keeps per point (FAB's untargeted
    step holds one gradient per class); ``activation`` is the values of a sample's
    widest tensor in the network (:func:`sample_footprint`; 0: not counted).

    Examples
    --------
    >>> run_groups(9, 100, 64)  # 8x8 images: all nine targets in one batch
    [range(0, 9)]
    >>> run_groups(9, 30, 784)  # 28x28: five runs per batch
    [range(0, 5), range(5, 9)]
    >>> run_groups(3, 1000, 784)  # one at a time
    [range(0, 1), range(1, 2), range(2, 3)]
    >>> run_groups(9, 100, 64, activation=2048)  # a CNN's activations: two at a time
    [range(0, 2), range(2, 4), range(4, 6), range(6, 8), range(8, 9)]
    """
    size = _BATCH_ELEMENTS // max(n_points * sample_numel * weight, 1)
    if activation:
        size = min(size, _ACTIVATION_ELEMENTS // max(n_points * activation, 1))
    size = max(1, min(n_runs, size))
    return [range(start, min(start + size, n_runs)) for start in range(0, n_runs, size)]


def sample_numel(x):
    """Number of values of one sample of the batch ``x``."""
    return math.prod(x.shape[1:])


def sample_footprint(module, x):
    """Values of the largest tensor one sample of ``x`` makes in ``module``'s forward pass.

    Its input, or the output of any of the network's layers (its leaf modules), whichever
    is largest, read from one forward pass of the first sample. The hooks are removed
    after; a callable that is no ``torch.nn.Module`` counts its input and output only.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.Flatten(),
    ...                           torch.nn.Linear(32 * 8 * 8, 10))
    >>> x = torch.zeros(5, 1, 8, 8)
    >>> sample_numel(x), sample_footprint(net, x)
    (64, 2048)
    """
    sizes = [sample_numel(x)]

    def record(layer, inputs, output):
        if isinstance(output, torch.Tensor) and output.dim() > 0 and output.shape[0]:
            sizes.append(output.numel() // output.shape[0])

    layers = []
    if isinstance(module, torch.nn.Module):
        layers = [m for m in module.modules() if next(m.children(), None) is None]
    handles = [layer.register_forward_hook(record) for layer in layers]
    try:
        with torch.no_grad():
            record(module, None, module(x[:1]))
    finally:
        for handle in handles:
            handle.remove()
    return max(sizes)


def n_target_runs(n_target_classes, n_classes, restarts):
    """How many runs :func:`target_runs` makes: ``restarts`` per target class, the
    targets capped at the other classes.

    Examples
    --------
    >>> n_target_runs(9, 4, restarts=2)
    6
    """
    return min(n_target_classes, n_classes - 1) * restarts


def target_runs(logits, y, n_target_classes, restarts):
    """The targets of each run of a targeted attack: ``restarts`` runs per target class.

    A point's targets are the ``n_target_classes`` classes other than its label with the
    highest clean ``logits`` (capped at ``n_classes - 1``), best first; run ``r`` aims
    every point at its target of rank ``r // restarts``.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[0.0, 3.0, 1.0, 2.0]])
    >>> target_runs(logits, torch.tensor([1]), 2, restarts=1)
    [tensor([3]), tensor([2])]
    """
    n_targets = n_target_runs(n_target_classes, logits.shape[1], 1)
    others = logits.scatter(1, y[:, None], -float("inf"))
    targets = others.argsort(dim=1, descending=True)[:, :n_targets]
    return [targets[:, rank] for rank in range(n_targets) for _ in range(restarts)]


def side_by_side(points, runs, numel, weight=1, activation=0):
    """The groups of ``runs`` that share one batch, each on the points still standing.

    ``points`` is the attack's working set over the batch (``_working_set.WorkingSet``),
    ``runs`` one target per run (a tensor over the batch, or ``None`` for an untargeted
    run), ``numel``, ``weight`` and ``activation`` as in :func:`run_groups`. Yields
    ``(group, rows, copies, target)`` per group: its run indices, the batch rows of the
    points standing when it starts, those rows once per run (the group's batch) and the
    runs' targets at those rows, in the same order (``None`` for untargeted runs). Stops
    when no point is left standing.
    """
    for group in run_groups(len(runs), len(points), numel, weight, activation):
        if not len(points):
            return
        rows = points.rows
        target = None if runs[group[0]] is None else torch.cat([runs[r][rows] for r in group])
        yield group, rows, rows.repeat(len(group)), target
