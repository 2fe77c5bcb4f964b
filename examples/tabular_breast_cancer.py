"""Robust training on tabular data: breast_cancer across eps, next to the r-separation ceiling.
============================================================================================

For each eps (in standardised units) the script trains Natural, AT, TRADES, SCORE and the
recipe of ``docs/recipe.md`` (TRADES with a one-cycle schedule, weight averaging and a
training radius of 1.5 eps) on the standardised data, measures clean accuracy and robust
accuracy on the 25% stratified hold-out, and prints the ceiling that the data's
r-separation puts on robust accuracy (the share of test points farther than 2 eps from
every training point of another class).

Run::

    python examples/tabular_breast_cancer.py [--smoke] [--attack auto]

Measured output of a run: :doc:`/examples`.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sklearn_robust import ATClassifier, NaturalClassifier, SCOREClassifier, TRADESClassifier
from sklearn_robust.metrics import robust_accuracy_score
from sklearn_robust.recipes import robust_recipe
from sklearn_robust.separation import r_separation


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny budgets, for the tests")
    parser.add_argument("--attack", default="pgd", help="evaluation attack (pgd, auto, ...)")
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args(argv)
    # Two classes: AutoAttack skips its targeted stage and says so once per model.
    warnings.filterwarnings("ignore", message="AutoAttack: the model has 2 classes")
    epochs = 2 if args.smoke else args.epochs
    eps_grid = [0.1] if args.smoke else [0.05, 0.1, 0.2]

    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_train)
    Z_train, Z_test = scaler.transform(X_train), scaler.transform(X_test)

    print(f"breast_cancer: {len(X_train)} train / {len(X_test)} test, 30 standardised features")
    print(f"{'eps':>5} {'model':<8} {'clean':>7} {'robust':>7} {'ceiling':>8} {'fit s':>6}")
    rows = []
    for eps in eps_grid:
        ceiling = r_separation(Z_train, y_train, Z_test, y_test, eps=eps).robust_accuracy_ceiling
        common = dict(max_epochs=epochs, random_state=0, attack_steps=2 if args.smoke else 10)
        models = {
            "Natural": NaturalClassifier(max_epochs=epochs, random_state=0),
            "AT": ATClassifier(eps=eps, **common),
            "TRADES": TRADESClassifier(eps=eps, beta=6.0, **common),
            "SCORE": SCOREClassifier(eps=eps, beta=4.0, **common),
            "Recipe": robust_recipe("trades", eps=eps, beta=6.0, **common),
        }
        for name, clf in models.items():
            start = time.perf_counter()
            clf.fit(Z_train, y_train)
            seconds = time.perf_counter() - start
            clean = clf.score(Z_test, y_test)
            robust = robust_accuracy_score(
                clf, Z_test, y_test, eps=eps, attack=args.attack, bounds=None, random_state=0
            )
            rows.append((eps, name, clean, robust, ceiling, seconds))
            print(f"{eps:>5} {name:<8} {100 * clean:>7.2f} {100 * robust:>7.2f} "
                  f"{100 * ceiling:>8.2f} {seconds:>6.1f}", flush=True)
    return np.array([r[2:5] for r in rows], dtype=float)


if __name__ == "__main__":
    main()
