"""The ``sklearn-robust`` command line."""

from __future__ import annotations

import argparse
import json
import sys


def _demo(args):
    from . import _demo
    from ._demo import format_table, summary

    rows = _demo.run_demo(
        max_epochs=args.epochs, attack_steps=args.attack_steps, random_state=args.seed,
        progress=not args.json and not args.quiet,
        print_fn=(lambda *_: None) if args.json else print,
    )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print()
        print(format_table(rows))
        print(summary(rows))
    return 0


def build_parser():
    """The argument parser of ``sklearn-robust``."""
    parser = argparse.ArgumentParser(
        prog="sklearn-robust",
        description="Adversarially robust scikit-learn estimators: demos and measurements.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="train Natural, AT, TRADES and SCORE on digits and print their accuracy table",
    )
    demo.add_argument("--epochs", type=int, default=20, help="epochs per model (default 20)")
    demo.add_argument("--attack-steps", type=int, default=10,
                      help="PGD steps of the inner maximisation in training (default 10)")
    demo.add_argument("--seed", type=int, default=0, help="random_state of split and fits")
    demo.add_argument("--json", action="store_true", help="print the rows as JSON")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None):
    """Entry point of ``sklearn-robust`` and ``python -m sklearn_robust``."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
