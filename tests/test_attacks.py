"""Tests of the evaluation attacks: geometry, leaving the model alone, seeding, strength.

The geometry: every attack's points lie in the ball and the bounds, on fixed cases and as
a property over norms, radii, bounds and sample shapes.

The strength tests use a small MLP trained on sklearn's digits and compare our attacks
with torchattacks and with each other; the gradient-masking test checks that the
AutoAttack cascade's black-box stage catches what gradient attacks miss. The cascade
tests check the generic worst case per point; the loss tests the one fallback rule.
"""

import warnings
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from _problems import SETTINGS, assert_inside, labels, model_for, problems
from hypothesis import given
from sklearn.datasets import load_digits
from torch import nn

from sklearn_robust import ThreatModel
from sklearn_robust.attacks import (
    APGD,
    ATTACKS,
    FAB,
    FGSM,
    LOSSES,
    PGD,
    APGDTargeted,
    Attack,
    AutoAttack,
    Cascade,
    FABTargeted,
    Square,
    apgd_checkpoints,
    dlr,
    dlr_targeted,
    make_attack,
    margin,
    resolve_loss,
)
from sklearn_robust.threat import step_length

# Small budgets per attack, so the generic tests stay fast.
FAST = {
    "pgd": {"steps": 10, "restarts": 2},
    "fgsm": {},
    "apgd-ce": {"steps": 10},
    "apgd-dlr": {"steps": 10},
    "apgd-t": {"steps": 10, "n_target_classes": 2},
    "fab": {"steps": 5},
    "fab-t": {"steps": 5, "n_target_classes": 2},
    "square": {"n_queries": 30},
    "auto": {"steps": 5, "n_target_classes": 2, "n_queries": 30},
}
NAMES = sorted(FAST)


def build(name, threat, **kwargs):
    return make_attack(name, threat, **{**FAST[name], **kwargs})


