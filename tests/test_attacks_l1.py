"""The l_1 threat: exact projection inside the box, uniform starts, sparse steps, the attacks.

Known answers: the projection against a bisection on its KKT threshold; FAB's minimum
l_1 distance on a linear model (``|margin| / ||w||_inf``); the radius law of uniform
points in the l_1 ball. On a natural digits model: l1-APGD at least as strong as l_1
PGD, and AutoAttack's l_1 cascade the worst case of its stages.
"""

import math
import warnings

import numpy as np
import pytest
import torch

from sklearn_robust import NaturalClassifier, ThreatModel
from sklearn_robust.attacks import APGD, PGD, AutoAttack, Square, make_attack
from sklearn_robust.attacks._apgd._steps import phases
from sklearn_robust.datasets import load_digits_images
from sklearn_robust.threat import project_l1_box, sparse_direction
from sklearn_robust.threat._l1 import uniform_l1


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
    # The threat model reads "stuck" off the iterate and the bounds.
    threat = ThreatModel(eps=1.0, norm="l1", bounds=(0, 1))
    x_adv = torch.tensor([[1.0, 0.5, 0.0, 0.5]])
    g = torch.tensor([[9.0, 1.0, -8.0, -2.0]])
    d = threat.direction(g, x_adv, threat.bounds_like(x_adv), fraction=0.25)
    assert torch.equal(d, torch.tensor([[0.0, 0.0, 0.0, -1.0]]))


def test_fab_finds_the_minimum_l1_distance_of_a_linear_model():
    torch.manual_seed(0)
    model = torch.nn.Linear(20, 2)
    x = torch.randn(50, 20)
    with torch.no_grad():
        y = model(x).argmax(dim=1)
        w = model.weight[1] - model.weight[0]
        exact = (x @ w + model.bias[1] - model.bias[0]).abs() / w.abs().max()
    threat = ThreatModel(eps=100.0, norm="l1")
    x_adv = make_attack("fab", threat, steps=20, random_state=0)(model, x, y)
    with torch.no_grad():
        assert bool((model(x_adv).argmax(dim=1) != y).all())
    ratio = threat.distance(x_adv, x) / exact
    # FAB overshoots the boundary by its factor 1.05; it never goes below the minimum.
    assert float(ratio.min()) >= 1.0 - 1e-4 and float(ratio.max()) <= 1.06


@pytest.fixture(scope="module")
def digits_model():
    X_train, X_test, y_train, y_test = load_digits_images()
    clf = NaturalClassifier(max_epochs=6, random_state=0).fit(X_train, y_train)
    module = clf.module_.eval()
    return module, torch.tensor(X_test[:100]), torch.tensor(y_test[:100])


def _robust(module, attack, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        X_adv = attack(module, X, y)
    assert bool(attack.threat.contains(X_adv, X, atol=1e-5).all())
    with torch.no_grad():
        return float((module(X_adv).argmax(dim=1) == y).float().mean())


def test_l1_attacks_on_a_natural_digits_model(digits_model):
    module, X, y = digits_model
    threat = ThreatModel(eps=2.0, norm="l1", bounds=(0, 1))
    with torch.no_grad():
        clean = float((module(X).argmax(dim=1) == y).float().mean())
    pgd = _robust(module, PGD(threat, steps=50, random_state=0), X, y)
    apgd = _robust(module, APGD(threat, steps=100, random_state=0), X, y)
    square = _robust(module, Square(threat, n_queries=300, random_state=0), X, y)
    assert clean > 0.8
    assert apgd <= pgd < clean  # l1-APGD is the stronger white-box search
    assert square < clean  # the black box breaks points too
    auto = AutoAttack(threat, version="fast", random_state=0)
    worst = _robust(module, auto, X, y)
    assert worst <= min(apgd, square) + 0.02
    assert auto.robust_ == round(worst * len(X))


def test_l1_standard_budgets_are_autoattacks():
    threat = ThreatModel(eps=10.0, norm="l1", bounds=(0, 1))
    stages = AutoAttack(threat).attacks
    assert list(stages) == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert stages["apgd-ce"].restarts == 5 and stages["apgd-ce"].shrinking_eps
    assert stages["apgd-t"].n_target_classes == 5 and stages["apgd-t"].shrinking_eps
    assert stages["fab-t"].n_target_classes == 9
    assert stages["square"].n_queries == 5000 and not stages["square"].rescale_schedule
    # an explicit number of targets sets both targeted stages
    stages = AutoAttack(threat, n_target_classes=3).attacks
    assert stages["apgd-t"].n_target_classes == stages["fab-t"].n_target_classes == 3
    # under l_inf nothing of this applies
    linf = AutoAttack(ThreatModel(eps=0.1, bounds=(0, 1))).attacks
    assert linf["apgd-ce"].restarts == 1 and not linf["apgd-ce"].shrinking_eps


def test_shrinking_eps_phases():
    assert phases(1.0, 100, shrinking=True) == [(3.0, 30), (2.0, 30), (1.0, 40)]
    assert sum(steps for _, steps in phases(0.5, 7, shrinking=True)) == 7
    assert math.isclose(phases(0.5, 7, shrinking=True)[-1][0], 0.5)


@pytest.mark.parametrize("make, message", [
    (lambda: PGD(ThreatModel(eps=0.1), l1_fraction=0.1), "l1_fraction is for norm='l1'"),
    (lambda: PGD(ThreatModel(eps=1.0, norm="l1"), l1_fraction=1.5), "l1_fraction"),
    (lambda: APGD(ThreatModel(eps=0.1, norm="l2"), shrinking_eps=True), "shrinking_eps"),
    (lambda: APGD(ThreatModel(eps=1.0, norm="l1"), steps=1, shrinking_eps=True),
     "steps >= 2"),
    (lambda: ThreatModel(eps=1.0, norm="l3"), "norm"),
])
def test_l1_options_are_refused_where_they_do_not_apply(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_l1_training_is_more_robust_than_natural(digits_model):
    from sklearn_robust import TRADESClassifier
    from sklearn_robust.metrics import robust_accuracy_score

    module, X, y = digits_model
    X_train, _, y_train, _ = load_digits_images()
    clf = TRADESClassifier(norm="l1", eps=2.0, max_epochs=3, attack_steps=5,
                           random_state=0).fit(X_train, y_train)
    assert clf.threat_model_.norm == "l1"
    robust = robust_accuracy_score(clf, X.numpy(), y.numpy(), eps=2.0, norm="l1",
                                   attack="pgd", random_state=0)
    natural = _robust(module, PGD(ThreatModel(eps=2.0, norm="l1", bounds=(0, 1)),
                                  random_state=0), X, y)
    assert robust > natural + 0.1
