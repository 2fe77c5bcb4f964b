"""The threat model (``sklearn_robust.threat``): its checks, its geometry, the ascent.

Known answers where there are some: norms and projections of small vectors, the l_1
projection against a bisection on its KKT threshold, the radius law of uniform points in
the l_1 ball, the optimum of a linear loss. Property tests (hypothesis, ``_problems.py``)
over norms, radii, bounds and sample shapes: ``project`` is idempotent and lands in the
ball and bounds, so do the random starts and ``ascend``.
"""

import dataclasses
import math

import numpy as np
import pytest
import torch
from _problems import SETTINGS, assert_inside, labels, model_for, problems
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from sklearn_robust import ThreatModel
from sklearn_robust.threat import (
    L1_FRACTION,
    STARTS,
    ascend,
    check_schedule,
    l2_normalise,
    project_l1_box,
    sparse_direction,
    step_length,
)
from sklearn_robust.threat._l1 import uniform_l1
from sklearn_robust.utils import FitStreams, drawing_from


# ---------------------------------------------------------------------------- the value
@pytest.mark.parametrize("kwargs, match", [
    (dict(eps=-0.1), "'eps' parameter of ThreatModel"),
    (dict(eps=float("nan")), "'eps' parameter of ThreatModel must be finite"),
    (dict(eps=float("inf")), "'eps' parameter of ThreatModel must be finite"),
    (dict(eps=True), "'eps' parameter of ThreatModel must be a number, not a boolean"),
    (dict(eps="0.1"), "'eps' parameter of ThreatModel"),
    (dict(eps=1.0, norm="l3"), "'norm' parameter of ThreatModel"),
    (dict(eps=1.0, norm=None), "'norm' parameter of ThreatModel"),
    (dict(eps=0.1, bounds=(1.0, 0.0)), "low <= high"),
    (dict(eps=0.1, bounds=(0.0, float("inf"))), "bounds must be finite"),
    (dict(eps=0.1, bounds="minmax"), "pair"),
    (dict(eps=0.1, bounds=([0.0, 0.0], [1.0, 1.0, 1.0])), "incompatible shapes"),
])
def test_bad_arguments_are_refused_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ThreatModel(**kwargs)


