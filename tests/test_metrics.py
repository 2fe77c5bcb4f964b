"""Robust accuracy, local Lipschitz constant and their scorers (the bridge: test_bridge.py)."""

import itertools
import math

import _nets
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, check_scoring
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from sklearn_robust import (
    NaturalClassifier,
    SCOREClassifier,
    ThreatModel,
    TRADESClassifier,
)
from sklearn_robust.attacks import APGD, PGD, Square
from sklearn_robust.metrics import (
    RobustAccuracyReport,
    as_torch_classifier,
    local_lipschitz_score,
    make_lipschitz_scorer,
    make_robust_scorer,
    robust_accuracy_score,
)
from sklearn_robust.metrics._lipschitz import _ratios


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def cancer_pipe(cancer_raw):
    X, y, _, _ = cancer_raw
    return make_pipeline(StandardScaler(), NaturalClassifier(max_epochs=5, random_state=0)).fit(
        X, y
    )


@pytest.fixture(scope="module")
def digits_small(digits_flat):
    X_train, X_test, y_train, y_test = digits_flat
    return X_train[:800], y_train[:800], X_test[:300], y_test[:300]


@pytest.fixture(scope="module")
def digits_models(digits_small):
    X, y, _, _ = digits_small
    return {
        "untrained": NaturalClassifier(max_epochs=1, lr=1e-10, random_state=0).fit(X, y),
        "natural": NaturalClassifier(max_epochs=5, random_state=0).fit(X, y),
        "trades": TRADESClassifier(
            eps=0.1, beta=6.0, attack_steps=3, max_epochs=5, random_state=0
        ).fit(X, y),
    }


def BNDropoutNet(n_features=64, n_classes=10):
    return _nets.BNDropoutNet(n_features, n_classes, hidden=32, dropout=0.3)


@pytest.fixture(scope="module")
def bn_model(digits_small):
    X, y, X_test, y_test = digits_small
    clf = NaturalClassifier(module=BNDropoutNet, max_epochs=3, random_state=0).fit(X, y)
    return clf, X_test[:120], y_test[:120]


# ---------------------------------------------------------------------------- robust accuracy
@pytest.mark.parametrize("which", ["cancer", "digits_mlp", "digits_cnn"])
def test_robust_at_most_clean_and_eps0_is_clean(which, request):
    if which == "cancer":
        est = request.getfixturevalue("cancer_pipe")
        _, _, X, y = request.getfixturevalue("cancer_raw")
        # Raw units: the smallest feature standard deviation is about 0.0025.
        eps_small, eps_large = 0.005, 0.05
    elif which == "digits_mlp":
        est = request.getfixturevalue("digits_models")["natural"]
        _, _, X, y = request.getfixturevalue("digits_small")
        eps_small, eps_large = 0.05, 0.5
    else:
        est, X, y = request.getfixturevalue("natural_digits_cnn")
        eps_small, eps_large = 0.05, 0.5
    clean = est.score(X, y)
    assert robust_accuracy_score(est, X, y, eps=0.0) == clean
    small = robust_accuracy_score(est, X, y, eps=eps_small, random_state=0)
    large = robust_accuracy_score(est, X, y, eps=eps_large, random_state=0)
    assert 0.0 <= large <= small <= clean
    assert large < clean  # the attack does break points


def test_denominator_is_all_points(digits_models, digits_small):
    est = digits_models["natural"]
    _, _, X, y = digits_small
    score, X_adv = robust_accuracy_score(
        est, X, y, eps=0.1, random_state=0, return_adversarial=True
    )
    assert X_adv.shape == X.shape and X_adv.dtype == np.float32
    assert np.abs(X_adv - X).max() <= 0.1 + 1e-6
    clean_ok = est.predict(X) == y
    adv_ok = est.predict(X_adv) == y
    assert score == pytest.approx(np.mean(clean_ok & adv_ok))
    # Clean-misclassified points are not attacked: returned unchanged.
    np.testing.assert_array_equal(X_adv[~clean_ok], X[~clean_ok])
    # ART's ratio (over the initially correct points only) is larger: not what we return.
    assert score < np.mean(adv_ok[clean_ok])


