"""SCORE (squared error, Pang et al. 2022) against TRADES (KL, Zhang et al. 2019).
===============================================================================

Trains SCORE with the SE distance (beta 3, 4) and TRADES (beta 3, 4, 6) on scikit-learn's
8x8 digits ((N, 1, 8, 8) images in [0, 1], default CNN, l_inf eps 0.1), or with
``--data mnist`` on real MNIST (the fixed 4,000 / 1,000 split of ``examples/_mnist.py``),
and measures clean accuracy and robust accuracy on the held-out points under PGD-20 and
under AutoAttack
(APGD-CE -> APGD-T -> Square; the 'fast' budget by default: 20 APGD iterations, 3 target
classes, 500 Square queries; ``--auto-version standard`` for the full one). Prints a
markdown table and, with ``--plot``, saves the clean-vs-robust trade-off as a PNG.

Run::

    python examples/score_vs_trades.py [--data digits|mnist] [--epochs N]
        [--plot tradeoff.png] [--out table.md] [--auto-version fast|standard] [--smoke]

Measured output: :doc:`/experiments`, section 2 (digits) and M3 (MNIST); the
trade-off plot of the digits run (``--plot docs/images/score_vs_trades.png``):

.. image:: /images/score_vs_trades.png
   :alt: clean against AutoAttack accuracy of SCORE and TRADES on digits
"""

import argparse
import os
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from sklearn_robust import SCOREClassifier, TRADESClassifier  # noqa: E402
from sklearn_robust.datasets import load_digits_images  # noqa: E402
from sklearn_robust.metrics import robust_accuracy_score  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _mnist import mnist_split  # noqa: E402

# (label, family, estimator class, parameters)
MODELS = [
    ("SCORE(SE, beta 3)", "SCORE", SCOREClassifier, {"beta": 3.0, "distance": "se"}),
    ("SCORE(SE, beta 4)", "SCORE", SCOREClassifier, {"beta": 4.0, "distance": "se"}),
    ("TRADES(beta 3)", "TRADES", TRADESClassifier, {"beta": 3.0}),
    ("TRADES(beta 4)", "TRADES", TRADESClassifier, {"beta": 4.0}),
    ("TRADES(beta 6)", "TRADES", TRADESClassifier, {"beta": 6.0}),
]
SMOKE_MODELS = ("SCORE(SE, beta 4)", "TRADES(beta 6)")


def markdown_table(rows, pgd_steps=20):
    lines = [f"| method | beta | clean acc | PGD-{pgd_steps} acc | AutoAttack acc | fit s "
             "| eval s |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['beta']:g} | {100 * r['clean_acc']:.2f} | "
                     f"{100 * r['pgd_acc']:.2f} | {100 * r['auto_acc']:.2f} | "
                     f"{r['fit_seconds']:.0f} | {r['eval_seconds']:.0f} |")
    return "\n".join(lines)


def plot_tradeoff(rows, path, title):
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    styles = {"SCORE": ("tab:blue", "o"), "TRADES": ("tab:red", "s")}
    for family, (colour, marker) in styles.items():
        fam = sorted((r for r in rows if r["family"] == family), key=lambda r: r["beta"])
        if not fam:
            continue
        ax.plot([100 * r["clean_acc"] for r in fam], [100 * r["auto_acc"] for r in fam],
                color=colour, marker=marker, label=family)
        for r in fam:
            ax.annotate(f"beta {r['beta']:g}", (100 * r["clean_acc"], 100 * r["auto_acc"]),
                        textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel("clean test accuracy (%)")
    ax.set_ylabel("robust test accuracy, AutoAttack (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits", choices=["digits", "mnist"])
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--auto-version", default="fast", choices=["fast", "standard"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--plot", default=None, help="save the trade-off plot (PNG) here")
    parser.add_argument("--out", default=None, help="write the markdown table here")
    parser.add_argument("--smoke", action="store_true", help="tiny budgets, for the tests")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    if args.data == "mnist":
        X_train, X_test, y_train, y_test = mnist_split(args.seed)
    else:
        X_train, X_test, y_train, y_test = load_digits_images(random_state=args.seed)
    epochs, attack_steps, pgd_steps = args.epochs, 10, 20
    auto_params = {"version": args.auto_version}
    models = MODELS
    if args.smoke:
        rng = np.random.RandomState(args.seed)
        keep_train = rng.choice(len(X_train), size=300, replace=False)
        keep_test = rng.choice(len(X_test), size=60, replace=False)
        X_train, y_train = X_train[keep_train], y_train[keep_train]
        X_test, y_test = X_test[keep_test], y_test[keep_test]
        epochs, attack_steps, pgd_steps = 1, 2, 5
        auto_params = {"version": "fast", "steps": 5, "n_queries": 20}
        models = [m for m in MODELS if m[0] in SMOKE_MODELS]
    bounds = (0.0, 1.0)

    print(f"{args.data}: {len(X_train)} train / {len(X_test)} test, eps {args.eps} (l_inf), "
          f"{epochs} epochs, AutoAttack {auto_params}, {torch.get_num_threads()} torch "
          f"thread(s)", flush=True)
    rows = []
    start_all = time.perf_counter()
    for label, family, cls, params in models:
        clf = cls(eps=args.eps, norm="linf", attack_steps=attack_steps, bounds=bounds,
                  max_epochs=epochs, random_state=args.seed, **params)
        start = time.perf_counter()
        clf.fit(X_train, y_train)
        fit_seconds = time.perf_counter() - start
        clean = clf.score(X_test, y_test)
        pgd = robust_accuracy_score(clf, X_test, y_test, eps=args.eps, attack="pgd",
                                    steps=pgd_steps, bounds=bounds, random_state=args.seed)
        auto = robust_accuracy_score(clf, X_test, y_test, eps=args.eps, attack="auto",
                                     attack_params=auto_params, bounds=bounds,
                                     random_state=args.seed)
        row = {"method": label, "family": family, "beta": params["beta"],
               "clean_acc": float(clean), "pgd_acc": float(pgd), "auto_acc": float(auto),
               "fit_seconds": fit_seconds,
               "eval_seconds": time.perf_counter() - start - fit_seconds}
        rows.append(row)
        print(f"{label:<18} clean {100 * clean:6.2f} pgd-{pgd_steps} {100 * pgd:6.2f} "
              f"auto {100 * auto:6.2f} fit {fit_seconds:5.1f}s "
              f"eval {row['eval_seconds']:5.1f}s", flush=True)

    table = markdown_table(rows, pgd_steps)
    total = time.perf_counter() - start_all
    print()
    print(table)
    print(f"\ntotal {total:.0f} s")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as fh:
            fh.write(f"<!-- {args.data}, eps {args.eps}, {epochs} epochs, AutoAttack "
                     f"{auto_params}, total {total:.0f} s -->\n{table}\n")
    if args.plot:
        plot_tradeoff(rows, args.plot,
                      f"{args.data}, l_inf eps {args.eps}, {epochs} epochs, "
                      f"AutoAttack ({auto_params['version']})")
        print(f"plot written to {args.plot}")
    return rows


if __name__ == "__main__":
    main()
