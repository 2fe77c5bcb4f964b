"""The other methods of the papers: RST, GR, LLR, Fast AT and SCORE's distances.

Losses are checked against hand computations on a fixed 3x3 linear network (input
gradients of its cross-entropy written out analytically: ``W^T (softmax - onehot)``),
the inner maximisations against BatchNorm/dropout/gradient side effects, and each new
estimator against natural training under PGD.
"""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _nets import BNDropoutNet
from sklearn.base import clone
from skorch.callbacks import Callback

from sklearn_robust import (
    ATClassifier,
    FastATClassifier,
    GRClassifier,
    LLRClassifier,
    NaturalClassifier,
    RSTClassifier,
    SCOREClassifier,
    ThreatModel,
    TRADESClassifier,
)
from sklearn_robust.attacks import PGD
from sklearn_robust.objectives import (
    DISTANCES,
    LLR,
    RST,
    SCORE,
    TRADES,
    FastAdversarial,
    GradientRegularization,
    PGDAdversarial,
)

NEW = [RSTClassifier, GRClassifier, LLRClassifier, FastATClassifier]

X = torch.tensor([[0.2, 0.4, 0.6], [0.9, 0.1, 0.3]])
Y = torch.tensor([0, 2])


# ---------------------------------------------------------------- hand computations
def tiny_net():
    net = torch.nn.Linear(3, 3)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 1.0, 1.0], [2.0, 0.0, -1.0]]))
        net.bias.copy_(torch.tensor([0.1, -0.2, 0.0]))
    return net


def ce(net, x, y=Y):
    """Per-sample cross-entropy, written out."""
    logits = x @ net.weight.T + net.bias
    return logits.logsumexp(dim=1) - logits[torch.arange(len(y)), y]


def ce_grad(net, x, y=Y):
    """Per-sample input gradient of the cross-entropy: ``W^T (softmax(Wx + b) - onehot)``."""
    p = torch.softmax(x @ net.weight.T + net.bias, dim=1)
    return (p - F.one_hot(y, 3).to(p.dtype)) @ net.weight


def project_linf(x_adv, x, eps):
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)


def uniform_start(x, eps):
    return (x + (2 * torch.rand(x.shape) - 1) * eps).clamp(0, 1)


def param_grads(net, loss):
    net.zero_grad()
    loss.backward()
    return [p.grad.clone() for p in net.parameters()]


def test_rst_loss_matches_hand_computation():
    net = tiny_net()
    threat = ThreatModel(eps=0.1, bounds=(0, 1))
    torch.manual_seed(7)
    loss, logits = RST(lam=2.0, steps=2, step_size=0.05)(net, X, Y, threat)
    torch.manual_seed(7)
    x_adv = uniform_start(X, 0.1)
    for _ in range(2):
        x_adv = project_linf(x_adv + 0.05 * ce_grad(net, x_adv).sign(), X, 0.1).detach()
    expected = ce(net, X).mean() + 2.0 * ce(net, x_adv).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(logits, net(X))  # the clean logits are reported
    for got, want in zip(param_grads(net, loss), param_grads(net, expected), strict=True):
        torch.testing.assert_close(got, want)


def smoothed_ce(logits, y, ls):
    """Cross-entropy against targets ``1 - ls`` (true class), ``ls / (C - 1)`` (others)."""
    log_p = logits.log_softmax(dim=1)
    n_classes = logits.shape[1]
    true = log_p[torch.arange(len(y)), y]
    others = log_p.sum(dim=1) - true
    return -((1 - ls) * true + ls / (n_classes - 1) * others).mean()


@pytest.mark.parametrize("objective", [PGDAdversarial, TRADES])
def test_label_smoothing_changes_only_the_label_term(objective):
    """``ls`` smooths the targets of the cross-entropy; the attack is the same."""
    net = tiny_net()
    threat = ThreatModel(eps=0.1, bounds=(0, 1))
    torch.manual_seed(5)
    hard, logits_hard = objective(ls=0.0, steps=2, step_size=0.05)(net, X, Y, threat)
    torch.manual_seed(5)
    soft, logits = objective(ls=0.3, steps=2, step_size=0.05)(net, X, Y, threat)
    torch.testing.assert_close(logits, logits_hard)  # same adversarial points
    hard_ce = F.cross_entropy(logits, Y)
    assert smoothed_ce(logits, Y, 0.0).item() == pytest.approx(hard_ce.item(), rel=1e-6)
    expected = hard - hard_ce + smoothed_ce(logits, Y, 0.3)
    assert soft.item() == pytest.approx(expected.item(), rel=1e-5)
    assert soft.item() != pytest.approx(hard.item(), rel=1e-3)


