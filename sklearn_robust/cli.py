"""The ``sklearn-robust`` command line.

Subcommands ``demo``, ``separation``, ``evaluate`` and ``certify`` (``sklearn-robust
COMMAND --help`` lists their options); ``sklearn-robust --version`` prints the versions of
sklearn-robust, torch, skorch and scikit-learn. The data sets and files are read (or
refused in one line) by :mod:`._cli_data`, the ``certify`` command's own options are in
:mod:`._cli_certify`.
"""

import argparse
import json
import math
import sys

from ._cli_data import BUNDLED, InputError, check_file, load_dataset, one_line, split_data


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


def _separation(args):
    from .separation import r_separation

    X, y = load_dataset(args.data, args.target)
    X_train, X_test, y_train, y_test = split_data(X, y, args.test_size, args.seed)
    report = r_separation(X_train, y_train, X_test, y_test, norm=args.norm, eps=args.eps,
                          verbose=args.progress)
    print(json.dumps(report.to_dict(), indent=2, default=float) if args.json else report)
    return 0


def load_model_file(path, trust_pickle=False):
    """The fitted classifier in ``path``: a :func:`~sklearn_robust.persistence.save_model`
    file (read without executing code), or with ``trust_pickle`` also a joblib pickle."""
    from .persistence import ModelFileError, load_model

    check_file(str(path))
    try:
        return _check_model(path, load_model(path))
    except ModelFileError as error:
        if not trust_pickle:
            raise InputError(
                f"{error} Save models with sklearn_robust.persistence.save_model; to load a "
                "joblib pickle you trust (it runs code when loaded), pass --trust-pickle."
            ) from None
    import joblib

    try:
        model = joblib.load(path)
    except Exception as error:  # noqa: BLE001 (a pickle can raise anything)
        raise InputError(f"{path}: not a model file nor a joblib pickle "
                         f"({one_line(error)}).") from None
    return _check_model(path, model)


def _check_model(path, model):
    from sklearn.utils.validation import check_is_fitted

    if not (hasattr(model, "predict_proba") and hasattr(model, "score")):
        raise InputError(f"{path}: holds a {type(model).__name__}, not a fitted classifier.")
    try:
        check_is_fitted(model)
    except Exception:  # noqa: BLE001 (not fitted, or not an estimator at all)
        raise InputError(f"{path}: holds a {type(model).__name__} that is not fitted.") from None
    return model


def _model_and_data(args):
    """The model file's classifier and the points it is measured on: the data set (its
    ``--test-size`` hold-out when given), reshaped to ``--input-shape``."""
    model = load_model_file(args.model, trust_pickle=args.trust_pickle)
    X, y = load_dataset(args.data, args.target)
    if args.test_size > 0:
        _, X, _, y = split_data(X, y, args.test_size, args.seed)
    if args.input_shape:
        if math.prod(args.input_shape) != X[0].size:
            raise InputError(f"--input-shape {tuple(args.input_shape)} does not fit samples "
                             f"of shape {X.shape[1:]}.")
        X = X.reshape(len(X), *args.input_shape)
    return model, X, y


def _evaluate(args):
    from .metrics import local_lipschitz_score, robust_accuracy_score

    model, X, y = _model_and_data(args)
    result = {
        "n_samples": int(len(y)),
        "clean_accuracy": float(model.score(X, y)),
        "eps": args.eps,
        "attack": args.attack,
        "robust_accuracy": float(robust_accuracy_score(
            model, X, y, eps=args.eps, norm=args.norm, attack=args.attack,
            random_state=args.seed, verbose=not args.json,
        )),
    }
    if args.lipschitz:
        result["local_lipschitz"] = float(local_lipschitz_score(
            model, X, eps=args.eps, norm=args.norm, random_state=args.seed))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:>16}: {value}")
    return 0


def _certify(args):
    from ._cli_certify import argument_problem, certify, format_table

    problem = argument_problem(args)
    if problem is not None:
        raise InputError(problem)
    model, X, y = _model_and_data(args)
    result = certify(model, X, y, args, verbose=not args.json)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


# The distributions whose versions ``--version`` prints after sklearn-robust's own.
VERSIONED = ("torch", "skorch", "scikit-learn")


def version_text():
    """The lines ``--version`` prints: ``name version`` for sklearn-robust and its stack.

    Versions are read from the installed distributions' metadata, without importing torch;
    sklearn-robust's own is ``sklearn_robust.__version__``.

    Examples
    --------
    >>> [line.split()[0] for line in version_text().splitlines()]
    ['sklearn-robust', 'torch', 'skorch', 'scikit-learn']
    """
    from importlib.metadata import PackageNotFoundError, version

    from ._version import __version__

    lines = [f"sklearn-robust {__version__}"]
    for name in VERSIONED:
        try:
            lines.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            lines.append(f"{name} (not installed)")
    return "\n".join(lines)


