"""Tests of AutoAttack's parts added for parity: FAB / FAB-T, Square l_2, the checks, 'rand'.

The generic grid of ``test_attacks.py`` (ball and bounds for every norm and bounds,
seeding, the model left alone under l_inf) covers 'fab', 'fab-t' and Square l_2 by name;
here: the exact boundary projection, strength on a natural digits model, the model left
alone under l_2, the l_2 black-box stage of 'auto', and each check's warning.
"""

import warnings

import numpy as np
import pytest
import torch
from scipy import optimize
from test_attacks import small_mlp, toy_data
from torch import nn

from sklearn_robust import ThreatModel
from sklearn_robust.attacks import (
    APGD,
    FAB,
    PGD,
    AutoAttack,
    FABTargeted,
    Square,
)
from sklearn_robust.attacks._fab._projections import boundary_step
from sklearn_robust.attacks._square._patterns import pattern
from sklearn_robust.datasets import load_digits_images


def n_broken(model, X_adv, y):
    with torch.no_grad():
        return int((model(X_adv).argmax(dim=1) != y).sum())


def messages(record):
    return [str(w.message) for w in record]


# ---------------------------------------------------------------------------- projection
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_boundary_step_is_the_least_norm_point_on_the_plane_in_the_box(norm):
    gen = torch.Generator().manual_seed(0)
    d = 5
    for _ in range(40):
        x = torch.rand(1, d, generator=gen, dtype=torch.float64)
        w = torch.randn(1, d, generator=gen, dtype=torch.float64)
        b = torch.randn(1, generator=gen, dtype=torch.float64)
        delta = boundary_step(x, w, b, torch.zeros(1, d, dtype=torch.float64),
                              torch.ones(1, d, dtype=torch.float64), norm)
        box = [(-float(x[0, j]), 1 - float(x[0, j])) for j in range(d)]
        # The same problem as a linear (l_inf) or quadratic (l_2) program.
        if norm == "linf":
            a_ub = np.block([[np.eye(d), -np.ones((d, 1))], [-np.eye(d), -np.ones((d, 1))]])
            res = optimize.linprog(np.r_[np.zeros(d), 1], A_ub=a_ub, b_ub=np.zeros(2 * d),
                                   A_eq=np.r_[w[0].numpy(), 0][None], b_eq=[-float(b)],
                                   bounds=box + [(0, None)])
            feasible, best, got = res.status == 0, res.fun, float(delta.abs().max())
        else:
            plane = (float(b), w[0].numpy())
            res = optimize.minimize(
                lambda z: (z ** 2).sum(), np.zeros(d), method="SLSQP", bounds=box,
                constraints=[{"type": "eq", "fun": lambda z, p=plane: p[0] + p[1] @ z}])
            feasible, best, got = res.success, np.sqrt(res.fun), float(delta.norm())
        inside = bool(((x + delta >= -1e-9) & (x + delta <= 1 + 1e-9)).all())
        assert inside
        if feasible:
            assert abs(float(b + (w * delta).sum())) < 1e-6  # on the plane
            assert got == pytest.approx(best, abs=1e-4)


def _level_cases():
    """Rows of (c, beta, r) for the level equation, with the awkward ones in."""
    gen = torch.Generator().manual_seed(1)
    n, d = 64, 50
    c = torch.rand(n, d, generator=gen, dtype=torch.float64)
    c[c < 0.2] = 0  # coordinates that buy nothing
    beta = torch.rand(n, d, generator=gen, dtype=torch.float64)
    beta[beta < 0.3] = 0  # no room at all (a pixel on its bound)
    reach = (c * beta).sum(dim=1)
    r = reach * torch.rand(n, generator=gen, dtype=torch.float64)
    r[:4] = reach[:4] * 1.5  # out of reach: inf
    r[4:6] = 0  # on the plane already
    r[6] = reach[6]  # exactly the largest reachable value
    c[7], r[7] = 0, 1.0  # a zero normal: nothing reaches r
    beta[8], r[8] = 7.0, 3.0  # one breakpoint shared by every coordinate
    return c, beta, r