def test_unseen_labels_count_as_clean_incorrect(digits_models, digits_small):
    est = digits_models["natural"]
    _, _, X, y = digits_small
    y_bad = y.copy()
    y_bad[:20] = 99  # never seen in fit
    expected = accuracy_score(y_bad, est.predict(X))
    assert robust_accuracy_score(est, X, y_bad, eps=0.0) == pytest.approx(expected)
    robust, X_adv = robust_accuracy_score(
        est, X, y_bad, eps=0.1, random_state=0, return_adversarial=True
    )
    np.testing.assert_array_equal(X_adv[:20], X[:20])  # never attacked: already wrong
    both = (est.predict(X) == y_bad) & (est.predict(X_adv) == y_bad)
    assert not both[:20].any()
    assert robust == pytest.approx(both.mean())
    assert robust <= expected
    # Labels of another type than classes_ would never match: refused, as accuracy_score does.
    with pytest.raises(ValueError, match="dtype"):
        robust_accuracy_score(est, X, y.astype(str), eps=0.1)


def test_attack_as_name_class_and_instance(digits_models, digits_small):
    est = digits_models["natural"]
    _, _, X, y = digits_small
    # an instance carries its own (here unbounded) threat model: compare without bounds
    by_name = robust_accuracy_score(est, X, y, eps=0.1, steps=5, bounds=None, random_state=0)
    by_class = robust_accuracy_score(est, X, y, eps=0.1, attack=PGD, steps=5, bounds=None,
                                     random_state=0)
    instance = PGD(ThreatModel(eps=0.1), steps=5, random_state=0)
    by_instance = robust_accuracy_score(est, X, y, eps=0.1, attack=instance)
    assert by_name == by_class == by_instance
    with pytest.raises(ValueError, match="does not match"):
        robust_accuracy_score(est, X, y, eps=0.2, attack=instance)
    with pytest.raises(ValueError, match="steps"):
        robust_accuracy_score(est, X, y, eps=0.1, attack=instance, steps=3)
    # More restarts and more steps never make the attack weaker here.
    strong = robust_accuracy_score(est, X, y, eps=0.1, steps=20, restarts=2, bounds=None,
                                   random_state=0)
    assert strong <= by_name


def test_list_attack_is_the_worst_case_per_point(digits_models, digits_small):
    est = digits_models["natural"]
    _, _, X, y = digits_small
    # Weak attacks, so that each breaks points the other misses.
    kwargs = {"eps": 0.05, "random_state": 0}
    singles = {name: robust_accuracy_score(est, X, y, attack=name, **kwargs)
               for name in ("fgsm", "pgd")}
    score, X_adv, report = robust_accuracy_score(
        est, X, y, attack=["fgsm", "pgd"], return_adversarial=True, return_details=True,
        **kwargs)
    assert score <= min(singles.values())
    assert isinstance(report, RobustAccuracyReport)
    assert list(report.broken_by) == ["fgsm", "pgd"]  # in the order they ran
    assert report.n_points == len(y) and report.score == score
    assert report.clean_correct == int((est.predict(X) == y).sum())
    assert report.robust == round(score * len(y))
    assert report.clean_correct - sum(report.broken_by.values()) == report.robust
    # FGSM alone breaks exactly what the first stage broke (same points, same attack).
    assert report.broken_by["fgsm"] == round((est.score(X, y) - singles["fgsm"]) * len(y))
    assert np.abs(X_adv - X).max() <= 0.05 + 1e-6
    assert "broken by 'pgd'" in str(report)
    # Names, classes and instances mix; the same attack twice gets a numbered name.
    instance = APGD(ThreatModel(eps=0.05), steps=5)
    _, mixed = robust_accuracy_score(est, X, y, attack=["pgd", PGD, instance],
                                     return_details=True, steps=3, **kwargs)
    assert list(mixed.broken_by) == ["pgd", "pgd-2", "apgd-ce"]
    # A single attack reports itself; eps=0 runs none.
    _, single = robust_accuracy_score(est, X, y, return_details=True, **kwargs)
    assert single.broken_by == {"pgd": single.clean_correct - single.robust}
    _, none = robust_accuracy_score(est, X, y, eps=0.0, return_details=True)
    assert none.broken_by == {} and none.robust == none.clean_correct
    with pytest.raises(ValueError, match="at least one attack"):
        robust_accuracy_score(est, X, y, eps=0.1, attack=[])


