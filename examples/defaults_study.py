"""The study of defaults: each method's knob chosen on validation data, checked on held-out data.
==============================================================================================

For GR (``lam`` x ``h``), SCORE (``beta``) and TRADES (``beta``), with Natural as the
baseline, on digits (8x8 images in [0, 1], default CNN, bounds (0, 1)), breast_cancer and
wine (standardised on the training part, default MLP, eps in standardised units, no
bounds), the script

1. splits each data set into a training part and a 25% stratified hold-out (seed 0, as in
   the other examples), and the training part into a fit part and a stratified validation
   split (``--val-size``, seeded by each of ``--seeds``);
2. fits every value of the grid on the fit part (``random_state`` = the seed; the
   library's defaults for everything else: ``max_epochs=30``, ``attack_steps=10``);
3. picks, per method and data set, the value with the best validation robust accuracy
   (PGD-20 from a random start, l_inf ``--eps``), averaged over the seeds; ties go to the
   higher validation clean accuracy, then to the current default;
4. evaluates only the chosen value and the current default (read from the estimator, so
   the comparison follows the code) on the hold-out: clean accuracy, PGD-20 and an
   independent PGD-50 with 3 restarts (another seed), mean over the seeds with the range.

The hold-out points are never used for a choice.

Run::

    python examples/defaults_study.py [--datasets digits,breast_cancer,wine]
        [--seeds 0 1] [--epochs 30] [--threads 1] [--out table.md] [--smoke]

Measured output and the decision taken from it: :doc:`/methods`, "How the defaults
were chosen".
"""

import argparse
import itertools
import os
import time

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sklearn_robust import GRClassifier, NaturalClassifier, SCOREClassifier, TRADESClassifier
from sklearn_robust.datasets import load_digits_images
from sklearn_robust.metrics import robust_accuracy_score

# method -> (estimator class, the grid: a list of parameter dicts)
GRIDS = {
    "Natural": (NaturalClassifier, [{}]),
    "GR": (GRClassifier, [{"lam": lam, "h": h}
                          for lam, h in itertools.product((0.025, 0.25, 2.5), (0.1, 1.0))]),
    "SCORE": (SCOREClassifier, [{"beta": b} for b in (2.0, 4.0, 8.0)]),
    "TRADES": (TRADESClassifier, [{"beta": b} for b in (1.0, 6.0)]),
}
SMOKE_GRIDS = {
    "Natural": GRIDS["Natural"],
    "GR": (GRClassifier, [{"lam": 0.25, "h": 1.0}, {"lam": 2.5, "h": 1.0}]),
    "SCORE": (SCOREClassifier, [{"beta": 4.0}]),
    "TRADES": (TRADESClassifier, [{"beta": 6.0}]),
}
DATASETS = ("digits", "breast_cancer", "wine")


def load_data(name, seed=0):
    """``X_train, X_test, y_train, y_test, bounds``; tabular sets standardised on the train part."""
    if name == "digits":
        X_train, X_test, y_train, y_test = load_digits_images(random_state=seed)
        return X_train, X_test, y_train, y_test, (0.0, 1.0)
    loader = {"breast_cancer": load_breast_cancer, "wine": load_wine}[name]
    X, y = loader(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=seed)
    scaler = StandardScaler().fit(X_train)  # the training part only, never the hold-out
    X_train = scaler.transform(X_train).astype(np.float32)
    X_test = scaler.transform(X_test).astype(np.float32)
    return X_train, X_test, y_train, y_test, None


def default_setting(cls, grid):
    """The estimator's current default values of the keys the grid varies."""
    defaults = cls().get_params()
    return {key: defaults[key] for key in grid[0]}


def label(params):
    return ", ".join(f"{k} {v:g}" for k, v in params.items()) or "-"


def spread(values):
    """``mean (min-max)`` in percent."""
    values = 100 * np.asarray(values, dtype=float)
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{values.mean():.2f} ({values.min():.1f}-{values.max():.1f})"


def choose(results, default):
    """Best mean validation robust accuracy; ties to clean accuracy, then to the default."""
    def key(item):
        params, runs = item
        return (round(np.mean([r["val_robust"] for r in runs]), 10),
                round(np.mean([r["val_clean"] for r in runs]), 10), params == default)
    return max(results, key=key)[0]


