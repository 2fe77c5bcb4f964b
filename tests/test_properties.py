"""Property tests of the threat model's geometry and of the attacks built on it.

Over norms (l_inf, l_2, l_1), radii in [0, 1], bounds (none, a scalar pair, per-feature arrays
with low <= high, some features pinned) and sample shapes ((d,) rows and (c, h, w)
images): every adversarial point of PGD, FGSM, APGD (and Square for l_inf) lies in the
eps-ball intersected with the bounds; ``project`` is idempotent and lands there; so does
``uniform_start``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from sklearn_robust import ThreatModel
from sklearn_robust.attacks import APGD, FGSM, PGD, Square
from sklearn_robust.threat import ascend

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
N_CLASSES = 3


@st.composite
def problems(draw):
    """``(threat, x, seed)``: a threat model and a batch lying inside its bounds."""
    norm = draw(st.sampled_from(["linf", "l2", "l1"]))
    eps = draw(st.one_of(st.just(0.0), st.floats(0.0, 1.0, allow_nan=False, width=32)))
    n = draw(st.integers(1, 4))
    sample_shape = draw(st.sampled_from([(1,), (5,), (1, 3, 3), (2, 2, 3)]))
    kind = draw(st.sampled_from(["none", "scalar", "per-feature"]))
    seed = draw(st.integers(0, 2**16))
    gen = np.random.RandomState(seed)
    if kind == "none":
        bounds, low, high = None, -2.0, 2.0
    elif kind == "scalar":
        low = float(gen.uniform(-1.0, 0.5))
        high = low + float(draw(st.sampled_from([0.0, 0.05, 1.0])))
        bounds = (low, high)
    else:
        low = gen.uniform(-1.0, 0.5, size=sample_shape).astype(np.float32)
        width = gen.uniform(0.0, 1.0, size=sample_shape).astype(np.float32)
        width[gen.rand(*sample_shape) < 0.2] = 0.0  # some features pinned: low == high
        high = low + width
        bounds = (low, high)
    u = gen.rand(n, *sample_shape).astype(np.float32)
    x = torch.as_tensor(np.asarray(low, dtype=np.float32)
                        + u * (np.asarray(high, dtype=np.float32) - low))
    if bounds is not None:  # rounding must not put x outside the bounds
        x = torch.maximum(torch.minimum(x, torch.as_tensor(high)), torch.as_tensor(low))
    threat = ThreatModel(eps=eps, norm=norm, bounds=bounds)
    return threat, x, seed


def model_for(x, seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), 8), nn.Tanh(),
                         nn.Linear(8, N_CLASSES)).eval()


def labels(x, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, N_CLASSES, (x.shape[0],), generator=gen)


def assert_inside(threat, x_adv, x):
    assert x_adv.shape == x.shape
    assert torch.isfinite(x_adv).all()
    assert bool(threat.contains(x_adv, x).all()), (
        threat, (x_adv - x).flatten(1).abs().amax(1), threat.distance(x_adv, x))


ATTACKS = {
    "pgd": lambda threat: PGD(threat, steps=2, random_state=0),
    "pgd-no-start": lambda threat: PGD(threat, steps=2, random_start=False, random_state=0),
    "fgsm": lambda threat: FGSM(threat, random_state=0),
    "fgsm-rs": lambda threat: FGSM(threat, random_start=True, random_state=0),
    "apgd-ce": lambda threat: APGD(threat, steps=3, random_state=0),
    "apgd-dlr": lambda threat: APGD(threat, loss="dlr", steps=3, random_state=0),
    "square": lambda threat: Square(threat, n_queries=4, random_state=0),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
@SETTINGS
@given(problem=problems())
def test_adversarial_points_stay_in_ball_and_bounds(name, problem):
    threat, x, seed = problem
    model = model_for(x, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        x_adv = ATTACKS[name](threat)(model, x, labels(x, seed))
    assert_inside(threat, x_adv, x)
    if threat.eps == 0:
        assert torch.equal(x_adv, x)


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
    for kind in ("uniform", "gaussian", "none"):
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
