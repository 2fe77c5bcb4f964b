"""The public bound functions: IBP and CROWN margins, pre-activation bounds, the slack."""

from numbers import Integral, Real

import torch

from ..utils import Interval, StrOptions, Substitution, check_scalar_param
from ._alpha import optimised_bounds
from ._crown import backward, margin_spec, relaxations, tightened
from ._ibp import interval_bounds, interval_margins, nonlinear_inputs
from ._inputs import InputSet, check_inputs
from ._layers import Affine
from ._network import layers_out
from ._rounding import PRECISIONS, margin_slack

__all__ = ["crown_margin_bounds", "ibp_margin_bounds", "preactivation_bounds",
           "rounding_slack"]

_PRECISION = [StrOptions(set(PRECISIONS)), None]

_POINTS = """\
layers : list
    :func:`network_layers` of the model.
x : torch.Tensor or array-like of shape (N, ...)
    Clean points; any shape whose samples flatten to the network's input width.
"""
_LABELS = """\
y : array-like of int of shape (N,)
    The classes to certify (usually the true labels).
"""
_BALL = """\
eps : float
    Radius of the ball (``>= 0``; ``0``: the clean points alone).
norm : {'linf', 'l2', 'l1'}, default='linf'
    Norm of the ball.
lower, upper : None, float or array-like, default=None
    The box ``[lower, upper]`` the inputs are confined to: scalars, arrays
    broadcasting to one sample or to ``x``; ``None`` leaves that side unbounded.
    ``x`` must lie inside (a rounding's worth outside is absorbed)."""
#: The parameters and results the bound functions share, written once.
fill_doc = Substitution(
    points=_POINTS + _BALL,  # the input set
    labelled=_POINTS + _LABELS + _BALL,  # the input set and the classes to certify
    precision="""\
precision : {'float32', 'tf32', 'float64'} or None, default='float32'
    Arithmetic of the model's forward pass, for the rounding slack; ``None``: exact
    real arithmetic (no slack: the bound of the mathematical network).""",
    margins="""\
torch.Tensor of shape (N, C), float64
    Lower bound of ``z_y - z_j`` for every ``j``; ``+inf`` at ``j = y``, so a point
    is certified exactly when ``bounds.min(dim=1).values > 0``.""",
    network=""">>> import torch
>>> from sklearn_robust import verify
>>> _ = torch.manual_seed(0)
>>> model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(),
...                             torch.nn.Linear(16, 16), torch.nn.ReLU(),
...                             torch.nn.Linear(16, 3))
>>> layers = verify.network_layers(model, (2,))
>>> x = torch.rand(20, 2)
>>> y = model(x).argmax(1)  # the predicted classes""",
)


def _batches(layers, input_set, y, size):
    """``(part, labels, chain, outputs)`` per batch of ``size`` points: the sub-batch,
    its classes (``None`` without ``y``) and IBP through it (:func:`interval_bounds`)."""
    for start in range(0, input_set.x.shape[0], size):
        rows = slice(start, start + size)
        part = input_set[rows]
        yield part, None if y is None else y[rows], *interval_bounds(layers, part)


def _by_layer(layers, bounds):
    """``{k: bounds}`` for the ReLUs and max pools ``k`` of ``layers``, in order."""
    nonlinear = [k for k, layer in enumerate(layers) if not isinstance(layer, Affine)]
    return dict(zip(nonlinear, bounds, strict=True))


def _slack(layers, input_set, y, precision, known):
    eye = torch.eye(layers_out(layers), dtype=torch.float64, device=y.device)
    spec = eye[y][:, None, :] - eye[None]
    return margin_slack(layers, input_set, y, spec, precision, known)


def _prepare(layers, x, y, eps, norm, lower, upper, batch_size, precision, caller):
    check_scalar_param(precision, "precision", _PRECISION, caller)
    x, y, eps, norm, lower, upper, batch_size = check_inputs(
        layers, x, y, eps, norm, lower, upper, batch_size=batch_size, caller=caller)
    return InputSet(x, eps, norm, lower, upper), y, batch_size