def small_mlp(n_in=6, n_classes=5, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(n_in, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(16, n_classes),
    )


def toy_data(n=20, shape=(6,), n_classes=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.rand((n, *shape), generator=gen)
    y = torch.randint(0, n_classes, (n,), generator=gen)
    return X, y


@contextmanager
def quiet():
    # Fallback warnings (DLR on few classes, l_2 without Square) are tested on their own.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def run(attack, module, X, y):
    with quiet():
        return attack(module, X, y)


def make_quiet(name, threat, **kwargs):
    with quiet():
        return build(name, threat, **kwargs)


# ---------------------------------------------------------------------------- geometry
BOUNDS = {
    "none": None,
    "unit": (0.0, 1.0),
    "per-feature": (np.zeros(6), np.linspace(0.6, 1.0, 6)),
}


NAME_NORMS = [(n, norm) for n in NAMES for norm in ("linf", "l2")]


@pytest.mark.parametrize("bounds", sorted(BOUNDS))
@pytest.mark.parametrize("name,norm", NAME_NORMS)
def test_points_in_ball_and_bounds(name, norm, bounds):
    bounds = BOUNDS[bounds]
    X, y = toy_data()
    if bounds is not None:
        X = torch.minimum(X, torch.as_tensor(bounds[1], dtype=torch.float32))
    threat = ThreatModel(eps=0.3 if norm == "linf" else 0.8, norm=norm, bounds=bounds)
    model = small_mlp()
    attack = make_quiet(name, threat, random_state=0, **({"steps": 5} if name == "pgd" else {}))
    X_adv = run(attack, model, X, y)
    assert X_adv.shape == X.shape
    assert X_adv.dtype == X.dtype
    assert X_adv.device == X.device
    assert bool(threat.contains(X_adv, X).all())
    assert not torch.equal(X_adv, X)  # the attack moved some point


@pytest.mark.parametrize("shape", [(6,), (2, 5), (1, 4, 4), (3, 4, 5)])
@pytest.mark.parametrize("name", ["square", "apgd-ce", "auto"])
def test_any_sample_shape(name, shape):
    X, y = toy_data(n=12, shape=shape)
    threat = ThreatModel(eps=0.2, bounds=(0, 1))
    model = small_mlp(n_in=int(np.prod(shape)))
    X_adv = run(make_quiet(name, threat, random_state=0), model, X, y)
    assert X_adv.shape == X.shape
    assert bool(threat.contains(X_adv, X).all())


PROPERTY_ATTACKS = {
    "pgd": lambda threat: PGD(threat, steps=2, random_state=0),
    "pgd-no-start": lambda threat: PGD(threat, steps=2, random_start=False, random_state=0),
    "fgsm": lambda threat: FGSM(threat, random_state=0),
    "fgsm-rs": lambda threat: FGSM(threat, random_start=True, random_state=0),
    "apgd-ce": lambda threat: APGD(threat, steps=3, random_state=0),
    "apgd-dlr": lambda threat: APGD(threat, loss="dlr", steps=3, random_state=0),
    "square": lambda threat: Square(threat, n_queries=4, random_state=0),
}


@pytest.mark.parametrize("name", sorted(PROPERTY_ATTACKS))
@SETTINGS
@given(problem=problems())
def test_adversarial_points_stay_in_ball_and_bounds(name, problem):
    """Over norms, radii, bounds and sample shapes (hypothesis, ``_problems.py``)."""
    threat, x, seed = problem
    model = model_for(x, seed)
    with quiet():
        x_adv = PROPERTY_ATTACKS[name](threat)(model, x, labels(x, seed))
    assert_inside(threat, x_adv, x)
    if threat.eps == 0:
        assert torch.equal(x_adv, x)


@pytest.mark.parametrize("name,norm", NAME_NORMS)
def test_eps_zero_returns_inputs(name, norm):
    X, y = toy_data()
    attack = make_quiet(name, ThreatModel(eps=0.0, norm=norm, bounds=(0, 1)), random_state=0)
    assert torch.equal(run(attack, small_mlp(), X, y), X)


def test_auto_counts_with_eps_zero():
    X, y = toy_data()
    model = small_mlp().eval()
    attack = build("auto", ThreatModel(eps=0.0))
    attack(model, X, y)
    correct = int((model(X).argmax(dim=1) == y).sum())
    assert attack.robust_ == attack.clean_correct_ == correct
    assert attack.n_points_ == len(X)


# ---------------------------------------------------------------------------- the model
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("train_mode", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_model_and_global_rng_untouched(name, train_mode, norm):
    X, y = toy_data()
    model = small_mlp()
    model.train(train_mode)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    model[-1].bias.requires_grad_(False)  # requires_grad is restored flag by flag
    state = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    needs_grad = [p.requires_grad for p in model.parameters()]
    modes = [m.training for m in model.modules()]
    torch.manual_seed(123)
    rng = torch.get_rng_state()

    threat = ThreatModel(eps=0.3, norm=norm, bounds=(0, 1))
    run(make_quiet(name, threat, random_state=0), model, X, y)

    assert torch.equal(torch.get_rng_state(), rng)
    after = model.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state)  # incl. BatchNorm stats
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters(), strict=True))
    assert [p.requires_grad for p in model.parameters()] == needs_grad
    assert [m.training for m in model.modules()] == modes
    assert model.training is train_mode


@pytest.mark.parametrize("name", NAMES)
def test_same_random_state_same_points(name):
    X, y = toy_data(n=30)
    model = small_mlp().eval()
    threat = ThreatModel(eps=0.3, bounds=(0, 1))
    first = run(make_quiet(name, threat, random_state=7, batch_size=16), model, X, y)
    second = run(make_quiet(name, threat, random_state=7, batch_size=16), model, X, y)
    assert torch.equal(first, second)


def test_square_differs_across_random_states():
    X, y = toy_data(n=30)
    model = small_mlp().eval()
    threat = ThreatModel(eps=0.3, bounds=(0, 1))
    a = Square(threat, n_queries=20, random_state=0)(model, X, y)
    b = Square(threat, n_queries=20, random_state=1)(model, X, y)
    assert not torch.equal(a, b)


