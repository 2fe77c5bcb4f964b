"""Run under ``torchrun --nproc_per_node 2``: data-parallel fits and a sharded evaluation.

Each rank writes ``rank<r>.json`` in the directory given as the first argument; the
assertions live in ``tests/test_distributed.py``. ``--smoke`` fits one estimator only.
Every estimator is fitted with 2 x 32 points per step and compared with a single-process
fit of the same class on the same global batch of 64 (no shuffling, so both see the same
batches in the same order).
"""

import contextlib
import io
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from accelerate import Accelerator
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback
from skorch.hf import AccelerateMixin as SkorchAccelerateMixin
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.nn.parallel import DistributedDataParallel

from sklearn_robust import (
    ATClassifier,
    FastATClassifier,
    GRClassifier,
    LLRClassifier,
    NaturalClassifier,
    RSTClassifier,
    SCOREClassifier,
    TRADESClassifier,
)
from sklearn_robust.estimators import AccelerateMixin
from sklearn_robust.estimators._seeding import rank_seed
from sklearn_robust.metrics import robust_accuracy_score, sharded_robust_accuracy_score
from sklearn_robust.utils import FitStreams, active_generator, drawing_from

ALL = [NaturalClassifier, ATClassifier, TRADESClassifier, SCOREClassifier, RSTClassifier,
       GRClassifier, LLRClassifier, FastATClassifier]
PER_RANK_BATCH, N_TRAIN = 32, 256
# Module-level classes, so that the fitted estimators pickle.
ACCELERATED = {cls: type(f"Accelerated{cls.__name__}", (AccelerateMixin, cls), {})
               for cls in ALL}
globals().update({net.__name__: net for net in ACCELERATED.values()})
# skorch's own mixin, composed as skorch's docs show: it must train the same model.
SkorchAcceleratedTRADES = type("SkorchAcceleratedTRADES",
                               (SkorchAccelerateMixin, TRADESClassifier), {})


class BatchNormMLP(torch.nn.Module):
    def __init__(self, n_features=30, n_classes=2):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(n_features, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
            torch.nn.Linear(16, n_classes))

    def forward(self, x):
        return self.net(x)


class Probe(Callback):
    """Per step: forwards through the DDP wrapper, gradient all-reduces; the stream."""

    def initialize(self):
        self.wrapped, self.reduces, self.steps, self.frozen_grads = 0, 0, [], []
        self.draw = None
        return self

    def on_train_begin(self, net, **kwargs):
        # the fit's own stream, after the per-rank reseed
        self.draw = int(torch.randint(2**31 - 1, (1,), generator=active_generator()))
        module = net.module_
        if isinstance(module, DistributedDataParallel):
            module.register_forward_pre_hook(lambda *a: self._count("wrapped"))
            module.register_comm_hook(None, self._allreduce)
            inner = module.module
        else:
            inner = module
        inner.register_forward_pre_hook(self._inner)

    def _count(self, name):
        setattr(self, name, getattr(self, name) + 1)

    def _allreduce(self, state, bucket):
        self.reduces += 1
        return allreduce_hook(None, bucket)

    def _inner(self, module, args):
        if not module.training:  # a frozen forward: the inner maximisation (or a target)
            self.frozen_grads.append(any(p.requires_grad for p in module.parameters()))

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        if training:
            self.steps.append((self.wrapped, self.reduces))
            self.wrapped = self.reduces = 0


def make(cls, accelerator=None, mixin_class=None, **kw):
    params = dict(max_epochs=2, random_state=0, lr=1e-2, iterator_train__shuffle=False,
                  callbacks=[Probe()])
    if "module" not in kw:
        params["module__hidden_units"] = (16,)
    params.update({k: v for k, v in dict(eps=0.1, attack_steps=2).items()
                   if k in cls._parameter_constraints})
    if accelerator is None:  # the single-process reference: the global batch
        params.update(batch_size=2 * PER_RANK_BATCH, device="cpu")
        return cls(**params, **kw)
    params.update(batch_size=PER_RANK_BATCH, device=None, accelerator=accelerator)
    return (mixin_class or ACCELERATED[cls])(**params, **kw)


def simulate(cls, X, y, world, **kw):
    """What data-parallel training computes, in one process: per step, each rank's shard
    with that rank's random streams, the mean of their gradients, one optimizer step."""
    clf = make(cls, **kw)
    X, y = clf._prepare_fit(X, y, reset=True, fit_params={})
    first = FitStreams(0)
    with drawing_from(first):
        clf.initialize()  # the library network draws its weights from rank 0's stream
    streams = [first] + [FitStreams(rank_seed(0, rank)) for rank in range(1, world)]
    for rank_streams in streams:
        torch.randint(2**31 - 1, (1,), generator=rank_streams.generator())  # the probe
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(clf.max_epochs):
        for rank_streams in streams:  # each DataLoader pass draws its base seed
            torch.empty((), dtype=torch.int64).random_(generator=rank_streams.generator())
        for start in range(0, len(X), world * PER_RANK_BATCH):
            clf.optimizer_.zero_grad()
            for rank in range(world):
                shard = slice(start + rank * PER_RANK_BATCH,
                              start + (rank + 1) * PER_RANK_BATCH)
                clf.module_.train()
                with drawing_from(streams[rank]):
                    loss, _ = clf.objective_(clf.module_, X[shard], y[shard],
                                             clf.threat_model_)
                (loss / world).backward()
            clf.optimizer_.step()
    return clf


