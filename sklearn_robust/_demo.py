"""The main job: natural, AT, TRADES and SCORE on digits, one table of measured figures."""

import time

import numpy as np
from skorch.callbacks import Callback
from tqdm.auto import tqdm

from .datasets import load_digits_images
from .estimators import ATClassifier, NaturalClassifier, SCOREClassifier, TRADESClassifier

EPS = 0.1
EVAL_STEPS = 20


class EpochBar(Callback):
    """A tqdm bar advancing once per epoch (skorch's ProgressBar counts batches)."""

    def __init__(self, desc, disable=False):
        self.desc = desc
        self.disable = disable

    def on_train_begin(self, net, **kwargs):
        self.bar_ = tqdm(total=net.max_epochs, desc=self.desc, unit="epoch",
                         disable=self.disable, leave=False)

    def on_epoch_end(self, net, **kwargs):
        self.bar_.set_postfix(loss=f"{net.history[-1, 'train_loss']:.3f}")
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        self.bar_.close()


def demo_models(max_epochs=20, attack_steps=10, random_state=0):
    """The four estimators of the demo, with the demo's settings."""
    common = dict(max_epochs=max_epochs, random_state=random_state)
    robust = dict(common, eps=EPS, attack_steps=attack_steps, bounds=(0.0, 1.0))
    return {
        "Natural": NaturalClassifier(**common),
        "AT": ATClassifier(**robust),
        "TRADES": TRADESClassifier(beta=6.0, **robust),
        "SCORE": SCOREClassifier(beta=4.0, **robust),
    }


def run_demo(max_epochs=20, attack_steps=10, random_state=0, progress=True, print_fn=print):
    """Train the four models on digits and return one row of figures per model.

    Each row holds train and test accuracy, PGD-20 test accuracy (l_inf, eps 0.1, uniform
    random start, on the 25% stratified hold-out) and the fit time in seconds.
    """
    from .metrics import robust_accuracy_score

    X_train, X_test, y_train, y_test = load_digits_images(random_state=random_state)
    print_fn(
        f"digits: {len(X_train)} train / {len(X_test)} test images (8x8, [0, 1]); "
        f"l_inf eps {EPS}; PGD-{EVAL_STEPS} evaluation"
    )
    rows = []
    for name, clf in demo_models(max_epochs, attack_steps, random_state).items():
        clf.set_params(callbacks=[("epochs", EpochBar(f"fit {name}", disable=not progress))])
        start = time.perf_counter()
        clf.fit(X_train, y_train)
        fit_time = time.perf_counter() - start
        robust = robust_accuracy_score(
            clf, X_test, y_test, eps=EPS, attack="pgd", steps=EVAL_STEPS,
            bounds=(0.0, 1.0), random_state=random_state, verbose=progress,
        )
        rows.append({
            "model": name,
            "train_acc": clf.score(X_train, y_train),
            "test_acc": clf.score(X_test, y_test),
            "pgd_test_acc": robust,
            "fit_seconds": fit_time,
        })
        print_fn(format_row(rows[-1]))
    return rows


def format_row(row):
    return (
        f"{row['model']:<8} {100 * row['train_acc']:>9.2f} {100 * row['test_acc']:>8.2f} "
        f"{100 * row['pgd_test_acc']:>13.2f} {row['fit_seconds']:>8.1f}"
    )


def format_table(rows):
    """The demo's table as text."""
    header = f"{'model':<8} {'train acc':>9} {'test acc':>8} {'PGD-20 test':>13} {'fit (s)':>8}"
    return "\n".join([header, "-" * len(header), *map(format_row, rows)])


def summary(rows):
    """One-line verdict on the demo's acceptance figures."""
    by_name = {r["model"]: r for r in rows}
    natural = by_name["Natural"]["pgd_test_acc"]
    gaps = {n: by_name[n]["pgd_test_acc"] - natural for n in ("TRADES", "SCORE")}
    return ", ".join(
        f"{n}: {100 * g:+.1f} robust points over Natural" for n, g in gaps.items()
    ) + f"; total fit {np.sum([r['fit_seconds'] for r in rows]):.0f} s"