def test_schedule_settings_refused_by_attacks_that_lack_them(cancer_pipe, cancer_raw):
    _, _, X, y = cancer_raw
    for attack, key in (("square", "steps"), (Square, "steps"), ("fgsm", "steps"),
                        ("square", "restarts"), ("apgd-ce", "step_size")):
        label = repr(attack) if isinstance(attack, str) else attack.__name__
        with pytest.raises(ValueError, match=rf"attack {label} takes no '{key}'"):
            robust_accuracy_score(cancer_pipe, X, y, eps=0.1, attack=attack, **{key: 2})
        with pytest.raises(ValueError, match=rf"attack {label} takes no '{key}'"):
            make_robust_scorer(eps=0.1, attack=attack, **{key: 2})
    # In a list, every stage built by name must take the setting.
    with pytest.raises(ValueError, match="attack 'square' takes no 'steps'"):
        robust_accuracy_score(cancer_pipe, X, y, eps=0.1, attack=["pgd", "square"], steps=5)
    # None (the default) keeps each attack's own schedule: PGD's 20 steps.
    assert robust_accuracy_score(cancer_pipe, X, y, eps=0.5, random_state=0) == (
        robust_accuracy_score(cancer_pipe, X, y, eps=0.5, steps=20, random_state=0))


def test_l2_and_fgsm(digits_models, digits_small):
    est = digits_models["natural"]
    _, _, X, y = digits_small
    score, X_adv = robust_accuracy_score(
        est, X, y, eps=1.0, norm="l2", random_state=0, return_adversarial=True
    )
    assert np.linalg.norm((X_adv - X).reshape(len(X), -1), axis=1).max() <= 1.0 + 1e-5
    assert score < est.score(X, y)
    assert robust_accuracy_score(est, X, y, eps=0.1, attack="fgsm") <= est.score(X, y)


def test_determinism(digits_models, digits_small):
    est = digits_models["natural"]
    _, _, X, y = digits_small
    a = robust_accuracy_score(est, X, y, eps=0.1, steps=5, random_state=3)
    b = robust_accuracy_score(est, X, y, eps=0.1, steps=5, random_state=3)
    assert a == b
    la = local_lipschitz_score(est, X[:50], eps=0.1, random_state=3)
    lb = local_lipschitz_score(est, X[:50], eps=0.1, random_state=3)
    assert la == lb


# ---------------------------------------------------------------------------- Lipschitz
def _linear_classifier(W):
    n_classes, d = W.shape
    rng = np.random.RandomState(0)
    X = rng.rand(40, d).astype(np.float32)
    y = np.arange(40) % n_classes
    clf = NaturalClassifier(module=nn.Linear(d, n_classes), max_epochs=1, random_state=0)
    clf.fit(X, y)
    with torch.no_grad():
        clf.module_.weight.copy_(torch.as_tensor(W))
    return clf, X


def _linf_to_l1_norm(W):
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=W.shape[1])))
    return np.abs(signs @ W.astype(np.float64).T).sum(axis=1).max()


def test_lipschitz_of_linear_map_approaches_operator_norm():
    rng = np.random.RandomState(1)
    d, c = 8, 3
    # A rank-one-dominated map: sign ascent finds the maximising sign vector.
    W = (np.outer(rng.randn(c), rng.randn(d)) + 0.1 * rng.randn(c, d)).astype(np.float32)
    clf, X = _linear_classifier(W)
    exact = _linf_to_l1_norm(W)
    estimate = local_lipschitz_score(clf, X, eps=0.1, random_state=0, bounds=None)
    assert estimate <= exact + 1e-4
    assert estimate >= 0.9 * exact
    # The ratio does not depend on eps for a linear map.
    assert local_lipschitz_score(
        clf, X, eps=0.01, random_state=0, bounds=None
    ) == pytest.approx(estimate, rel=0.05)


