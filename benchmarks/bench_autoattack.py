"""AutoAttack parity: our ``'auto'`` against the original AutoAttack and torchattacks'.

Same model, same points (the first ``--n`` test points), same eps, bounds (0, 1). Models
(``--net`` x ``--model``, on the 8x8 digits or on the 4,000 real MNIST training images of
``_workloads.real_mnist``; each in eval mode):

  mlp natural    784 (or 64) -> 128 -> 10, plain torch, 150 full-batch Adam steps
  mlp at         the same MLP, PGD adversarial training at l_inf eps 0.1 (60 steps)
  mlp trades     the same MLP as ``TRADESClassifier(module=..., eps=0.1)``
  cnn natural    ``NaturalClassifier()``'s default network (SmallCNN), ``--epochs`` 20,
                 ``random_state=0``: a new user's model
  cnn at         ``ATClassifier(eps=0.1)``, likewise
  cnn trades     ``TRADESClassifier(eps=0.1)``, likewise

Rows:

  ours           AutoAttack(version='standard'): APGD-CE 100, APGD-T 9 x 100,
                 FAB-T 9 x 100, Square 5000 (resc_schedule=False)
  original       the original AutoAttack (github:fra31/auto-attack, version='standard',
                 seed 0), only with ``--original PATH``: PATH is a checkout's root, the
                 folder holding its ``autoattack/`` package (not vendored here: ``git
                 clone https://github.com/fra31/auto-attack``, or any copy of it; it
                 needs no install). All points in one batch (``bs=--n``).
  ta-standard    torchattacks' components at the same budget: APGD(steps=100),
                 APGDT(steps=100), FAB(multi_targeted, steps=100),
                 Square(n_queries=5000, resc_schedule=False) in a MultiAttack
  ta-shipped     torchattacks.AutoAttack(version='standard') as shipped (its stages
                 default to 10 iterations: a weaker budget than the paper's)

Reported: robust accuracy (share of all points correct at the returned point, checked
here the same way for every row), seconds, and the time ratios ours / original and ours
/ ta-standard. ``--stages`` adds each stage's seconds and points (ours: the cascade's
stages; original: its four attacks; ta-standard: the MultiAttack's attacks) and the
per-stage ratio ours / original. ``--work`` counts, per stage, the images the model
was run on and how many of them with an input gradient: the attacks' work, independent
of the machine's load. ``--threads`` sets torch's intra-op threads: on a loaded
machine, more threads than free cores make every small operation wait for a descheduled
worker, which swamps the attacks' own cost.

Run:  python benchmarks/bench_autoattack.py [--data digits mnist] [--n 200]
      [--norm linf l2] [--net mlp cnn] [--model natural at trades] [--epochs 20]
      [--threads 1] [--stages] [--work] [--original PATH] [--skip-reference]
      [--batch-size B] [--json PATH]
"""

import argparse
import collections
import json
import sys
import time
import warnings

import numpy as np
import torch
from torch import nn

from sklearn_robust import ATClassifier, NaturalClassifier, ThreatModel, TRADESClassifier
from sklearn_robust.attacks import PGD, AutoAttack, _budget
from sklearn_robust.datasets import load_digits_images

try:  # run as a script from benchmarks/ or imported by the tests
    from _workloads import real_mnist
except ImportError:  # pragma: no cover
    from benchmarks._workloads import real_mnist

EPS = {"linf": 0.1, "l2": 1.0}
ESTIMATORS = {"natural": (NaturalClassifier, {}), "at": (ATClassifier, {"eps": 0.1}),
              "trades": (TRADESClassifier, {"eps": 0.1})}
STAGES = ("apgd-ce", "apgd-t", "fab-t", "square")


def load(data, seed=0):
    """``X_train, X_test, y_train, y_test`` as tensors: digits or real MNIST, in [0, 1]."""
    if data == "digits":
        parts = load_digits_images()
    else:
        parts = real_mnist(seed)
    return [torch.as_tensor(np.asarray(a)) for a in parts]


def mlp(n_in):
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, 128), nn.ReLU(), nn.Linear(128, 10))


