"""Shared by the examples/mnist_*.py scripts: the fixed split and the evaluation.

The split is fixed: 4,000 training and 1,000 test images of the 5,000 real MNIST images
of :func:`sklearn_robust.datasets.load_mnist_subset`, stratified, seed 0. Hyperparameters
are chosen on a validation split of the training part (:func:`validation_split`), never
on the test points.
"""

import os

import numpy as np
from sklearn.model_selection import train_test_split

from sklearn_robust.datasets import load_mnist_subset
from sklearn_robust.metrics import robust_accuracy_score

N_TRAIN, N_TEST = 4000, 1000
BOUNDS = (0.0, 1.0)


def mnist_split(seed=0, smoke=False):
    """``X_train, X_test, y_train, y_test``: images (N, 1, 28, 28) in [0, 1].

    ``smoke`` keeps 200 training and 100 test points of the same split (for the tests).
    """
    bunch = load_mnist_subset()
    X_train, X_test, y_train, y_test = train_test_split(
        bunch.images, bunch.target, train_size=N_TRAIN, test_size=N_TEST,
        stratify=bunch.target, random_state=seed)
    if smoke:
        X_train, y_train = X_train[:200], y_train[:200]
        X_test, y_test = X_test[:100], y_test[:100]
    return X_train, X_test, y_train, y_test


def validation_split(X, y, seed=0, size=0.1):
    """``X_fit, X_val, y_fit, y_val``: a stratified validation split of the training part."""
    return train_test_split(X, y, test_size=size, stratify=y, random_state=seed)


def adversarial_accuracy(clf, X, y, eps, attack, steps=None, step_size=None, seed=0,
                         version=None):
    """Robust accuracy under ``attack`` ('pgd' or 'auto') in the l_inf ball, bounds (0, 1)."""
    kwargs = dict(eps=eps, norm="linf", attack=attack, bounds=BOUNDS, random_state=seed)
    if attack == "pgd":
        kwargs.update(steps=steps, step_size=step_size)
    elif version is not None:
        kwargs["attack_params"] = {"version": version}
    return robust_accuracy_score(clf, X, y, **kwargs)


def write_markdown(rows, columns, path=None):
    """Rows (dicts) as a markdown table; ``columns`` are ``(key, title, format)``.

    Prints the table and writes it to ``path`` when given.
    """
    lines = ["| " + " | ".join(title for _, title, _ in columns) + " |",
             "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(fmt.format(row[key]) for key, _, fmt in columns)
                     + " |")
    table = "\n".join(lines)
    print(table)
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(table + "\n")
    return table


def percent(value):
    return 100.0 * float(np.asarray(value))