def test_level_by_pivoting_equals_level_by_sorting(monkeypatch):
    from sklearn_robust.attacks._fab import _projections as _boundary

    c, beta, r = _level_cases()
    by_sort = _boundary._solve_level_by_sort(c, beta, r)
    by_pivot = _boundary._solve_level(c, beta, r)
    assert torch.isinf(by_pivot[:4]).all() and torch.isinf(by_pivot[7])
    # r equal to the largest reachable value: the last breakpoint that buys something
    # (the sort's cumulative sums round below r there and call it out of reach).
    assert float(by_pivot[6]) == pytest.approx(float(beta[6][c[6] > 0].max()), rel=1e-12)
    by_sort[6] = by_pivot[6]
    finite = torch.isfinite(by_sort)
    assert torch.equal(finite, torch.isfinite(by_pivot))
    assert torch.allclose(by_pivot[finite], by_sort[finite], rtol=1e-12, atol=1e-12)
    # The solution is the least tau with g(tau) >= r: g reaches r there, not before.
    g = (c[finite] * torch.minimum(by_pivot[finite, None], beta[finite])).sum(dim=1)
    assert torch.allclose(g, r[finite], rtol=1e-12, atol=1e-12)
    # Rows still moving when the passes run out are solved by the sort, to the same tau.
    monkeypatch.setattr(_boundary, "_PIVOT_PASSES", 1)
    rows = torch.arange(len(r)) != 6
    fallback = _boundary._solve_level(c, beta, r)[rows]
    assert torch.equal(torch.isfinite(fallback), finite[rows])
    assert torch.allclose(fallback[finite[rows]], by_sort[rows][finite[rows]],
                          rtol=1e-12, atol=1e-12)


def test_boundary_step_without_bounds_and_out_of_reach():
    x, w, b = torch.zeros(1, 3), torch.tensor([[1.0, -2.0, 0.0]]), torch.tensor([3.0])
    # No box: l_inf steps are +-|b| / ||w||_1, l_2 steps are -b w / ||w||^2.
    assert torch.allclose(boundary_step(x, w, b, None, None, "linf"),
                          torch.tensor([[-1.0, 1.0, 0.0]]))
    assert torch.allclose(boundary_step(x, w, b, None, None, "l2"),
                          torch.tensor([[-0.6, 1.2, 0.0]]))
    # A plane the box cannot reach: the corner of the box towards it.
    far = boundary_step(x, w, torch.tensor([30.0]), torch.tensor(-1.0), torch.tensor(1.0),
                        "linf")
    assert torch.equal(far, torch.tensor([[-1.0, 1.0, 0.0]]))


# ---------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("make", [
    lambda t: FAB(t, steps=5, restarts=2, random_state=0),
    lambda t: FABTargeted(t, steps=5, n_target_classes=2, random_state=0),
    lambda t: Square(t, n_queries=30, random_state=0),
    lambda t: AutoAttack(t, version="fast", steps=3, n_queries=20, random_state=0),
    lambda t: AutoAttack(t, version="rand", steps=3, random_state=0),
], ids=["fab", "fab-t", "square", "auto-fast", "auto-rand"])
@pytest.mark.parametrize("train_mode", [True, False])
def test_l2_attacks_stay_inside_and_leave_the_model_alone(make, train_mode):
    X, y = toy_data(n=24, shape=(1, 2, 3))
    model = small_mlp().train(train_mode)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    modes = [m.training for m in model.modules()]
    rng = torch.get_rng_state()
    threat = ThreatModel(eps=0.8, norm="l2", bounds=(0, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        X_adv = make(threat)(model, X, y)
    assert bool(threat.contains(X_adv, X).all())
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters(), strict=True))
    assert [m.training for m in model.modules()] == modes


def test_square_l2_proposals_have_norm_eps():
    X, y = toy_data(n=16, shape=(1, 6, 6))
    model = small_mlp(n_in=36).eval()
    threat = ThreatModel(eps=0.5, norm="l2")  # no bounds: nothing clips the sphere
    X_adv = Square(threat, n_queries=20, random_state=0)(model, X, y)
    attacked = (model(X).argmax(dim=1) == y)
    dist = threat.distance(X_adv, X)[attacked]
    assert torch.allclose(dist, torch.full_like(dist, 0.5), atol=1e-5)
    p = pattern(5, 5)
    assert float(p.norm()) == pytest.approx(1.0) and float(p[:2].min()) > 0 > float(p[2:].max())


# ---------------------------------------------------------------------------- strength
@pytest.fixture(scope="module")
def digits_model():
    """A naturally trained MLP on the digits images and 200 held-out points."""
    X_train, X_test, y_train, y_test = load_digits_images()
    X_train, y_train = torch.tensor(X_train), torch.tensor(y_train)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X_train), y_train).backward()
        optimizer.step()
    model.eval()
    X, y = torch.tensor(X_test[:200]), torch.tensor(y_test[:200])
    assert n_broken(model, X, y) < 20
    return model, X, y


@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("l2", 0.5)])
def test_fab_t_at_least_as_strong_as_pgd_20(digits_model, norm, eps):
    model, X, y = digits_model
    threat = ThreatModel(eps=eps, norm=norm, bounds=(0, 1))
    pgd = n_broken(model, PGD(threat, steps=20, random_state=0)(model, X, y), y)
    fab_t = n_broken(model, FABTargeted(threat, steps=30, n_target_classes=3,
                                        random_state=0)(model, X, y), y)
    fab = n_broken(model, FAB(threat, steps=30, random_state=0)(model, X, y), y)
    print(f"\n{norm} eps {eps}: pgd-20 {pgd}, fab-t {fab_t}, fab {fab} of {len(y)}")
    assert fab_t >= pgd > n_broken(model, X, y) + 20
    assert fab >= pgd - 2