def test_a_threat_model_is_a_frozen_value():
    threat = ThreatModel(eps=1, norm="l2", bounds=(0, 1))
    assert type(threat.eps) is float and threat.eps == 1.0  # stored as a float
    assert threat.bounds == (0, 1)  # as given; checked, not replaced
    assert repr(threat) == "ThreatModel(eps=1.0, norm='l2', bounds=(0, 1))"
    assert threat == ThreatModel(eps=1.0, norm="l2", bounds=(0, 1))
    assert hash(threat) == hash(ThreatModel(eps=1.0, norm="l2", bounds=(0, 1)))
    assert threat != ThreatModel(eps=1.0, norm="linf", bounds=(0, 1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        threat.eps = 2.0


# ---------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("norm, expected", [("linf", 4.0), ("l2", 5.0), ("l1", 7.0)])
def test_norms_and_distances_per_sample(norm, expected):
    threat = ThreatModel(eps=1.0, norm=norm)
    v = torch.tensor([[3.0, -4.0], [0.0, 0.0]]).view(2, 1, 1, 2)  # images: flattened per sample
    torch.testing.assert_close(threat.norms(v), torch.tensor([expected, 0.0]))
    x = torch.ones(2, 1, 1, 2)
    torch.testing.assert_close(threat.distance(x + v, x), torch.tensor([expected, 0.0]))


@pytest.mark.parametrize("norm, expected", [
    ("linf", [[1.0, -1.0]]),  # clipped per coordinate
    ("l2", [[0.6, -0.8]]),  # rescaled onto the sphere
    ("l1", [[0.0, -1.0]]),  # soft-thresholded: the larger coordinate keeps the budget
])
def test_project_onto_the_ball(norm, expected):
    threat = ThreatModel(eps=1.0, norm=norm)
    x = torch.zeros(1, 2)
    torch.testing.assert_close(threat.project(torch.tensor([[3.0, -4.0]]), x),
                               torch.tensor(expected))
    inside = torch.tensor([[0.1, -0.2]])
    torch.testing.assert_close(threat.project(inside, x), inside)  # left alone


def test_project_clamps_into_per_feature_bounds_and_contains_checks_both():
    threat = ThreatModel(eps=0.5, bounds=(np.zeros(3), np.array([1.0, 0.2, 1.0])))
    x = torch.tensor([[0.1, 0.1, 0.9]])
    p = threat.project(torch.tensor([[-1.0, 0.6, 1.2]]), x)
    torch.testing.assert_close(p, torch.tensor([[0.0, 0.2, 1.0]]))
    assert bool(threat.contains(p, x).all())
    assert not bool(threat.contains(torch.tensor([[0.1, 0.3, 0.9]]), x).any())  # above 0.2
    assert not bool(threat.contains(torch.tensor([[0.7, 0.1, 0.9]]), x).any())  # outside ball
    torch.testing.assert_close(threat.clamp(torch.tensor([[2.0, 2.0, -1.0]])),
                               torch.tensor([[1.0, 0.2, 0.0]]))
    low, high = threat.bounds_like(x.double())
    assert low.dtype == high.dtype == torch.float64
    assert ThreatModel(eps=0.5).bounds_like(x) is None


def test_direction_is_the_steepest_ascent_of_unit_norm():
    grad = torch.tensor([[0.3, -4.0, 0.0, 3.0]])
    linf = ThreatModel(eps=1.0).direction(grad)
    assert linf.tolist() == [[1.0, -1.0, 0.0, 1.0]]
    l2 = ThreatModel(eps=1.0, norm="l2").direction(grad)
    torch.testing.assert_close(l2, grad / grad.norm())
    torch.testing.assert_close(l2_normalise(torch.zeros(2, 3)), torch.zeros(2, 3))  # no NaN
    l1 = ThreatModel(eps=1.0, norm="l1").direction(grad, fraction=0.5)
    torch.testing.assert_close(l1, torch.tensor([[0.0, -0.5, 0.0, 0.5]]))
    with pytest.raises(ValueError, match="'fraction' parameter"):
        ThreatModel(eps=1.0, norm="l1").direction(grad, fraction=0.0)
    # the default fraction: ceil(0.01 * 300) = 3 coordinates
    wide = torch.arange(300.0).view(1, -1)
    assert L1_FRACTION == 0.01
    assert int((ThreatModel(eps=1.0, norm="l1").direction(wide) != 0).sum()) == 3


# ---------------------------------------------------------------------------- starts
def test_starts_are_the_declared_kinds():
    threat = ThreatModel(eps=0.1, bounds=(0, 1))
    x = torch.full((3, 4), 0.5)
    assert STARTS == ("uniform", "gaussian", "none")
    none = threat.start(x, "none")
    assert torch.equal(none, x) and none is not x  # a copy the search may change
    gaussian = threat.start(x, "gaussian", torch.Generator().manual_seed(0))
    assert 0 < float((gaussian - x).abs().max()) < 0.01  # x + 0.001 N(0, 1)
    uniform = threat.start(x, "uniform", torch.Generator().manual_seed(0))
    assert float((uniform - x).abs().max()) > 0.05  # spread over the ball
    with pytest.raises(ValueError, match="'uniform', 'gaussian' or 'none'"):
        threat.start(x, "zeros")


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_uniform_start_draws_from_the_fit_stream_inside_a_fit(norm):
    threat = ThreatModel(eps=0.3, norm=norm)
    x = torch.zeros(5, 6)
    torch.manual_seed(0)
    global_state = torch.get_rng_state()
    with drawing_from(FitStreams(7)):
        first = threat.uniform_start(x)
    with drawing_from(FitStreams(7)):
        second = threat.uniform_start(x)
    assert torch.equal(first, second)
    assert torch.equal(torch.get_rng_state(), global_state)  # the global stream untouched
    outside = threat.uniform_start(x)  # outside a fit: torch's global stream
    assert not torch.equal(torch.get_rng_state(), global_state)
    assert bool(threat.contains(outside, x).all()) and not torch.equal(outside, first)


# ---------------------------------------------------------------------------- ascend
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_ascend_reaches_the_optimum_of_a_linear_loss(norm):
    # max of <w, x'> over the ball: x + eps sign(w) (l_inf) or x + eps w / ||w|| (l_2)
    w = torch.tensor([[2.0, -1.0, 0.5]])
    x = torch.tensor([[0.5, 0.5, 0.5], [0.0, 1.0, 0.2]])
    threat = ThreatModel(eps=0.2, norm=norm)
    x_adv = ascend(threat, lambda z: (z * w).sum(dim=1), x, steps=3, step_size=0.2,
                   start="none")
    step = w.sign() if norm == "linf" else w / w.norm()
    torch.testing.assert_close(x_adv, x + 0.2 * step)
    assert not x_adv.requires_grad


def test_ascend_with_zero_steps_returns_the_start_and_never_touches_parameters():
    model = nn.Linear(3, 2)
    y = torch.zeros(4, dtype=torch.long)
    x = torch.rand(4, 3, generator=torch.Generator().manual_seed(0))
    threat = ThreatModel(eps=0.1, bounds=(0, 1))

    def loss(z):
        return nn.functional.cross_entropy(model(z), y, reduction="none")

    assert torch.equal(ascend(threat, loss, x, steps=0, start="none"), x)
    x_adv = ascend(threat, loss, x, steps=4, generator=torch.Generator().manual_seed(0))
    assert bool(threat.contains(x_adv, x).all()) and not torch.equal(x_adv, x)
    assert all(p.grad is None for p in model.parameters())  # input gradients only
    assert bool((loss(x_adv) >= loss(x)).all())  # it ascends


def test_check_schedule_and_step_length():
    assert check_schedule(3, 0.1, "PGD") == (3, 0.1)
    assert check_schedule(0, None, "PGD") == (0, None)
    for steps, step_size, match in [(-1, None, "'steps' parameter of PGD"),
                                    (True, None, "'steps' parameter of PGD"),
                                    (1.5, None, "'steps' parameter of PGD"),
                                    (3, 0.0, "'step_size' parameter of PGD"),
                                    (3, "0.1", "'step_size' parameter of PGD")]:
        with pytest.raises(ValueError, match=match):
            check_schedule(steps, step_size, "PGD")
    with pytest.raises(ValueError, match="'steps' parameter of LLR"):
        check_schedule(0, None, "LLR", min_steps=1)
    assert step_length(0.2, 10) == pytest.approx(0.05)  # Madry's 2.5 eps / steps
    assert step_length(0.2, 0) == pytest.approx(0.5)  # no division by zero
    assert step_length(0.2, 10, 3) == 3.0 and isinstance(step_length(0.2, 10, 3), float)


# ---------------------------------------------------------------------------- l_1 geometry
def _bisection_projection(v, low, high, eps):
    """The projection by bisection on the threshold ``lam`` (a slow, obvious reference)."""
    v = v.astype(np.float64)
    cap = np.where(v >= 0, high, -low)

    def shrink(lam):
        return np.minimum(np.maximum(np.abs(v) - lam, 0), cap)

    if shrink(0.0).sum() <= eps:
        return np.sign(v) * shrink(0.0)
    lo, hi = 0.0, np.abs(v).max()
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if shrink(mid).sum() > eps else (lo, mid)
    return np.sign(v) * shrink(hi)


@pytest.mark.parametrize("seed", range(6))
def test_projection_matches_bisection_and_is_feasible(seed):
    rng = np.random.RandomState(seed)
    n, dim = 5, 40
    v = rng.randn(n, dim) * rng.choice([0.1, 1.0, 3.0])
    low = -rng.uniform(0, 0.5, size=(n, dim))
    high = rng.uniform(0, 0.5, size=(n, dim))
    low[:, :5] = 0.0  # coordinates on a bound
    eps = float(rng.choice([0.05, 1.0, 5.0, 100.0]))
    got = project_l1_box(torch.tensor(v), torch.tensor(low), torch.tensor(high), eps).numpy()
    for row in range(n):
        want = _bisection_projection(v[row], low[row], high[row], eps)
        np.testing.assert_allclose(got[row], want, atol=1e-9)
    assert (np.abs(got).sum(axis=1) <= eps + 1e-9).all()
    assert (got >= low - 1e-12).all() and (got <= high + 1e-12).all()


def test_projection_beats_clipping_after_the_ball():
    # Projecting onto the ball and then clipping to the box is not the projection onto
    # the intersection (Croce & Hein 2021): here it wastes budget on a coordinate the box
    # stops, and lands farther from v.
    v = torch.tensor([[2.0, 1.0]])
    high = torch.tensor([[0.2, 5.0]])
    low = -high
    exact = project_l1_box(v, low, high, 1.0)
    clipped = torch.minimum(project_l1_box(v, None, None, 1.0), high)
    torch.testing.assert_close(exact, torch.tensor([[0.2, 0.8]]))
    assert float(clipped.abs().sum()) < 1.0
    assert float((exact - v).norm()) < float((clipped - v).norm())


def test_threat_model_project_and_contains_under_l1():
    threat = ThreatModel(eps=1.5, norm="l1", bounds=(0, 1))
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 8, 8, generator=gen)
    z = x + 2 * torch.randn(x.shape, generator=gen)
    p = threat.project(z, x)
    assert bool(threat.contains(p, x).all())
    assert torch.allclose(threat.distance(p, x), torch.full((16,), 1.5), atol=1e-4)
    torch.testing.assert_close(threat.project(p, x), p, rtol=0, atol=1e-6)


def test_uniform_l1_follows_the_radius_law():
    # Uniform in the l_1 ball of R^D: ||z||_1 / eps ~ Beta(D, 1), mean D / (D + 1);
    # the signs are fair.
    dim, n = 4, 20000
    z = uniform_l1((n, dim), 2.0, torch.Generator().manual_seed(0), dtype=torch.float64)
    radius = z.abs().sum(dim=1) / 2.0
    assert float(radius.max()) <= 1.0
    assert abs(float(radius.mean()) - dim / (dim + 1)) < 0.01
    assert abs(float((z > 0).double().mean()) - 0.5) < 0.01
    # P(radius <= 1/2) = 2^-D
    assert abs(float((radius <= 0.5).double().mean()) - 0.5**dim) < 0.01


def test_sparse_direction_is_unit_and_skips_stuck_coordinates():
    grad = torch.tensor([[5.0, -4.0, 3.0, -2.0, 1.0, 0.5, 0.25, 0.0, 0.1, 0.2]])
    step = sparse_direction(grad, fraction=0.3)
    assert int((step != 0).sum()) == 3 and float(step.abs().sum()) == pytest.approx(1.0)
    assert torch.equal(step.sign()[0, :3], torch.tensor([1.0, -1.0, 1.0]))
    movable = torch.ones_like(grad, dtype=torch.bool)
    movable[0, 0] = False  # the largest entry is stuck on a bound
    step = sparse_direction(grad, fraction=0.3, movable=movable)
    assert step[0, 0] == 0 and torch.equal(step[0, 1:4] != 0, torch.tensor([True] * 3))
    assert torch.equal(sparse_direction(torch.zeros(1, 4)), torch.zeros(1, 4))  # no gradient
    # The threat model reads "stuck" off the iterate and the bounds.
    threat = ThreatModel(eps=1.0, norm="l1", bounds=(0, 1))
    x_adv = torch.tensor([[1.0, 0.5, 0.0, 0.5]])
    g = torch.tensor([[9.0, 1.0, -8.0, -2.0]])
    d = threat.direction(g, x_adv, threat.bounds_like(x_adv), fraction=0.25)
    assert torch.equal(d, torch.tensor([[0.0, 0.0, 0.0, -1.0]]))


# ---------------------------------------------------------------------------- properties
@SETTINGS
@given(problem=problems(), scale=st.floats(0.0, 5.0), noise_seed=st.integers(0, 2**16))
def test_project_is_idempotent_and_lands_in_ball_and_bounds(problem, scale, noise_seed):
    threat, x, _ = problem
    gen = torch.Generator().manual_seed(noise_seed)
    z = x + scale * torch.randn(x.shape, generator=gen)
    once = threat.project(z, x)
    twice = threat.project(once, x)
    assert_inside(threat, once, x)
    torch.testing.assert_close(twice, once, rtol=0, atol=1e-6)
    # points already inside are left alone
    torch.testing.assert_close(threat.project(x, x), x, rtol=0, atol=0)


@SETTINGS
@given(problem=problems(), start_seed=st.integers(0, 2**16))
def test_random_starts_land_in_ball_and_bounds(problem, start_seed):
    threat, x, _ = problem
    for kind in STARTS:
        gen = torch.Generator().manual_seed(start_seed)
        start = threat.start(x, kind, generator=gen)
        assert_inside(threat, start, x)
    a = threat.uniform_start(x, torch.Generator().manual_seed(start_seed))
    b = threat.uniform_start(x, torch.Generator().manual_seed(start_seed))
    assert torch.equal(a, b)


@SETTINGS
@given(problem=problems())
def test_ascend_stays_in_ball_and_bounds_and_leaves_rng(problem):
    threat, x, seed = problem
    model = model_for(x, seed)
    y = labels(x, seed)
    rng = torch.get_rng_state()
    x_adv = ascend(
        threat, lambda z: nn.functional.cross_entropy(model(z), y, reduction="none"), x,
        steps=2, generator=torch.Generator().manual_seed(seed),
    )
    assert_inside(threat, x_adv, x)
    assert torch.equal(rng, torch.get_rng_state())
    assert math.isfinite(float(x_adv.sum()))
