"""certified_accuracy_score: the lower bound, checked against attacks and exact answers.

Soundness first: on every model here, no point a method certifies is broken by
AutoAttack ('auto') or PGD, and 'exact' certifies every point CROWN certifies, while
CROWN certifies every point IBP certifies in aggregate. Every counterexample is
misclassified by the model itself.
"""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_validate, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_robust import NaturalClassifier, TRADESClassifier, verify
from sklearn_robust.metrics import (
    certified_accuracy_score,
    make_certified_scorer,
    robust_accuracy_score,
)

BOUNDED = ["ibp", "crown", "exact"]


@pytest.fixture(scope="module")
def cancer_pipe():
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=60, stratify=y,
                                                        random_state=0)
    pipe = make_pipeline(StandardScaler(), TRADESClassifier(
        eps=0.1, attack_steps=3, max_epochs=15, random_state=0, module__hidden_units=(16, 16),
        lr=3e-3)).fit(X_train, y_train)
    return pipe, X_test, y_test


@pytest.fixture(scope="module")
def digits_cnn(digits_images):
    X_train, X_test, y_train, y_test = digits_images
    clf = TRADESClassifier(eps=0.1, attack_steps=3, max_epochs=3, random_state=0,
                           module__channels=(4, 8), module__hidden_units=32)
    return clf.fit(X_train, y_train), X_test[:40], y_test[:40]


def broken_points(model, X, y, eps, norm="linf"):
    """Points AutoAttack breaks (misclassified ones included)."""
    _, X_adv = robust_accuracy_score(model, X, y, eps=eps, norm=norm, attack="auto",
                                     random_state=0, return_adversarial=True)
    return np.asarray(model.predict(X_adv)) != y


# Slow (the exact MILP on every point): the fast suite keeps IBP and CROWN against
# AutoAttack here (test_other_norms_are_sound, test_images_through_the_default_cnn) and
# the exact method's nesting, point by point, in test_sandwich.py.
@pytest.mark.slow
@pytest.mark.parametrize("eps", [0.02, 0.1])
def test_no_certified_point_is_broken_and_the_methods_nest(cancer_pipe, eps):
    pipe, X, y = cancer_pipe
    broken = broken_points(pipe, X, y, eps)
    found = {}
    for method in BOUNDED:
        score, cert = certified_accuracy_score(pipe, X, y, eps=eps, method=method,
                                               return_certificates=True, time_limit=30)
        assert not (cert.certified & broken).any(), method
        assert score == pytest.approx(cert.certified.mean())
        found[method] = cert
    assert found["crown"].certified.sum() >= found["ibp"].certified.sum()
    assert not (found["crown"].certified & ~found["exact"].certified).any()
    exact = found["exact"]
    # undecided only where the float32 rounding of the scaled input and of the forward
    # pass leaves the answer open (the network in exact arithmetic is robust there)
    assert exact.counts().get("unknown", 0) <= 2
    # decided: the exact robust accuracy lies below every attack's
    assert exact.certified.mean() <= 1 - broken.mean() + 1e-12
    counter = exact.status == "counterexample"
    if counter.any():
        X_counter = exact.counterexamples[counter].astype(np.float32)
        assert (pipe.predict(X_counter) != y[counter]).all()
        # in the ball up to float32 rounding of each coordinate
        spacing = (np.spacing(np.abs(X_counter)) +  # the counterexample's own rounding
                   np.spacing(np.abs(X[counter]).astype(np.float32)))  # and the centre's
        assert (np.abs(X_counter - X[counter]) <= eps + spacing).all()


def test_eps_zero_is_the_clean_accuracy(cancer_pipe):
    pipe, X, y = cancer_pipe
    for method in BOUNDED:
        assert certified_accuracy_score(pipe, X, y, eps=0.0, method=method) == pytest.approx(
            pipe.score(X, y)), method


@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_other_norms_are_sound(cancer_pipe, norm):
    pipe, X, y = cancer_pipe
    eps = 0.5 if norm == "l2" else 1.0
    broken = broken_points(pipe, X, y, eps, norm=norm)
    for method, intermediate in (("ibp", "crown"), ("crown", "crown"), ("crown", "ibp")):
        _, cert = certified_accuracy_score(pipe, X, y, eps=eps, norm=norm, method=method,
                                           intermediate=intermediate,
                                           return_certificates=True)
        assert not (cert.certified & broken).any(), (method, intermediate)


def test_images_through_the_default_cnn(digits_cnn):
    clf, X, y = digits_cnn
    broken = broken_points(clf, X, y, 0.02)
    found = {}
    for method, intermediate in (("ibp", "crown"), ("crown", "crown"), ("crown", "ibp")):
        _, cert = certified_accuracy_score(clf, X, y, eps=0.02, method=method,
                                           intermediate=intermediate, bounds=(0, 1),
                                           return_certificates=True)
        assert not (cert.certified & broken).any(), (method, intermediate)
        found[method if method == "ibp" else f"crown-{intermediate}"] = cert
    full, crown_ibp, ibp = found["crown-crown"], found["crown-ibp"], found["ibp"]
    assert full.certified.sum() >= crown_ibp.certified.sum() >= ibp.certified.sum()
    assert full.certified.mean() > 0  # not vacuous at a small radius
    # CROWN-IBP: looser intermediate bounds, looser margins (not a theorem: the adaptive
    # slopes follow the intermediate bounds, but it holds by far on this network)
    correct = np.isfinite(full.margin_lower)
    assert (crown_ibp.margin_lower[correct] <= full.margin_lower[correct]).all()
    assert crown_ibp.certified.sum() < full.certified.sum()