@fill_doc
def ibp_margin_bounds(layers, x, y, *, eps, norm="linf", lower=None, upper=None,
                      precision="float32", batch_size=256):
    """Lower bounds of the margins ``z_y - z_j`` over the input set, by IBP.

    Interval bound propagation (Gowal et al. 2018) with the exact ball at the first
    affine layer and elision at the last: the rows ``w_y - w_j`` bound each margin
    directly. The rounding slack of the model's own float32 forward pass
    (:func:`rounding_slack`) is already subtracted.

    Parameters
    ----------
    %(labelled)s
    %(precision)s
    batch_size : int, default=256
        Points bounded at once.

    Returns
    -------
    %(margins)s

    See Also
    --------
    crown_margin_bounds : Tighter linear bounds, at more cost.

    Examples
    --------
    %(network)s
    >>> clean = verify.ibp_margin_bounds(layers, x, y, eps=0.0)
    >>> bool((clean.min(1).values > 0).all())  # the predicted class: positive margins
    True
    >>> clean.shape
    torch.Size([20, 3])
    """
    caller = "ibp_margin_bounds"
    input_set, y, batch_size = _prepare(layers, x, y, eps, norm, lower, upper, batch_size,
                                        precision, caller)
    out = []
    with torch.no_grad():
        for part, labels, chain, outputs in _batches(layers, input_set, y, batch_size):
            margins = interval_margins(layers, part, labels, chain=chain, outputs=outputs)
            known = _by_layer(layers, nonlinear_inputs(chain, outputs, part))
            out.append(margins - _slack(layers, part, labels, precision, known))
    return torch.cat(out)


@fill_doc
def crown_margin_bounds(layers, x, y, *, eps, norm="linf", lower=None, upper=None,
                        intermediate="crown", alpha_steps=0, alpha_lr=0.1,
                        precision="float32", batch_size=64):
    """Lower bounds of the margins ``z_y - z_j`` over the input set, by CROWN.

    CROWN (Zhang et al. 2018) bounds each margin by a linear function of the input,
    propagated backwards with linear relaxations of the ReLUs (adaptive lower slopes)
    and max pools, then minimised over the ball (``x . a - eps ||a||_*``) and the box.
    The result is never below IBP's (the larger of the two is returned) and the
    rounding slack of the model's float32 forward pass (:func:`rounding_slack`) is
    already subtracted.

    Parameters
    ----------
    %(labelled)s
    intermediate : {'crown', 'ibp'}, default='crown'
        Pre-activation bounds of the ReLUs and max pools: CROWN itself, layer by layer
        ("full CROWN", tighter, its cost quadratic in depth), or IBP ("CROWN-IBP").
        CROWN's are intersected with IBP's.
    alpha_steps : int, default=0
        ``> 0``: alpha-CROWN, the lower slopes of unstable ReLUs optimised for the
        margins by that many steps of projected Adam (20 is a good budget: a few times
        CROWN's cost); the best bound seen is kept, never below CROWN's.
    alpha_lr : float, default=0.1
        Adam's step size for the slopes.
    %(precision)s
    batch_size : int, default=64
        Points bounded at once (intermediate bounds are also chunked by unit, so memory
        stays within about 64 MiB per tensor).

    Returns
    -------
    %(margins)s

    See Also
    --------
    ibp_margin_bounds : Cheaper, looser bounds.
    preactivation_bounds : The bounds of every ReLU's input.

    Examples
    --------
    %(network)s
    >>> crown = verify.crown_margin_bounds(layers, x, y, eps=0.05, lower=0, upper=1)
    >>> ibp = verify.ibp_margin_bounds(layers, x, y, eps=0.05, lower=0, upper=1)
    >>> bool((crown >= ibp).all())
    True
    >>> int((crown.min(1).values > 0).sum()) >= int((ibp.min(1).values > 0).sum())
    True
    """
    caller = "crown_margin_bounds"
    check_scalar_param(intermediate, "intermediate", [StrOptions({"crown", "ibp"})], caller)
    check_scalar_param(alpha_steps, "alpha_steps",
                       [Interval(Integral, 0, None, closed="left")], caller)
    check_scalar_param(alpha_lr, "alpha_lr", [Interval(Real, 0, None, closed="neither")],
                       caller)
    input_set, y, batch_size = _prepare(layers, x, y, eps, norm, lower, upper, batch_size,
                                        precision, caller)
    n_out = layers_out(layers)
    out = []
    with torch.no_grad():
        for part, labels, chain, outputs in _batches(layers, input_set, y, batch_size):
            ibp = interval_margins(layers, part, labels, chain=chain, outputs=outputs)
            known, relaxed = relaxations(layers, part, nonlinear_inputs(chain, outputs, part),
                                         tighten=intermediate == "crown")
            stop, a, const = margin_spec(layers, labels, n_out)
            if alpha_steps:
                margins = optimised_bounds(layers, stop, a, const, relaxed, part,
                                           steps=alpha_steps, lr=alpha_lr)
            else:
                margins = part.minimum(*backward(layers, stop, a, const, relaxed))
            margins = torch.maximum(margins.scatter(1, labels[:, None], torch.inf), ibp)
            out.append(margins - _slack(layers, part, labels, precision, known))
    return torch.cat(out)


