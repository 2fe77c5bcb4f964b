"""Runs side by side in one batch (APGD-T's and FAB-T's targets) give the runs' results."""

import pytest
import torch
from torch import nn

from sklearn_robust import ThreatModel
from sklearn_robust.attacks import APGD, APGDTargeted, FABTargeted, _parallel
from sklearn_robust.datasets import load_digits_images


@pytest.fixture(scope="module")
def digits_mlp():
    X_train, X_test, y_train, y_test = load_digits_images()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    X_train, y_train = torch.tensor(X_train), torch.tensor(y_train)
    for _ in range(150):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X_train), y_train).backward()
        optimizer.step()
    return model.eval(), torch.tensor(X_test[:120]), torch.tensor(y_test[:120])


@pytest.mark.parametrize("norm,eps", [("linf", 0.06), ("l2", 0.6)])
def test_fab_t_side_by_side_equals_one_target_at_a_time(digits_mlp, norm, eps, monkeypatch):
    """FAB-T is deterministic with one restart: batching its targets changes nothing.

    Side by side every target runs on every point (one at a time, a point broken by an
    earlier target is not attacked again), so the broken points are the same and the
    unbroken ones have the same closest point over all targets.
    """
    model, X, y = digits_mlp
    threat = ThreatModel(eps=eps, norm=norm, bounds=(0, 1))
    outputs = {}
    for elements in (1, 1 << 30):  # one run per batch, then all nine in one
        monkeypatch.setattr(_parallel, "_BATCH_ELEMENTS", elements)
        outputs[elements] = FABTargeted(threat, steps=20, random_state=0)(model, X, y)
    one, together = outputs[1], outputs[1 << 30]
    with torch.no_grad():
        broken_one = model(one).argmax(1) != y
        broken_together = model(together).argmax(1) != y
    assert torch.equal(broken_one, broken_together)
    assert 10 < int(broken_one.sum()) < len(y) - 10  # a test with something to decide
    torch.testing.assert_close(together[~broken_one], one[~broken_one], atol=1e-5, rtol=0)


def test_fab_t_targets_start_at_the_point_as_in_autoattack(digits_mlp):
    """With one restart no run starts at random (AutoAttack: only restarts after the first)."""
    model, X, y = digits_mlp
    threat = ThreatModel(eps=0.06, bounds=(0, 1))
    a = FABTargeted(threat, steps=10, n_target_classes=3, random_state=0)(model, X, y)
    b = FABTargeted(threat, steps=10, n_target_classes=3, random_state=1)(model, X, y)
    assert torch.equal(a, b)
    c = FABTargeted(threat, steps=10, n_target_classes=3, restarts=2,
                    random_state=1)(model, X, y)
    assert not torch.equal(a, c)  # the second restart of each target does start at random


def test_side_by_side_results_are_taken_in_run_order(monkeypatch):
    """A point keeps its first fooling run, else its run of highest loss."""
    attack = APGDTargeted(ThreatModel(eps=0.1), n_target_classes=3, steps=1)
    x = torch.zeros(2, 1)
    y = torch.zeros(2, dtype=torch.long)
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0], [4.0, 3.0, 2.0, 1.0]])
    # rows: run 0 (points 0, 1), run 1 (points 0, 1), run 2 (points 0, 1)
    hits = torch.tensor([False, False, True, False, True, True])
    losses = torch.tensor([0.5, 0.9, 0.1, 0.2, 0.7, 0.3])

    def fake_run(module, x_rows, y_rows, target, loss_fn, generator):
        assert x_rows.shape[0] == 6 and target.tolist() == [1, 1, 2, 2, 3, 3]
        return torch.arange(6.0)[:, None], hits, losses

    monkeypatch.setattr(attack, "_run", fake_run)
    out = attack.perturb(lambda x_rows: logits, x, y, None)
    # point 0: run 1 fools it first (row 2); point 1: run 2 fools it (row 5)
    assert out[:, 0].tolist() == [2.0, 5.0]


def test_apgd_restarts_side_by_side_match_one_at_a_time_in_strength(digits_mlp, monkeypatch):
    model, X, y = digits_mlp
    threat = ThreatModel(eps=0.05, bounds=(0, 1))
    broken = {}
    for elements in (1, 1 << 30):
        monkeypatch.setattr(_parallel, "_BATCH_ELEMENTS", elements)
        for attack in (APGD(threat, steps=30, restarts=3, random_state=0),
                       APGDTargeted(threat, steps=30, n_target_classes=4, random_state=0)):
            X_adv = attack(model, X, y)
            assert bool(threat.contains(X_adv, X, atol=1e-6).all())
            with torch.no_grad():
                broken[elements, attack.name] = int((model(X_adv).argmax(1) != y).sum())
    for name in ("apgd-ce", "apgd-t"):
        # random starts are drawn differently; the strength is the same within a few points
        assert abs(broken[1, name] - broken[1 << 30, name]) <= 3, broken