def test_intermediate_is_an_option_of_crown_alone(cancer_pipe, monkeypatch):
    pipe, X, y = cancer_pipe
    for method, extra in (("ibp", {}), ("exact", {}),
                          ("smoothing", dict(norm="l2", sigma=0.25))):
        match = f"intermediate='ibp' .* method='crown', not method='{method}'"
        with pytest.raises(ValueError, match=match):
            certified_accuracy_score(pipe, X, y, eps=0.1, method=method,
                                     intermediate="ibp", **extra)
        with pytest.raises(ValueError, match=match):
            make_certified_scorer(eps=0.1, method=method, intermediate="ibp", **extra)
    for bad in ("zonotope", None, 1):
        with pytest.raises(ValueError, match="intermediate"):
            certified_accuracy_score(pipe, X, y, eps=0.1, intermediate=bad)
        with pytest.raises(ValueError, match="intermediate"):
            make_certified_scorer(eps=0.1, intermediate=bad)
    # the default goes with every method
    assert certified_accuracy_score(pipe, X, y, eps=0.0, method="ibp",
                                    intermediate="crown") == pipe.score(X, y)
    # the scorer passes it on to CROWN
    seen = []
    crown = verify.crown_margin_bounds
    monkeypatch.setattr(verify, "crown_margin_bounds", lambda *args, **kwargs: (
        seen.append(kwargs["intermediate"]), crown(*args, **kwargs))[1])
    scorer = make_certified_scorer(eps=0.05, intermediate="ibp")
    assert "method='crown', intermediate='ibp'" in repr(scorer)
    score = scorer(pipe, X, y)
    assert seen and set(seen) == {"ibp"}
    assert score == certified_accuracy_score(pipe, X, y, eps=0.05, intermediate="ibp")
    assert set(seen) == {"ibp"}
    certified_accuracy_score(pipe, X, y, eps=0.05)
    assert seen[-1] == "crown"


def test_the_model_is_left_as_it_was(cancer_pipe):
    pipe, X, y = cancer_pipe
    module = pipe[-1].module_.train()
    for p in module.parameters():
        p.grad = torch.ones_like(p)
    before = [p.detach().clone() for p in module.parameters()]
    certified_accuracy_score(pipe, X, y, eps=0.05, method="crown", alpha_steps=3)
    assert module.training and all(m.training for m in module.modules())
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in module.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))
    module.eval()


def test_dataframes_and_scorers(cancer_pipe):
    pipe, X, y = cancer_pipe
    frame = pd.DataFrame(X)
    assert certified_accuracy_score(pipe, frame, y, eps=0.02) == certified_accuracy_score(
        pipe, X, y, eps=0.02)
    scorer = make_certified_scorer(eps=0.02, method="ibp")
    assert "certified_accuracy_score" in repr(scorer)
    assert scorer(pipe, X, y) == certified_accuracy_score(pipe, X, y, eps=0.02, method="ibp")
    X_all, y_all = load_breast_cancer(return_X_y=True)
    small = make_pipeline(StandardScaler(), NaturalClassifier(max_epochs=2, random_state=0,
                                                              module__hidden_units=(8,)))
    result = cross_validate(small, X_all, y_all, cv=2,
                            scoring={"acc": "accuracy", "cert": scorer})
    assert (result["test_cert"] <= result["test_acc"] + 1e-12).all()


def test_smoothing_certifies_any_classifier():
    X, y = load_wine(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    kw = dict(norm="l2", method="smoothing", sigma=0.25, n0=20, n=200, random_state=0)
    score, cert = certified_accuracy_score(model, X, y, eps=0.1, return_certificates=True,
                                           **kw)
    again = certified_accuracy_score(model, X, y, eps=0.1, **kw)
    assert score == again and 0 < score <= model.score(X, y)
    assert set(cert.counts()) <= {"certified", "unknown", "misclassified", "abstain"}
    assert np.all(cert.radius[cert.certified] > 0.1)


def test_bad_input_is_refused_before_any_work(cancer_pipe):
    pipe, X, y = cancer_pipe
    with pytest.raises(ValueError, match="eps"):
        certified_accuracy_score(pipe, X, y, eps=-0.1)
    with pytest.raises(ValueError, match="method"):
        certified_accuracy_score(pipe, X, y, eps=0.1, method="zonotope")
    with pytest.raises(ValueError, match="certifies the norms"):
        certified_accuracy_score(pipe, X, y, eps=0.1, method="exact", norm="l2")
    with pytest.raises(ValueError, match="sigma"):
        certified_accuracy_score(pipe, X, y, eps=0.1, method="smoothing", norm="l2")
    with pytest.raises(ValueError, match="different lengths"):
        certified_accuracy_score(pipe, X, y[:-1], eps=0.1)
    logistic = LogisticRegression(max_iter=500).fit(X, y)
    with pytest.raises(TypeError, match="smoothing"):
        certified_accuracy_score(logistic, X, y, eps=0.1)

    class Tanh(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(30, 4), torch.nn.Tanh(),
                                           torch.nn.Linear(4, 2))

        def forward(self, x):
            return self.net(x)

    tanh = NaturalClassifier(Tanh, max_epochs=1, random_state=0).fit(
        X.astype(np.float32), y)
    with pytest.raises((ValueError, TypeError), match="Tanh"):
        certified_accuracy_score(tanh, X.astype(np.float32), y, eps=0.1)