def state_of(clf):
    return {k: v.detach().numpy().copy() for k, v in clf.module_.state_dict().items()}


def max_diff(a, b):
    return max(float(np.abs(a[k].astype(np.float64) - b[k]).max()) for k in a)


def relative_diff(a, b):
    num = sum(float(np.square(a[k].astype(np.float64) - b[k]).sum()) for k in a)
    den = sum(float(np.square(b[k].astype(np.float64)).sum()) for k in b)
    return (num / den) ** 0.5


def main(out, smoke):
    accelerator = Accelerator(cpu=True)
    rank, world = accelerator.process_index, accelerator.num_processes
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    X_train, y_train, X_test, y_test = X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]
    result = {"rank": rank, "world": world, "fits": {}}
    cases = [(TRADESClassifier, {})] if smoke else [(c, {}) for c in ALL]
    cases.append((TRADESClassifier, {"module": BatchNormMLP}))
    cases.append((TRADESClassifier, {"awp_gamma": 0.01}))  # each rank perturbs by its shard
    for i, (cls, kw) in enumerate(cases):
        name = cls.__name__ + ("+BN" if "module" in kw else "") + ("+AWP" if "awp_gamma" in kw
                                                                   else "")
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            clf = make(cls, accelerator, verbose=1, **kw).fit(X_train, y_train)
        probe = dict(clf.callbacks_)["Probe"]
        state = state_of(clf)
        states = [None] * world
        dist.all_gather_object(states, state)
        fit = {
            "printed": len(stdout.getvalue()),
            "steps": list(probe.steps),
            "frozen_param_grads": any(probe.frozen_grads),
            "n_frozen_forwards": len(probe.frozen_grads),
            "draw": probe.draw,
            "rank_diff": max(max_diff(s, states[0]) for s in states),
            "proba": clf.predict_proba(X_test).tolist(),
            "score": clf.score(X_test, y_test),
            "unwrapped": not isinstance(clf.module_, DistributedDataParallel),
        }
        restored = pickle.loads(pickle.dumps(clf))
        fit["pickle_same"] = bool(np.array_equal(restored.predict_proba(X_test),
                                                 clf.predict_proba(X_test)))
        if i % world == rank:  # the references, shared out between the ranks
            reference = make(cls, **kw).fit(X_train, y_train)
            ref_probe = dict(reference.callbacks_)["Probe"]
            ref_state = state_of(reference)
            fit["vs_single_max"] = max_diff(state, ref_state)
            fit["vs_single_relative"] = relative_diff(state, ref_state)
            fit["vs_single_proba"] = float(np.abs(
                reference.predict_proba(X_test) - clf.predict_proba(X_test)).max())
            fit["vs_single_agree"] = float(
                (reference.predict(X_test) == clf.predict(X_test)).mean())
            fit["reference_draw"] = ref_probe.draw
            if "module" not in kw:  # BatchNorm's per-rank statistics are not simulated
                fit["vs_simulation_max"] = max_diff(state, state_of(
                    simulate(cls, X_train, y_train, world, **kw)))
        result["fits"][name] = fit
        if name == "TRADESClassifier":
            trades = clf
            trades_fit = state  # before partial_fit, for skorch's mixin
            if rank == 1:  # alone: a fitted estimator needs no other rank
                result["alone"] = clf.score(X_test, y_test)
            clf.save_params(f_params=out / f"params_rank{rank}.pt")
            n_steps = len(probe.steps)
            clf.partial_fit(X_train, y_train)  # re-wrapped: still data-parallel
            dist.all_gather_object(states, state_of(clf))
            result["partial_fit"] = {
                "rank_diff": max(max_diff(s, states[0]) for s in states),
                "steps": probe.steps[n_steps:],
                "moved": max_diff(states[0], state)}
    # skorch's own AccelerateMixin trains exactly what ours does (TRADES, no BatchNorm)
    theirs = make(TRADESClassifier, accelerator, mixin_class=SkorchAcceleratedTRADES)
    with contextlib.redirect_stdout(io.StringIO()):
        theirs.fit(X_train, y_train)
    their_state = state_of(theirs)
    dist.all_gather_object(states, their_state)
    result["skorch_mixin"] = {
        "vs_ours_max": max_diff(their_state, trades_fit),
        "rank_diff": max(max_diff(s, states[0]) for s in states),
        "steps": list(dict(theirs.callbacks_)["Probe"].steps),
        "unwrapped": not isinstance(theirs.module_, DistributedDataParallel)}
    accelerator.wait_for_everyone()

    sharded = {
        "pgd": dict(eps=0.3, attack="pgd", steps=5, random_state=0),
        "fgsm": dict(eps=0.3, attack="fgsm"),
    }
    result["sharded"] = {
        key: sharded_robust_accuracy_score(trades, X_test, y_test, chunk_size=64, **kw)
        for key, kw in sharded.items()}
    dist.destroy_process_group()  # from here on, single-process figures
    if rank == 0:
        result["single"] = {
            key: sharded_robust_accuracy_score(trades, X_test, y_test, chunk_size=64, **kw)
            for key, kw in sharded.items()}
        result["plain"] = {key: robust_accuracy_score(trades, X_test, y_test, **kw)
                           for key, kw in sharded.items()}
    (out / f"rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]), "--smoke" in sys.argv[2:])