# ---------------------------------------------------------------------------- APGD
def test_apgd_checkpoints_follow_the_paper():
    assert apgd_checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert apgd_checkpoints(10) == [3, 5, 6, 7, 8, 9, 10]
    assert apgd_checkpoints(1) == [1]


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("attack_cls", [APGD, PGD])
def test_reaches_the_optimum_of_a_linear_model(attack_cls, norm):
    # For logits W x + b with two classes, CE is maximal at x + eps * d, with d the
    # unit-norm steepest direction of (w_other - w_y): sign(.) or ./||.||_2.
    torch.manual_seed(0)
    model = nn.Linear(5, 2)
    X = torch.randn(40, 5)
    y = model(X).argmax(dim=1)
    w = model.weight.detach()
    diff = w[1 - y] - w[y]
    eps = 0.01  # too small to flip any of these points
    step = diff.sign() if norm == "linf" else diff / diff.norm(dim=1, keepdim=True)
    x_opt = X + eps * step
    X_adv = attack_cls(ThreatModel(eps=eps, norm=norm), steps=50, random_state=0)(model, X, y)
    with torch.no_grad():
        assert bool((model(x_opt).argmax(dim=1) == y).all())
        loss_opt = nn.functional.cross_entropy(model(x_opt), y, reduction="none")
        loss_adv = nn.functional.cross_entropy(model(X_adv), y, reduction="none")
    torch.testing.assert_close(loss_adv, loss_opt, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_clean_misclassified_points_returned_unchanged(name):
    # The clean point is in the ball: robust accuracy never exceeds clean accuracy.
    X, y = toy_data(n=30)
    model = small_mlp().eval()
    wrong = model(X).argmax(dim=1) != y
    assert wrong.any()
    X_adv = run(make_quiet(name, ThreatModel(eps=0.3), random_state=0), model, X, y)
    assert torch.equal(X_adv[wrong], X[wrong])


def test_registry():
    assert set(ATTACKS) == {"pgd", "fgsm", "apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t",
                            "square", "auto"}
    threat = ThreatModel(eps=0.1)
    assert make_attack("apgd-ce", threat).loss == "ce"
    assert make_attack("apgd-dlr", threat, steps=7).steps == 7
    assert isinstance(make_attack("apgd-t", threat), APGDTargeted)
    assert isinstance(make_attack("square", threat), Square)
    assert isinstance(make_attack("auto", threat, version="fast"), AutoAttack)


def test_losses():
    logits = torch.tensor([[3.0, 1.0, 0.0, -1.0], [0.0, 2.0, 1.0, 0.5]])
    y = torch.tensor([0, 0])
    torch.testing.assert_close(margin(logits, y), torch.tensor([2.0, -2.0]))
    torch.testing.assert_close(dlr(logits, y), torch.tensor([-2.0 / 3.0, 2.0 / 1.5]))
    # DLR ignores shifting and scaling the logits.
    torch.testing.assert_close(dlr(5 * logits + 3, y), dlr(logits, y))
    target = torch.tensor([1, 2])
    expected = torch.tensor([-2.0 / 3.5, 1.0 / 1.75])
    torch.testing.assert_close(dlr_targeted(logits, y, target), expected)
    with pytest.raises(ValueError, match="3 classes"):
        dlr(logits[:, :2], y)
    with pytest.raises(ValueError, match="4 classes"):
        dlr_targeted(logits[:, :3], y, target)


# ---------------------------------------------------------------------------- Square
class _NoBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):  # pragma: no cover - must never run
        raise AssertionError("Square took a gradient")


def test_square_uses_forward_passes_only():
    X, y = toy_data()
    model = small_mlp().eval()
    threat = ThreatModel(eps=0.3, bounds=(0, 1))

    def scores(x):  # a black box: probabilities as a numpy array
        assert not torch.is_grad_enabled()
        return model(_NoBackward.apply(x)).softmax(dim=1).numpy()

    X_adv = Square(threat, n_queries=50, random_state=0)(scores, X, y)
    assert bool(threat.contains(X_adv, X).all())
    broken = model(X_adv).argmax(dim=1) != y
    assert int(broken.sum()) > int((model(X).argmax(dim=1) != y).sum())
    again = Square(threat, n_queries=50, random_state=0)(scores, X, y)
    assert torch.equal(X_adv, again)


