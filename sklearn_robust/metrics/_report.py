"""What an evaluation found, point by point, and which attack found it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class RobustAccuracyReport:
    """The counts behind a robust accuracy, and what each attack added.

    Returned by :func:`robust_accuracy_score` with ``return_details=True``. The points
    split into: clean-incorrect (``n_points - clean_correct``), broken by an attack (the
    values of ``broken_by``, in the order the attacks ran) and robust. For a list of
    attacks each stage attacks only the points the earlier stages left standing, so its
    count is what it added to the earlier ones.

    Attributes
    ----------
    score : float
        The robust accuracy, ``robust / n_points``.
    n_points : int
        Points evaluated.
    clean_correct : int
        Points the estimator classifies correctly without attack.
    robust : int
        Points still classified correctly at the adversarial point.
    broken_by : dict of {str: int}
        Points each attack broke, by attack name, in order. Empty when no attack ran
        (``eps=0``, or no clean-correct point). The counts are the attacks' own verdicts
        on the torch module; with the estimator's ``predict`` verdicts they sum to
        ``clean_correct - robust`` except for points exactly at a tie.

    Examples
    --------
    >>> report = RobustAccuracyReport(score=0.5, n_points=10, clean_correct=9, robust=5,
    ...                               broken_by={"apgd-ce": 3, "square": 1})
    >>> print(report)
    robust accuracy 0.5: 5 of 10 points
      clean incorrect       1
      broken by 'apgd-ce'   3
      broken by 'square'    1
      robust                5
    >>> report.to_dict()["broken_by"]
    {'apgd-ce': 3, 'square': 1}
    """

    score: float
    n_points: int
    clean_correct: int
    robust: int
    broken_by: dict = field(default_factory=dict)

    def to_dict(self):
        """The report as a plain dict (JSON-friendly)."""
        return asdict(self)

    def __str__(self):
        rows = [("clean incorrect", self.n_points - self.clean_correct)]
        rows += [(f"broken by {name!r}", count) for name, count in self.broken_by.items()]
        rows.append(("robust", self.robust))
        width = max(len(label) for label, _ in rows)
        lines = [f"robust accuracy {self.score:.4g}: {self.robust} of {self.n_points} points"]
        lines += [f"  {label:<{width}}  {count:>4}" for label, count in rows]
        return "\n".join(lines)
