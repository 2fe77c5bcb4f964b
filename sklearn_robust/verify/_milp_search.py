"""One point's exact verification: the cheapest bound that decides each wrong class.

For the point ``(x, y)`` the wrong classes are taken in order of their clean margin (the
likeliest counterexample first); each is decided by its interval bound, then the LP
relaxation, then the MILP (``scipy.optimize.milp``, HiGHS) stopped as soon as the sign
of ``m_j - margin_target`` is known, the time shared among the classes still open. A
MILP solution below the target is a counterexample only once a float32 forward pass of
the network confirms it (:class:`ExactResult` holds the verdict).
"""

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, milp

from ._milp_encoding import Encoding, float32_logits, interval_preact, project

__all__ = ["ExactResult", "verify_point"]

#: HiGHS's relative gap while deciding the sign of ``m_j - target`` (its objective): a
#: positive incumbent P stops it once the dual bound reaches P / 10 (certified), a negative
#: one soon after (dual bound >= 1.9 P): a candidate counterexample.
SIGN_GAP = 0.9
#: Margins within this of the target are left undecided (HiGHS's tolerances are 1e-6).
TOL = 1e-6
#: A counterexample's float32 margin must lie this far (times the largest logit, at least
#: 1) below the target: float32 sums in another order may differ in the last bits.
SLACK = 1e-5


@dataclass
class ExactResult:
    """The verdict of :func:`exact_verify` for one point.

    Attributes
    ----------
    status : {'robust', 'counterexample', 'unknown'}
        'unknown' when the time ran out, the solver failed, or the minimum margin is
        within ``1e-6`` of the target.
    counterexample : ndarray of shape (d,) or None
        A point of the input set (float64) whose float32 margin is below the target.
    min_margin : float
        A certified lower bound of ``min_j min_x' z_y - z_j`` over the input set: above
        ``margin_target`` when robust (not the minimum: the solver stops once the sign
        is decided); for 'unknown' the weaker bound reached; NaN for a counterexample.
    wrong_class : int or None
        The class with the largest wrong logit at the counterexample (float32).
    margin32 : float
        The float32 margin ``z_y - max_j z_j`` at the counterexample, else NaN.
    time : float
        Wall-clock seconds spent on the point.
    n_milps, n_lps : int
        Numbers of MILPs and of LP relaxations solved.

    Examples
    --------
    >>> ExactResult("robust", min_margin=0.5).status
    'robust'
    """

    status: str
    counterexample: np.ndarray | None = None
    min_margin: float = math.nan
    wrong_class: int | None = None
    margin32: float = math.nan
    time: float = 0.0
    n_milps: int = 0
    n_lps: int = 0


class _Point:
    """One point's problem; ``solve`` and ``confirm`` share its network and input set."""

    def __init__(self, layers, layers32, x, y, eps, norm, lower, upper, target, deadline):
        self.layers, self.layers32, self.x, self.y = layers, layers32, x, y
        self.set = (eps, norm, lower, upper)
        self.target, self.deadline = target, deadline
        self.n_milps = self.n_lps = 0

    def left(self):
        return self.deadline - time.perf_counter()

    def solve(self, enc, cost, budget, *, integer=True, gap=SIGN_GAP):
        """``(lower bound, incumbent value, solution)`` of ``cost @ v``; None where absent."""
        options = {} if budget == np.inf else {"time_limit": max(budget, 1e-6)}
        if integer:
            options["mip_rel_gap"] = gap
            self.n_milps += 1
        else:
            self.n_lps += 1
        res = milp(cost, integrality=enc.integrality if integer else None,
                   bounds=Bounds(enc.var_lb, enc.var_ub), constraints=enc.constraints,
                   options=options)
        if res.status not in (0, 1):  # infeasible (unsound preact), unbounded, failed
            return None, None, None
        bound = res.mip_dual_bound if integer else (res.fun if res.status == 0 else None)
        if res.x is None:
            return bound, None, None
        return bound, float(res.fun), res.x

    def confirm(self, x_adv):
        """``(confirmed, float32 margin, wrong class)`` at ``x_adv``."""
        z = float32_logits(self.layers32, x_adv)
        others = z.copy()
        others[self.y] = -np.inf
        j = int(np.argmax(others))
        m = float(z[self.y] - z[j])
        return m < self.target - SLACK * max(1.0, float(np.abs(z).max())), m, j

    def candidate(self, enc, v):
        """The solution's input, moved into the input set, if float32 confirms it."""
        x_adv = project(enc.point(v), self.x, *self.set)
        ok, m, j = self.confirm(x_adv)
        return (x_adv, m, j) if ok else None

    def decide(self, enc, j, budget, use_lp):
        """``('robust' or 'unknown', bound)`` or ``('counterexample', (x', m32, j'))``."""
        cost = enc.objective(self.layers, self.y, j, self.target)
        if use_lp:
            bound, _, _ = self.solve(enc, cost, budget, integer=False)
            if bound is not None and bound > TOL:
                return "robust", bound
            budget = min(budget, self.left())
        bound, value, v = self.solve(enc, cost, budget)
        if value is not None and value < 0:
            found = self.candidate(enc, v)
            if found is None and self.left() > 0:  # sharpen: the minimum itself
                bound, value, v = self.solve(enc, cost, self.left(), gap=1e-4)
                found = None if value is None or value >= 0 else self.candidate(enc, v)
            if found is not None:
                return "counterexample", found
        if bound is not None and bound > TOL and (value is None or value >= 0):
            return "robust", bound
        return "unknown", bound


def verify_point(layers, layers32, x, y, eps, norm, lower, upper, preact, time_limit, target):
    start = time.perf_counter()
    deadline = np.inf if time_limit is None else start + time_limit
    point = _Point(layers, layers32, x, y, eps, norm, lower, upper, target, deadline)

    def result(status, **kw):
        return ExactResult(status, time=time.perf_counter() - start, n_milps=point.n_milps,
                           n_lps=point.n_lps, **kw)

    ok, m32, j32 = point.confirm(x)
    if ok:  # the clean point itself
        return result("counterexample", counterexample=x.copy(), wrong_class=j32, margin32=m32)
    if preact is None:
        preact = interval_preact(layers, x, eps, norm, lower, upper)
    enc = Encoding(layers, preact, x, eps, norm, lower, upper)
    h = x  # classes in order of their clean margin, the likeliest counterexample first
    for W, b in layers[:-1]:
        h = np.maximum(W @ h + b, 0.0)
    z = layers[-1][0] @ h + layers[-1][1]
    order = [j for j in np.argsort(z[y] - z, kind="stable") if j != y]
    bounds = {j: enc.interval_margin(layers, y, j) - target for j in order}
    todo = [j for j in order if bounds[j] <= TOL]
    for attempt in range(1 if time_limit is None else 2):
        undecided = []  # a second attempt gives the time left to the undecided classes
        for n, j in enumerate(todo):
            left = point.left()
            if left <= 0:
                undecided += todo[n:]
                break
            verdict, value = point.decide(enc, j, left / (len(todo) - n), attempt == 0)
            if verdict == "counterexample":
                x_adv, m, wrong = value
                return result("counterexample", counterexample=x_adv, wrong_class=wrong,
                              margin32=m)
            if value is not None:
                bounds[j] = max(bounds[j], value)
            if verdict == "unknown":
                undecided.append(j)
        todo = undecided
        if not todo or point.left() <= 0:
            break
    lowest = min(bounds.values()) + target
    if todo:
        return result("unknown", min_margin=lowest if np.isfinite(lowest) else math.nan)
    return result("robust", min_margin=lowest)
