"""The report of the sandwich: per radius, the bounds of the true robust accuracy.

:class:`SandwichReport` holds what :func:`robustness_sandwich` measured (certified and
exact lower bounds, attacked and exact upper bounds, the r-separation ceiling) and
derives the interval, a table and its printed form.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True, repr=False)
class SandwichReport:
    """Per radius, the bounds of the true robust accuracy, and whether they agree.

    Returned by :func:`robustness_sandwich`; printing it shows one row per radius. Every
    value is a fraction of all ``n_points`` points. Lower bounds: each certified
    accuracy and ``exact_lower``; upper bounds: ``attacked`` and ``exact_upper``. The
    true robust accuracy of the estimator lies in ``[lower, upper]``.

    Attributes
    ----------
    eps : tuple of float
        The radii, in the order given.
    norm : str
        Norm of the balls.
    n_points : int
        Points evaluated.
    clean_accuracy : float
        Accuracy without perturbation (the same at every radius).
    attack : str
        The attack, by name (``'fgsm + pgd'`` for a list).
    attacked : tuple of float
        Robust accuracy under the attack: an upper bound.
    certified : dict of {str: tuple of float}
        Certified accuracy of each method: lower bounds.
    exact_lower, exact_upper : tuple of float or None
        The exact MILP's decided-robust share (a lower bound) and decided-robust plus
        undecided share (an upper bound); None without ``exact=True``.
    exact_undecided : tuple of int or None
        Points the MILP left undecided (out of time).
    separation_ceiling : tuple of float or None
        Share of the points farther than ``2 * eps`` from every training point of
        another class (see :func:`~sklearn_robust.separation.r_separation`): the
        ceiling of the robust accuracy of any classifier also astute at every training
        point. Not a bound of this estimator (which may give up training points), so
        not part of ``lower``, ``upper`` or ``consistent``. None without training data.
    consistent : tuple of bool
        At each radius, whether every point certified (by any method) resisted the
        attack and had no exact counterexample. False means an unsound certificate or
        an attack that left the ball: see ``violations``.
    violations : tuple of str
        What contradicted what, one line per finding (empty when consistent).

    Examples
    --------
    >>> report = SandwichReport(eps=(0.0, 0.1), norm="linf", n_points=10, clean_accuracy=0.9,
    ...                         attack="pgd", attacked=(0.9, 0.6),
    ...                         certified={"crown": (0.9, 0.4)}, consistent=(True, True))
    >>> report.lower, report.upper
    ((0.9, 0.4), (0.9, 0.6))
    >>> print(report)
    SandwichReport(norm='linf', n_points=10, attack='pgd')
    eps  clean  crown  attacked  interval    consistent
      0    0.9    0.9       0.9  [0.9, 0.9]  True
    0.1    0.9    0.4       0.6  [0.4, 0.6]  True
    lower bounds: crown; upper bounds: attacked
    """

    eps: tuple
    norm: str
    n_points: int
    clean_accuracy: float
    attack: str
    attacked: tuple
    certified: dict = field(default_factory=dict)
    exact_lower: tuple | None = None
    exact_upper: tuple | None = None
    exact_undecided: tuple | None = None
    separation_ceiling: tuple | None = None
    consistent: tuple = ()
    violations: tuple = ()

    @property
    def lower(self):
        """Best lower bound at each radius: the largest certified share (0 without any)."""
        bounds = [*self.certified.values()]
        bounds += [] if self.exact_lower is None else [self.exact_lower]
        return tuple(float(max((b[i] for b in bounds), default=0.0))
                     for i in range(len(self.eps)))

    @property
    def upper(self):
        """Best upper bound at each radius: the attacked or the exact upper share."""
        if self.exact_upper is None:
            return tuple(float(a) for a in self.attacked)
        return tuple(float(min(a, e)) for a, e in zip(self.attacked, self.exact_upper,
                                                      strict=True))

    def table(self):
        """``{column: one value per radius}``, ready for ``pandas.DataFrame``."""
        columns = {"eps": list(self.eps), "clean": [self.clean_accuracy] * len(self.eps)}
        columns.update({method: list(v) for method, v in self.certified.items()})
        if self.exact_lower is not None:
            columns.update(exact_lower=list(self.exact_lower),
                           undecided=list(self.exact_undecided),
                           exact_upper=list(self.exact_upper))
        columns["attacked"] = list(self.attacked)
        if self.separation_ceiling is not None:
            columns["ceiling"] = list(self.separation_ceiling)
        columns.update(lower=list(self.lower), upper=list(self.upper),
                       consistent=list(self.consistent))
        return columns

    def to_dict(self):
        """The report as a plain dict (JSON-friendly), with ``lower`` and ``upper``."""
        return {**asdict(self), "lower": self.lower, "upper": self.upper}

    def __repr__(self):
        columns = self.table()
        lower, upper = columns.pop("lower"), columns.pop("upper")
        consistent = columns.pop("consistent")
        head = list(columns) + ["interval", "consistent"]
        rows = [[_cell(columns[c][i]) for c in columns]
                + [f"[{_cell(lower[i])}, {_cell(upper[i])}]", str(consistent[i])]
                for i in range(len(self.eps))]
        widths = [max(len(row[j]) for row in [head, *rows]) for j in range(len(head))]
        last = len(head) - 2  # the interval and the flag read better left-aligned
        lines = [f"SandwichReport(norm={self.norm!r}, n_points={self.n_points}, "
                 f"attack={self.attack!r})"]
        lines += ["  ".join(cell.rjust(w) if j < last else cell.ljust(w)
                            for j, (cell, w) in enumerate(zip(row, widths, strict=True))
                            ).rstrip() for row in [head, *rows]]
        lows = [*self.certified] + (["exact_lower"] if self.exact_lower is not None else [])
        highs = ["attacked"] + (["exact_upper"] if self.exact_upper is not None else [])
        lines.append(f"lower bounds: {', '.join(lows) or 'none'}; upper bounds: "
                     f"{', '.join(highs)}")
        if self.separation_ceiling is not None:
            lines.append("ceiling: r-separation ceiling of classifiers also astute at every "
                         "training point (not a bound of this one)")
        lines += [f"VIOLATION: {line}" for line in self.violations]
        return "\n".join(lines)

    __str__ = __repr__


def _cell(value):
    return str(value) if isinstance(value, (bool, np.bool_, int, np.integer)) else f"{value:.4g}"