def train(kind, data="digits", seed=0, net="mlp", epochs=20):
    """The model ``net`` x ``kind`` (see the module's docstring), in eval mode."""
    X, _, y, _ = load(data, seed)
    if net == "cnn" or kind == "trades":
        estimator, params = ESTIMATORS[kind]
        if net == "mlp":
            torch.manual_seed(seed)
            params = {**params, "module": mlp(X[0].numel())}
        clf = estimator(max_epochs=epochs, random_state=seed, **params)
        return clf.fit(X.numpy(), y.numpy()).module_.eval()
    torch.manual_seed(seed)
    model = mlp(X[0].numel())
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    attack = PGD(ThreatModel(eps=0.1, bounds=(0, 1)), steps=5, random_state=seed)
    for _ in range(150 if kind == "natural" else 60):
        X_fit = X if kind == "natural" else attack(model, X, y)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X_fit), y).backward()
        optimizer.step()
    return model.eval()


class WorkCounter(nn.Module):
    """The model, counting per stage the images it runs on (and those with a gradient)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.stage, self.counts = model, None, collections.Counter()

    def forward(self, x):
        self.counts[self.stage, "images"] += x.shape[0]
        if torch.is_grad_enabled() and x.requires_grad:
            self.counts[self.stage, "gradients"] += x.shape[0]
        return self.model(x)


def reference(model, norm, eps, shipped):
    import torchattacks as ta

    name = {"linf": "Linf", "l2": "L2"}[norm]
    if shipped:
        return ta.AutoAttack(model, norm=name, eps=eps, version="standard", n_classes=10,
                             seed=0)
    return ta.MultiAttack([
        ta.APGD(model, norm=name, eps=eps, steps=100, loss="ce", n_restarts=1, seed=0),
        ta.APGDT(model, norm=name, eps=eps, steps=100, n_classes=10, n_restarts=1, seed=0),
        ta.FAB(model, norm=name, eps=eps, steps=100, multi_targeted=True, n_classes=10,
               n_restarts=1, seed=0),
        ta.Square(model, norm=name, eps=eps, n_queries=5000, n_restarts=1, seed=0,
                  resc_schedule=False),
    ])


def original(model, norm, eps, path):
    """The original AutoAttack, imported from the checkout at ``path``."""
    sys.path.insert(0, str(path))
    from autoattack import AutoAttack as Original  # noqa: PLC0415

    device = next(model.parameters()).device
    return Original(model, norm={"linf": "Linf", "l2": "L2"}[norm], eps=eps,
                    version="standard", seed=0, verbose=False, device=str(device))


def timed_stages(attack, name, counter=None):
    """Wrap the stages of ``attack`` so that each call records its seconds and points
    (and tells ``counter`` which stage runs)."""
    times = {}
    if name == "ours":
        stages, method = list(attack.attacks.items()), "perturb"
    elif name == "original":  # the stages of its run_standard_evaluation, in order
        stages = list(zip(STAGES, (attack.apgd, attack.apgd_targeted, attack.fab,
                                   attack.square), strict=True))
        method = "perturb"
    elif name == "ta-standard":
        stages, method = [(type(a).__name__, a) for a in attack.attacks], "forward"
    else:
        return times
    for stage, obj in stages:
        inner = getattr(obj, method)

        def wrapped(*args, _inner=inner, _stage=stage):
            if counter is not None:
                counter.stage = _stage
            start = time.perf_counter()
            out = _inner(*args)
            points = args[-3] if name == "ours" else args[0]
            seconds, n = times.get(_stage, (0.0, 0))
            times[_stage] = (seconds + time.perf_counter() - start, n + len(points))
            if counter is not None:
                counter.stage = None
            return out

        setattr(obj, method, wrapped)
    return times


def robust_accuracy(model, threat, X_adv, X, y):
    assert bool(threat.contains(X_adv, X, atol=1e-5).all()), "a point left the ball"
    with torch.no_grad():
        return float((model(X_adv).argmax(dim=1) == y).float().mean())


def record_threads(chosen):
    """Record in ``chosen`` the intra-op threads each of our attack calls picks."""
    inner = _budget.fastest_threads

    def fastest_threads(module, x):
        threads, times = inner(module, x)
        chosen.append(threads)
        return threads, times

    _budget.fastest_threads = fastest_threads


def run_row(name, model, threat, X, y, args):
    """``(X_adv, seconds, stages, work)`` of one row on ``model``."""
    counter = WorkCounter(model) if args.work else None
    attacked = counter if counter is not None else model
    if name == "ours":
        kwargs = {} if args.batch_size is None else {"batch_size": args.batch_size}
        attack = AutoAttack(threat, random_state=0, **kwargs)
    elif name == "original":
        attack = original(attacked, threat.norm, threat.eps, args.original)
    else:
        attack = reference(attacked, threat.norm, threat.eps, name == "ta-shipped")
    stage_times = timed_stages(attack, name, counter) if args.stages or args.work else {}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if name == "ours":
            X_adv = attack(attacked, X, y)
        elif name == "original":
            X_adv = attack.run_standard_evaluation(X, y, bs=len(X))
        else:
            X_adv = attack(X, y)
    seconds = time.perf_counter() - start
    work = {} if counter is None else {
        stage: (counter.counts[stage, "images"], counter.counts[stage, "gradients"])
        for stage in stage_times}
    return X_adv, seconds, stage_times, work


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["digits"], choices=["digits", "mnist"])
    parser.add_argument("--n", type=int, default=200, help="test points")
    parser.add_argument("--norm", nargs="+", default=["linf"], choices=sorted(EPS))
    parser.add_argument("--net", nargs="+", default=["mlp"], choices=["mlp", "cnn"])
    parser.add_argument("--model", nargs="+", default=["natural"],
                        choices=sorted(ESTIMATORS))
    parser.add_argument("--epochs", type=int, default=20,
                        help="training epochs of the estimator-trained models")
    parser.add_argument("--skip-reference", action="store_true",
                        help="no torchattacks rows")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's)")
    parser.add_argument("--stages", action="store_true", help="per-stage seconds")
    parser.add_argument("--work", action="store_true",
                        help="per-stage images run through the model")
    parser.add_argument("--original", default=None, metavar="PATH",
                        help="root of a checkout of github:fra31/auto-attack: adds the "
                             "original AutoAttack as a row")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="points per batch of ours (default: AutoAttack's)")
    parser.add_argument("--json", default=None, metavar="PATH", help="write the rows here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    chosen_threads = []
    record_threads(chosen_threads)
    print(f"{args.n} test points, torch {torch.__version__}, {torch.get_num_threads()} threads")
    results = []
    for data, net, kind in [(d, m, k) for d in args.data for m in args.net
                            for k in args.model]:
        _, X, _, y = load(data)
        X, y = X[:args.n], y[:args.n]
        model = train(kind, data, net=net, epochs=args.epochs)
        label = f"{data}/{net}/{kind}"
        for norm in args.norm:
            threat = ThreatModel(eps=EPS[norm], norm=norm, bounds=(0, 1))
            rows = ["ours"] if args.skip_reference else ["ours", "ta-standard", "ta-shipped"]
            if args.original:
                rows.insert(1, "original")
            seconds, stages = {}, {}
            for name in rows:
                X_adv, seconds[name], stages[name], work = run_row(name, model, threat, X, y,
                                                                   args)
                acc = robust_accuracy(model, threat, X_adv, X, y)
                results.append({"model": label, "norm": norm, "row": name, "robust": acc,
                                "seconds": seconds[name],
                                "stages": {k: v[0] for k, v in stages[name].items()},
                                "work": work})
                threads = ""
                if name == "ours" and chosen_threads:
                    threads = f"  ({chosen_threads.pop()} threads chosen)"
                    chosen_threads.clear()
                print(f"{label:20s} {norm:5s} eps {threat.eps:<4} {name:12s} robust acc "
                      f"{acc:7.2%}  {seconds[name]:7.1f} s{threads}")
                for stage, (sec, points) in stages[name].items():
                    images, grads = work.get(stage, ("-", "-"))
                    print(f"    {stage:12s} {sec:7.2f} s on {points:5d} points"
                          + (f", {images} images ({grads} with gradients)" if work else ""))
            if "original" in seconds:
                ratios = [f"{seconds['ours'] / seconds['original']:.2f}"]
                if stages["ours"] and stages["original"]:
                    ratios += [f"{stage} {stages['ours'][stage][0] / sec:.2f}"
                               for stage, (sec, _) in stages["original"].items()
                               if stage in stages["ours"] and sec > 0]
                print(f"{label:20s} {norm:5s} time ratio ours / original: "
                      + ", ".join(ratios))
            if "ta-standard" in seconds:
                print(f"{label:20s} {norm:5s} time ratio ours / ta-standard: "
                      f"{seconds['ours'] / seconds['ta-standard']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
