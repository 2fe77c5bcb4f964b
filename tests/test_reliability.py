"""Reliability: bad input everywhere, measuring never changes the model, determinism, persistence.

Every estimator, scorer and the r-separation tools get the same battery of bad and edge-case
inputs; each must either work or raise a ``ValueError``/``TypeError`` that names the problem,
and a failed ``fit`` must fail before training. Data and networks are tiny on purpose.
"""

import pickle
import warnings

import _nets
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.model_selection import GridSearchCV

from sklearn_robust import (
    ATClassifier,
    FastATClassifier,
    GRClassifier,
    LLRClassifier,
    NaturalClassifier,
    RSTClassifier,
    SCOREClassifier,
    TRADESClassifier,
)
from sklearn_robust.attacks import ATTACKS
from sklearn_robust.metrics import (
    as_torch_classifier,
    local_lipschitz_score,
    make_lipschitz_scorer,
    make_robust_scorer,
    robust_accuracy_score,
)
from sklearn_robust.separation import RSeparation, r_separation

ALL = [
    NaturalClassifier, ATClassifier, TRADESClassifier, SCOREClassifier, RSTClassifier,
    GRClassifier, LLRClassifier, FastATClassifier,
]
ADVERSARIAL = [cls for cls in ALL if cls is not NaturalClassifier]
N_FEATURES, N_CLASSES = 5, 4
# Tiny budgets per attack so that every attack runs in milliseconds.
ATTACK_PARAMS = {
    "pgd": {},
    "fgsm": {},
    "apgd-ce": {"steps": 2},
    "apgd-dlr": {"steps": 2},
    "apgd-t": {"steps": 2, "n_target_classes": 1},
    "square": {"n_queries": 3},
    "auto": {"steps": 2, "n_target_classes": 1, "n_queries": 3},
    "fab": {"steps": 2},
    "fab-t": {"steps": 2, "n_target_classes": 1},
}
ATTACK_NAMES = sorted(ATTACKS)


