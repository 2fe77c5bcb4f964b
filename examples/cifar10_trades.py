"""TRADES on CIFAR-10 (l_inf eps 8/255) with the papers' recipe, from a local copy.
================================================================================

Loads CIFAR-10 from a local ``cifar-10-batches-py`` folder with
:func:`sklearn_robust.datasets.load_cifar10` (nothing is downloaded: get
cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it),
trains ``TRADESClassifier`` with the TRADES recipe and reports clean accuracy and PGD-20
(20 steps of 0.003 from the clean point in the ball of 8/255, the TRADES repository's
evaluation) on the first ``--eval-n`` test images, AutoAttack on the first ``--auto-n``
(none by default: it is the long part), and the time each part took.

The recipe (the TRADES repository's ``train_trades_cifar10.py``, run for 100 epochs):
WideResNet-34-10, eps 8/255, 10 attack steps of 2/255 from ``x + 0.001 N(0, 1)``, beta 6,
SGD with lr 0.1, momentum 0.9 and weight decay 2e-4, batches of 128, the learning rate
divided by 10 at epoch 75 and by 100 at epoch 90 (``lr_schedule='piecewise'``), random
4-pixel crops and horizontal flips. The TRADES paper reports 84.92% clean and 56.61%
under PGD-20 for this network (docs/cifar10.md). A full run needs a GPU, about
``epochs x 50,000 / throughput`` seconds: ``make gpu-check`` measures the throughput, and
this script prints the time its own epochs took.

Smaller runs: ``--subset N`` trains on the first N training images; ``--module``,
``--depth``, ``--widen-factor`` and ``--batch-size`` change the network and the batch
(``--module preactresnet18`` is Rice et al.'s PreAct ResNet-18). ``--fake-data N``
writes a stand-in folder of N random training images (labels visible in their colours)
and N / 4 test images to a temporary folder and runs on it instead of ``--data``: it
checks the plumbing, not the recipe (``make cifar10-smoke``).

Run::

    python examples/cifar10_trades.py --data ~/data/cifar-10-batches-py [--epochs 100]
        [--subset N] [--module wideresnet|preactresnet18] [--depth 34] [--widen-factor 10]
        [--batch-size 128] [--precision fp32|bf16|fp16] [--channels-last] [--device auto]
        [--eval-n 10000] [--auto-n 1000] [--threads N] [--out table.md]
        [--fake-data N] [--smoke]
"""

import argparse
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sklearn_robust import TRADESClassifier
from sklearn_robust.datasets import load_cifar10
from sklearn_robust.metrics import robust_accuracy_score

EPS = 8 / 255
#: The TRADES recipe as estimator settings (the network's are set from the options).
RECIPE = dict(
    eps=EPS, bounds=(0.0, 1.0), attack_steps=10, step_size=2 / 255, beta=6.0,
    optimizer=torch.optim.SGD, lr=0.1, optimizer__momentum=0.9,
    optimizer__weight_decay=2e-4, lr_schedule="piecewise", max_shift=4, flip=True,
)
#: The options' defaults: the recipe's, and --smoke's (tiny, for the tests).
FULL = dict(epochs=100, module="wideresnet", depth=34, widen_factor=10, batch_size=128,
            eval_n=10_000, auto_n=0, subset=None, fake_data=None)
SMOKE = dict(epochs=1, module="wideresnet", depth=10, widen_factor=1, batch_size=32,
             eval_n=16, auto_n=4, subset=64, fake_data=64)
PGD_STEPS, PGD_STEP = 20, 0.003
PUBLISHED = {"clean": 84.92, "pgd20": 56.61}  # the TRADES paper, WRN-34-10, eps 0.031
CLASSES = "airplane automobile bird cat deer dog frog horse ship truck".split()
COLUMNS = [("run", "run", "{}"), ("n_train", "train images", "{:,}"),
           ("epochs", "epochs", "{}"), ("clean", "clean", "{:.2f}"),
           ("pgd20", "PGD-20", "{:.2f}"), ("auto", "AutoAttack", "{}"),
           ("images_per_s", "train images/s", "{:.1f}"), ("fit_s", "fit s", "{:.0f}"),
           ("eval_s", "eval s", "{:.0f}")]