def study(name, grids, args):
    """Grid rows (validation) and summary rows (hold-out) of one data set."""
    X_train, X_test, y_train, y_test, bounds = load_data(name)
    if args.smoke:
        X_train, y_train = X_train[:160], y_train[:160]
        X_test, y_test = X_test[:40], y_test[:40]
    pgd = dict(eps=args.eps, norm="linf", attack="pgd", bounds=bounds)
    print(f"{name}: {len(X_train)} train part ({1 - args.val_size:.0%} fit / "
          f"{args.val_size:.0%} validation), {len(X_test)} hold-out, eps {args.eps} (l_inf), "
          f"bounds {bounds}, {args.epochs} epochs, seeds {args.seeds}", flush=True)
    grid_rows, summary_rows = [], []
    for method, (cls, grid) in grids.items():
        default = default_setting(cls, grid)
        settings = grid if default in grid else grid + [default]
        results = [(params, []) for params in settings]
        for seed in args.seeds:
            X_fit, X_val, y_fit, y_val = train_test_split(
                X_train, y_train, test_size=args.val_size, stratify=y_train, random_state=seed)
            for params, runs in results:
                kwargs = dict(max_epochs=args.epochs, random_state=seed, **params)
                if "eps" in cls().get_params():  # GR and Natural have no threat
                    kwargs.update(eps=args.eps, bounds=bounds, attack_steps=args.attack_steps)
                clf = cls(**kwargs)
                start = time.perf_counter()
                clf.fit(X_fit, y_fit)
                seconds = time.perf_counter() - start
                runs.append({"seed": seed, "clf": clf, "fit_seconds": seconds,
                             "val_clean": float(clf.score(X_val, y_val)),
                             "val_robust": float(robust_accuracy_score(
                                 clf, X_val, y_val, steps=args.pgd_steps, random_state=seed,
                                 **pgd))})
                print(f"  {method:<7} {label(params):<16} seed {seed} val clean "
                      f"{100 * runs[-1]['val_clean']:6.2f} PGD-{args.pgd_steps} "
                      f"{100 * runs[-1]['val_robust']:6.2f} fit {seconds:5.1f}s", flush=True)
        chosen = choose(results, default)
        for params, runs in results:
            grid_rows.append({
                "dataset": name, "method": method, "setting": label(params),
                "default": params == default, "chosen": params == chosen,
                "val_clean": [r["val_clean"] for r in runs],
                "val_robust": [r["val_robust"] for r in runs],
                "fit_seconds": float(np.mean([r["fit_seconds"] for r in runs]))})
        # the hold-out, for the chosen value and the default only
        held = {}
        for which, params in (("default", default), ("chosen", chosen)):
            runs = next(r for p, r in results if p == params)
            held[which] = {
                "clean": [float(r["clf"].score(X_test, y_test)) for r in runs],
                "pgd20": [float(robust_accuracy_score(
                    r["clf"], X_test, y_test, steps=args.pgd_steps, random_state=r["seed"],
                    **pgd)) for r in runs],
                "pgd50": [float(robust_accuracy_score(
                    r["clf"], X_test, y_test, steps=args.check_steps, restarts=3,
                    random_state=1000 + r["seed"], **pgd)) for r in runs]}
        delta = np.subtract(held["chosen"]["pgd20"], held["default"]["pgd20"])
        summary_rows.append({
            "dataset": name, "method": method, "n_test": len(X_test),
            "default_setting": label(default), "chosen_setting": label(chosen),
            **{f"{which}_{key}": values for which in held for key, values in
               held[which].items()},
            "delta_pgd20": delta.tolist()})
        for _params, runs in results:  # free the models
            for r in runs:
                r.pop("clf")
    return grid_rows, summary_rows


GRID_COLUMNS = [("dataset", "data set"), ("method", "method"), ("setting", "setting"),
                ("val_clean", "val clean"), ("val_robust", "val PGD-20"),
                ("fit_seconds", "fit s"), ("mark", "")]
SUMMARY_COLUMNS = [
    ("dataset", "data set"), ("method", "method"), ("default_setting", "default"),
    ("chosen_setting", "chosen on validation"), ("default_clean", "held-out clean, default"),
    ("chosen_clean", "clean, chosen"), ("default_pgd20", "PGD-20, default"),
    ("chosen_pgd20", "PGD-20, chosen"), ("default_pgd50", "PGD-50x3, default"),
    ("chosen_pgd50", "PGD-50x3, chosen"), ("delta_pgd20", "PGD-20 chosen - default")]


def cell(row, key):
    if key == "mark":
        return " ".join(m for m, on in (("default", row["default"]),
                                         ("**chosen**", row["chosen"])) if on)
    value = row[key]
    if isinstance(value, list):
        return spread(value)
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def markdown(rows, columns):
    lines = ["| " + " | ".join(title for _, title in columns) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row, key) for key, _ in columns) + " |" for row in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help="comma-separated subset of digits, breast_cancer, wine")
    parser.add_argument("--methods", default=None,
                        help="comma-separated subset of Natural, GR, SCORE, TRADES")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1],
                        help="validation splits and model seeds (choice on their mean)")
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=30, help="max_epochs of every fit")
    parser.add_argument("--attack-steps", type=int, default=10,
                        help="training attack steps of SCORE and TRADES")
    parser.add_argument("--val-size", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", default=None, help="write the markdown tables here")
    parser.add_argument("--smoke", action="store_true", help="tiny budgets, for the tests")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.pgd_steps, args.check_steps = (3, 5) if args.smoke else (20, 50)
    grids = SMOKE_GRIDS if args.smoke else GRIDS
    if args.smoke:
        args.epochs, args.attack_steps, args.seeds = 1, 2, args.seeds[:1]
    if args.methods:
        grids = {m: grids[m.strip()] for m in args.methods.split(",")}
    datasets = [d.strip() for d in args.datasets.split(",")]

    start = time.perf_counter()
    grid_rows, summary_rows = [], []
    for name in datasets:
        rows, summary = study(name, grids, args)
        grid_rows += rows
        summary_rows += summary
    total = time.perf_counter() - start
    header = (f"<!-- defaults study: {', '.join(datasets)}; eps {args.eps} (l_inf); "
              f"{args.epochs} epochs; training attack {args.attack_steps} steps; seeds "
              f"{args.seeds}; validation {args.val_size:g} of the training part; "
              f"total {total:.0f} s -->")
    text = "\n\n".join([header, "Validation (mean over seeds, range in brackets):",
                        markdown(grid_rows, GRID_COLUMNS),
                        "Hold-out (the default and the value chosen on validation):",
                        markdown(summary_rows, SUMMARY_COLUMNS)])
    print()
    print(text)
    print(f"\ntotal {total:.0f} s")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return {"grid": grid_rows, "summary": summary_rows}


if __name__ == "__main__":
    main()