@fill_doc
def preactivation_bounds(layers, x, *, eps, norm="linf", lower=None, upper=None,
                         method="crown", batch_size=64):
    """Bounds of the input of every ReLU and max pool, and of the logits.

    The bounds hold for the network in exact arithmetic (what a MILP encodes); take
    :func:`rounding_slack` off its final margins for the float32 model.

    Parameters
    ----------
    %(points)s
    method : {'crown', 'ibp'}, default='crown'
        ``'crown'``: full CROWN, layer by layer, intersected with IBP (never looser);
        ``'ibp'``: interval bound propagation (consecutive affine maps merged).
    batch_size : int, default=64
        Points bounded at once.

    Returns
    -------
    list of (torch.Tensor, torch.Tensor)
        ``(lower, upper)``, each ``(N, width)`` float64: one pair per ReLU or max pool
        of ``layers`` (the bounds of its input), in order, then one for the logits. For
        a ReLU network, pair ``k`` bounds the output of ``dense_layers(layers)[k]``.

    Examples
    --------
    %(network)s
    >>> bounds = verify.preactivation_bounds(layers, x, eps=0.1)
    >>> [tuple(lo.shape) for lo, hi in bounds]
    [(20, 16), (20, 16), (20, 3)]
    >>> logits = model(x).double()  # float32: within the bounds up to rounding
    >>> lo, hi = bounds[-1]
    >>> bool(((lo - 1e-6 <= logits) & (logits <= hi + 1e-6)).all())
    True
    """
    caller = "preactivation_bounds"
    check_scalar_param(method, "method", [StrOptions({"crown", "ibp"})], caller)
    input_set, _, batch_size = _prepare(layers, x, None, eps, norm, lower, upper,
                                        batch_size, None, caller)
    chunks = []
    with torch.no_grad():
        for part, _, chain, outputs in _batches(layers, input_set, None, batch_size):
            bounds, relaxed = relaxations(layers, part, nonlinear_inputs(chain, outputs, part),
                                          tighten=method == "crown")
            pairs = [bounds[k] for k in sorted(bounds)]
            lo, hi = outputs[-1]
            if method == "crown":
                everything = torch.ones(lo.shape, dtype=torch.bool, device=lo.device)
                lo, hi = tightened(layers, len(layers), everything, lo, hi, relaxed, part)
            chunks.append(pairs + [(lo, hi)])
    return [(torch.cat([c[i][0] for c in chunks]), torch.cat([c[i][1] for c in chunks]))
            for i in range(len(chunks[0]))]


@fill_doc
def rounding_slack(layers, x, y, *, eps, norm="linf", lower=None, upper=None,
                   precision="float32", method="crown", batch_size=64):
    """How much the model's own floating-point forward pass may lower each margin.

    ``z_hat_y - z_hat_j >= m_j - slack_j`` for every input of the set, ``z_hat`` the
    logits the model computes in ``precision`` and ``m_j`` the margin in exact
    arithmetic: a verifier of the exact network (a MILP) certifies the float model when
    its minimum margin exceeds the slack. The bound is Higham's ``gamma_n`` for every
    sum of products, carried through the layers with the magnitudes IBP bounds; see the
    module ``sklearn_robust.verify._rounding`` for the derivation and what it does not
    cover (Winograd/FFT convolutions, float16 autocast).

    Parameters
    ----------
    %(labelled)s
    %(precision)s
    method : {'crown', 'ibp'}, default='crown'
        The bounds of the activations the slack is computed from (see
        :func:`preactivation_bounds`); ``'crown'`` gives the slack
        :func:`crown_margin_bounds` subtracts with its default ``intermediate``.
    batch_size : int, default=64
        Points bounded at once.

    Returns
    -------
    torch.Tensor of shape (N, C), float64
        The slack of each margin, ``0`` at ``j = y``.

    Examples
    --------
    %(network)s
    >>> slack = verify.rounding_slack(layers, x, y, eps=0.1)
    >>> bool(((slack >= 0) & (slack < 1e-5)).all())
    True
    """
    caller = "rounding_slack"
    check_scalar_param(method, "method", [StrOptions({"crown", "ibp"})], caller)
    input_set, y, batch_size = _prepare(layers, x, y, eps, norm, lower, upper, batch_size,
                                        precision, caller)
    out = []
    with torch.no_grad():
        for part, labels, chain, outputs in _batches(layers, input_set, y, batch_size):
            known, _ = relaxations(layers, part, nonlinear_inputs(chain, outputs, part),
                                   tighten=method == "crown")
            out.append(_slack(layers, part, labels, precision, known))
    return torch.cat(out)
