"""Yang et al. (2020)'s accuracy / robustness / smoothness table, reproduced on our data.
======================================================================================

For Natural, GR, LLR, AT, RST (lambda 0.5, 1, 2) and TRADES (beta 1, 3, 6), each trained
without and with dropout, the script reports (as in Table 2/4 of "A Closer Look at
Accuracy vs. Robustness"):

- train and test accuracy, and the generalisation gap (train - test);
- adversarial test accuracy (PGD-20 from a random start, or ``--attack auto``);
- the empirical local Lipschitz constant of the logits on the test set (eps-ball);
- the adversarial gap: adversarial accuracy on a random subset of the training set (as many
  points as the test set, to save time) minus adversarial test accuracy.

``--dataset digits`` (default): scikit-learn's 8x8 digits as (N, 1, 8, 8) images in [0, 1],
default CNN, l_inf eps 0.1, bounds (0, 1). ``--dataset breast_cancer``: the 30 features
standardised on the training split, default MLP, eps in standardised units, no bounds.

Run::

    python examples/yang_table.py [--dataset digits|breast_cancer] [--epochs N]
        [--attack pgd|auto] [--dropout 0.5] [--out table.md] [--smoke]

Measured output (digits and breast_cancer, with the commands and wall times):
:doc:`/experiments`, section 1.
"""

import argparse
import os
import time

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sklearn_robust import (
    ATClassifier,
    GRClassifier,
    LLRClassifier,
    NaturalClassifier,
    RSTClassifier,
    TRADESClassifier,
)
from sklearn_robust.datasets import load_digits_images
from sklearn_robust.metrics import local_lipschitz_score, robust_accuracy_score

# (label, estimator class, method-specific parameters)
METHODS = [
    ("Natural", NaturalClassifier, {}),
    ("GR", GRClassifier, {}),
    ("LLR", LLRClassifier, {}),
    ("AT", ATClassifier, {}),
    ("RST(lambda 0.5)", RSTClassifier, {"lam": 0.5}),
    ("RST(lambda 1)", RSTClassifier, {"lam": 1.0}),
    ("RST(lambda 2)", RSTClassifier, {"lam": 2.0}),
    ("TRADES(beta 1)", TRADESClassifier, {"beta": 1.0}),
    ("TRADES(beta 3)", TRADESClassifier, {"beta": 3.0}),
    ("TRADES(beta 6)", TRADESClassifier, {"beta": 6.0}),
]
SMOKE_METHODS = ("Natural", "TRADES(beta 6)")

COLUMNS = [
    ("method", "method", "{}"),
    ("dropout", "dropout", "{:g}"),
    ("train_acc", "train acc", "{:.2f}"),
    ("test_acc", "test acc", "{:.2f}"),
    ("adv_test_acc", "adv test acc", "{:.2f}"),
    ("test_lipschitz", "test lipschitz", "{:.2f}"),
    ("gen_gap", "gen gap", "{:.2f}"),
    ("adv_train_acc", "adv train acc", "{:.2f}"),
    ("adv_gap", "adv gap", "{:.2f}"),
    ("fit_seconds", "fit s", "{:.0f}"),
]
PERCENT = {"train_acc", "test_acc", "adv_test_acc", "gen_gap", "adv_train_acc", "adv_gap"}


def load_data(name, seed):
    """Train/test split and the input bounds of the attacks (None for standardised data)."""
    if name == "digits":
        X_train, X_test, y_train, y_test = load_digits_images(random_state=seed)
        return X_train, X_test, y_train, y_test, (0.0, 1.0)
    if name == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.25, stratify=y, random_state=seed
        )
        scaler = StandardScaler().fit(X_train)
        X_train = scaler.transform(X_train).astype(np.float32)
        X_test = scaler.transform(X_test).astype(np.float32)
        return X_train, X_test, y_train, y_test, None
    raise ValueError(f"unknown dataset {name!r}")