def test_square_p_schedule():
    square = Square(ThreatModel(eps=0.1), n_queries=10000)
    ps = [square.p_schedule(i) for i in (0, 10, 11, 50, 51, 8000, 8001, 9999)]
    assert ps == [0.8, 0.8, 0.4, 0.4, 0.2, 0.8 / 256, 0.8 / 512, 0.8 / 512]
    # Rescaled to the budget: with 100 queries, iteration 1 is iteration 100 of 10000.
    assert Square(ThreatModel(eps=0.1), n_queries=100).p_schedule(1) == 0.8 / 4


def test_uses_gradients_flags():
    threat = ThreatModel(eps=0.1)
    for name in NAMES:
        expected = name != "square"
        assert ATTACKS[name].uses_gradients is expected
        assert make_quiet(name, threat).uses_gradients is expected


# ---------------------------------------------------------------------------- few classes
@pytest.mark.filterwarnings("ignore:Square \\(black box")
def test_apgd_t_and_auto_on_binary_problem_warn_and_run():
    X, y = toy_data(n=20, n_classes=2)
    model = small_mlp(n_classes=2).eval()
    threat = ThreatModel(eps=0.3, bounds=(0, 1))
    with pytest.warns(UserWarning, match="APGD-T: targeted DLR .* falling back to cross-entropy"):
        X_adv = APGDTargeted(threat, steps=5, random_state=0)(model, X, y)
    assert bool(threat.contains(X_adv, X).all())
    auto = build("auto", threat, random_state=0)
    with pytest.warns(UserWarning, match="APGD-T stage is skipped"):
        X_adv = auto(model, X, y)
    assert bool(threat.contains(X_adv, X).all())
    assert "apgd-t" not in auto.stage_counts_
    assert set(auto.stage_counts_) == {"apgd-ce", "fab-t", "square"}


def test_fallbacks_with_three_classes_and_dlr_on_two():
    threat = ThreatModel(eps=0.3, bounds=(0, 1))
    X, y = toy_data(n=20, n_classes=3)
    with pytest.warns(UserWarning, match="falling back to untargeted DLR"):
        APGDTargeted(threat, steps=5, random_state=0)(small_mlp(n_classes=3).eval(), X, y)
    X, y = toy_data(n=20, n_classes=2)
    expected = "APGD-DLR: DLR .* falling back to cross-entropy"
    with pytest.warns(UserWarning, match=expected) as record:
        APGD(threat, loss="dlr", steps=5, restarts=3, batch_size=8)(
            small_mlp(n_classes=2).eval(), X, y
        )
    assert len([w for w in record if "cross-entropy" in str(w.message)]) == 1  # once


def test_auto_stages_follow_autoattack_for_every_norm_and_version():
    for norm in ("linf", "l2"):
        auto = AutoAttack(ThreatModel(eps=0.5, norm=norm))
        assert list(auto.attacks) == ["apgd-ce", "apgd-t", "fab-t", "square"]
        square = auto.attacks["square"]
        assert (square.n_queries, square.rescale_schedule) == (5000, False)
        assert auto.attacks["fab-t"].steps == auto.attacks["apgd-t"].steps == 100
        assert auto.attacks["fab-t"].n_target_classes == 9
    rand = AutoAttack(ThreatModel(eps=0.5), version="rand")
    assert list(rand.attacks) == ["apgd-ce", "apgd-dlr"]
    assert all(stage.eot_iter == 20 for stage in rand.attacks.values())
    fast = AutoAttack(ThreatModel(eps=0.5), version="fast")
    assert fast.attacks["square"].rescale_schedule and fast.attacks["fab-t"].steps == 20


