"""Exact (complete) verification of ReLU networks by mixed-integer linear programming.

For a point ``(x, y)`` and every wrong class ``j``, the margin ``m_j = z_y - z_j`` is
minimised over the input set (the l_inf or l_1 ball intersected with a box) by
``scipy.optimize.milp`` (HiGHS), the network encoded after Tjeng et al. (2019): stable
ReLUs are linear, an unstable one (``l < 0 < u``) is ``a >= 0, a >= z, a <= u d,
a <= z - l (1 - d)`` with ``d`` binary. A class is certified by the cheapest of three
bounds that shows ``m_j > margin_target``: the interval bound, the LP relaxation, then the
MILP, stopped as soon as the sign is decided. A MILP solution below the target is a
counterexample once a float32 forward pass of the network confirms it.
"""

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, milp

from ._milp_encoding import (
    Encoding,
    check_batch,
    check_box,
    check_label,
    check_layers,
    check_options,
    check_point,
    check_preact,
    check_threat,
    float32_logits,
    interval_preact,
    project,
    to_float32,
)

__all__ = ["ExactResult", "exact_verify", "exact_verify_batch", "interval_bounds"]

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


def interval_bounds(layers, x, *, eps, norm="linf", lower=None, upper=None):
    """Interval (IBP) bounds of every hidden pre-activation over the input set, in float64.

    The first layer is bounded exactly over the ball (l_inf: ``|W| eps``; l_1:
    ``eps * max_i |w_ji|``, intersected with the bound over the ball's box within
    ``[lower, upper]``); later layers propagate boxes.

    Parameters
    ----------
    layers : list of (W, b)
        Dense layers, ``W`` of shape ``(out, in)``, a ReLU after each but the last.
    x : ndarray of shape (d,)
        Centre of the ball.
    eps : float
        Radius of the ball, ``>= 0``.
    norm : {'linf', 'l1'}, default='linf'
        Norm of the ball.
    lower, upper : float, ndarray of shape (d,) or None, default=None
        The box the inputs live in; None is unbounded.

    Returns
    -------
    list of (ndarray, ndarray)
        One ``(lower, upper)`` pair per hidden layer (``len(layers) - 1``).

    Examples
    --------
    >>> import numpy as np
    >>> layers = [(np.array([[1.0], [-2.0]]), np.zeros(2)), (np.ones((2, 2)), np.zeros(2))]
    >>> (lo, hi), = interval_bounds(layers, np.array([0.5]), eps=0.1)
    >>> lo.round(2).tolist(), hi.round(2).tolist()
    ([0.4, -1.2], [0.6, -0.8])
    """
    layers = check_layers(layers)
    d = layers[0][0].shape[1]
    eps = check_threat(eps, norm)
    lower, upper = check_box(lower, upper, d)
    x = check_point(x, d, lower, upper)
    return interval_preact(layers, x, eps, norm, lower, upper)


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


def _verify(layers, layers32, x, y, eps, norm, lower, upper, preact, time_limit, target):
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


def exact_verify(layers, x, y, *, eps, norm="linf", lower=None, upper=None, preact=None,
                 time_limit=None, margin_target=0.0):
    """Decide whether a ReLU network keeps its margin over an l_inf or l_1 ball: exactly.

    Complete verification by MILP (Tjeng et al. 2019) with ``scipy.optimize.milp``: for
    each wrong class ``j`` (smallest clean margin first) the margin ``z_y - z_j`` is
    bounded below by intervals, then the LP relaxation, then the MILP, stopped once the
    sign is decided. The first class with a counterexample ends the search; a
    counterexample is a point of the input set whose float32 forward pass is below the
    target (it is never reported otherwise).

    Parameters
    ----------
    layers : list of (W, b)
        Dense float64 layers, ``W`` of shape ``(out, in)``, with a ReLU after each pair but
        the last, which gives the logits.
    x : ndarray of shape (d,)
        The clean point, inside ``[lower, upper]``.
    y : int
        Its label.
    eps : float
        Radius of the ball, ``>= 0``.
    norm : {'linf', 'l1'}, default='linf'
        Norm of the ball ('l2' is refused: its ball is not polyhedral).
    lower, upper : float, ndarray of shape (d,) or None, default=None
        The box the inputs live in; None is unbounded.
    preact : list of (ndarray, ndarray) or None, default=None
        Sound ``(lower, upper)`` bounds of each hidden pre-activation over the input set
        (e.g. CROWN's); tighter bounds mean fewer binaries. A last pair for the logits is
        ignored, arrays of shape ``(1, width)`` are taken. None: :func:`interval_bounds`.
    time_limit : float or None, default=None
        Wall-clock seconds for the whole point, shared among the classes (a second round
        gives the time left to the classes the first left undecided); None is unlimited.
    margin_target : float, default=0.0
        The property is ``z_y - z_j > margin_target`` for every ``j`` and input.

    Returns
    -------
    ExactResult
        ``status`` ('robust', 'counterexample' or 'unknown'), ``counterexample``,
        ``min_margin``, ``wrong_class``, ``margin32``, ``time``, ``n_milps``, ``n_lps``.

    See Also
    --------
    exact_verify_batch : The same over many points.

    Notes
    -----
    The MILP is solved in float64 with HiGHS's tolerances (``1e-6``): 'robust' holds for
    the float64 network up to them, and a minimum within ``1e-6`` of the target is
    'unknown'. Counterexamples are clipped to the box and projected onto the ball, then
    confirmed by a float32 pass; one that fails is sharpened by solving its class to
    optimality, and the point is 'unknown' if that fails too.

    References
    ----------
    V. Tjeng, K. Xiao and R. Tedrake. "Evaluating Robustness of Neural Networks with Mixed
    Integer Programming", ICLR 2019.

    Examples
    --------
    One input, logits ``(relu(x), 0.5)``: the point ``x = 1`` of class 0 keeps its label
    up to ``x' = 0.5``, so it is robust at radius 0.4 and not at 0.6.

    >>> import numpy as np
    >>> layers = [(np.array([[1.0]]), np.zeros(1)),
    ...           (np.array([[1.0], [0.0]]), np.array([0.0, 0.5]))]
    >>> res = exact_verify(layers, np.array([1.0]), 0, eps=0.4)
    >>> res.status, round(res.min_margin, 2)
    ('robust', 0.1)
    >>> res = exact_verify(layers, np.array([1.0]), 0, eps=0.6, lower=0.0, upper=1.0)
    >>> res.status, res.wrong_class, bool(res.counterexample[0] < 0.5)
    ('counterexample', 1, True)
    """
    layers = check_layers(layers)
    d = layers[0][0].shape[1]
    eps = check_threat(eps, norm)
    lower, upper = check_box(lower, upper, d)
    x = check_point(x, d, lower, upper)
    y = check_label(y, layers[-1][0].shape[0])
    time_limit, margin_target = check_options(time_limit, margin_target)
    if preact is not None:
        preact = check_preact(preact, layers)
    return _verify(layers, to_float32(layers), x, y, eps, norm, lower, upper, preact,
                   time_limit, margin_target)