def test_l2_auto_runs_its_black_box_stage(digits_model):
    model, X, y = digits_model
    X, y = X[:60], y[:60]
    auto = AutoAttack(ThreatModel(eps=0.5, norm="l2", bounds=(0, 1)), version="fast",
                      random_state=0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        X_adv = auto(model, X, y)
    assert not any("Square" in m and "skipped" in m for m in messages(record))
    assert list(auto.stage_counts_) == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert auto.robust_ == len(y) - n_broken(model, X_adv, y)


# ---------------------------------------------------------------------------- the checks
class Detached(nn.Module):
    """The model's output cut from autograd: no input gradient at all."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x).detach()


class Noisy(nn.Module):
    """A randomised defence: Gaussian noise on the input at every forward pass."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x + 0.05 * torch.randn_like(x))


@pytest.mark.parametrize("make", [
    lambda t: APGD(t, steps=5),
    lambda t: APGD(t, loss="dlr", steps=5),
    lambda t: FAB(t, steps=3),
    lambda t: AutoAttack(t, version="fast", steps=3, n_queries=5),
], ids=["apgd-ce", "apgd-dlr", "fab", "auto"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_detached_output_warns_instead_of_zero_gradients(make, norm):
    X, y = toy_data()
    model = Detached(small_mlp().eval())
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        X_adv = make(ThreatModel(eps=0.3, norm=norm, bounds=(0, 1)))(model, X, y)
    texts = messages(record)
    assert sum("with respect to its input" in m for m in texts) == 1  # once
    # a cascade's black-box stage may then break what the gradient stages could not,
    # which is the masking warning's case; nothing else is reported
    assert all("with respect to its input" in m or "gradient masking" in m for m in texts), texts
    assert X_adv.shape == X.shape


def test_zero_and_nan_gradients_warn():
    X, y = toy_data()
    inner = small_mlp().eval()
    threat = ThreatModel(eps=0.3, bounds=(0, 1))
    with pytest.warns(UserWarning, match="exactly zero for some points"):
        APGD(threat, steps=3)(lambda x: inner(x.round()), X, y)  # round: zero gradient

    def nan_grad(x):
        return inner(x) + 0.0 * torch.sqrt(x - x).sum(dim=1, keepdim=True)  # 0 * inf: NaN

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        X_adv = APGD(threat, steps=3)(nan_grad, X, y)
    texts = messages(record)
    assert any("gradient is NaN" in m for m in texts)
    # the NaN rows are zeroed, but they are not reported as a zero gradient as well
    assert not any("exactly zero" in m for m in texts), texts
    assert bool(threat.contains(X_adv, X).all())  # NaNs never reach the points


def test_randomised_outputs_warn_and_rand_version_does_not():
    X, y = toy_data()
    model = Noisy(small_mlp().eval())
    threat = ThreatModel(eps=0.1, bounds=(0, 1))
    with pytest.warns(UserWarning, match="looks randomised.*version='rand'"):
        PGD(threat, steps=2)(model, X, y)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        auto = AutoAttack(threat, version="rand", steps=2, random_state=0)
        auto(model, X, y)
    assert not any("randomised" in m for m in messages(record))
    assert list(auto.stage_counts_) == ["apgd-ce", "apgd-dlr"]


def test_eot_averages_the_gradient_of_a_randomised_model():
    X, y = toy_data(n=8)
    model = Noisy(small_mlp().eval())
    calls = []
    model.register_forward_hook(lambda *args: calls.append(1))
    APGD(ThreatModel(eps=0.1), steps=2, eot_iter=4)(model, X, y)
    # 2 check passes, 1 clean pass, 4 samples at the start and at each of the 2 steps.
    assert len(calls) == 2 + 1 + 4 * 3


def test_probability_outputs_warn_gradient_attacks_only():
    X, y = toy_data()
    inner = small_mlp().eval()

    def probabilities(x):
        return inner(x).softmax(dim=1)

    threat = ThreatModel(eps=0.1, bounds=(0, 1))
    with pytest.warns(UserWarning, match="look like probabilities.*logits"):
        APGD(threat, steps=2)(probabilities, X, y)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        Square(threat, n_queries=5)(probabilities, X, y)  # scores are all Square needs
        APGD(threat, steps=2)(inner, X, y)  # logits
    assert not any("probabilities" in m for m in messages(record))