def write_fake_cifar10(folder, n_train, seed=0):
    """A stand-in ``cifar-10-batches-py`` in ``folder``: ``n_train`` random images over
    the five training batch files and ``n_train // 4`` in ``test_batch``, pickled dicts as
    in the real files. Each class tints its images with a colour of its own, so a
    network can learn something; the pixels are otherwise noise."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (10, 3, 1))
    folder.mkdir(parents=True, exist_ok=True)

    def batch(n):
        labels = rng.integers(0, 10, n)
        noise = rng.integers(0, 256, (n, 3, 1024))
        pixels = ((noise + colours[labels]) // 2).astype(np.uint8).reshape(n, 3072)
        return {b"data": pixels, b"labels": labels.tolist()}

    names = [f"data_batch_{i}" for i in range(1, 6)]
    for name, part in zip(names, np.array_split(np.arange(n_train), 5), strict=True):
        (folder / name).write_bytes(pickle.dumps(batch(len(part)), protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps(batch(max(n_train // 4, 1)), protocol=2))
    meta = {b"label_names": [name.encode() for name in CLASSES]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", help="the cifar-10-batches-py folder")
    source.add_argument("--fake-data", type=int, metavar="N",
                        help="run on a stand-in folder of N random training images instead")
    parser.add_argument("--subset", type=int, metavar="N",
                        help="train on the first N training images (default: all)")
    parser.add_argument("--epochs", type=int, help="default 100")
    parser.add_argument("--module", choices=["wideresnet", "preactresnet18"],
                        help="default wideresnet")
    parser.add_argument("--depth", type=int, help="WideResNet depth, default 34")
    parser.add_argument("--widen-factor", type=int, help="WideResNet width, default 10")
    parser.add_argument("--batch-size", type=int, help="default 128")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--device", default="auto", help="'auto' (CUDA if there), 'cpu'...")
    parser.add_argument("--eval-n", type=int, metavar="K",
                        help="clean accuracy and PGD-20 on the first K test images "
                             "(default: all 10,000)")
    parser.add_argument("--auto-n", type=int, metavar="K",
                        help="AutoAttack on the first K test images (default: 0, none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch's CPU threads (default: torch's)")
    parser.add_argument("--out", help="also write the table here (markdown)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes and, without --data, a stand-in folder (the tests)")
    args = parser.parse_args(argv)
    for name, default in (SMOKE if args.smoke else FULL).items():
        if name == "fake_data" and args.data is not None:
            continue
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.data is None and args.fake_data is None:
        parser.error("give --data PATH (the cifar-10-batches-py folder) or --fake-data N")
    for name in ("fake_data", "subset", "epochs", "depth", "widen_factor", "batch_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    for name in ("eval_n", "auto_n"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0")
    return parser, args


def load(folder, subset, parser):
    """Training and test images ``(N, 3, 32, 32)`` and labels; a bad folder is a usage
    error naming it."""
    try:
        train, test = load_cifar10(folder), load_cifar10(folder, subset="test")
    except (FileNotFoundError, ValueError) as exc:
        parser.error(str(exc))
    X_train, y_train = train.images[:subset], train.target[:subset]
    return X_train, y_train, test.images, test.target


def make_classifier(args):
    network = {"module": args.module}
    if args.module == "wideresnet":
        network.update(module__depth=args.depth, module__widen_factor=args.widen_factor)
    return TRADESClassifier(**RECIPE, **network, max_epochs=args.epochs,
                            batch_size=args.batch_size, precision=args.precision,
                            channels_last=args.channels_last, device=args.device,
                            random_state=args.seed, verbose=1)


def train_and_evaluate(args, X_train, y_train, X_test, y_test):
    clf = make_classifier(args)
    network = (f"WRN-{args.depth}-{args.widen_factor}" if args.module == "wideresnet"
               else "PreAct ResNet-18")
    print(f"TRADES, {network}, {len(X_train):,} training images, {args.epochs} epoch(s), "
          f"{args.precision}, device {args.device}", flush=True)
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    durations = list(clf.history[:, "dur"])
    # the first epoch holds the warm-up (kernels, allocator): time the others where any
    per_epoch = float(np.median(durations[1:] if len(durations) > 1 else durations))
    images_per_s = len(X_train) / per_epoch
    print(f"fit {fit_s:.1f} s: {per_epoch:.2f} s per epoch, {images_per_s:.1f} training "
          f"images/s; at this speed 100 epochs of 50,000 images take "
          f"{100 * 50_000 / images_per_s / 3600:.1f} h", flush=True)

    start = time.perf_counter()
    X_eval, y_eval = X_test[:args.eval_n], y_test[:args.eval_n]
    clean = clf.score(X_eval, y_eval) if len(X_eval) else float("nan")
    pgd20 = (robust_accuracy_score(clf, X_eval, y_eval, eps=EPS, attack="pgd",
                                   steps=PGD_STEPS, step_size=PGD_STEP, bounds=(0.0, 1.0),
                                   attack_params={"random_start": False},
                                   random_state=args.seed) if len(X_eval) else float("nan"))
    print(f"clean {100 * clean:.2f}%, PGD-20 {100 * pgd20:.2f}% on the first "
          f"{len(X_eval):,} test images ({time.perf_counter() - start:.1f} s)", flush=True)
    auto, n_auto = None, min(args.auto_n, len(X_test))
    if n_auto:
        auto_start = time.perf_counter()
        auto = robust_accuracy_score(clf, X_test[:n_auto], y_test[:n_auto], eps=EPS,
                                     attack="auto", bounds=(0.0, 1.0), random_state=args.seed)
        print(f"AutoAttack {100 * auto:.2f}% on the first {n_auto:,} test images "
              f"({time.perf_counter() - auto_start:.1f} s)", flush=True)
    return {
        "run": f"TRADES, {network}", "n_train": len(X_train), "epochs": args.epochs,
        "clean": 100 * clean, "pgd20": 100 * pgd20, "eval_n": len(X_eval),
        "auto": "-" if auto is None else f"{100 * auto:.2f} (first {n_auto:,})",
        "auto_fraction": auto, "auto_n": n_auto, "images_per_s": images_per_s,
        "seconds_per_epoch": per_epoch, "fit_s": fit_s,
        "eval_s": time.perf_counter() - start,
    }


def write_table(rows, path=None):
    lines = ["| " + " | ".join(title for _, title, _ in COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(fmt.format(row[key]) if key in row else "-"
                                       for key, _, fmt in COLUMNS) + " |")
    table = "\n".join(lines)
    print(table)
    if path:
        Path(path).write_text(table + "\n")
    return table


def main(argv=None):
    parser, args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = (write_fake_cifar10(Path(tmp) / "cifar-10-batches-py", args.fake_data,
                                     args.seed) if args.data is None else args.data)
        start = time.perf_counter()
        X_train, y_train, X_test, y_test = load(folder, args.subset, parser)
        print(f"loaded {len(X_train):,} training and {len(X_test):,} test images from "
              f"{'a stand-in folder' if args.data is None else folder} in "
              f"{time.perf_counter() - start:.1f} s", flush=True)
    row = train_and_evaluate(args, X_train, y_train, X_test, y_test)
    published = {"run": "published: TRADES paper, WRN-34-10, eps 0.031", "n_train": 50_000,
                 "epochs": "76-100", **PUBLISHED}
    write_table([row, published], args.out)
    return row


if __name__ == "__main__":
    main()