class _VersionAction(argparse.Action):
    """``--version``: print :func:`version_text` on stdout and exit 0.

    argparse's own ``action='version'`` would rewrap the lines into one paragraph, and
    computing the text only when asked keeps the metadata look-ups off every other run.
    """

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def build_parser():
    """The argument parser of ``sklearn-robust``."""
    from ._cli_certify import add_arguments as add_certify_arguments

    parser = argparse.ArgumentParser(
        prog="sklearn-robust",
        description="Adversarially robust scikit-learn estimators: demos and measurements.",
    )
    parser.add_argument("--version", action=_VersionAction,
                        help="print the versions of sklearn-robust, torch, skorch and "
                             "scikit-learn and exit")
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

    def data_args(p, default_test_size, threat=True):
        p.add_argument("data", help=f"a bundled data set {BUNDLED} or a .npz/.npy/.csv file")
        p.add_argument("--target", type=int, default=None,
                       help="label column of a .csv/.npy table (default: the last)")
        p.add_argument("--test-size", type=float, default=default_test_size,
                       help=f"stratified hold-out share (default {default_test_size})")
        p.add_argument("--seed", type=int, default=0, help="random_state of split and attack")
        if threat:
            p.add_argument("--eps", type=float, default=0.1, help="radius of the threat ball")
            p.add_argument("--norm", default="linf",
                           help="'linf', 'l2' (separation: also 'l1')")
        p.add_argument("--json", action="store_true", help="print the result as JSON")

    sep = sub.add_parser("separation", help="r-separation report of a data set")
    data_args(sep, 0.25)
    sep.add_argument("--progress", action="store_true",
                     help="show progress bars on stderr (long runs on large data)")
    sep.set_defaults(func=_separation)

    def model_args(name, help, description, threat):
        p = sub.add_parser(name, help=help, description=(
            f"{description} Loads a model saved with sklearn_robust.persistence.save_model "
            "(read without executing code). A joblib pickle runs code when loaded: it is "
            "read only with --trust-pickle. With --test-size 0 (default) all of the data "
            "is used."))
        p.add_argument("model", help="a fitted classifier or pipeline saved with save_model")
        p.add_argument("--trust-pickle", action="store_true",
                       help="also load joblib pickles (only files you trust: loading runs code)")
        data_args(p, 0.0, threat)
        p.add_argument("--input-shape", type=int, nargs="+", default=None,
                       help="reshape rows to this sample shape (e.g. 1 8 8)")
        return p

    ev = model_args("evaluate", "clean and robust accuracy (and Lipschitz) of a saved model "
                    "on a data set", "Evaluates a model under attack.", threat=True)
    ev.add_argument("--attack", default="pgd", help="attack name: pgd, apgd-ce, auto, ...")
    ev.add_argument("--lipschitz", action="store_true", help="also the local Lipschitz score")
    ev.set_defaults(func=_evaluate)

    cert = model_args(
        "certify", "certified accuracy (a lower bound under every attack) of a saved model",
        "Certifies a model: the share of points correct and proven robust in the whole "
        "ball (sklearn_robust.metrics.certified_accuracy_score), one row per --eps.",
        threat=False)
    add_certify_arguments(cert)
    cert.set_defaults(func=_certify)
    return parser


def main(argv=None):
    """Entry point of ``sklearn-robust`` and ``python -m sklearn_robust``.

    Returns the exit code: 0, or 2 after one line on stderr for a bad input (a missing,
    empty, unreadable or ill-shaped file, a file that holds no model, data the model
    cannot take, settings the metric refuses such as a norm the certify method does not
    take); argument errors exit with 2 through argparse. No traceback: any other
    failure is also one line, with exit code 1. ``--version`` (no subcommand needed)
    prints :func:`version_text` and exits with 0 through argparse, as ``--help`` does.
    """
    args = build_parser().parse_args(argv)
    prefix = f"sklearn-robust {args.command}: error:"
    try:
        return args.func(args)
    except (InputError, ValueError, TypeError, OSError) as error:
        print(f"{prefix} {_message(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 (the command line prints no traceback)
        print(f"{prefix} unexpected {one_line(error)}", file=sys.stderr)
        return 1


def _message(error):
    if isinstance(error, InputError):
        return " ".join(str(error).split())
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror or one_line(error)}."
    return one_line(error)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