# ---------------------------------------------------------------------------- one loss rule
@pytest.mark.parametrize("name,n_classes,expected", [
    ("ce", 2, "ce"), ("dlr", 3, "dlr"), ("dlr", 2, "ce"), ("dlr-targeted", 4, "dlr-targeted"),
    ("dlr-targeted", 3, "dlr"), ("dlr-targeted", 2, "ce"), ("dlr-targeted", 10, "dlr-targeted"),
])
def test_one_fallback_rule(name, n_classes, expected):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert resolve_loss(name, n_classes, "me") == expected
    messages = [str(w.message) for w in record]
    if expected == name:
        assert messages == []
    else:
        assert len(messages) == 1
        assert messages[0].startswith("me: ") and "falling back to" in messages[0]
    assert expected in LOSSES


@pytest.mark.parametrize("make", [
    lambda threat: PGD(threat, steps=3, loss="dlr", restarts=2, batch_size=8),
    lambda threat: APGD(threat, steps=3, loss="dlr", restarts=2, batch_size=8),
    lambda threat: APGDTargeted(threat, steps=3, restarts=2, batch_size=8),
], ids=["pgd", "apgd", "apgd-t"])
def test_fallback_warns_once_per_call(make):
    # Every attack with a DLR loss takes the same rule; 3 batches, one warning a call.
    X, y = toy_data(n=20, n_classes=2)
    attack, model = make(ThreatModel(eps=0.3, bounds=(0, 1))), small_mlp(n_classes=2).eval()
    for _ in range(2):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            attack(model, X, y)
        fallbacks = [w for w in record if "falling back to cross-entropy" in str(w.message)]
        assert len(fallbacks) == 1


def test_auto_warns_once_per_call_on_three_classes():
    X, y = toy_data(n=20, n_classes=3)
    auto = build("auto", ThreatModel(eps=0.3, bounds=(0, 1)), random_state=0, batch_size=8)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        auto(small_mlp(n_classes=3).eval(), X, y)
    assert len([w for w in record if "untargeted DLR" in str(w.message)]) == 1


# ---------------------------------------------------------------------------- schedules
SCHEDULE = {"steps": 3, "step_size": 0.05, "restarts": 2}


@pytest.mark.parametrize("name", NAMES)
def test_schedule_params_are_accepted_and_the_others_refused(name):
    factory = ATTACKS[name]
    assert set(factory.schedule_params) <= set(SCHEDULE)
    threat = ThreatModel(eps=0.1)
    for key, value in SCHEDULE.items():
        if key in factory.schedule_params:
            assert getattr(make_quiet(name, threat, **{key: value}), key) == value
        else:
            with pytest.raises(TypeError):
                make_quiet(name, threat, **{key: value})


def test_schedule_params_declared_by_every_class():
    expected = {PGD: ("steps", "step_size", "restarts"), FGSM: (), APGD: ("steps", "restarts"),
                APGDTargeted: ("steps", "restarts"), Square: (), AutoAttack: ("steps",),
                Cascade: ()}
    assert {cls: cls.schedule_params for cls in expected} == expected


def test_pgd_and_fgsm_schedules():
    threat = ThreatModel(eps=0.2)
    pgd = PGD(threat)
    assert (pgd.steps, pgd.step_size, pgd.restarts) == (20, None, 1)
    assert step_length(threat.eps, pgd.steps, pgd.step_size) == pytest.approx(0.025)
    fgsm = FGSM(threat)
    assert fgsm.threat is threat  # one step of eps, no rebuilt threat model
    assert (fgsm.steps, fgsm.step_size, fgsm.random_start) == (1, 0.2, False)
    assert FGSM(threat, random_start=True).step_size == pytest.approx(0.25)


# ---------------------------------------------------------------------------- cascade
class Recorder(Attack):
    """Wraps an attack; records which points it is given."""

    def __init__(self, inner):
        super().__init__(inner.threat)
        self.inner, self.seen = inner, []

    def perturb(self, module, x, y, generator):
        self.seen.append(x.clone())
        return self.inner.perturb(module, x, y, generator)