def markdown_table(rows):
    """Rows (dicts, accuracies as fractions) as a markdown table, accuracies in percent."""
    lines = ["| " + " | ".join(title for _, title, _ in COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = []
        for key, _, fmt in COLUMNS:
            value = row[key]
            cells.append(fmt.format(100 * value if key in PERCENT else value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=["digits", "breast_cancer"])
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: 10 for digits, 40 for breast_cancer)")
    parser.add_argument("--attack", default="pgd", choices=["pgd", "auto"],
                        help="evaluation attack: PGD-20 with random start, or AutoAttack "
                             "('fast' version)")
    parser.add_argument("--dropout", type=float, default=0.5,
                        help="dropout of the 'with dropout' rows")
    parser.add_argument("--methods", default=None,
                        help="comma-separated subset of the method labels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", default=None, help="write the markdown table here")
    parser.add_argument("--smoke", action="store_true", help="tiny budgets, for the tests")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    X_train, X_test, y_train, y_test, bounds = load_data(args.dataset, args.seed)
    rng = np.random.RandomState(args.seed)
    if args.smoke:
        keep_train = rng.choice(len(X_train), size=300, replace=False)
        keep_test = rng.choice(len(X_test), size=80, replace=False)
        X_train, y_train = X_train[keep_train], y_train[keep_train]
        X_test, y_test = X_test[keep_test], y_test[keep_test]
    epochs = args.epochs or (10 if args.dataset == "digits" else 40)
    if args.smoke:
        epochs = 1
    attack_steps = 2 if args.smoke else 10
    pgd_steps = 5 if args.smoke else 20
    dropouts = [0.0] if args.smoke else [0.0, args.dropout]
    wanted = SMOKE_METHODS if args.smoke else None
    if args.methods:
        wanted = tuple(m.strip() for m in args.methods.split(","))
    methods = [m for m in METHODS if wanted is None or m[0] in wanted]

    # Adversarial train accuracy on a random subset of the training set, test-sized.
    subset = rng.choice(len(X_train), size=min(len(X_test), len(X_train)), replace=False)
    X_sub, y_sub = X_train[subset], y_train[subset]

    if args.attack == "auto":
        attack_kw = dict(attack="auto", attack_params={"version": "fast"})
        attack_name = "AutoAttack (fast)"
    else:
        attack_kw = dict(attack="pgd", steps=pgd_steps)
        attack_name = f"PGD-{pgd_steps}, random start"

    print(f"{args.dataset}: {len(X_train)} train / {len(X_test)} test, eps {args.eps} (l_inf), "
          f"bounds {bounds}, {epochs} epochs, attack {attack_name}, "
          f"{torch.get_num_threads()} torch thread(s)", flush=True)
    rows = []
    start_all = time.perf_counter()
    for dropout in dropouts:
        for label, cls, params in methods:
            kwargs = dict(max_epochs=epochs, random_state=args.seed, module__dropout=dropout)
            threat = dict(eps=args.eps, norm="linf", attack_steps=attack_steps, bounds=bounds)
            accepted = cls().get_params()  # GR has no eps, FastAT no attack_steps
            kwargs.update({k: v for k, v in threat.items() if k in accepted})
            clf = cls(**kwargs, **params)
            start = time.perf_counter()
            clf.fit(X_train, y_train)
            fit_seconds = time.perf_counter() - start

            train_acc = clf.score(X_train, y_train)
            test_acc = clf.score(X_test, y_test)
            adv_test = robust_accuracy_score(clf, X_test, y_test, eps=args.eps, bounds=bounds,
                                             random_state=args.seed, **attack_kw)
            adv_train = robust_accuracy_score(clf, X_sub, y_sub, eps=args.eps, bounds=bounds,
                                              random_state=args.seed, **attack_kw)
            lipschitz = local_lipschitz_score(clf, X_test, eps=args.eps, bounds=bounds,
                                              random_state=args.seed)
            row = {
                "method": label,
                "dropout": dropout,
                "train_acc": float(train_acc),
                "test_acc": float(test_acc),
                "adv_test_acc": float(adv_test),
                "test_lipschitz": float(lipschitz),
                "gen_gap": float(train_acc - test_acc),
                "adv_train_acc": float(adv_train),
                "adv_gap": float(adv_train - adv_test),
                "fit_seconds": fit_seconds,
                "eval_seconds": time.perf_counter() - start - fit_seconds,
            }
            rows.append(row)
            print(f"{label:<16} dropout {dropout:<4g} train {100 * train_acc:6.2f} "
                  f"test {100 * test_acc:6.2f} adv {100 * adv_test:6.2f} "
                  f"lip {lipschitz:7.2f} adv-train {100 * adv_train:6.2f} "
                  f"fit {fit_seconds:5.1f}s eval {row['eval_seconds']:4.1f}s", flush=True)

    table = markdown_table(rows)
    total = time.perf_counter() - start_all
    print()
    print(table)
    print(f"\ntotal {total:.0f} s")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as fh:
            fh.write(f"<!-- {args.dataset}, eps {args.eps}, {epochs} epochs, attack "
                     f"{attack_name}, total {total:.0f} s -->\n{table}\n")
    return rows


if __name__ == "__main__":
    main()