@pytest.mark.parametrize("norm", ["linf", "l2", None])
@pytest.mark.parametrize("weighting,scale", [("mean", 1.0), ("yang2020", 0.25)])
def test_gr_loss_matches_hand_computation(norm, weighting, scale):
    net = tiny_net()
    threat = None if norm is None else ThreatModel(eps=0.1, norm=norm, bounds=(0, 1))
    loss, logits = GradientRegularization(lam=0.5, h=0.3, weighting=weighting)(
        net, X, Y, threat)
    grad = ce_grad(net, X).detach()
    # the l2-normalised gradient whatever the threat (the reference code's direction)
    direction = grad / grad.norm(dim=1, keepdim=True)
    # Neither projected nor clamped: x + h d leaves [0, 1] here, on purpose.
    finite_difference = (ce(net, X + 0.3 * direction) - ce(net, X)) / 0.3
    expected = ce(net, X).mean() + scale * 0.5 * finite_difference.pow(2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(logits, net(X))
    # d is a constant (no double back-propagation): parameter gradients agree with the
    # hand expression in which the direction is detached.
    for got, want in zip(param_grads(net, loss), param_grads(net, expected), strict=True):
        torch.testing.assert_close(got, want)


def test_gr_finite_difference_approximates_l2_norm_of_gradient():
    """Small h: the penalty tends to ||grad||_2^2, whatever the threat's norm."""
    net = tiny_net()
    grad = ce_grad(net, X).detach()
    base = ce(net, X).mean().item()
    for threat in (ThreatModel(eps=0.1, norm="linf"), ThreatModel(eps=0.1, norm="l2"), None):
        loss, _ = GradientRegularization(lam=1.0, h=1e-3)(net, X, Y, threat)
        assert loss.item() - base == pytest.approx(grad.norm(dim=1).pow(2).mean().item(),
                                                   rel=1e-2)


def test_gr_yang2020_weighting_has_the_reference_gradient_direction():
    """Reference: 2 * sum CE + lam * sum fd^2 / 2 (CE counted twice); ours is 1 / (2B) of it."""
    net = tiny_net()
    loss, _ = GradientRegularization(lam=0.7, h=0.5, weighting="yang2020")(net, X, Y, None)
    direction = ce_grad(net, X).detach()
    direction = direction / direction.norm(dim=1, keepdim=True)
    fd = (ce(net, X + 0.5 * direction) - ce(net, X)) / 0.5
    reference = 2 * ce(net, X).sum() + 0.7 * fd.pow(2).sum() / 2
    for got, want in zip(param_grads(net, loss), param_grads(net, reference), strict=True):
        torch.testing.assert_close(got * 2 * len(X), want)


def test_llr_loss_matches_hand_computation():
    net = tiny_net()
    # The schedule is the objective's: 2 steps of 0.04.
    threat = ThreatModel(eps=0.1, bounds=(0, 1))
    torch.manual_seed(11)
    loss, logits = LLR(lam=4.0, mu=3.0, steps=2, step_size=0.04)(net, X, Y, threat)
    torch.manual_seed(11)
    x_adv = uniform_start(X, 0.1)
    loss0, grad0 = ce(net, X).detach(), ce_grad(net, X).detach()
    for _ in range(2):
        residual = ce(net, x_adv) - loss0 - ((x_adv - X) * grad0).sum(1)
        ascent = residual.sign()[:, None] * (ce_grad(net, x_adv) - grad0)
        x_adv = project_linf(x_adv + 0.04 * ascent.sign(), X, 0.1).detach()
    delta = x_adv - X
    linear = (delta * ce_grad(net, X)).sum(1)  # differentiable in W, b: double backprop
    gap = (ce(net, x_adv) - ce(net, X) - linear).abs()
    expected = (ce(net, X) + 4.0 * gap + 3.0 * linear.abs()).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert gap.min().item() > 0  # the search found curvature to penalise
    torch.testing.assert_close(logits, net(X))
    for got, want in zip(param_grads(net, loss), param_grads(net, expected), strict=True):
        torch.testing.assert_close(got, want)


def test_llr_default_schedule_and_step_length():
    from sklearn_robust.threat import step_length

    assert (LLR().steps, LLR().step_size) == (2, None)
    assert step_length(0.2, LLR(steps=4).steps) == pytest.approx(0.125)
    with pytest.raises(ValueError, match="'steps' parameter of LLR"):
        LLR(steps=0)  # LLR needs a search


@pytest.mark.parametrize("step_size,alpha", [(None, 0.125), (0.03, 0.03)])
def test_fast_at_loss_matches_hand_computation(step_size, alpha):
    net = tiny_net()
    threat = ThreatModel(eps=0.1, bounds=(0, 1))
    torch.manual_seed(13)
    loss, logits = FastAdversarial(step_size=step_size)(net, X, Y, threat)
    torch.manual_seed(13)
    x0 = uniform_start(X, 0.1)
    x_adv = project_linf(x0 + alpha * ce_grad(net, x0).sign(), X, 0.1).detach()
    expected = ce(net, x_adv).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(logits, net(x_adv))  # the adversarial logits are reported


# SCORE's distances, written independently of the library, on probability vectors.
HAND_DISTANCES = {
    "se": lambda p, q: (p - q).pow(2).sum(1),
    "kl": lambda p, q: (p * (p / q).log()).sum(1),
    "js": lambda p, q: 0.5 * (p * (2 * p / (p + q)).log()).sum(1)
    + 0.5 * (q * (2 * q / (p + q)).log()).sum(1),
    "l1": lambda p, q: (p - q).abs().sum(1),
    "l2": lambda p, q: (p - q).pow(2).sum(1).sqrt(),
}


def score_by_hand(net, distance, beta, ls, clip, seed, steps=2, step=0.05, eps=0.1):
    dist = HAND_DISTANCES[distance]
    torch.manual_seed(seed)
    x_adv = uniform_start(X, eps)  # the SCORE reference code's start
    p_clean = torch.softmax(net(X), 1).detach()
    for _ in range(steps):  # the attack maximises the unclipped distance
        x_adv.requires_grad_(True)
        (g,) = torch.autograd.grad(dist(p_clean, torch.softmax(net(x_adv), 1)).sum(), x_adv)
        x_adv = project_linf(x_adv.detach() + step * g.sign(), X, eps)
    p, q = torch.softmax(net(X), 1), torch.softmax(net(x_adv), 1)
    y_ls = torch.full((2, 3), ls / 2).scatter_(1, Y[:, None], 1 - ls)
    robust = dist(p, q)
    clipped = robust if clip is None else F.relu(robust - clip)
    return (p - y_ls).pow(2).sum(1).mean() + beta * clipped.mean(), robust


@pytest.mark.parametrize("distance", sorted(HAND_DISTANCES))
def test_score_distances_match_hand_computation(distance):
    net = tiny_net()
    threat = ThreatModel(eps=0.1, bounds=(0, 1))
    torch.manual_seed(5)
    loss, _ = SCORE(beta=3.0, distance=distance, ls=0.1, clip=None, steps=2, step_size=0.05)(
        net, X, Y, threat)
    expected, robust = score_by_hand(net, distance, 3.0, 0.1, None, seed=5)
    assert robust.min().item() > 1e-4  # the robust term is exercised
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    for got, want in zip(param_grads(net, loss), param_grads(net, expected), strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("distance", ["se", "kl"])
def test_score_clip_matches_hand_computation(distance):
    net = tiny_net()
    threat = ThreatModel(eps=0.1, bounds=(0, 1))
    schedule = dict(steps=2, step_size=0.05)
    _, robust = score_by_hand(net, distance, 3.0, 0.0, None, seed=9)
    clip = robust.mean().item()  # between the two samples' terms: one is clipped to 0
    assert robust.min().item() < clip < robust.max().item()
    torch.manual_seed(9)
    loss, _ = SCORE(beta=3.0, distance=distance, clip=clip, **schedule)(net, X, Y, threat)
    expected, _ = score_by_hand(net, distance, 3.0, 0.0, clip, seed=9)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    torch.manual_seed(9)
    unclipped, _ = SCORE(beta=3.0, distance=distance, **schedule)(net, X, Y, threat)
    assert loss.item() < unclipped.item()


def test_distances_on_known_vectors():
    p = torch.tensor([[0.8, 0.2], [1.0, 0.0]])
    q = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    log_p, log_q = p.log(), q.log()
    expected = {
        "se": [0.18, 0.5],
        "kl": [0.8 * math.log(1.6) + 0.2 * math.log(0.4), math.log(2)],
        "js": [
            0.5 * (0.8 * math.log(0.8 / 0.65) + 0.2 * math.log(0.2 / 0.35))
            + 0.5 * (0.5 * math.log(0.5 / 0.65) + 0.5 * math.log(0.5 / 0.35)),
            0.75 * math.log(4 / 3),
        ],
        "l1": [0.6, 1.0],
        "l2": [math.sqrt(0.18), math.sqrt(0.5)],
    }
    assert sorted(DISTANCES) == sorted(expected)
    for name, values in expected.items():
        torch.testing.assert_close(DISTANCES[name](log_p, log_q), torch.tensor(values))
        # a zero probability (log = -inf) gives finite values and gradients
        logits = torch.tensor([[3.0, -1.0], [0.0, -200.0]], requires_grad=True)
        value = DISTANCES[name](log_p, F.log_softmax(logits, 1)).sum()
        (grad,) = torch.autograd.grad(value, logits)
        assert torch.isfinite(value) and torch.isfinite(grad).all(), name
    # the (non-squared) l2 distance has a zero, not nan, gradient where p = q
    logits = torch.zeros(1, 3, requires_grad=True)
    (grad,) = torch.autograd.grad(
        DISTANCES["l2"](torch.full((1, 3), 1 / 3).log(), F.log_softmax(logits, 1)).sum(), logits
    )
    assert torch.equal(grad, torch.zeros(1, 3))


# ---------------------------------------------------------------- side effects
def BNNet():
    return BNDropoutNet(n_features=8, n_classes=3, hidden=16)


STEPS = 2
OBJECTIVES = [  # objective, forward passes its inner maximisation makes (frozen)
    (RST(steps=STEPS), STEPS),
    (GradientRegularization(), 0),
    (LLR(steps=3), 1 + 3),
    (FastAdversarial(), 1),
    (SCORE(distance="kl", steps=STEPS), 1 + STEPS),
    (SCORE(distance="js", clip=0.01, steps=STEPS), 1 + STEPS),
    (SCORE(distance="l1", steps=STEPS), 1 + STEPS),
    (SCORE(distance="l2", steps=STEPS), 1 + STEPS),
    (TRADES(steps=STEPS), 1 + STEPS),
    (PGDAdversarial(steps=STEPS), STEPS),
]


@pytest.mark.parametrize("objective,n_frozen", OBJECTIVES, ids=lambda v: repr(v)
                         if not isinstance(v, int) else "")
def test_inner_maximisation_leaves_bn_stats_grads_and_modes(objective, n_frozen):
    """Only the train-mode passes of the outer loss may move BN statistics; no grads."""
    torch.manual_seed(0)
    module = BNNet().train()
    x, y = torch.rand(16, 8), torch.randint(0, 3, (16,))
    module(x)  # non-trivial running statistics
    for p in module.parameters():
        p.grad = torch.ones_like(p)
    before = copy.deepcopy(module)
    calls = []

    def record(mod, inputs):
        frozen = not any(p.requires_grad for p in mod.parameters())
        calls.append((mod.training, frozen, inputs[0].detach().clone()))

    handle = module.register_forward_pre_hook(record)
    threat = ThreatModel(eps=0.1, bounds=(0, 1))
    loss, _ = objective(module, x, y, threat)
    handle.remove()
    assert torch.isfinite(loss)
    # every pass is either frozen and in eval mode (the attack) or trainable in train mode
    assert all(training != frozen for training, frozen, _ in calls)
    assert sum(frozen for _, frozen, _ in calls) == n_frozen
    # replaying only the train-mode passes reproduces every buffer: the attack moved none
    with torch.no_grad():
        for training, _, inputs in calls:
            if training:
                before(inputs)
    pairs = zip(before.state_dict().items(), module.state_dict().values(), strict=True)
    for (key, want), got in pairs:
        torch.testing.assert_close(got, want, rtol=0, atol=0, msg=key)
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in module.parameters())
    assert all(m.training for m in module.modules())
    assert all(p.requires_grad for p in module.parameters())
    # and the adversarial points stayed in the ball and the bounds
    for _, frozen, inputs in calls:
        if frozen:
            assert threat.contains(inputs, x).all()


# ---------------------------------------------------------------- hyperparameters
BAD = [
    (RSTClassifier, dict(lam=-1.0), "'lam' parameter of RSTClassifier must be"),
    (RSTClassifier, dict(lam="1"), "'lam' parameter of RSTClassifier must be"),
    (GRClassifier, dict(lam=-0.1), "'lam' parameter of GRClassifier must be"),
    (GRClassifier, dict(h=0.0), "'h' parameter of GRClassifier must be"),
    (GRClassifier, dict(h=-1.0), "'h' parameter"),
    (GRClassifier, dict(weighting="sum"), "'weighting' parameter of GRClassifier must be"),
    (LLRClassifier, dict(form="paper"), "'form' parameter of LLRClassifier must be"),
    (SCOREClassifier, dict(clip="always"), "'clip' parameter of SCOREClassifier"),
    (LLRClassifier, dict(lam=-4.0), "'lam' parameter of LLRClassifier"),
    (LLRClassifier, dict(mu=-3.0), "'mu' parameter of LLRClassifier"),
    (LLRClassifier, dict(attack_steps=1.5), "'attack_steps' parameter of LLRClassifier"),
    (LLRClassifier, dict(attack_steps="2"), "'attack_steps' parameter"),
    (LLRClassifier, dict(attack_steps=0), r"'attack_steps' parameter .* range \[1, inf\)"),
    (SCOREClassifier, dict(distance="cosine"), "'distance' parameter of SCOREClassifier"),
    (SCOREClassifier, dict(clip=-0.1), "'clip' parameter"),
    (SCOREClassifier, dict(clip="0.1"), "'clip' parameter"),
    (SCOREClassifier, dict(ls=1.0), r"'ls' parameter .* range \[0.0, 1.0\)"),
    (TRADESClassifier, dict(ls=-0.1), "'ls' parameter of TRADESClassifier"),
    (ATClassifier, dict(ls=1.0), "'ls' parameter of ATClassifier"),
    (FastATClassifier, dict(eps=-0.1), "'eps' parameter of FastATClassifier"),
    (FastATClassifier, dict(step_size=0.0), "'step_size' parameter of FastATClassifier"),
]


@pytest.mark.parametrize("cls,params,match", BAD)
def test_bad_hyperparameters_rejected_before_training(cls, params, match, digits_flat):
    X_train, _, y_train, _ = digits_flat
    clf = cls(max_epochs=1, random_state=0, **params)
    assert clf.get_params()[next(iter(params))] == params[next(iter(params))]  # unchanged
    with pytest.raises(ValueError, match=match):
        clf.fit(X_train[:50], y_train[:50])
    assert not clf.initialized_


OBJECTIVE_NAMES = {"attack_steps": "steps"}


@pytest.mark.parametrize("cls,params", [
    (RSTClassifier, dict(lam=2)),
    (GRClassifier, dict(lam=0.01, h=0.5)),
    (LLRClassifier, dict(lam=6.0, mu=5.0, attack_steps=np.int64(3))),
    (FastATClassifier, dict(step_size=0.2)),
    (SCOREClassifier, dict(beta=3, distance="js", ls=0.1, clip=0.05)),
    (TRADESClassifier, dict(beta=4, ls=0.2)),
    (ATClassifier, dict(ls=0.1)),
])
def test_hyperparameters_stored_unchanged_and_reach_objective(cls, params):
    clf = cls(**params)
    for key, value in params.items():
        assert clf.get_params()[key] is value
        assert clone(clf).get_params()[key] == value
        # the schedule reaches the objective under the objective's names
        assert getattr(clf.make_objective(), OBJECTIVE_NAMES.get(key, key)) == value


# ---------------------------------------------------------------- l2 threat models
@pytest.mark.parametrize("cls", [ATClassifier, TRADESClassifier])
def test_l2_training_stays_in_the_l2_ball(cls, digits_flat):
    X_train, X_test, y_train, y_test = digits_flat
    eps = 1.0
    clf = cls(eps=eps, norm="l2", attack_steps=3, max_epochs=4, random_state=0)
    clf.fit(X_train[:600], y_train[:600])
    assert clf.threat_model_.norm == "l2"
    assert clf.score(X_test[:300], y_test[:300]) > 0.7
    # the points the objective's attack visits, recorded on a fresh batch
    x = torch.as_tensor(X_train[600:664])
    y = torch.as_tensor(np.searchsorted(clf.classes_, y_train[600:664]))
    visited = []
    handle = clf.module_.register_forward_pre_hook(
        lambda mod, inputs: visited.append(inputs[0].detach().clone())
    )
    clf.objective_(clf.module_, x, y, clf.threat_model_)
    handle.remove()
    x_adv = visited[-1]  # the last pass is the adversarial branch of the outer loss
    for points in visited:
        l2 = (points - x).flatten(1).norm(dim=1)
        assert (l2 <= eps + 1e-5).all()
        assert ((points >= 0) & (points <= 1)).all()
    l2 = (x_adv - x).flatten(1).norm(dim=1)
    linf = (x_adv - x).abs().amax(dim=1)
    assert l2.median() > 0.5 * eps  # the attack used its budget ...
    assert (linf < l2).all()  # ... spread over many pixels, as an l2 attack does


# ---------------------------------------------------------------- dropout
class DropoutModes(Callback):
    """Records the dropout layers' mode at every forward pass during training."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.modes = []
        for m in net.module_.modules():
            if isinstance(m, torch.nn.Dropout):
                m.register_forward_pre_hook(lambda mod, inputs: self.modes.append(mod.training))


@pytest.mark.parametrize("cls", NEW + [SCOREClassifier])
def test_dropout_trains_with_dropout_layers(cls, digits_flat):
    X_train, X_test, y_train, _ = digits_flat
    modes = DropoutModes()
    clf = cls(max_epochs=2, module__dropout=0.3, callbacks=[modes], random_state=0)
    clf.fit(X_train[:200], y_train[:200])
    dropouts = [m for m in clf.module_.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(dropouts) == 2 and all(m.p == 0.3 for m in dropouts)
    assert True in modes.modes  # dropout active in the outer loss
    if cls is not GRClassifier:  # GR has no attack; the others attack with dropout off
        assert False in modes.modes
    proba = clf.predict_proba(X_test[:50])
    np.testing.assert_array_equal(proba, clf.predict_proba(X_test[:50]))  # eval: no dropout
    assert np.isfinite(proba).all()


# ---------------------------------------------------------------- against natural training
EPOCHS = 8  # at 3-4 epochs the undertrained natural MLP is itself smooth; see the report
PGD_THREAT = ThreatModel(eps=0.1, bounds=(0, 1))


def clean_and_robust(clf, X, y):
    y_idx = np.searchsorted(clf.classes_, y)
    X_adv = PGD(PGD_THREAT, steps=10, random_state=0)(clf.module_, X, y_idx).numpy()
    clean = clf.predict(X) == y
    return clean.mean(), (clean & (clf.predict(X_adv) == y)).mean()


@pytest.fixture(scope="module")
def small_split(digits_flat):
    X_train, X_test, y_train, y_test = digits_flat
    return X_train[:600], X_test[:300], y_train[:600], y_test[:300]


@pytest.fixture(scope="module")
def natural_accuracies(small_split):
    X_train, X_test, y_train, y_test = small_split
    clf = NaturalClassifier(max_epochs=EPOCHS, random_state=0).fit(X_train, y_train)
    return clean_and_robust(clf, X_test, y_test)


@pytest.mark.parametrize("cls,params", [
    (TRADESClassifier, dict(attack_steps=3)),
    (RSTClassifier, dict(attack_steps=3)),
    (GRClassifier, {}),
    (LLRClassifier, {}),
    (FastATClassifier, {}),
    (SCOREClassifier, dict(attack_steps=3, distance="kl")),
    (SCOREClassifier, dict(attack_steps=3, distance="js")),
    (SCOREClassifier, dict(attack_steps=3, distance="l1")),
    (SCOREClassifier, dict(attack_steps=3, distance="l2")),
    (SCOREClassifier, dict(attack_steps=3, clip=0.01)),
], ids=["TRADES", "RST", "GR", "LLR", "FastAT", "SCORE-kl", "SCORE-js", "SCORE-l1", "SCORE-l2",
        "SCORE-se-clip"])
def test_beats_natural_under_pgd(cls, params, small_split, natural_accuracies):
    X_train, X_test, y_train, y_test = small_split
    if cls is not GRClassifier:  # GR has no ball
        params = dict(params, eps=0.1)
    clf = cls(max_epochs=EPOCHS, random_state=0, **params).fit(X_train, y_train)
    clean, robust = clean_and_robust(clf, X_test, y_test)
    nat_clean, nat_robust = natural_accuracies
    print(f"{cls.__name__}{params}: clean {clean:.3f} robust {robust:.3f}; "
          f"natural: clean {nat_clean:.3f} robust {nat_robust:.3f}")
    assert robust >= nat_robust + 0.10
    assert clean >= 0.85


def test_llr_and_gr_with_dropout_do_not_collapse(digits_flat):
    """Regression: with independent dropout masks in l(x) and l(x + delta), LLR's linearity
    term rewarded a constant network (loss stuck at ln 10, 10% accuracy)."""
    from sklearn_robust import GRClassifier, LLRClassifier

    X_train, X_test, y_train, y_test = digits_flat
    for cls in (LLRClassifier, GRClassifier):
        clf = cls(module__dropout=0.5, max_epochs=4, random_state=0).fit(X_train, y_train)
        assert clf.score(X_test, y_test) > 0.6, cls.__name__


# ---------------------------------------------------------------- parameters and schedules
@pytest.mark.parametrize("objective,params", [
    (TRADES(), dict(beta=6.0, ls=0.0, steps=10, step_size=None)),
    (SCORE(), dict(beta=4.0, distance="se", ls=0.0, clip="auto", steps=10, step_size=None)),
    (PGDAdversarial(), dict(ls=0.0, steps=10, step_size=None)),
    (RST(), dict(lam=1.0, steps=10, step_size=None)),
    (LLR(), dict(lam=4.0, mu=3.0, steps=2, step_size=None, form="qin")),
    (FastAdversarial(), dict(step_size=None)),
    (GradientRegularization(), dict(lam=0.25, h=1.0, weighting="mean")),
])
def test_objective_get_params_lists_the_constructor_arguments(objective, params):
    assert objective.get_params() == params
    assert repr(objective).startswith(type(objective).__name__ + "(")


def test_objective_replace_returns_a_new_validated_objective():
    trades = TRADES(beta=3.0, step_size=0.01)
    fewer = trades.replace(steps=3)
    assert fewer is not trades and type(fewer) is TRADES
    assert fewer.get_params() == dict(beta=3.0, ls=0.0, steps=3, step_size=0.01)
    assert trades.steps == 10  # the original is unchanged
    with pytest.raises(ValueError, match="'steps' parameter of TRADES"):
        trades.replace(steps=-1)
    with pytest.raises(ValueError, match="no parameter"):
        trades.replace(eps=0.1)  # the ball is the threat model's, not the objective's


def test_objective_steps_drive_the_inner_maximisation():
    """The schedule is the objective's: more steps, more frozen forward passes."""
    net, threat = tiny_net(), ThreatModel(eps=0.1, bounds=(0, 1))
    calls = []
    handle = net.register_forward_pre_hook(
        lambda mod, inputs: calls.append(mod.weight.requires_grad))
    for steps in (0, 1, 4):
        calls.clear()
        PGDAdversarial(steps=steps)(net, X, Y, threat)
        assert calls.count(False) == steps
    handle.remove()


def test_trades_kl_is_the_shared_kl_divergence():
    net, threat = tiny_net(), ThreatModel(eps=0.1, bounds=(0, 1))
    torch.manual_seed(3)
    loss, logits = TRADES(beta=2.0, steps=2, step_size=0.05)(net, X, Y, threat)
    torch.manual_seed(3)
    p_clean = F.softmax(net(X), 1).detach()
    x_adv = net_gaussian_ascent(net, X, p_clean, steps=2, step=0.05)
    log_p = F.log_softmax(net(X), 1)
    robust = DISTANCES["kl"](log_p, F.log_softmax(net(x_adv), 1))
    expected = F.cross_entropy(logits, Y) + 2.0 * robust.sum() / len(X)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def net_gaussian_ascent(net, x, p_clean, steps, step, eps=0.1):
    x_adv = project_linf(x + 0.001 * torch.randn_like(x), x, eps)
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        kl = DISTANCES["kl"](p_clean.log(), F.log_softmax(net(x_adv), 1)).sum()
        (grad,) = torch.autograd.grad(kl, x_adv)
        x_adv = project_linf(x_adv + step * grad.sign(), x, eps)
    return x_adv.detach()


def test_importing_the_objectives_does_not_load_the_attacks():
    import subprocess
    import sys

    code = ("import sys, sklearn_robust.objectives; "
            "print(any(m.startswith('sklearn_robust.attacks') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
