"""Robustness plots on digits: robust accuracy against eps, the beta trade-off, r-separation.
==========================================================================================

Draws the three displays of ``sklearn_robust.plotting`` on scikit-learn's 8x8 digits (rows
of 64 pixels in [0, 1], default MLP, l_inf):

- ``robustness_curve.png``: ``RobustnessCurveDisplay.from_estimator`` for Natural, AT,
  TRADES (beta 6) and SCORE (beta 4) trained at eps 0.1, robust accuracy under PGD-20
  on the 25% hold-out for eps from 0 (clean accuracy) to 0.2, all on one axis.
- ``tradeoff.png``: ``TradeoffDisplay.from_cv_results`` of a ``GridSearchCV`` over TRADES
  and SCORE and their ``beta``, scored by clean accuracy and PGD robust accuracy
  (3-fold, error bars = standard deviation over folds), one line per estimator.
- ``separation.png``: ``SeparationDisplay.from_data``: Train-Train and Test-Train l_inf
  distances to the nearest point of another class, against 2 eps.

Run::

    python examples/plot_robustness.py [--out-dir docs/images] [--epochs N] [--smoke]
"""

import argparse
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

from sklearn_robust import (  # noqa: E402
    ATClassifier,
    NaturalClassifier,
    SCOREClassifier,
    TRADESClassifier,
)
from sklearn_robust.datasets import load_digits_images  # noqa: E402
from sklearn_robust.metrics import make_robust_scorer  # noqa: E402
from sklearn_robust.plotting import (  # noqa: E402
    RobustnessCurveDisplay,
    SeparationDisplay,
    TradeoffDisplay,
)

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "images"


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}", flush=True)


def robustness_curve(X_train, y_train, X_test, y_test, *, eps, eps_grid, common, pgd_steps,
                     seed, path):
    models = [
        ("Natural", NaturalClassifier(max_epochs=common["max_epochs"], random_state=seed)),
        ("AT (PGD)", ATClassifier(eps=eps, **common)),
        ("TRADES (beta 6)", TRADESClassifier(eps=eps, beta=6.0, **common)),
        ("SCORE (SE, beta 4)", SCOREClassifier(eps=eps, beta=4.0, **common)),
    ]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    curves = {}
    for (name, clf), marker in zip(models, "osD^", strict=True):
        start = time.perf_counter()
        clf.fit(X_train, y_train)
        display = RobustnessCurveDisplay.from_estimator(
            clf, X_test, y_test, eps=eps_grid, attack="pgd", steps=pgd_steps, bounds=(0, 1),
            random_state=seed, name=name, ax=ax, marker=marker,
        )
        curves[name] = display.robust_accuracy
        print(f"{name:<20} " + " ".join(
            f"{e:g}:{a:.3f}" for e, a in zip(eps_grid, display.robust_accuracy, strict=True))
            + f"  ({time.perf_counter() - start:.0f} s)", flush=True)
    ax.axvline(eps, color="grey", linestyle=":", linewidth=1)
    ax.annotate(f"training eps = {eps:g}", (eps, 0.02), xytext=(3, 0),
                textcoords="offset points", fontsize=8, color="grey")
    ax.set_title(f"digits (MLP): robust accuracy under PGD-{pgd_steps}, "
                 f"{len(y_test)} test points", fontsize=10)
    _save(fig, path)
    return curves


def tradeoff(X_train, y_train, *, eps, betas, common, pgd_steps, cv, seed, path):
    grid = [
        {"clf": [TRADESClassifier(eps=eps, **common)], "clf__beta": betas},
        {"clf": [SCOREClassifier(eps=eps, **common)], "clf__beta": betas},
    ]
    scoring = {
        "clean": "accuracy",
        "robust": make_robust_scorer(eps=eps, steps=pgd_steps, bounds=(0, 1),
                                     random_state=seed),
    }
    search = GridSearchCV(
        Pipeline([("clf", TRADESClassifier())]), grid, scoring=scoring, refit=False,
        cv=StratifiedKFold(cv, shuffle=True, random_state=seed),
    )
    start = time.perf_counter()
    search.fit(X_train, y_train)
    print(f"grid search: {len(search.cv_results_['params'])} candidates x {cv} folds "
          f"({time.perf_counter() - start:.0f} s)", flush=True)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    display = TradeoffDisplay.from_cv_results(
        search, param="beta", clean="clean", robust="robust", group_by="clf", ax=ax)
    ax.set_xlabel(f"clean accuracy (mean over {cv} folds)")
    ax.set_ylabel(f"robust accuracy, PGD-{pgd_steps} at eps {eps:g}")
    ax.set_title("digits (MLP): accuracy-robustness trade-off across beta", fontsize=10)
    _save(fig, path)
    return display


def separation(X_train, y_train, X_test, y_test, *, eps, path):
    fig, ax = plt.subplots(figsize=(6, 4.2))
    # Pixels are k/16, so l_inf distances are too: one bin per possible value.
    bins = (np.arange(18) - 0.5) / 16
    display = SeparationDisplay.from_data(X_train, y_train, X_test, y_test, eps=eps,
                                          norm="linf", bins=bins, ax=ax)
    ax.set_title(f"digits: r-separation (Yang et al. 2020), eps {eps:g}", fontsize=10)
    _save(fig, path)
    print(display.report_, flush=True)
    return display


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=str(DEFAULT_OUT), help="where the PNGs go")
    parser.add_argument("--eps", type=float, default=0.1, help="training eps (l_inf)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--smoke", action="store_true", help="tiny budgets, for the tests")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    X_train, X_test, y_train, y_test = load_digits_images(flat=True, random_state=args.seed)
    epochs, attack_steps, pgd_steps, cv = args.epochs, 5, 20, 3
    eps_grid = [0.0, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2]
    betas = [0.5, 1.0, 3.0, 6.0]
    if args.smoke:
        rng = np.random.RandomState(args.seed)
        keep_train = rng.choice(len(X_train), size=200, replace=False)
        keep_test = rng.choice(len(X_test), size=60, replace=False)
        X_train, y_train = X_train[keep_train], y_train[keep_train]
        X_test, y_test = X_test[keep_test], y_test[keep_test]
        epochs, attack_steps, pgd_steps, cv = 1, 1, 2, 2
        eps_grid, betas = [0.0, 0.1], [1.0, 6.0]
    common = {"max_epochs": epochs, "attack_steps": attack_steps, "bounds": (0, 1),
              "random_state": args.seed}
    out = Path(args.out_dir)
    os.makedirs(out, exist_ok=True)
    print(f"digits: {len(X_train)} train / {len(X_test)} test, eps {args.eps} (l_inf), "
          f"{epochs} epochs, {attack_steps} attack steps, {torch.get_num_threads()} torch "
          "thread(s)", flush=True)

    start = time.perf_counter()
    paths = {name: out / f"{name}.png" for name in ("robustness_curve", "tradeoff",
                                                    "separation")}
    curves = robustness_curve(X_train, y_train, X_test, y_test, eps=args.eps,
                              eps_grid=eps_grid, common=common, pgd_steps=pgd_steps,
                              seed=args.seed, path=paths["robustness_curve"])
    trade = tradeoff(X_train, y_train, eps=args.eps, betas=betas, common=common,
                     pgd_steps=pgd_steps, cv=cv, seed=args.seed, path=paths["tradeoff"])
    sep = separation(X_train, y_train, X_test, y_test, eps=args.eps,
                     path=paths["separation"])
    print(f"total {time.perf_counter() - start:.0f} s")
    return {"paths": paths, "curves": curves, "tradeoff": trade, "separation": sep}


if __name__ == "__main__":
    main()
