"""Verification: exact against the attacks, IBP against CROWN, smoothing's cost.

(a) On ReLU MLPs trained naturally and with TRADES (digits: 64-32-32-10, pixels in
    [0, 1]; breast_cancer: 30-16-16-2 behind a StandardScaler, each raw feature divided
    by its training maximum first), at l_inf eps 0.05 and 0.1 on the first ``--points``
    hold-out points: clean accuracy, PGD-20 and AutoAttack ('auto') accuracy (upper
    bounds), the exact robust accuracy (``certified_accuracy_score(method='exact')``,
    ``time_limit=30`` per point), the number of undecided points, and how many points
    each attack left standing that the MILP proved non-robust (its misses), with the
    time of each.
(b) IBP, CROWN-IBP (``intermediate='ibp'``), CROWN and alpha-CROWN (20 steps) certified
    accuracy and seconds per 100 points on the default networks (MLP 64-256-256-10,
    SmallCNN) trained naturally and with TRADES on digits.
(c) Randomized smoothing (sigma 0.25, n0 100, n 10,000) certify time per 100 digits
    points and certified accuracy at l_2 radius 0.25 and 0.5.

Run:  python benchmarks/bench_verify.py [--points 200] [--nets mlp cnn] [--quick]
      [--threads 1] [--only exact bounds smoothing]
"""

import argparse
import platform
import time

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_robust import NaturalClassifier, TRADESClassifier
from sklearn_robust.datasets import load_digits_images
from sklearn_robust.metrics import certified_accuracy_score, robust_accuracy_score
from sklearn_robust.verify import SmoothedClassifier


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def digits_mlp(kind, epochs, hidden):
    X_train, X_test, y_train, y_test = load_digits_images(flat=True)
    common = dict(max_epochs=epochs, random_state=0, module__hidden_units=hidden)
    clf = (NaturalClassifier(**common) if kind == "natural" else
           TRADESClassifier(eps=0.1, attack_steps=10, **common)).fit(X_train, y_train)
    return clf, X_test, y_test, (0.0, 1.0)


def cancer_mlp(kind, epochs, hidden):
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                        random_state=0)
    scale = X_train.max(axis=0)
    common = dict(max_epochs=epochs, random_state=0, module__hidden_units=hidden)
    clf = (NaturalClassifier(**common) if kind == "natural" else
           TRADESClassifier(eps=0.1, attack_steps=10, bounds=None, **common))
    pipe = make_pipeline(StandardScaler(), clf).fit(X_train / scale, y_train)
    return pipe, X_test / scale, y_test, None


def exact_against_attacks(args):
    rows = []
    for data, build, hidden in (("digits", digits_mlp, (32, 32)),
                                ("breast_cancer", cancer_mlp, (16, 16))):
        for kind in ("natural", "trades"):
            model, X, y, bounds = build(kind, args.epochs, hidden)
            X, y = X[:args.points], y[:args.points]
            for eps in args.eps:
                row = {"data": data, "model": kind, "eps": eps, "n": len(y),
                       "clean": model.score(X, y)}
                standing = {}
                for name, attack in (("pgd20", "pgd"), ("auto", "auto")):
                    (score, X_adv), row[f"{name}_s"] = timed(
                        robust_accuracy_score, model, X, y, eps=eps, attack=attack,
                        bounds=bounds, random_state=0, return_adversarial=True)
                    row[name] = score
                    standing[name] = np.asarray(model.predict(X_adv)) == y
                (score, cert), row["exact_s"] = timed(
                    certified_accuracy_score, model, X, y, eps=eps, method="exact",
                    bounds=bounds, time_limit=30, return_certificates=True)
                row["exact"] = score
                row["unknown"] = int((cert.status == "unknown").sum())
                broken = cert.status == "counterexample"
                for name in standing:
                    row[f"{name}_missed"] = int((standing[name] & broken).sum())
                row["unsound"] = int((cert.certified & ~standing["auto"]).sum())
                rows.append(row)
                print(_line(row), flush=True)
    return rows


def ibp_against_crown(args):
    rows = []
    X_train, X_test, y_train, y_test = load_digits_images()
    for net in args.nets:
        for kind in ("natural", "trades"):
            X_tr = X_train.reshape(len(X_train), -1) if net == "mlp" else X_train
            X_te = (X_test.reshape(len(X_test), -1) if net == "mlp" else X_test)[:100]
            common = dict(max_epochs=args.epochs, random_state=0)
            clf = (NaturalClassifier(**common) if kind == "natural" else
                   TRADESClassifier(eps=0.1, attack_steps=10, **common)).fit(X_tr, y_train)
            for eps in args.bound_eps:
                row = {"net": net, "model": kind, "eps": eps}
                for name, kw in (("ibp", dict(method="ibp")),
                                 ("crown_ibp", dict(method="crown", intermediate="ibp")),
                                 ("crown", dict(method="crown")),
                                 ("alpha20", dict(method="crown", alpha_steps=20))):
                    row[name], row[f"{name}_s"] = timed(
                        certified_accuracy_score, clf, X_te, y_test[:100], eps=eps,
                        bounds=(0, 1), **kw)
                rows.append(row)
                print(_line(row), flush=True)
    return rows


def smoothing_cost(args):
    X_train, X_test, y_train, y_test = load_digits_images(flat=True)
    smoothed = SmoothedClassifier(NaturalClassifier(max_epochs=args.epochs, random_state=0),
                                  sigma=0.25, n0=100, n=args.smoothing_n, random_state=0)
    smoothed.fit(X_train, y_train)
    (_, radius), seconds = timed(smoothed.certify, X_test[:100])
    labels, _ = smoothed.certify(X_test[:100])
    correct = labels == y_test[:100]
    row = {"n": args.smoothing_n, "seconds_per_100": seconds,
           "certified_r0.25": float((correct & (radius > 0.25)).mean()),
           "certified_r0.5": float((correct & (radius > 0.5)).mean())}
    print(_line(row), flush=True)
    return [row]


SECTIONS = {"exact": exact_against_attacks, "bounds": ibp_against_crown,
            "smoothing": smoothing_cost}


def _line(row):
    return " | ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                      for k, v in row.items())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--eps", type=float, nargs="+", default=[0.05, 0.1])
    parser.add_argument("--bound-eps", type=float, nargs="+", default=[0.01, 0.02, 0.05])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--smoothing-n", type=int, default=10000)
    parser.add_argument("--nets", nargs="+", default=["mlp", "cnn"], choices=["mlp", "cnn"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="+", default=list(SECTIONS), choices=list(SECTIONS),
                        help="run these parts only: (a) exact, (b) bounds, (c) smoothing")
    parser.add_argument("--quick", action="store_true", help="seconds: tiny settings")
    args = parser.parse_args(argv)
    if args.quick:
        args.points, args.eps, args.bound_eps, args.epochs = 20, [0.05], [0.02], 2
        args.smoothing_n, args.nets = 200, ["mlp"]
    torch.set_num_threads(args.threads)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s)", flush=True)
    return {name: SECTIONS[name](args) for name in args.only}


if __name__ == "__main__":
    main()