def test_cascade_is_the_worst_case_per_point():
    # Two deterministic attacks (no random start): each point's outcome in the cascade is
    # its outcome alone, so the cascade breaks exactly the union of what each breaks.
    X, y = toy_data(n=60)
    model = small_mlp().eval()
    threat = ThreatModel(eps=0.1, bounds=(0, 1))
    fgsm = FGSM(threat)
    pgd = PGD(threat, steps=3, loss="dlr", random_start=False)
    cascade = Cascade(threat, [fgsm, ("pgd-dlr", pgd)], random_state=0)
    X_adv = cascade(model, X, y)
    assert bool(threat.contains(X_adv, X).all())
    with torch.no_grad():
        fooled = {name: model(Z).argmax(dim=1) != y
                  for name, Z in (("fgsm", fgsm(model, X, y)), ("pgd", pgd(model, X, y)),
                                  ("cascade", X_adv))}
    assert torch.equal(fooled["cascade"], fooled["fgsm"] | fooled["pgd"])
    broken = int(fooled["cascade"].sum())
    assert broken >= max(int(fooled["fgsm"].sum()), int(fooled["pgd"].sum()))
    assert broken > int(fooled["fgsm"].sum())  # the second stage adds points
    assert list(cascade.stage_counts_) == ["fgsm", "pgd-dlr"]
    assert cascade.n_points_ == 60
    assert cascade.clean_correct_ == 60 - n_broken(model, X, y)
    assert cascade.robust_ == 60 - broken
    assert sum(cascade.stage_counts_.values()) == cascade.clean_correct_ - cascade.robust_
    assert cascade.uses_gradients
    assert not Cascade(threat, [Square(threat)]).uses_gradients


def test_cascade_attacks_only_the_points_still_standing():
    X, y = toy_data(n=40)
    model = small_mlp().eval()
    with torch.no_grad():
        y[:30] = model(X[:30]).argmax(dim=1)  # most points correct: something to attack
    threat = ThreatModel(eps=0.1, bounds=(0, 1))
    first = Recorder(PGD(threat, steps=3))
    second = Recorder(APGD(threat, steps=5))
    cascade = Cascade(threat, [("first", first), ("second", second)], random_state=0)
    X_adv = cascade(model, X, y)
    (seen_first,), (seen_second,) = first.seen, second.seen
    with torch.no_grad():
        correct = model(X).argmax(dim=1) == y
        fooled = model(X_adv).argmax(dim=1) != y
    assert torch.equal(seen_first, X[correct])  # only the clean-correct points
    n_first = cascade.stage_counts_["first"]
    assert 0 < n_first and seen_second.shape[0] == int(correct.sum()) - n_first
    # The second stage sees none of the points the first one broke.
    broken_by_first = correct & fooled & ~(X[:, None] == seen_second[None]).all(-1).any(1)
    assert int(broken_by_first.sum()) == n_first
    assert torch.equal(X_adv[~correct], X[~correct])


def test_cascade_keeps_each_stage_s_example_and_matches_auto():
    X, y = toy_data(n=30)
    model = small_mlp().eval()
    threat = ThreatModel(eps=0.3, bounds=(0, 1))
    auto = AutoAttack(threat, steps=5, n_target_classes=2, n_queries=30, random_state=3)
    stages = [("apgd-ce", APGD(threat, steps=5)),
              ("apgd-t", APGDTargeted(threat, steps=5, n_target_classes=2)),
              ("fab-t", FABTargeted(threat, steps=5, n_target_classes=2)),
              ("square", Square(threat, n_queries=30, rescale_schedule=False))]
    cascade = Cascade(threat, stages, random_state=3)
    assert torch.equal(auto(model, X, y), cascade(model, X, y))  # same stream, same points
    assert auto.stage_counts_ == cascade.stage_counts_
    assert (auto.clean_correct_, auto.robust_) == (cascade.clean_correct_, cascade.robust_)


