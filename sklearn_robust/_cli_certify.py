"""``sklearn-robust certify``: certified accuracy of a model at one or more radii.

The command line (:mod:`sklearn_robust.cli`) loads the model and the data and turns the
problem this module names into its one-line error; here are the command's own options,
their checks, the measurement and its table.
"""

METHODS = ("ibp", "crown", "exact", "smoothing")
#: The options that only one method takes (another would ignore them): flag -> method.
METHOD_OPTIONS = {"time_limit": "exact", "intermediate": "crown", "alpha_steps": "crown",
                  "sigma": "smoothing", "n0": "smoothing", "n": "smoothing",
                  "alpha": "smoothing"}


def add_arguments(parser):
    """The options of ``certify`` besides the model, the data and their handling."""
    parser.add_argument("--eps", type=float, nargs="+", required=True, metavar="EPS",
                        help="radii of the ball, one row each")
    parser.add_argument("--norm", choices=("linf", "l2", "l1"), default=None,
                        help="norm of the ball (default linf; l2 for smoothing)")
    parser.add_argument("--method", choices=METHODS, default="crown",
                        help="verifier (default crown); exact takes linf and l1, smoothing l2")
    parser.add_argument("--bounds", type=float, nargs=2, metavar=("LOW", "HIGH"),
                        help="valid input range, intersected with the ball (default: none)")
    parser.add_argument("--intermediate", choices=("crown", "ibp"), default=None,
                        help="crown: the bounds of every ReLU's input by CROWN itself (full "
                             "CROWN, the default) or by IBP (CROWN-IBP: faster, looser)")
    parser.add_argument("--attack", default=None,
                        help="also the robust accuracy under this attack (pgd, auto, ...) on "
                             "the same set: the upper bound beside the certified lower bound")
    for flag, kind, text in (
            ("--time-limit", float, "exact: seconds per point (default: no limit)"),
            ("--alpha-steps", int, "crown: alpha-CROWN steps (default 0: plain CROWN)"),
            ("--sigma", float, "smoothing: std of the Gaussian noise (required)"),
            ("--n0", int, "smoothing: samples to select the class (default 100)"),
            ("--n", int, "smoothing: samples to estimate its probability (default 10000)"),
            ("--alpha", float, "smoothing: failure probability per point (default 0.001)")):
        parser.add_argument(flag, type=kind, default=None, help=text)


def argument_problem(args):
    """What is wrong with ``args`` before any file is read, or None.

    The checks :func:`~sklearn_robust.metrics.certified_accuracy_score` would make only
    after the model and data are loaded and the first radius is certified (a norm the
    method does not certify is left to it: it names the norms the method takes).

    Examples
    --------
    >>> from argparse import Namespace
    >>> args = dict(method="crown", eps=[0.1], attack=None, **dict.fromkeys(METHOD_OPTIONS))
    >>> argument_problem(Namespace(**args)) is None
    True
    >>> argument_problem(Namespace(**{**args, "eps": [0.1, -1.0]}))
    '--eps must be >= 0, got -1.0.'
    >>> argument_problem(Namespace(**{**args, "method": "smoothing"}))
    '--method smoothing needs --sigma, the std of its Gaussian noise.'
    >>> argument_problem(Namespace(**{**args, "time_limit": 5.0}))
    '--time-limit is an option of --method exact, not of --method crown.'
    """
    for name, method in METHOD_OPTIONS.items():
        if getattr(args, name) is not None and method != args.method:
            return (f"--{name.replace('_', '-')} is an option of --method {method}, not of "
                    f"--method {args.method}.")
    if args.method == "smoothing" and args.sigma is None:
        return "--method smoothing needs --sigma, the std of its Gaussian noise."
    if args.method == "smoothing" and args.attack is not None:
        return ("--attack bounds the model's robust accuracy from above; smoothing "
                "certifies another classifier, the smoothed one.")
    if min(args.eps) < 0:
        return f"--eps must be >= 0, got {min(args.eps)}."
    return None


def certify(model, X, y, args, *, verbose=False):
    """The ``certify`` result of ``model`` on ``(X, y)``: the settings and one row per eps.

    Each row holds ``eps``, ``n_samples``, ``clean_accuracy``, ``certified_accuracy``
    (:func:`~sklearn_robust.metrics.certified_accuracy_score`), ``counts`` (the
    certificates' statuses) and ``seconds`` (the certification's); with ``--attack``
    also ``robust_accuracy`` (:func:`~sklearn_robust.metrics.robust_accuracy_score` in
    the same set: the ball intersected with ``--bounds``, unbounded without).
    """
    from .metrics import certified_accuracy_score, robust_accuracy_score

    norm = args.norm or ("l2" if args.method == "smoothing" else "linf")
    bounds = tuple(args.bounds) if args.bounds else None
    options = {name: getattr(args, name) for name in METHOD_OPTIONS
               if getattr(args, name) is not None}
    clean, rows = float(model.score(X, y)), []
    for eps in args.eps:
        score, cert = certified_accuracy_score(
            model, X, y, eps=eps, norm=norm, bounds=bounds, method=args.method,
            return_certificates=True, random_state=args.seed, **options)
        rows.append({"eps": eps, "n_samples": int(len(y)), "clean_accuracy": clean,
                     "certified_accuracy": score, "counts": cert.counts(),
                     "seconds": round(cert.time, 3)})
        if args.attack is not None:
            rows[-1]["robust_accuracy"] = float(robust_accuracy_score(
                model, X, y, eps=eps, norm=norm, attack=args.attack, bounds=bounds,
                random_state=args.seed, verbose=verbose))
    return {"method": args.method, "intermediate": args.intermediate, "norm": norm,
            "bounds": args.bounds, "attack": args.attack, "rows": rows}


def format_table(result):
    """The text form of a :func:`certify` result: a heading and one line per eps.

    Examples
    --------
    >>> row = {"eps": 0.1, "n_samples": 20, "clean_accuracy": 0.9,
    ...        "certified_accuracy": 0.55, "counts": {"certified": 11, "unknown": 7,
    ...        "misclassified": 2}, "seconds": 0.01, "robust_accuracy": 0.8}
    >>> print(format_table({"method": "crown", "norm": "linf", "bounds": None,
    ...                     "attack": "pgd", "rows": [row]}))
    method crown, norm linf, bounds None, attack pgd
         eps samples  clean certified robust seconds  statuses
         0.1      20 0.9000    0.5500 0.8000    0.01  certified 11, unknown 7, misclassified 2
    """
    attacked = result["attack"] is not None
    intermediate = result.get("intermediate")  # shown when chosen
    lines = [f"method {result['method']}"
             + (f", intermediate {intermediate}" if intermediate else "")
             + f", norm {result['norm']}, bounds {result['bounds']}"
             + (f", attack {result['attack']}" if attacked else ""),
             f"{'eps':>8} {'samples':>7} {'clean':>6} {'certified':>9}"
             + (f" {'robust':>6}" if attacked else "") + f" {'seconds':>7}  statuses"]
    for row in result["rows"]:
        robust = f" {row['robust_accuracy']:6.4f}" if attacked else ""
        counts = ", ".join(f"{status} {n}" for status, n in row["counts"].items())
        lines.append(f"{row['eps']:8.4g} {row['n_samples']:7d} {row['clean_accuracy']:6.4f} "
                     f"{row['certified_accuracy']:9.4f}{robust} {row['seconds']:7.2f}  "
                     f"{counts}")
    return "\n".join(lines)