def test_lipschitz_of_generic_linear_map_is_a_lower_bound():
    # Sign ascent is a local method: on a generic map it can stop at a local maximum of
    # ||W s||_1, but it never exceeds the operator norm, per sample.
    rng = np.random.RandomState(2)
    W = rng.randn(3, 6).astype(np.float32)
    clf, X = _linear_classifier(W)
    exact = _linf_to_l1_norm(W)
    model = as_torch_classifier(clf)
    threat = ThreatModel(eps=0.1)
    generator = torch.Generator().manual_seed(0)
    ratios = _ratios(model, model.to_tensor(X), threat, generator, steps=10)
    assert float(ratios.max()) <= exact * (1 + 1e-5)
    assert float(ratios.max()) >= 0.95 * exact  # some start finds the best sign vector
    estimate = local_lipschitz_score(clf, X, eps=0.1, random_state=0, bounds=None)
    assert 0.7 * exact <= estimate <= exact + 1e-4
    # l2 denominator: the l2 -> l1 operator norm bounds it from above.
    l2_bound = sum(np.linalg.norm(W, axis=1))  # sum_i ||w_i||_2 >= ||W d||_1 / ||d||_2
    estimate_l2 = local_lipschitz_score(clf, X, eps=0.1, norm="l2", random_state=0, bounds=None)
    assert 0 < estimate_l2 <= l2_bound + 1e-4


def test_lipschitz_training_methods(digits_models, digits_small):
    _, _, X, _ = digits_small
    values = {
        name: local_lipschitz_score(est, X, eps=0.1, random_state=0)
        for name, est in digits_models.items()
    }
    assert all(math.isfinite(v) and v > 0 for v in values.values()), values
    # Yang et al. 2020: TRADES is much smoother than natural training.
    assert values["trades"] < values["natural"] / 2, values


# ---------------------------------------------------------------------------- scorers
def test_scorer_reprs_and_check_scoring(cancer_pipe, cancer_raw):
    robust = make_robust_scorer(eps=0.1)
    assert repr(robust) == "make_scorer(robust_accuracy_score, eps=0.1, norm='linf', attack='pgd')"
    lip = make_lipschitz_scorer(eps=0.1, steps=5)
    assert repr(lip) == (
        "make_scorer(local_lipschitz_score, greater_is_better=False, eps=0.1, norm='linf', "
        "steps=5)"
    )
    assert lip.name == "neg_local_lipschitz"
    assert check_scoring(cancer_pipe, scoring=robust) is robust
    _, _, X, y = cancer_raw
    assert robust(cancer_pipe, X, y) == pytest.approx(
        robust_accuracy_score(cancer_pipe, X, y, eps=0.1)
    , abs=0.05)
    seeded = make_robust_scorer(eps=1.0, random_state=0)
    assert seeded(cancer_pipe, X, y) == robust_accuracy_score(
        cancer_pipe, X, y, eps=1.0, random_state=0
    )
    seeded_lip = make_lipschitz_scorer(eps=0.1, random_state=0)
    assert seeded_lip(cancer_pipe, X, y) == -local_lipschitz_score(
        cancer_pipe, X, eps=0.1, random_state=0
    )
    with pytest.raises(TypeError, match="return_adversarial"):
        make_robust_scorer(eps=0.1, return_adversarial=True)
    with pytest.raises(TypeError, match="attack"):
        make_lipschitz_scorer(eps=0.1, attack="pgd")


def test_grid_search_with_robust_scorer(digits_small):
    X, y, _, _ = digits_small
    search = GridSearchCV(
        SCOREClassifier(max_epochs=1, attack_steps=2, random_state=0),
        {"beta": [3, 6]},
        scoring=make_robust_scorer(eps=0.1, steps=5, random_state=0),
        cv=2,
        error_score="raise",
    ).fit(X[:400], y[:400])
    scores = search.cv_results_["mean_test_score"]
    assert scores.shape == (2,)
    assert np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()


def test_cross_validate_with_all_scorers(cancer_raw):
    X, y, _, _ = cancer_raw
    pipe = make_pipeline(StandardScaler(), NaturalClassifier(max_epochs=2, random_state=0))
    cv = cross_validate(
        pipe, X, y, cv=2, error_score="raise",
        scoring={
            "acc": "accuracy",
            "robust": make_robust_scorer(eps=2.0, random_state=0),
            "lip": make_lipschitz_scorer(eps=0.5, random_state=0),
        },
    )
    assert (cv["test_robust"] <= cv["test_acc"]).all()
    assert (cv["test_lip"] < 0).all() and np.isfinite(cv["test_lip"]).all()


