"""AutoAttack parity: our ``'auto'`` against torchattacks' AutoAttack on a digits model.

Same model (an MLP trained naturally, or with PGD adversarial training, on the 8x8
digits, plain torch, eval mode), same points, same eps, bounds (0, 1). Rows:

  ours           AutoAttack(version='standard'): APGD-CE 100, APGD-T 9 x 100,
                 FAB-T 9 x 100, Square 5000 (resc_schedule=False)
  ta-standard    torchattacks' components at the same budget: APGD(steps=100),
                 APGDT(steps=100), FAB(multi_targeted, steps=100),
                 Square(n_queries=5000, resc_schedule=False) in a MultiAttack
  ta-shipped     torchattacks.AutoAttack(version='standard') as shipped (its stages
                 default to 10 iterations: a weaker budget than the paper's)

Reported: robust accuracy (share of all points correct at the returned point, checked
here the same way for every row), seconds, and the time ratio ours / ta-standard.

Run:  python benchmarks/bench_autoattack.py [--n 200] [--norm linf l2] [--model natural at]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from torch import nn

from sklearn_robust import ThreatModel
from sklearn_robust.attacks import PGD, AutoAttack
from sklearn_robust.datasets import load_digits_images

EPS = {"linf": 0.1, "l2": 1.0}


def train(kind, seed=0):
    """A digits MLP: natural, or PGD adversarial training at l_inf eps 0.1."""
    X, _, y, _ = load_digits_images()
    X, y = torch.tensor(X), torch.tensor(y)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
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


def robust_accuracy(model, threat, X_adv, X, y):
    assert bool(threat.contains(X_adv, X, atol=1e-5).all()), "a point left the ball"
    with torch.no_grad():
        return float((model(X_adv).argmax(dim=1) == y).float().mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="test points")
    parser.add_argument("--norm", nargs="+", default=["linf"], choices=sorted(EPS))
    parser.add_argument("--model", nargs="+", default=["natural"], choices=["natural", "at"])
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args(argv)
    _, X, _, y = load_digits_images()
    X, y = torch.tensor(X[:args.n]), torch.tensor(y[:args.n])
    print(f"digits, {args.n} test points, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    for kind in args.model:
        model = train(kind)
        for norm in args.norm:
            threat = ThreatModel(eps=EPS[norm], norm=norm, bounds=(0, 1))
            rows = ["ours"] if args.skip_reference else ["ours", "ta-standard", "ta-shipped"]
            seconds = {}
            for name in rows:
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    if name == "ours":
                        X_adv = AutoAttack(threat, random_state=0)(model, X, y)
                    else:
                        X_adv = reference(model, norm, threat.eps, name == "ta-shipped")(X, y)
                seconds[name] = time.perf_counter() - start
                acc = robust_accuracy(model, threat, X_adv, X, y)
                print(f"{kind:8s} {norm:5s} eps {threat.eps:<4} {name:12s} robust acc "
                      f"{acc:7.2%}  {seconds[name]:7.1f} s")
            if "ta-standard" in seconds:
                print(f"{kind:8s} {norm:5s} time ratio ours / ta-standard: "
                      f"{seconds['ours'] / seconds['ta-standard']:.2f}")


if __name__ == "__main__":
    main()