def test_cascade_refuses_other_threats_and_bad_stages():
    threat = ThreatModel(eps=0.1)
    with pytest.raises(ValueError, match="different threat"):
        Cascade(threat, [PGD(ThreatModel(eps=0.2))])
    with pytest.raises(ValueError, match="different threat"):
        Cascade(threat, [("a", PGD(threat)), ("b", PGD(ThreatModel(eps=0.1, norm="l2")))])
    with pytest.raises(ValueError, match="named 'pgd'"):
        Cascade(threat, [PGD(threat), PGD(threat, steps=3)])
    with pytest.raises(ValueError, match="at least one"):
        Cascade(threat, [])
    with pytest.raises(TypeError, match="Attack instances"):
        Cascade(threat, ["pgd"])
    Cascade(threat, {"a": PGD(ThreatModel(eps=0.1, bounds=(0, 1)))})  # bounds may differ


# ---------------------------------------------------------------------------- bad input
def test_bad_input():
    with pytest.raises(ValueError, match="'nope'"):
        make_attack("nope", ThreatModel(eps=0.1))
    with pytest.raises(ValueError, match="'rescale_schedule' parameter of Square"):
        Square(ThreatModel(eps=0.1, norm="l2"), rescale_schedule="no")
    with pytest.raises(ValueError, match="'beta' parameter of FAB"):
        FAB(ThreatModel(eps=0.1), beta=0.0)
    with pytest.raises(ValueError, match="'eot_iter' parameter of APGD"):
        APGD(ThreatModel(eps=0.1), eot_iter=0)
    with pytest.raises(ValueError, match="'steps' parameter of APGD"):
        APGD(ThreatModel(eps=0.1), steps=0)
    with pytest.raises(ValueError, match="'restarts' parameter of PGD"):
        PGD(ThreatModel(eps=0.1), restarts=0)
    with pytest.raises(ValueError, match="'step_size' parameter of PGD"):
        PGD(ThreatModel(eps=0.1), step_size=-1.0)
    with pytest.raises(ValueError, match="'batch_size' parameter of PGD"):
        PGD(ThreatModel(eps=0.1), batch_size=0)
    with pytest.raises(ValueError, match="'steps' parameter of AutoAttack"):
        AutoAttack(ThreatModel(eps=0.1), steps=True)
    with pytest.raises(ValueError, match="loss"):
        APGD(ThreatModel(eps=0.1), loss="hinge")
    with pytest.raises(ValueError, match="version"):
        AutoAttack(ThreatModel(eps=0.1), version="plus")
    with pytest.raises(ValueError, match="p_init"):
        Square(ThreatModel(eps=0.1), p_init=1.5)
    with pytest.raises(TypeError):
        PGD(0.1)


@pytest.mark.parametrize("name", NAMES)
def test_length_mismatch_raises(name):
    X, y = toy_data()
    attack = make_quiet(name, ThreatModel(eps=0.1))
    with pytest.raises(ValueError, match="different lengths"):
        attack(small_mlp().eval(), X, y[:-1])


# ---------------------------------------------------------------------------- strength
EPS = 0.1


@pytest.fixture(scope="module")
def digits_mlp():
    """A naturally trained MLP on digits (X / 16 in [0, 1]) and 300 held-out points."""
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16, dtype=torch.float32)
    y = torch.tensor(y)
    perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(0))
    train, test = perm[:1400], perm[1400:1700]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X[train]), y[train]).backward()
        optimizer.step()
    model.eval()
    for p in model.parameters():
        p.grad = None
    X_test, y_test = X[test], y[test]
    assert (model(X_test).argmax(dim=1) == y_test).float().mean() > 0.9
    return model, X_test, y_test


def n_broken(model, X_adv, y):
    with torch.no_grad():
        return int((model(X_adv).argmax(dim=1) != y).sum())


