"""The ``sklearn-robust`` command line."""

from __future__ import annotations

import argparse
import json
import sys


def _demo(args):
    from . import _demo
    from ._demo import format_table, summary

    rows = _demo.run_demo(
        max_epochs=args.epochs, attack_steps=args.attack_steps, random_state=args.seed,
        progress=not args.json and not args.quiet,
        print_fn=(lambda *_: None) if args.json else print,
    )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print()
        print(format_table(rows))
        print(summary(rows))
    return 0


BUNDLED = ("digits", "breast_cancer", "wine", "iris")


def load_dataset(source, target=None):
    """``(X, y)`` from a bundled data set name or a ``.npz``, ``.npy`` or ``.csv`` file.

    A ``.npz`` holds arrays ``X`` and ``y``; a ``.csv`` (and a 2-D ``.npy``) holds the
    features with the label in column ``target`` (default: the last). Digits are scaled to
    [0, 1] (pixel / 16); the other bundled sets are standardised.

    Examples
    --------
    >>> X, y = load_dataset("wine")
    >>> X.shape, len(set(y))
    ((178, 13), 3)
    """
    import numpy as np
    from sklearn import datasets
    from sklearn.preprocessing import StandardScaler

    if source in BUNDLED:
        X, y = getattr(datasets, f"load_{source}")(return_X_y=True)
        if source == "digits":
            return (X / 16.0).astype(np.float32), y
        return StandardScaler().fit_transform(X).astype(np.float32), y
    path = str(source)
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            if "X" not in data or "y" not in data:
                raise ValueError(f"{path} must hold arrays named 'X' and 'y'.")
            return data["X"], data["y"]
    if path.endswith(".npy"):
        table = np.load(path, allow_pickle=False)
    elif path.endswith(".csv"):
        table = np.loadtxt(path, delimiter=",", ndmin=2)
    else:
        raise ValueError(
            f"unknown data set {source!r}: give one of {BUNDLED} or a .npz/.npy/.csv file."
        )
    column = table.shape[1] - 1 if target is None else int(target)
    return np.delete(table, column, axis=1), table[:, column]


def _split(X, y, test_size, seed):
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=test_size, stratify=y, random_state=seed)


def _separation(args):
    from .separation import r_separation

    X, y = load_dataset(args.data, args.target)
    X_train, X_test, y_train, y_test = _split(X, y, args.test_size, args.seed)
    report = r_separation(X_train, y_train, X_test, y_test, norm=args.norm, eps=args.eps,
                          verbose=args.progress)
    print(json.dumps(report.to_dict(), indent=2, default=float) if args.json else report)
    return 0


def _evaluate(args):
    import joblib

    from .metrics import local_lipschitz_score, robust_accuracy_score

    model = joblib.load(args.model)
    X, y = load_dataset(args.data, args.target)
    if args.test_size > 0:
        _, X, _, y = _split(X, y, args.test_size, args.seed)
    if args.input_shape:
        X = X.reshape(len(X), *args.input_shape)
    result = {
        "n_samples": int(len(y)),
        "clean_accuracy": float(model.score(X, y)),
        "eps": args.eps,
        "attack": args.attack,
        "robust_accuracy": float(robust_accuracy_score(
            model, X, y, eps=args.eps, norm=args.norm, attack=args.attack,
            random_state=args.seed, verbose=not args.json,
        )),
    }
    if args.lipschitz:
        result["local_lipschitz"] = float(local_lipschitz_score(
            model, X, eps=args.eps, norm=args.norm, random_state=args.seed))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:>16}: {value}")
    return 0


def build_parser():
    """The argument parser of ``sklearn-robust``."""
    parser = argparse.ArgumentParser(
        prog="sklearn-robust",
        description="Adversarially robust scikit-learn estimators: demos and measurements.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="train Natural, AT, TRADES and SCORE on digits and print their accuracy table",
    )
    demo.add_argument("--epochs", type=int, default=20, help="epochs per model (default 20)")
    demo.add_argument("--attack-steps", type=int, default=10,
                      help="PGD steps of the inner maximisation in training (default 10)")
    demo.add_argument("--seed", type=int, default=0, help="random_state of split and fits")
    demo.add_argument("--json", action="store_true", help="print the rows as JSON")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)

    def data_args(p, default_test_size):
        p.add_argument("data", help=f"a bundled data set {BUNDLED} or a .npz/.npy/.csv file")
        p.add_argument("--target", type=int, default=None,
                       help="label column of a .csv/.npy table (default: the last)")
        p.add_argument("--test-size", type=float, default=default_test_size,
                       help=f"stratified hold-out share (default {default_test_size})")
        p.add_argument("--seed", type=int, default=0, help="random_state of split and attack")
        p.add_argument("--eps", type=float, default=0.1, help="radius of the threat ball")
        p.add_argument("--norm", default="linf", help="'linf', 'l2' (separation: also 'l1')")
        p.add_argument("--json", action="store_true", help="print the result as JSON")

    sep = sub.add_parser("separation", help="r-separation report of a data set")
    data_args(sep, 0.25)
    sep.add_argument("--progress", action="store_true",
                     help="show progress bars on stderr (long runs on large data)")
    sep.set_defaults(func=_separation)

    ev = sub.add_parser(
        "evaluate",
        help="clean and robust accuracy (and Lipschitz) of a saved model on a data set",
        description="Loads a model saved with joblib.dump (a pickle: only load files you "
                    "trust) and evaluates it. With --test-size 0 (default) all of the data "
                    "is used.",
    )
    ev.add_argument("model", help="a fitted estimator or pipeline saved with joblib.dump")
    data_args(ev, 0.0)
    ev.add_argument("--attack", default="pgd", help="attack name: pgd, apgd-ce, auto, ...")
    ev.add_argument("--lipschitz", action="store_true", help="also the local Lipschitz score")
    ev.add_argument("--input-shape", type=int, nargs="+", default=None,
                    help="reshape rows to this sample shape (e.g. 1 8 8)")
    ev.set_defaults(func=_evaluate)
    return parser


def main(argv=None):
    """Entry point of ``sklearn-robust`` and ``python -m sklearn_robust``."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
