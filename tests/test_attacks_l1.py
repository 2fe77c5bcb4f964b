"""The attacks under the l_1 threat (its geometry is tested in test_threat.py).

Known answer: FAB's minimum l_1 distance on a linear model (``|margin| / ||w||_inf``).
On a natural digits model: l1-APGD at least as strong as l_1 PGD, and AutoAttack's l_1
cascade the worst case of its stages.
"""

import math
import warnings

import pytest
import torch

from sklearn_robust import NaturalClassifier, ThreatModel
from sklearn_robust.attacks import APGD, PGD, AutoAttack, Square, make_attack
from sklearn_robust.attacks._apgd._steps import phases
from sklearn_robust.datasets import load_digits_images


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
