"""r-separation (Yang et al. 2020) of digits, breast_cancer and wine, against 2 eps.
=================================================================================

For each data set and eps: the l_inf distance from every training point to the nearest
training point of another class (Train-Train) and from every test point to the nearest
training point of another class (Test-Train), their minima and means, whether the minimum
exceeds 2 eps, and the robust-accuracy ceiling (the share of test points farther than
2 eps from every training point of another class). Digits are images in [0, 1];
breast_cancer and wine are standardised on the training split (eps in standardised units).
All splits: 25% stratified hold-out, seed 0.

Run::

    python examples/separation_of_datasets.py [--eps 0.05 0.1 0.2 0.25] [--out table.md]
"""

import argparse
import os
import time

from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sklearn_robust.datasets import load_digits_images
from sklearn_robust.separation import r_separation


def datasets(seed=0):
    X_train, X_test, y_train, y_test = load_digits_images(random_state=seed, flat=True)
    yield "digits ([0, 1])", X_train, X_test, y_train, y_test
    for name, loader in (("breast_cancer (std.)", load_breast_cancer),
                         ("wine (std.)", load_wine)):
        X, y = loader(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.25, stratify=y, random_state=seed
        )
        scaler = StandardScaler().fit(X_train)
        yield name, scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def markdown_table(rows):
    lines = ["| dataset | n train / test | eps | 2 eps | train-train min | train-train mean "
             "| test-train min | test-train mean | min > 2 eps | test share < 2 eps "
             "| robust acc ceiling |",
             "|" + "---|" * 11]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['n_train']} / {r['n_test']} | {r['eps']:g} | "
            f"{r['two_eps']:g} | {r['train_train_min']:.3f} | {r['train_train_mean']:.3f} | "
            f"{r['test_train_min']:.3f} | {r['test_train_mean']:.3f} | "
            f"{'yes' if r['separated'] else 'no'} | {100 * r['test_share_within_2eps']:.2f}% | "
            f"{100 * r['robust_accuracy_ceiling']:.2f}% |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eps", type=float, nargs="+", default=[0.05, 0.1, 0.2, 0.25])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the markdown table here")
    parser.add_argument("--smoke", action="store_true",
                        help="accepted for symmetry with the other examples (already fast)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    rows = []
    for name, X_train, X_test, y_train, y_test in datasets(args.seed):
        for eps in args.eps:
            rep = r_separation(X_train, y_train, X_test, y_test, norm="linf", eps=eps)
            rows.append({
                "dataset": name, "n_train": rep.n_train, "n_test": rep.n_test, "eps": eps,
                "two_eps": rep.two_eps, "train_train_min": rep.train_train_min,
                "train_train_mean": rep.train_train_mean,
                "test_train_min": rep.test_train_min, "test_train_mean": rep.test_train_mean,
                "separated": bool(rep.separated),
                "test_share_within_2eps": rep.test_share_within_2eps,
                "robust_accuracy_ceiling": rep.robust_accuracy_ceiling,
            })
    table = markdown_table(rows)
    print(table)
    print(f"\ntotal {time.perf_counter() - start:.1f} s")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as fh:
            fh.write(table + "\n")
    return rows


if __name__ == "__main__":
    main()