@pytest.fixture(scope="module")
def strength(digits_mlp):
    """Broken counts at l_inf eps 0.1 of our attacks and torchattacks.PGD (same budget)."""
    import torchattacks  # the reference, imported only where it is used
    model, X, y = digits_mlp
    threat = ThreatModel(eps=EPS, bounds=(0, 1))
    alpha = step_length(EPS, 20)
    counts = {"clean": n_broken(model, X, y)}
    # Without random start both PGDs walk the same path: a like-for-like check.
    ta = torchattacks.PGD(model, eps=EPS, alpha=alpha, steps=20, random_start=False)
    counts["torchattacks-pgd-nostart"] = n_broken(model, ta(X, y), y)
    ours = PGD(threat, steps=20, random_start=False)
    counts["pgd-nostart"] = n_broken(model, ours(model, X, y), y)
    seeds = range(5)
    counts["torchattacks-pgd"], counts["pgd"] = [], []
    for seed in seeds:
        torch.manual_seed(seed)
        ta = torchattacks.PGD(model, eps=EPS, alpha=alpha, steps=20, random_start=True)
        counts["torchattacks-pgd"].append(n_broken(model, ta(X, y), y))
        pgd = PGD(threat, steps=20, random_state=seed)
        counts["pgd"].append(n_broken(model, pgd(model, X, y), y))
    counts["apgd-ce"] = [
        n_broken(model, APGD(threat, random_state=seed)(model, X, y), y) for seed in seeds
    ]
    auto = AutoAttack(threat, steps=100, n_target_classes=9, n_queries=300, random_state=0)
    counts["auto"] = n_broken(model, auto(model, X, y), y)
    counts["auto-stages"] = dict(auto.stage_counts_)
    print("\nbroken of", len(y), "at eps", EPS, counts)
    return counts


def test_pgd_at_least_as_strong_as_torchattacks(strength):
    assert strength["pgd-nostart"] >= strength["torchattacks-pgd-nostart"]
    # Random starts differ: compare the means over 5 seeds, within one point.
    assert np.mean(strength["pgd"]) >= np.mean(strength["torchattacks-pgd"]) - 1
    assert min(strength["pgd"]) > strength["clean"] + 100  # the budget matters


def test_apgd_and_auto_at_least_as_strong_as_pgd(strength):
    assert np.mean(strength["apgd-ce"]) >= np.mean(strength["pgd"]) - 1
    assert strength["auto"] >= max(strength["pgd"] + strength["apgd-ce"])
    stages = strength["auto-stages"]
    assert strength["auto"] == strength["clean"] + sum(stages.values())
    assert stages["apgd-t"] > 0  # targeted DLR adds to untargeted CE on digits


def test_auto_counts_are_consistent(digits_mlp):
    model, X, y = digits_mlp
    X, y = X[:60], y[:60]
    auto = AutoAttack(ThreatModel(eps=EPS, bounds=(0, 1)), version="fast", random_state=0)
    X_adv = auto(model, X, y)
    assert auto.n_points_ == 60
    assert auto.clean_correct_ == 60 - n_broken(model, X, y)
    assert auto.robust_ == 60 - n_broken(model, X_adv, y)
    assert auto.clean_correct_ - sum(auto.stage_counts_.values()) == auto.robust_


class _ZeroGrad(torch.autograd.Function):
    """Identity forward, zero backward: the input gradient carries no information."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return torch.zeros_like(grad)


class GradientMasked(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(_ZeroGrad.apply(x))


def test_square_exposes_gradient_masking(digits_mlp):
    model, X, y = digits_mlp
    masked = GradientMasked(model)
    threat = ThreatModel(eps=EPS, bounds=(0, 1))
    pgd = n_broken(model, PGD(threat, steps=20, random_state=0)(masked, X, y), y)
    gained = pgd - n_broken(model, X, y)
    assert gained <= 5  # the gradient attack finds (almost) nothing
    auto = AutoAttack(threat, steps=20, n_target_classes=3, n_queries=300, random_state=0)
    with pytest.warns(UserWarning, match="gradient masking"):
        X_adv = auto(masked, X, y)
    stages = auto.stage_counts_
    print("\nmasked model: pgd broke", pgd, "auto broke", n_broken(model, X_adv, y), stages)
    # Gradient stages only profit from their random starts; Square does the work.
    assert stages["apgd-ce"] + stages["apgd-t"] <= 10
    assert stages["square"] >= 0.2 * len(y)
    # The cascade's robust accuracy is far below what the gradient attack suggests.
    assert n_broken(model, X_adv, y) >= pgd + 0.2 * len(y)
