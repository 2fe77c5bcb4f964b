"""The exact robust accuracy of a tabular MLP on breast_cancer, beside the attacks.
================================================================================

A Pipeline (StandardScaler, then the library's default MLP) is trained naturally and with
TRADES; on the held-out points it prints, at each radius, the clean accuracy, the
attacked accuracies (PGD-20 and AutoAttack, upper bounds), the exact robust accuracy
(one MILP per point and wrong class; 'unknown' points, if any, are counted as not
robust) and the certified accuracies of CROWN and IBP (lower bounds), with the time of
each. Each feature is divided by its maximum over the training set first, outside the
model, so that eps is a fraction of the feature's range in the raw space that the
verifier and the attacks share.

Run::

    python examples/exact_breast_cancer.py             # two hidden layers of 256, eps 0.01 0.02
    python examples/exact_breast_cancer.py --smoke     # seconds: a small net, few points

Measured output and where the exact method reaches its limits: :doc:`/verification`.
"""

import argparse
import time

from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_robust import NaturalClassifier, TRADESClassifier
from sklearn_robust.metrics import certified_accuracy_score, robust_accuracy_score


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eps", type=float, nargs="+", default=[0.01, 0.02])
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--points", type=int, default=None, help="test points (default all)")
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per point")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a small net and 20 points")
    args = parser.parse_args(argv)
    if args.smoke:
        args.hidden, args.epochs, args.points, args.eps = [16, 16], 5, 20, [0.02]
    return args


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def main(argv=None):
    args = parse(argv)
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=args.seed)
    scale = X_train.max(axis=0)
    X_train, X_test = X_train / scale, X_test / scale
    if args.points:
        X_test, y_test = X_test[:args.points], y_test[:args.points]
    common = dict(max_epochs=args.epochs, random_state=args.seed,
                  module__hidden_units=tuple(args.hidden))
    models = {
        "Natural": NaturalClassifier(**common),
        "TRADES": TRADESClassifier(eps=max(args.eps), attack_steps=10, bounds=None, **common),
    }
    rows = []
    for name, classifier in models.items():
        pipe = make_pipeline(StandardScaler(), classifier).fit(X_train, y_train)
        for eps in args.eps:
            row = {"model": name, "eps": eps, "clean": pipe.score(X_test, y_test)}
            for label, attack in (("pgd20", "pgd"), ("auto", "auto")):
                row[label], row[f"{label}_s"] = timed(
                    robust_accuracy_score, pipe, X_test, y_test, eps=eps, attack=attack,
                    bounds=None, random_state=args.seed)
            (score, cert), row["exact_s"] = timed(
                certified_accuracy_score, pipe, X_test, y_test, eps=eps, method="exact",
                time_limit=args.time_limit, return_certificates=True)
            row["exact"], row["unknown"] = score, cert.counts().get("unknown", 0)
            for method in ("crown", "ibp"):
                row[method], row[f"{method}_s"] = timed(
                    certified_accuracy_score, pipe, X_test, y_test, eps=eps, method=method)
            rows.append(row)
            print(" | ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                             for k, v in row.items()), flush=True)
    return rows


if __name__ == "__main__":
    main()