def make_data(n=32, n_features=N_FEATURES, n_classes=N_CLASSES, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.rand(n, n_features).astype(np.float32)
    y = np.arange(n) % n_classes
    return X, y


def accepts(cls, name):
    """Whether ``cls`` has the parameter ``name`` (GR has no eps, FastAT no attack_steps)."""
    return name in cls().get_params()


def tiny(cls, **params):
    base = dict(max_epochs=1, batch_size=16, random_state=0, module__hidden_units=(8,))
    if accepts(cls, "attack_steps"):
        base["attack_steps"] = 1
    base.update(params)
    return cls(**base)


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return {cls: tiny(cls).fit(X, y) for cls in ALL}


# ============================================================================ 1. bad input
def _poke(X, value):
    X = X.astype(np.float64)  # float64 so that a huge finite value stays finite in the copy
    X[1, 2] = value
    return X


BAD_DATA = {
    # case: (make(X, y) -> (X, y), exception, match)
    "nan": (lambda X, y: (_poke(X, np.nan), y), ValueError, "NaN"),
    "+inf": (lambda X, y: (_poke(X, np.inf), y), ValueError, "infinity"),
    "-inf": (lambda X, y: (_poke(X, -np.inf), y), ValueError, "infinity"),
    "empty": (lambda X, y: (X[:0], y[:0]), ValueError, "0 sample"),
    "1-d X": (lambda X, y: (X[:, 0], y), ValueError, "2D array"),
    "sparse": (lambda X, y: (sp.csr_matrix(X), y), TypeError, "[Ss]parse"),
}
BAD_FIT = {
    **BAD_DATA,
    "one sample": (lambda X, y: (X[:1], y[:1]), ValueError, "only one class"),
    "one class": (lambda X, y: (X, np.full_like(y, 3)), ValueError, "only one class"),
    "y length": (lambda X, y: (X, y[:-1]), ValueError, "inconsistent numbers of samples"),
    "2-d y": (lambda X, y: (X, np.stack([y, y], axis=1)), ValueError, "y"),
    "continuous y": (lambda X, y: (X, y + 0.5), ValueError, "Unknown label type"),
}


@pytest.mark.parametrize("case", sorted(BAD_FIT))
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_fit_bad_data_fails_before_training(cls, case, data):
    make, exc, match = BAD_FIT[case]
    Xb, yb = make(*data)
    clf = tiny(cls)
    with pytest.raises(exc, match=match):
        clf.fit(Xb, yb)
    assert not clf.initialized_
    assert not hasattr(clf, "module_")


GOOD_FIT = {
    "one feature": lambda X: X[:, :1],
    "int64": lambda X: (X * 10).astype(np.int64),
    "float64": lambda X: X.astype(np.float64),
    "float16": lambda X: X.astype(np.float16),
}


@pytest.mark.parametrize("case", sorted(GOOD_FIT))
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_fit_edge_data_works(cls, case, data):
    X, y = data
    Xc = GOOD_FIT[case](X)
    clf = tiny(cls).fit(Xc, y)
    pred = clf.predict(Xc[:3])
    assert pred.shape == (3,) and set(pred) <= set(y)
    assert np.isfinite(clf.history[-1, "train_loss"])
    # the network's weights are float32 whatever the input dtype
    assert all(p.dtype == torch.float32 for p in clf.module_.parameters())


ZERO_BUDGETS = [
    (cls, params) for cls in ADVERSARIAL
    for params in (dict(eps=0.0), dict(attack_steps=0), dict(eps=0.0, attack_steps=0))
    if all(accepts(cls, name) for name in params)
    # LLR's search needs a step: attack_steps=0 is its bad input (tested below)
    and not (cls is LLRClassifier and "attack_steps" in params)
]


@pytest.mark.parametrize("cls,params", ZERO_BUDGETS,
                         ids=[f"{c.__name__}-{p}" for c, p in ZERO_BUDGETS])
def test_eps_zero_and_zero_steps_are_valid(cls, params, data):
    X, y = data
    clf = tiny(cls, **params).fit(X, y)
    assert np.isfinite(clf.history[-1, "train_loss"])
    assert clf.threat_model_.eps == params.get("eps", 0.1)
    assert clf.predict(X).shape == (len(X),)


def _bad_params(cls):
    cases = []
    if cls in ADVERSARIAL:
        cases += [
            (dict(eps=-0.1), ValueError, "'eps' parameter"),
            (dict(eps="0.1"), ValueError, "'eps' parameter"),
            (dict(eps=float("nan")), ValueError, "'eps' parameter"),
            (dict(norm="l3"), ValueError, "'norm' parameter"),
            (dict(norm=None), ValueError, "'norm' parameter"),
            (dict(attack_steps=-1), ValueError, "'(attack_)?steps' parameter"),
            (dict(attack_steps=1.5), ValueError, "'(attack_)?steps' parameter"),
            (dict(step_size=-0.1), ValueError, "'step_size' parameter"),
            (dict(bounds=(1.0, 0.0)), ValueError, "low <= high"),
            (dict(bounds=(np.zeros(N_FEATURES), np.r_[np.ones(N_FEATURES - 1), -1.0])),
             ValueError, "low <= high"),
            (dict(bounds=(0.0, np.inf)), ValueError, "bounds must be finite"),
            (dict(bounds="minmax"), ValueError, "'bounds' parameter"),
            (dict(bounds=(0.0, 0.5)), ValueError, "outside the declared bounds"),
            (dict(bounds=(np.zeros(3), np.ones(3))), ValueError, "broadcast to one sample"),
        ]
    cases = [case for case in cases if all(accepts(cls, name) for name in case[0])]
    params = cls().get_params()
    for name in ("beta", "lam", "mu"):
        if name in params:
            cases += [
                ({name: -1.0}, ValueError, f"'{name}' parameter"),
                ({name: "6"}, ValueError, f"'{name}' parameter"),
            ]
    if cls is SCOREClassifier:
        cases += [
            (dict(distance="cosine"), ValueError, "'distance' parameter"),
            (dict(ls=1.0), ValueError, "'ls' parameter"),
            (dict(clip=-1.0), ValueError, "'clip' parameter"),
        ]
    if cls is GRClassifier:
        cases.append((dict(h=0.0), ValueError, "'h' parameter"))
    if cls is LLRClassifier:
        cases.append((dict(attack_steps=0), ValueError, "'(attack_)?steps' parameter"))
    cases += [
        (dict(max_epochs=0), ValueError, "'max_epochs' parameter"),
        (dict(lr=-1.0), ValueError, "'lr' parameter"),
    ]
    return [(cls, *case) for case in cases]


BAD_PARAMS = [case for cls in ALL for case in _bad_params(cls)]


@pytest.mark.parametrize(
    "cls,params,exc,match", BAD_PARAMS,
    ids=[f"{c.__name__}-{sorted(p)[0]}={p[sorted(p)[0]]!r}"[:60] for c, p, _, _ in BAD_PARAMS],
)
def test_bad_parameters_fail_before_training(cls, params, exc, match, data):
    X, y = data
    clf = tiny(cls, **params)
    with pytest.raises(exc, match=match):
        clf.fit(X, y)
    assert not clf.initialized_
    assert not hasattr(clf, "module_")


BAD_PREDICT = {
    **BAD_DATA,
    "3-d X": (lambda X, y: (X[:, :, None], y), ValueError, "fitted on samples of shape"),
    # sklearn counts shape[1] as the features of an N-d array: 1 here, the fit saw 5
    "4-d X": (lambda X, y: (X[:, None, :, None], y), ValueError, "1 features.*expecting 5"),
    "few features": (lambda X, y: (X[:, :3], y), ValueError, "3 features"),
    "many features": (lambda X, y: (np.hstack([X, X]), y), ValueError, "10 features"),
}


@pytest.mark.parametrize("method", ["predict", "predict_proba", "decision_function", "score"])
@pytest.mark.parametrize("case", sorted(BAD_PREDICT))
def test_predict_bad_data(case, method, fitted, data):
    make, exc, match = BAD_PREDICT[case]
    Xb, yb = make(*data)
    for clf in fitted.values():
        args = (Xb, yb) if method == "score" else (Xb,)
        with pytest.raises(exc, match=match):
            getattr(clf, method)(*args)


@pytest.mark.parametrize("case", ["one sample", "int64", "float64", "float16", "list"])
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_predict_edge_data_works(cls, case, fitted, data):
    X, y = data
    clf = fitted[cls]
    expected = clf.predict_proba(X)
    if case == "one sample":
        np.testing.assert_allclose(clf.predict_proba(X[:1]), expected[:1], rtol=1e-6)
        assert clf.predict(X[:1]).shape == (1,)
        assert clf.score(X[:1], y[:1]) in (0.0, 1.0)
        return
    Xc = {"int64": (X * 10).astype(np.int64), "float64": X.astype(np.float64),
          "float16": X.astype(np.float16), "list": X.tolist()}[case]
    proba = clf.predict_proba(Xc)
    assert proba.shape == expected.shape and proba.dtype == np.float32
    if case in ("float64", "list"):  # float32-exact input: same answer
        np.testing.assert_array_equal(proba, expected)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_score_labels_unseen_at_fit_count_as_incorrect(cls, fitted, data):
    """Decision: unseen labels are clean-incorrect (as accuracy_score), never an error."""
    X, y = data
    clf = fitted[cls]
    pred = clf.predict(X)
    y_mixed = np.where(np.arange(len(y)) % 2 == 0, y, 99)  # half the labels never seen
    expected = float(np.mean(pred == y_mixed))
    assert clf.score(X, y_mixed) == pytest.approx(expected)
    assert clf.score(X, np.full_like(y, 99)) == 0.0
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.score(X, y[:-1])
    with pytest.raises(ValueError, match="Mix of label input types"):
        clf.score(X, y.astype(str))


# ---------------------------------------------------------------------------- scorers
def _robust(est, X, y, **kw):
    kw.setdefault("eps", 0.1)
    kw.setdefault("steps", 1)
    kw.setdefault("random_state", 0)
    return robust_accuracy_score(est, X, y, **kw)


def _robust_scorer(est, X, y, **kw):
    kw.setdefault("eps", 0.1)
    kw.setdefault("steps", 1)
    kw.setdefault("random_state", 0)
    return make_robust_scorer(**kw)(est, X, y)


def _lipschitz(est, X, y, **kw):
    kw.setdefault("eps", 0.1)
    kw.setdefault("steps", 1)
    kw.setdefault("random_state", 0)
    return local_lipschitz_score(est, X, **kw)


def _lipschitz_scorer(est, X, y, **kw):
    kw.setdefault("eps", 0.1)
    kw.setdefault("steps", 1)
    kw.setdefault("random_state", 0)
    return make_lipschitz_scorer(**kw)(est, X, y)


SCORERS = {
    "robust_accuracy_score": _robust,
    "make_robust_scorer": _robust_scorer,
    "local_lipschitz_score": _lipschitz,
    "make_lipschitz_scorer": _lipschitz_scorer,
}
ROBUST_SCORERS = ["robust_accuracy_score", "make_robust_scorer"]
LIPSCHITZ_SCORERS = ["local_lipschitz_score", "make_lipschitz_scorer"]

BAD_SCORER_DATA = {
    **{k: v for k, v in BAD_PREDICT.items() if k != "1-d X"},
    "1-d X": (lambda X, y: (X[0], y[:N_FEATURES]), ValueError, "2D array|2 dimensions"),
}


@pytest.mark.parametrize("case", sorted(BAD_SCORER_DATA))
@pytest.mark.parametrize("scorer", sorted(SCORERS))
def test_scorers_bad_data(scorer, case, fitted, data):
    make, exc, match = BAD_SCORER_DATA[case]
    Xb, yb = make(*data)
    for cls in (NaturalClassifier, TRADESClassifier):
        with pytest.raises(exc, match=match):
            SCORERS[scorer](fitted[cls], Xb, yb)


BAD_SCORER_PARAMS = {
    "eps < 0": (dict(eps=-0.1), "'eps' parameter"),
    "eps str": (dict(eps="0.1"), "'eps' parameter"),
    "eps inf": (dict(eps=float("inf")), "'eps' parameter"),
    "norm": (dict(norm="l3"), "'norm' parameter"),
    "bounds low > high": (dict(bounds=(1.0, 0.0)), "low <= high"),
    "bounds arrays low > high": (
        dict(bounds=(np.ones(N_FEATURES), np.zeros(N_FEATURES))), "low <= high"),
    "bounds name": (dict(bounds="auto"), "bounds must be 'estimator', None or"),
    "bounds shape": (dict(bounds=(np.zeros(3), np.ones(3))), "broadcast to one sample"),
    "data outside bounds": (dict(bounds=(0.0, 0.5)), "outside"),
    "steps < 0": (dict(steps=-1), "'steps' parameter"),
    "step_size <= 0": (dict(step_size=0.0), "'step_size' parameter"),
    "batch_size": (dict(batch_size=0), "'batch_size' parameter"),
}


@pytest.mark.parametrize("case", sorted(BAD_SCORER_PARAMS))
@pytest.mark.parametrize("scorer", sorted(SCORERS))
def test_scorers_bad_parameters(scorer, case, fitted, data):
    params, match = BAD_SCORER_PARAMS[case]
    X, y = data
    with pytest.raises(ValueError, match=match):
        SCORERS[scorer](fitted[TRADESClassifier], X, y, **params)


@pytest.mark.parametrize("scorer", ROBUST_SCORERS)
def test_robust_scorers_specific_bad_input(scorer, fitted, data):
    X, y = data
    clf = fitted[TRADESClassifier]
    with pytest.raises(ValueError, match="attack must be one of"):
        SCORERS[scorer](clf, X, y, attack="cw")
    with pytest.raises(ValueError, match="attack must be one of"):
        SCORERS[scorer](clf, X, y, attack=None)
    with pytest.raises(ValueError, match="different lengths"):
        SCORERS[scorer](clf, X, y[:-1])
    with pytest.raises(ValueError, match="labels of different types"):
        SCORERS[scorer](clf, X, y.astype(str))
    with pytest.raises(ValueError, match="'steps' parameter of APGD"):
        SCORERS[scorer](clf, X, y, attack="apgd-ce", steps=0)  # APGD needs an iteration
    if scorer == "robust_accuracy_score":
        with pytest.raises(ValueError, match="attack_params"):
            SCORERS[scorer](clf, X, y, attack_params=[("steps", 2)])
    else:
        with pytest.raises(TypeError, match="unexpected keyword"):
            make_robust_scorer(eps=0.1, return_adversarial=True)
        with pytest.raises(ValueError, match="needs the true labels"):
            make_robust_scorer(eps=0.1)(clf, X, None)


@pytest.mark.parametrize("scorer", LIPSCHITZ_SCORERS)
def test_lipschitz_eps_zero_is_refused_and_labels_ignored(scorer, fitted, data):
    """Decision: eps=0 makes the ratio 0/0, so the Lipschitz estimate refuses it."""
    X, y = data
    clf = fitted[TRADESClassifier]
    with pytest.raises(ValueError, match="'eps' parameter"):
        SCORERS[scorer](clf, X, y, eps=0.0)
    # the labels play no part: wrong length, unseen or string labels give the same value
    value = SCORERS[scorer](clf, X, y)
    for other in (y[:-1], y + 50, y.astype(str), None):
        assert SCORERS[scorer](clf, X, other) == value
    assert (value > 0) if scorer == "local_lipschitz_score" else (value < 0)


@pytest.mark.parametrize("attack", ATTACK_NAMES)
@pytest.mark.parametrize("cls", [NaturalClassifier, TRADESClassifier], ids=lambda c: c.__name__)
def test_robust_eps_zero_equals_clean_for_every_attack(cls, attack, fitted, data):
    X, y = data
    clf = fitted[cls]
    clean = clf.score(X, y)
    params = {"attack_params": ATTACK_PARAMS[attack], "steps": None}
    for scorer in ROBUST_SCORERS:
        assert SCORERS[scorer](clf, X, y, eps=0.0, attack=attack, **params) == clean
    score, X_adv = robust_accuracy_score(clf, X, y, eps=0.0, attack=attack,
                                         attack_params=ATTACK_PARAMS[attack],
                                         return_adversarial=True)
    assert score == clean
    np.testing.assert_array_equal(X_adv, X)


@pytest.mark.parametrize("cls", [NaturalClassifier, TRADESClassifier], ids=lambda c: c.__name__)
def test_zero_steps_are_valid(cls, fitted, data):
    X, y = data
    clf = fitted[cls]
    clean = clf.score(X, y)
    for scorer in ROBUST_SCORERS:
        assert 0.0 <= SCORERS[scorer](clf, X, y, steps=0) <= clean  # the random start only
    lip = local_lipschitz_score(clf, X, eps=0.1, steps=0, random_state=0)
    assert np.isfinite(lip) and lip >= 0  # the Gaussian start only


@pytest.mark.parametrize("scorer", sorted(SCORERS))
def test_scorers_edge_data_works(scorer, fitted, data):
    X, y = data
    clf = fitted[TRADESClassifier]
    clean = clf.score(X, y)
    for Xc in (X.astype(np.float64), X.tolist(), (X > 0.5).astype(np.int64),
               X.astype(np.float16)):
        value = SCORERS[scorer](clf, Xc, y)
        assert np.isfinite(value)
        if scorer in ROBUST_SCORERS:
            assert 0.0 <= value <= clf.score(Xc, y)
    one = SCORERS[scorer](clf, X[:1], y[:1])
    assert np.isfinite(one)
    if scorer in ROBUST_SCORERS:
        # float64 data that is float32-exact gives the same score as float32
        assert SCORERS[scorer](clf, X.astype(np.float64), y) == SCORERS[scorer](clf, X, y)
        assert SCORERS[scorer](clf, X, y) <= clean


@pytest.mark.parametrize("scorer", ROBUST_SCORERS)
def test_robust_unseen_labels_count_as_clean_incorrect(scorer, fitted, data):
    """Decision (as ``score``): labels absent from ``classes_`` are clean-incorrect."""
    X, y = data
    clf = fitted[NaturalClassifier]
    y_mixed = np.where(np.arange(len(y)) % 2 == 0, y, 99)
    assert SCORERS[scorer](clf, X, y_mixed, eps=0.0) == clf.score(X, y_mixed)
    assert SCORERS[scorer](clf, X, np.full_like(y, 99)) == 0.0
    full = SCORERS[scorer](clf, X, y, eps=0.3, steps=2)
    mixed = SCORERS[scorer](clf, X, y_mixed, eps=0.3, steps=2)
    assert mixed <= full


# ---------------------------------------------------------------------------- separation
def _rsep_report(X, y, **kw):
    return r_separation(X, y, **kw)


def _rsep_test(X, y, **kw):
    X_train, y_train = make_data(seed=1)
    return r_separation(X_train, y_train, X, y, **kw)


def _transformer_fit(X, y, **kw):
    return RSeparation(**kw).fit(X, y)


def _transformer_transform(X, y, **kw):
    X_train, y_train = make_data(seed=1)
    return RSeparation(**kw).fit(X_train, y_train).transform(X)


def _transformer_score(X, y, **kw):
    X_train, y_train = make_data(seed=1)
    return RSeparation(**kw).fit(X_train, y_train).score(X, y)


SEPARATION = {
    "r_separation(train)": _rsep_report,
    "r_separation(test)": _rsep_test,
    "RSeparation.fit": _transformer_fit,
    "RSeparation.transform": _transformer_transform,
    "RSeparation.score": _transformer_score,
}
_TRAIN_SIDE = ["r_separation(train)", "RSeparation.fit"]
BAD_SEPARATION_DATA = {
    **BAD_DATA,
    "y length": (lambda X, y: (X, y[:-1]), ValueError, "inconsistent numbers of samples"),
}


@pytest.mark.parametrize("tool,case", [
    (tool, case) for tool in sorted(SEPARATION) for case in sorted(BAD_SEPARATION_DATA)
    if not (tool == "RSeparation.transform" and case == "y length")  # transform takes no y
])
def test_separation_bad_data(tool, case):
    make, exc, match = BAD_SEPARATION_DATA[case]
    Xb, yb = make(*make_data())
    with pytest.raises(exc, match=match):
        SEPARATION[tool](Xb, yb)


@pytest.mark.parametrize("tool", sorted(SEPARATION))
def test_separation_bad_parameters_and_shapes(tool):
    X, y = make_data()
    for params, match in [
        (dict(eps=-0.1), "'eps' parameter of"),
        (dict(eps="0.1"), "'eps' parameter of"),
        (dict(norm="l3"), "'norm' parameter of"),
    ]:
        with pytest.raises(ValueError, match=match):
            SEPARATION[tool](X, y, **params)
    if tool in _TRAIN_SIDE:
        for y_bad in (np.full_like(y, 2), y[:1]):
            with pytest.raises(ValueError, match="at least 2 classes"):
                SEPARATION[tool](X[: len(y_bad)], y_bad)
    else:  # the queries must have the training feature count
        with pytest.raises(ValueError, match="3 features"):
            SEPARATION[tool](X[:, :3], y)


def _numbers(tool, out):
    """What a separation tool computed, as an array: its distances or its score."""
    if tool == "r_separation(train)":
        return np.asarray(out.train_train_distances)
    if tool == "r_separation(test)":
        return np.asarray(out.test_train_distances)
    if tool == "RSeparation.fit":
        return np.asarray(out.train_distances_)
    return np.atleast_1d(np.asarray(out, dtype=np.float64))


@pytest.mark.parametrize("tool", sorted(SEPARATION))
def test_separation_edge_data_works(tool):
    X, y = make_data()
    reference = SEPARATION[tool](X, y, eps=0.05)
    expected = _numbers(tool, SEPARATION[tool](X, y))
    assert np.isfinite(expected).all()
    # the same points as float64: the same numbers (float32 data is exact in float64)
    np.testing.assert_allclose(_numbers(tool, SEPARATION[tool](X.astype(np.float64), y)),
                               expected, rtol=1e-6)
    for Xc in (X.astype(np.float16), (X * 10).astype(np.int64)):  # other values, same shape
        got = _numbers(tool, SEPARATION[tool](Xc, y))
        assert got.shape == expected.shape and np.isfinite(got).all()
    # eps = 0 is valid and changes only what compares with 2 eps
    np.testing.assert_array_equal(_numbers(tool, SEPARATION[tool](X, y, eps=0.0)).shape,
                                  expected.shape)
    if tool in _TRAIN_SIDE:  # one feature: distances along it alone, never larger
        one = _numbers(tool, SEPARATION[tool](X[:, :1], y))
        assert one.shape == expected.shape and (one <= expected + 1e-6).all()
    elif tool != "RSeparation.score":  # one query point: its own row of the answer
        np.testing.assert_allclose(_numbers(tool, SEPARATION[tool](X[:1], y[:1])),
                                   expected[:1], rtol=1e-6)
    # labels unseen in training: every training point is "another class" (r_separation),
    # a prediction can never match them (score)
    if tool == "r_separation(test)":
        report = SEPARATION[tool](X, y + 50)
        assert report.test_train_min <= reference.test_train_min
    if tool == "RSeparation.score":
        assert SEPARATION[tool](X, y + 50) == 0.0
        assert 0.0 <= reference <= SEPARATION[tool](X, y)  # certified <= plain accuracy


# ============================================================================ 2. measuring
def BNDropoutNet(n_features=N_FEATURES, n_classes=N_CLASSES):
    return _nets.BNDropoutNet(n_features, n_classes, hidden=16, dropout=0.5)


@pytest.fixture(scope="module")
def bn_model(data):
    X, y = data
    clf = TRADESClassifier(module=BNDropoutNet, max_epochs=2, attack_steps=1, batch_size=16,
                           random_state=0).fit(X, y)
    return clf


def _set_modes(module, mode):
    if mode == "train":
        module.train()
    elif mode == "eval":
        module.eval()
    else:  # mixed: every submodule's own flag must come back
        module.train()
        module.body[1].eval()
        module.head.eval()


def _snapshot(module):
    return {
        "state": {k: v.detach().clone() for k, v in module.state_dict().items()},
        "grads": [None if p.grad is None else p.grad.clone() for p in module.parameters()],
        "requires_grad": [p.requires_grad for p in module.parameters()],
        "modes": [m.training for m in module.modules()],
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state(),
    }


def _assert_unchanged(before, module):
    after = _snapshot(module)
    assert before["state"].keys() == after["state"].keys()
    for key, value in before["state"].items():
        assert torch.equal(value, after["state"][key]), key
    for g0, g1 in zip(before["grads"], after["grads"], strict=True):
        assert g0 is not None and g1 is not None and torch.equal(g0, g1)
    assert before["requires_grad"] == after["requires_grad"]
    assert before["modes"] == after["modes"]
    assert torch.equal(before["torch_rng"], after["torch_rng"])
    np_before, np_after = before["numpy_rng"], after["numpy_rng"]
    assert np_before[0] == np_after[0] and np.array_equal(np_before[1], np_after[1])
    assert np_before[2:] == np_after[2:]


def _prepare(clf, mode):
    module = clf.module_
    _set_modes(module, mode)
    gen = torch.Generator().manual_seed(5)
    for p in module.parameters():
        p.grad = torch.randn(p.shape, generator=gen)
    module.head.bias.requires_grad_(False)  # restored flag by flag
    torch.manual_seed(123)
    np.random.seed(321)
    return _snapshot(module)


@pytest.fixture
def bn_clf(bn_model):
    yield bn_model
    bn_model.module_.head.bias.requires_grad_(True)


MODES = ["train", "eval", "mixed"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("attack", ATTACK_NAMES)
def test_attacks_leave_fitted_model_unchanged(attack, mode, bn_clf, data):
    X, y = data
    before = _prepare(bn_clf, mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # DLR fallbacks on few classes
        threat = bn_clf.threat_model_
        # the raw network, and the bridge the scorers use
        for model in (bn_clf.module_, as_torch_classifier(bn_clf, gradients=attack != "square")):
            ATTACKS[attack](threat, random_state=0, **ATTACK_PARAMS[attack])(
                model, torch.as_tensor(X), torch.as_tensor(y))
            _assert_unchanged(before, bn_clf.module_)
        for scorer in ROBUST_SCORERS:
            SCORERS[scorer](bn_clf, X, y, eps=0.2, attack=attack, steps=None,
                            attack_params=ATTACK_PARAMS[attack])
            _assert_unchanged(before, bn_clf.module_)


@pytest.mark.parametrize("grad_mode", ["enable_grad", "no_grad", "inference_mode"])
@pytest.mark.parametrize("mode", MODES)
def test_scorers_and_separation_leave_fitted_model_unchanged(mode, grad_mode, bn_clf, data):
    X, y = data
    before = _prepare(bn_clf, mode)
    context = {"enable_grad": torch.enable_grad, "no_grad": torch.no_grad,
               "inference_mode": torch.inference_mode}[grad_mode]
    with context():  # skorch runs scoring callbacks under no_grad
        for scorer in sorted(SCORERS):
            for norm in ("linf", "l2"):
                SCORERS[scorer](bn_clf, X, y, norm=norm, steps=2)
                _assert_unchanged(before, bn_clf.module_)
        r_separation(X, y, X, y, eps=0.1)
        RSeparation(eps=0.1).fit(X, y).score(X, y)
        _assert_unchanged(before, bn_clf.module_)


def test_scorers_work_under_inference_mode(bn_clf, data):
    """Regression: the attack's targets were built as inference tensors, so backward failed."""
    X, y = data
    expected = [SCORERS[name](bn_clf, X, y, eps=0.3, steps=2) for name in sorted(SCORERS)]
    with torch.inference_mode():
        got = [SCORERS[name](bn_clf, X, y, eps=0.3, steps=2) for name in sorted(SCORERS)]
    assert got == expected


def test_scorers_with_default_random_state_leave_torch_rng(bn_clf, data):
    """random_state=None draws its seed from numpy's global RNG (sklearn's rule), never torch's."""
    X, y = data
    before = _prepare(bn_clf, "train")
    robust_accuracy_score(bn_clf, X, y, eps=0.1, steps=1)
    local_lipschitz_score(bn_clf, X, eps=0.1, steps=1)
    assert torch.equal(before["torch_rng"], torch.get_rng_state())
    np.random.seed(321)
    a = robust_accuracy_score(bn_clf, X, y, eps=0.3, steps=2, return_adversarial=True)[1]
    np.random.seed(321)
    b = robust_accuracy_score(bn_clf, X, y, eps=0.3, steps=2, return_adversarial=True)[1]
    np.testing.assert_array_equal(a, b)


# ============================================================================ 4. determinism
@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_same_random_state_same_weights(cls, data):
    X, y = data
    first = tiny(cls, max_epochs=2, module__dropout=0.3).fit(X, y).module_.state_dict()
    second = tiny(cls, max_epochs=2, module__dropout=0.3).fit(X, y).module_.state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = tiny(cls, max_epochs=2, module__dropout=0.3, random_state=1).fit(X, y)
    assert any(not torch.equal(first[k], v) for k, v in other.module_.state_dict().items())


@pytest.mark.parametrize("attack", ATTACK_NAMES)
def test_same_random_state_same_adversarial_points_and_scores(attack, fitted, data):
    X, y = data
    clf = fitted[TRADESClassifier]
    runs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(2):
            runs.append(robust_accuracy_score(
                clf, X, y, eps=0.3, attack=attack, attack_params=ATTACK_PARAMS[attack],
                random_state=7, return_adversarial=True))
            torch.manual_seed(len(runs))  # the global RNGs play no part
            np.random.seed(len(runs))
    (s1, a1), (s2, a2) = runs
    assert s1 == s2
    np.testing.assert_array_equal(a1, a2)
    assert np.abs(a1 - X).max() <= 0.3 + 1e-6


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_same_random_state_same_lipschitz(norm, fitted, data):
    X, _ = data
    clf = fitted[TRADESClassifier]
    values = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        np.random.seed(seed)
        values.append(local_lipschitz_score(clf, X, eps=0.1, norm=norm, steps=3, random_state=4))
    assert values[0] == values[1]
    scorer = make_lipschitz_scorer(eps=0.1, norm=norm, steps=3, random_state=4)
    assert scorer(clf, X) == -values[0]


def test_grid_search_n_jobs_does_not_change_results(data):
    X, y = data
    X, y = np.vstack([X, make_data(seed=2)[0]]), np.concatenate([y, y])
    grid = {"beta": [1.0, 6.0]}
    scoring = {"acc": "accuracy",
               "robust": make_robust_scorer(eps=0.1, steps=1, random_state=0),
               "lipschitz": make_lipschitz_scorer(eps=0.1, steps=1, random_state=0)}
    results = []
    for n_jobs in (1, 2):
        search = GridSearchCV(
            tiny(TRADESClassifier), grid, cv=2, n_jobs=n_jobs, scoring=scoring, refit="acc",
        ).fit(X, y)
        results.append(search)
    for key in ("mean_test_acc", "mean_test_robust", "mean_test_lipschitz"):
        np.testing.assert_array_equal(results[0].cv_results_[key], results[1].cv_results_[key])
    a = results[0].best_estimator_.module_.state_dict()
    b = results[1].best_estimator_.module_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# ============================================================================ 5. persistence
def _assert_same_tree(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same_tree(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for u, v in zip(a, b, strict=True):
            _assert_same_tree(u, v)
    else:
        assert a == b


@pytest.mark.parametrize("cls", [TRADESClassifier, LLRClassifier], ids=lambda c: c.__name__)
def test_save_and_load_params_with_optimizer_resumes_exactly(cls, data, tmp_path):
    X, y = data
    files = {"f_params": tmp_path / "params.pt", "f_optimizer": tmp_path / "opt.pt",
             "f_history": tmp_path / "history.json"}
    clf = tiny(cls, max_epochs=2).fit(X, y)
    clf.save_params(**files)
    other = tiny(cls, max_epochs=2, random_state=1).fit(X, y)
    other.load_params(**files)
    _assert_same_tree(clf.module_.state_dict(), other.module_.state_dict())
    _assert_same_tree(clf.optimizer_.state_dict(), other.optimizer_.state_dict())
    assert len(other.history) == 2
    # continuing both with the same seed gives identical weights: Adam's moments came back
    other.set_params(random_state=0)
    clf.set_params(random_state=3)
    other.set_params(random_state=3)
    clf.partial_fit(X, y)
    other.partial_fit(X, y)
    _assert_same_tree(clf.module_.state_dict(), other.module_.state_dict())
    assert clf.get_params()["device"] == other.get_params()["device"] == "auto"


class ArbitraryObject:
    """Unpickling this would run code: ``weights_only`` loading must refuse it."""

    unpickled = False

    def __setstate__(self, state):
        type(self).unpickled = True
        self.__dict__.update(state)


def test_load_params_refuses_arbitrary_pickles(fitted, data, tmp_path):
    clf = fitted[NaturalClassifier]
    path = tmp_path / "evil.pt"
    state = {k: v.clone() for k, v in clf.module_.state_dict().items()}
    torch.save({**state, "payload": ArbitraryObject()}, path)
    before = {k: v.clone() for k, v in clf.module_.state_dict().items()}
    assert clf.torch_load_kwargs is None  # skorch's default: {"weights_only": True}
    with pytest.raises(pickle.UnpicklingError, match="[Ww]eights.only|Unsupported global"):
        clf.load_params(f_params=path)
    assert not ArbitraryObject.unpickled
    _assert_same_tree(before, clf.module_.state_dict())
    # a pure tensor file from the same net loads fine
    torch.save(state, tmp_path / "ok.pt")
    clf.load_params(f_params=tmp_path / "ok.pt")


def _save_as_if_on_cuda(obj, path, monkeypatch):
    """``torch.save`` with every storage tagged 'cuda:0', as a file written on a GPU."""
    import torch.serialization as serialization

    with monkeypatch.context() as m:
        m.setattr(serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(obj, path)


def test_cuda_saved_params_load_on_cpu(data, tmp_path, monkeypatch):
    X, y = data
    clf = tiny(TRADESClassifier, max_epochs=2).fit(X, y)
    path = tmp_path / "cuda_params.pt"
    _save_as_if_on_cuda(clf.module_.state_dict(), path, monkeypatch)
    opt_path = tmp_path / "cuda_opt.pt"
    _save_as_if_on_cuda(clf.optimizer_.state_dict(), opt_path, monkeypatch)
    if not torch.cuda.is_available():  # the file really needs a map_location here
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)
    other = tiny(TRADESClassifier, max_epochs=2, random_state=1).fit(X, y)
    assert other.get_params()["device"] == "auto"
    other.load_params(f_params=path, f_optimizer=opt_path)
    assert all(t.device.type == "cpu" for t in other.module_.state_dict().values())
    np.testing.assert_array_equal(other.predict_proba(X), clf.predict_proba(X))
    assert other.get_params()["device"] == "auto"


def test_cuda_pickled_net_then_cuda_saved_params_load_on_cpu(data, tmp_path, monkeypatch):
    """A net pickled with device='cuda' unpickles to CPU and then accepts CUDA-saved params."""
    X, y = data
    clf = tiny(NaturalClassifier, device="cpu").fit(X, y)
    state = clf.__getstate__()
    state["device"] = "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = NaturalClassifier.__new__(NaturalClassifier)
    with pytest.warns(Warning, match="CUDA|cuda"):
        loaded.__setstate__(state)
    assert str(loaded.device) == "cpu"
    path = tmp_path / "cuda_params.pt"
    _save_as_if_on_cuda(clf.module_.state_dict(), path, monkeypatch)
    loaded.load_params(f_params=path)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    # a net that still asks for CUDA on this machine fails with a clear error, not a crash
    asking = tiny(NaturalClassifier, device="cuda")
    with pytest.raises(ValueError, match="[Cc][Uu][Dd][Aa]"):
        asking.fit(X, y)
    assert not asking.initialized_