# ---------------------------------------------------------------------------- black box
def test_black_box_square_on_sklearn_models(cancer_raw):
    X, y, X_test, y_test = cancer_raw
    logreg = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    clean = logreg.score(X_test, y_test)
    robust, X_adv = robust_accuracy_score(
        logreg, X_test, y_test, eps=20.0, attack="square", attack_params={"n_queries": 100},
        random_state=0, return_adversarial=True,
    )
    assert robust < clean
    float32_slack = 2.5e-7 * (np.abs(X_test) + np.abs(X_adv))
    assert (np.abs(X_adv - X_test) <= 20.0 + float32_slack).all()
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    robust_forest = robust_accuracy_score(
        forest, X_test, y_test, eps=50.0, attack="square", attack_params={"n_queries": 50},
        random_state=0,
    )
    assert robust_forest <= forest.score(X_test, y_test)
    # Our own network behind a non-differentiable step: black box works too.
    pca_pipe = make_pipeline(PCA(5), NaturalClassifier(max_epochs=1, random_state=0)).fit(X, y)
    assert robust_accuracy_score(
        pca_pipe, X_test, y_test, eps=10.0, attack="square", attack_params={"n_queries": 20},
        random_state=0,
    ) <= pca_pipe.score(X_test, y_test)


def test_gradient_attack_on_sklearn_model_is_refused(cancer_raw):
    X, y, X_test, y_test = cancer_raw
    scale = X.max(axis=0)
    logreg = LogisticRegression().fit(X / scale, y)
    with pytest.raises(ValueError, match="LogisticRegression"):
        robust_accuracy_score(logreg, X_test / scale, y_test, eps=0.1)
    with pytest.raises(ValueError, match="LogisticRegression"):
        local_lipschitz_score(logreg, X_test / scale, eps=0.1)


# ---------------------------------------------------------------------------- model untouched
def _snapshot(clf):
    module = clf.module_
    return {
        "state": {k: v.detach().clone() for k, v in module.state_dict().items()},
        "grads": [None if p.grad is None else p.grad.clone() for p in module.parameters()],
        "requires_grad": [p.requires_grad for p in module.parameters()],
        "modes": [m.training for m in module.modules()],
        "rng": torch.get_rng_state(),
    }


def _assert_same(before, after):
    assert before["state"].keys() == after["state"].keys()
    for key, value in before["state"].items():
        assert torch.equal(value, after["state"][key]), key
    for g0, g1 in zip(before["grads"], after["grads"], strict=True):
        assert (g0 is None) == (g1 is None)
        if g0 is not None:
            assert torch.equal(g0, g1)
    assert before["requires_grad"] == after["requires_grad"]
    assert before["modes"] == after["modes"]
    assert torch.equal(before["rng"], after["rng"])


def test_scorers_leave_model_unchanged(bn_model):
    clf, X, y = bn_model
    clean = clf.score(X, y)  # skorch's predict leaves the module in eval mode: call it first
    module = clf.module_
    module.train()
    module.body[3].eval()  # mixed modes: each submodule's flag must come back
    assert any(p.grad is not None for p in module.parameters())  # fit left gradients
    torch.manual_seed(123)
    before = _snapshot(clf)
    results = {}
    for context in ("plain", "no_grad"):
        ctx = torch.no_grad() if context == "no_grad" else torch.enable_grad()
        with ctx:  # skorch runs scoring callbacks under no_grad
            results[context] = (
                robust_accuracy_score(clf, X, y, eps=0.1, steps=5, random_state=0),
                make_robust_scorer(eps=0.1, steps=5, random_state=0)(clf, X, y),
                local_lipschitz_score(clf, X, eps=0.1, random_state=0),
                make_lipschitz_scorer(eps=0.1, random_state=0)(clf, X, y),
            )
        _assert_same(before, _snapshot(clf))
    robust_accuracy_score(
        clf, X, y, eps=0.1, attack="square", attack_params={"n_queries": 20}, random_state=0
    )
    _assert_same(before, _snapshot(clf))
    assert results["plain"] == results["no_grad"]
    robust, scored, lip, neg_lip = results["plain"]
    assert robust == scored and lip == -neg_lip
    assert 0 <= robust <= clean
    assert module.training and not module.body[3].training


