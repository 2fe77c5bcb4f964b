"""r-separation of the real-MNIST subset (Yang et al. 2020), l_inf and l_2.
========================================================================

Train-Train: for each of the 4,000 training images, the distance to the nearest training
image of another digit; Test-Train: the same for each of the 1,000 test images against the
training set. Minima and means next to the paper's full-MNIST l_inf minima (train-train
0.737, test-train 0.812) and to ``2 eps`` (eps 0.1 and 0.3 for l_inf; the paper reports
l_inf only, so the l_2 rows have no published figure). Also the whole 5,000-image file
(train-train), whose l_inf minimum is 0.9216.

Run::

    python examples/mnist_separation.py [--out table.md] [--smoke]
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _mnist import mnist_split, write_markdown  # noqa: E402

from sklearn_robust.separation import r_separation  # noqa: E402

PUBLISHED = {"linf": ("0.737", "0.812"), "l2": ("-", "-")}
EPS = {"linf": 0.3, "l2": 2.0}
COLUMNS = [
    ("data", "data", "{}"), ("norm", "norm", "{}"), ("n", "n train / test", "{}"),
    ("tt_min", "train-train min", "{:.4f}"), ("tt_mean", "train-train mean", "{:.4f}"),
    ("tet_min", "test-train min", "{}"), ("tet_mean", "test-train mean", "{}"),
    ("paper", "paper min (train-train / test-train)", "{}"),
    ("two_eps", "2 eps", "{:g}"), ("separated", "min > 2 eps", "{}"),
    ("ceiling", "robust acc ceiling at eps", "{}"),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the markdown table here")
    parser.add_argument("--smoke", action="store_true", help="200 / 100 images, l_inf only")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    X_train, X_test, y_train, y_test = mnist_split(args.seed, smoke=args.smoke)
    rows = []
    for norm in ("linf",) if args.smoke else ("linf", "l2"):
        rep = r_separation(X_train, y_train, X_test, y_test, norm=norm, eps=EPS[norm])
        rows.append({
            "data": "split", "norm": norm, "n": f"{rep.n_train} / {rep.n_test}",
            "tt_min": rep.train_train_min, "tt_mean": rep.train_train_mean,
            "tet_min": f"{rep.test_train_min:.4f}", "tet_mean": f"{rep.test_train_mean:.4f}",
            "paper": " / ".join(PUBLISHED[norm]), "two_eps": rep.two_eps,
            "separated": "yes" if rep.separated else "no",
            "ceiling": f"{100 * rep.robust_accuracy_ceiling:.1f}%",
        })
        if not args.smoke:
            X_all = np.concatenate([X_train, X_test])
            whole = r_separation(X_all, np.concatenate([y_train, y_test]), norm=norm)
            rows.append({
                "data": "all 5,000", "norm": norm, "n": f"{whole.n_train} / -",
                "tt_min": whole.train_train_min, "tt_mean": whole.train_train_mean,
                "tet_min": "-", "tet_mean": "-", "paper": PUBLISHED[norm][0],
                "two_eps": 2 * EPS[norm], "separated": "-", "ceiling": "-",
            })
    write_markdown(rows, COLUMNS, args.out)
    print(f"\ntotal {time.perf_counter() - start:.1f} s")
    return rows


if __name__ == "__main__":
    main()
