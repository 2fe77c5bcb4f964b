"""AutoAttack parity: our ``'auto'`` against torchattacks' AutoAttack, digits and real MNIST.

Same model (an MLP trained naturally, or with PGD adversarial training at l_inf eps 0.1,
plain torch, eval mode; on the 8x8 digits or on the 4,000 real MNIST training images of
``_workloads.real_mnist``), same points (the first ``--n`` test points), same eps, bounds
(0, 1). Rows:

  ours           AutoAttack(version='standard'): APGD-CE 100, APGD-T 9 x 100,
                 FAB-T 9 x 100, Square 5000 (resc_schedule=False)
  ta-standard    torchattacks' components at the same budget: APGD(steps=100),
                 APGDT(steps=100), FAB(multi_targeted, steps=100),
                 Square(n_queries=5000, resc_schedule=False) in a MultiAttack
  ta-shipped     torchattacks.AutoAttack(version='standard') as shipped (its stages
                 default to 10 iterations: a weaker budget than the paper's)
  original       the original AutoAttack (github:fra31/auto-attack, version='standard',
                 seed 0), only with ``--original PATH``: PATH is a checkout's root, the
                 folder holding its ``autoattack/`` package (not vendored here: ``git
                 clone https://github.com/fra31/auto-attack``, or any copy of it; it
                 needs no install)

Reported: robust accuracy (share of all points correct at the returned point, checked
here the same way for every row), seconds, and the time ratio ours / ta-standard.
``--stages`` adds each stage's seconds and points (ours: the cascade's stages; ta-standard:
the MultiAttack's attacks). ``--threads`` sets torch's intra-op threads: on a loaded
machine, more threads than free cores make every small operation wait for a descheduled
worker, which swamps the attacks' own cost.

Run:  python benchmarks/bench_autoattack.py [--data digits mnist] [--n 200]
      [--norm linf l2] [--model natural at] [--threads 1] [--stages]
      [--original PATH] [--skip-reference]
"""

import argparse
import sys
import time
import warnings

import numpy as np
import torch
from torch import nn

from sklearn_robust import ThreatModel
from sklearn_robust.attacks import PGD, AutoAttack
from sklearn_robust.datasets import load_digits_images

try:  # run as a script from benchmarks/ or imported by the tests
    from _workloads import real_mnist
except ImportError:  # pragma: no cover
    from benchmarks._workloads import real_mnist

EPS = {"linf": 0.1, "l2": 1.0}


def load(data, seed=0):
    """``X_train, X_test, y_train, y_test`` as tensors: digits or real MNIST, in [0, 1]."""
    if data == "digits":
        parts = load_digits_images()
    else:
        parts = real_mnist(seed)
    return [torch.as_tensor(np.asarray(a)) for a in parts]


def train(kind, data="digits", seed=0):
    """An MLP: natural, or PGD adversarial training at l_inf eps 0.1."""
    X, _, y, _ = load(data, seed)
    torch.manual_seed(seed)
    n_in = X[0].numel()
    model = nn.Sequential(nn.Flatten(), nn.Linear(n_in, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    attack = PGD(ThreatModel(eps=0.1, bounds=(0, 1)), steps=5, random_state=seed)
    for _ in range(150 if kind == "natural" else 60):
        X_fit = X if kind == "natural" else attack(model, X, y)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X_fit), y).backward()
        optimizer.step()
    return model.eval()


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


def timed_stages(attack, name):
    """Wrap the stages of ``attack`` so that each call records its seconds and points."""
    times = {}
    if name == "ours":
        stages, method = list(attack.attacks.items()), "perturb"
    elif name == "original":  # the stages of its run_standard_evaluation, in order
        stages = [("apgd-ce", attack.apgd), ("apgd-t", attack.apgd_targeted),
                  ("fab-t", attack.fab), ("square", attack.square)]
        method = "perturb"
    elif name == "ta-standard":
        stages, method = [(type(a).__name__, a) for a in attack.attacks], "forward"
    else:
        return times
    for stage, obj in stages:
        inner = getattr(obj, method)

        def wrapped(*args, _inner=inner, _stage=stage):
            start = time.perf_counter()
            out = _inner(*args)
            points = args[-3] if name == "ours" else args[0]
            times[_stage] = (time.perf_counter() - start, points)
            return out

        setattr(obj, method, wrapped)
    return times


def robust_accuracy(model, threat, X_adv, X, y):
    assert bool(threat.contains(X_adv, X, atol=1e-5).all()), "a point left the ball"
    with torch.no_grad():
        return float((model(X_adv).argmax(dim=1) == y).float().mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["digits"], choices=["digits", "mnist"])
    parser.add_argument("--n", type=int, default=200, help="test points")
    parser.add_argument("--norm", nargs="+", default=["linf"], choices=sorted(EPS))
    parser.add_argument("--model", nargs="+", default=["natural"], choices=["natural", "at"])
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's)")
    parser.add_argument("--stages", action="store_true", help="per-stage seconds")
    parser.add_argument("--original", default=None, metavar="PATH",
                        help="root of a checkout of github:fra31/auto-attack: adds the "
                             "original AutoAttack as a row")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{args.n} test points, torch {torch.__version__}, {torch.get_num_threads()} threads")
    results = []
    for data, kind in [(d, k) for d in args.data for k in args.model]:
        _, X, _, y = load(data)
        X, y = X[:args.n], y[:args.n]
        model = train(kind, data)
        kind = f"{data}/{kind}"
        for norm in args.norm:
            threat = ThreatModel(eps=EPS[norm], norm=norm, bounds=(0, 1))
            rows = ["ours"] if args.skip_reference else ["ours", "ta-standard", "ta-shipped"]
            if args.original:
                rows.insert(1, "original")
            seconds = {}
            for name in rows:
                if name == "ours":
                    attack = AutoAttack(threat, random_state=0)
                elif name == "original":
                    attack = original(model, norm, threat.eps, args.original)
                else:
                    attack = reference(model, norm, threat.eps, name == "ta-shipped")
                stage_times = timed_stages(attack, name) if args.stages else {}
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    if name == "ours":
                        X_adv = attack(model, X, y)
                    elif name == "original":
                        X_adv = attack.run_standard_evaluation(X, y, bs=len(X))
                    else:
                        X_adv = attack(X, y)
                seconds[name] = time.perf_counter() - start
                acc = robust_accuracy(model, threat, X_adv, X, y)
                results.append({"model": kind, "norm": norm, "row": name, "robust": acc,
                                "seconds": seconds[name]})
                print(f"{kind:14s} {norm:5s} eps {threat.eps:<4} {name:12s} robust acc "
                      f"{acc:7.2%}  {seconds[name]:7.1f} s")
                if stage_times:
                    print("    stages: " + ", ".join(
                        f"{stage} {sec:.2f} s on {len(points)}"
                        for stage, (sec, points) in stage_times.items()))
            if "original" in seconds:
                print(f"{kind:14s} {norm:5s} time ratio ours / original: "
                      f"{seconds['ours'] / seconds['original']:.2f}")
            if "ta-standard" in seconds:
                print(f"{kind:14s} {norm:5s} time ratio ours / ta-standard: "
                      f"{seconds['ours'] / seconds['ta-standard']:.2f}")
    return results


if __name__ == "__main__":
    main()