# ---------------------------------------------------------------------------- bad input
def test_bad_input(cancer_pipe, cancer_raw):
    X, y, X_test, y_test = cancer_raw
    with pytest.raises(ValueError, match="eps"):
        robust_accuracy_score(cancer_pipe, X_test, y_test, eps=-0.1)
    with pytest.raises(ValueError, match="eps"):
        robust_accuracy_score(cancer_pipe, X_test, y_test, eps="0.1")
    with pytest.raises(ValueError, match="attack"):
        robust_accuracy_score(cancer_pipe, X_test, y_test, eps=0.1, attack="cw")
    with pytest.raises(ValueError, match="norm"):
        robust_accuracy_score(cancer_pipe, X_test, y_test, eps=0.1, norm="l3")
    with pytest.raises(ValueError, match="different lengths"):
        robust_accuracy_score(cancer_pipe, X_test, y_test[:-1], eps=0.1)
    with pytest.raises(ValueError, match="restarts"):
        robust_accuracy_score(cancer_pipe, X_test, y_test, eps=0.1, restarts=0)
    with pytest.raises(ValueError, match="bounds"):
        robust_accuracy_score(cancer_pipe, X_test, y_test, eps=0.1, bounds="auto")
    with pytest.raises(ValueError, match="features|shape"):
        robust_accuracy_score(cancer_pipe, X_test[:, :5], y_test, eps=0.1)
    unfitted = make_pipeline(StandardScaler(), NaturalClassifier())
    with pytest.raises(NotFittedError):
        robust_accuracy_score(unfitted, X_test, y_test, eps=0.1)
    with pytest.raises(NotFittedError):
        local_lipschitz_score(NaturalClassifier(), X_test, eps=0.1)
    pca_pipe = make_pipeline(PCA(5), NaturalClassifier(max_epochs=1, random_state=0)).fit(X, y)
    with pytest.raises(ValueError, match="PCA"):
        robust_accuracy_score(pca_pipe, X_test, y_test, eps=0.1)
    with pytest.raises(ValueError, match="PCA"):
        local_lipschitz_score(pca_pipe, X_test, eps=0.1)
    with pytest.raises(ValueError, match=r"'eps' parameter of local_lipschitz_score .*\(0.0,"):
        local_lipschitz_score(cancer_pipe, X_test, eps=0.0)
    with pytest.raises(ValueError, match="norm"):
        local_lipschitz_score(cancer_pipe, X_test, eps=0.1, norm="l3")
    with pytest.raises(ValueError, match="steps"):
        local_lipschitz_score(cancer_pipe, X_test, eps=0.1, steps=-1)
    with pytest.raises(ValueError, match="eps"):
        make_robust_scorer(eps=-1)
    with pytest.raises(ValueError, match="attack"):
        make_robust_scorer(eps=0.1, attack="nope")
    with pytest.raises(ValueError, match="restarts"):
        robust_accuracy_score(cancer_pipe, X_test, y_test, eps=0.1, attack="square", restarts=2)


def test_dataframe_input(cancer_raw):
    X, y, X_test, y_test = cancer_raw
    columns = [f"f{i}" for i in range(X.shape[1])]
    frame, frame_test = pd.DataFrame(X, columns=columns), pd.DataFrame(X_test, columns=columns)
    pipe = make_pipeline(StandardScaler(), NaturalClassifier(max_epochs=1, random_state=0))
    pipe.fit(frame, y)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "X does not have feature names"
        robust = robust_accuracy_score(pipe, frame_test, y_test, eps=1.0, random_state=0)
    assert robust <= pipe.score(frame_test, y_test)


def test_string_labels(cancer_raw):
    X, y, X_test, y_test = cancer_raw
    names = np.array(["malignant", "benign"])
    pipe = make_pipeline(StandardScaler(), NaturalClassifier(max_epochs=2, random_state=0))
    pipe.fit(X, names[y])
    clean = pipe.score(X_test, names[y_test])
    assert robust_accuracy_score(pipe, X_test, names[y_test], eps=0.0) == clean
    robust = robust_accuracy_score(pipe, X_test, names[y_test], eps=0.02, random_state=0)
    assert robust < clean
    assert robust == robust_accuracy_score(
        pipe, X_test, list(names[y_test]), eps=0.02, random_state=0
    )
