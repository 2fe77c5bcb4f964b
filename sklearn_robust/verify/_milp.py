"""Exact (complete) verification of ReLU networks by mixed-integer linear programming.

For a point ``(x, y)`` and every wrong class ``j``, the margin ``m_j = z_y - z_j`` is
minimised over the input set (the l_inf or l_1 ball intersected with a box) by
``scipy.optimize.milp`` (HiGHS), the network encoded after Tjeng et al. (2019): stable
ReLUs are linear, an unstable one (``l < 0 < u``) is ``a >= 0, a >= z, a <= u d,
a <= z - l (1 - d)`` with ``d`` binary. A class is certified by the cheapest of three
bounds that shows ``m_j > margin_target``: the interval bound, the LP relaxation, then the
MILP, stopped as soon as the sign is decided. A MILP solution below the target is a
counterexample once a float32 forward pass of the network confirms it. Here are the
checked entry points; one point's search is in ``_milp_search.py``, the encoding in
``_milp_encoding.py``.
"""

import numpy as np

from ._milp_encoding import (
    check_batch,
    check_box,
    check_label,
    check_layers,
    check_options,
    check_point,
    check_preact,
    check_threat,
    interval_preact,
    to_float32,
)
from ._milp_search import ExactResult, verify_point

__all__ = ["ExactResult", "exact_verify", "exact_verify_batch", "interval_bounds"]


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
    return verify_point(layers, to_float32(layers), x, y, eps, norm, lower, upper, preact,
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
        results.append(verify_point(layers, layers32, x, y, eps, norm, lower, upper, preact,
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