def exact_verify_batch(layers, X, Y, *, eps, norm="linf", lower=None, upper=None,
                       time_limit=None, preact_fn=None, margin_target=0.0):
    """:func:`exact_verify` for each row of ``X``, the verdicts as arrays.

    Parameters
    ----------
    layers : list of (W, b)
        Dense float64 layers, a ReLU after each pair but the last.
    X : ndarray of shape (n, d)
        Clean points, inside ``[lower, upper]``.
    Y : ndarray of shape (n,)
        Their labels.
    eps : float
        Radius of the ball, ``>= 0``.
    norm : {'linf', 'l1'}, default='linf'
        Norm of the ball.
    lower, upper : float, ndarray of shape (d,) or None, default=None
        The box the inputs live in; None is unbounded.
    time_limit : float or None, default=None
        Wall-clock seconds per point; None is unlimited.
    preact_fn : callable or None, default=None
        ``preact_fn(x)`` returns the pre-activation bounds of the ball around the row
        ``x`` (see ``preact`` in :func:`exact_verify`); None uses interval bounds.
    margin_target : float, default=0.0
        The property is ``z_y - z_j > margin_target``.

    Returns
    -------
    dict
        ``status`` (ndarray of str), ``counterexample`` (list of ndarray or None),
        ``min_margin``, ``margin32``, ``time`` (float ndarrays), ``wrong_class`` (int
        ndarray, -1 where none), ``n_milps`` and ``n_lps`` (int ndarrays).

    Examples
    --------
    >>> import numpy as np
    >>> layers = [(np.array([[1.0]]), np.zeros(1)),
    ...           (np.array([[1.0], [0.0]]), np.array([0.0, 0.5]))]
    >>> out = exact_verify_batch(layers, np.array([[1.0], [0.55]]), np.array([0, 0]),
    ...                          eps=0.2, lower=0.0, upper=1.0)
    >>> out["status"].tolist(), out["wrong_class"].tolist()
    (['robust', 'counterexample'], [-1, 1])
    """
    layers = check_layers(layers)
    d, n_classes = layers[0][0].shape[1], layers[-1][0].shape[0]
    eps = check_threat(eps, norm)
    lower, upper = check_box(lower, upper, d)
    X, Y = check_batch(X, Y, d, n_classes, lower, upper)
    time_limit, margin_target = check_options(time_limit, margin_target)
    if preact_fn is not None and not callable(preact_fn):
        raise TypeError(f"preact_fn must be callable or None, got {preact_fn!r}")
    layers32 = to_float32(layers)
    results = []
    for x, y in zip(X, Y, strict=True):
        preact = None if preact_fn is None else check_preact(preact_fn(x), layers)
        results.append(_verify(layers, layers32, x, y, eps, norm, lower, upper, preact,
                               time_limit, margin_target))
    return {
        "status": np.array([r.status for r in results], dtype="<U14"),
        "counterexample": [r.counterexample for r in results],
        "min_margin": np.array([r.min_margin for r in results], dtype=np.float64),
        "margin32": np.array([r.margin32 for r in results], dtype=np.float64),
        "wrong_class": np.array([-1 if r.wrong_class is None else r.wrong_class
                                 for r in results], dtype=np.int64),
        "time": np.array([r.time for r in results], dtype=np.float64),
        "n_milps": np.array([r.n_milps for r in results], dtype=np.int64),
        "n_lps": np.array([r.n_lps for r in results], dtype=np.int64),
    }
