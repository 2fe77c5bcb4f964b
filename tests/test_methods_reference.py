"""The reference-code forms of issue 15: LLR 'yang2020', SCORE's clip='auto' and its uniform
start, and the Lipschitz estimator's 'yang2020' protocol, each against a hand computation
written from the reference's description (not from the library)."""

import math

import pytest
import torch
import torch.nn.functional as F

from sklearn_robust import NaturalClassifier, SCOREClassifier, ThreatModel
from sklearn_robust.metrics import local_lipschitz_score
from sklearn_robust.metrics._lipschitz import _ratios
from sklearn_robust.objectives import LLR, SCORE

X = torch.tensor([[0.2, 0.4, 0.6], [0.9, 0.1, 0.3], [0.5, 0.5, 0.05]])
Y = torch.tensor([0, 2, 1])


def tiny_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))


def grads(net, loss):
    return torch.autograd.grad(loss, list(net.parameters()))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_llr_yang2020_matches_the_reference_description(norm):
    net, eps, n = tiny_net(), 0.1, len(X)
    threat = ThreatModel(eps=eps, norm=norm, bounds=(0, 1))
    torch.manual_seed(4)
    loss, logits = LLR(lam=4.0, mu=3.0, steps=2, form="yang2020")(net, X, Y, threat)

    x = X.clone().requires_grad_(True)
    (g0,) = torch.autograd.grad(F.cross_entropy(net(x), Y, reduction="sum"), x)
    p = math.inf if norm == "linf" else 2

    def linear(delta):  # mean of the B x B matrix g_i . delta_j
        return (g0 @ delta.T).mean()

    def gap(delta):  # no l(x) in it, summed over the batch
        return (F.cross_entropy(net(X + delta), Y, reduction="sum") - linear(delta)).abs()

    torch.manual_seed(4)
    delta = 0.001 * torch.randn_like(X)
    for _ in range(2):
        delta.requires_grad_(True)
        (g,) = torch.autograd.grad(gap(delta), delta)
        delta = delta.detach() + (eps / 2) * g / g.norm(p=p, dim=1, keepdim=True)
        delta = (X + delta).clamp(0, 1) - X
        delta = torch.renorm(delta, p=p, dim=0, maxnorm=eps)  # a rescaling, also for l_inf
    expected = (F.cross_entropy(net(X), Y, reduction="sum") + 4.0 * gap(delta)
                + 3.0 * linear(delta)) / n
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    torch.testing.assert_close(logits, net(X))
    for got, want in zip(grads(net, loss), grads(net, expected), strict=True):
        torch.testing.assert_close(got, want)
    # the linear and mu terms carry no parameter gradient (grad_x l(x) is a constant)
    only_linear = LLR(lam=0.0, mu=3.0, form="yang2020")(net, X, Y, threat)[0]
    torch.testing.assert_close(
        grads(net, only_linear)[0],
        grads(net, F.cross_entropy(net(X), Y, reduction="sum") / n)[0])


def test_llr_yang2020_step_defaults_to_half_eps():
    net = tiny_net()
    threat = ThreatModel(eps=0.2, bounds=(0, 1))
    torch.manual_seed(1)
    default = LLR(form="yang2020")(net, X, Y, threat)[0]
    torch.manual_seed(1)
    explicit = LLR(form="yang2020", step_size=0.1)(net, X, Y, threat)[0]
    assert default.item() == pytest.approx(explicit.item(), rel=1e-6)


@pytest.mark.parametrize("n_classes", [3, 10])
def test_score_auto_clip_is_the_reference_bound(n_classes):
    assert SCORE(distance="l1").clip_value(n_classes) == pytest.approx(0.2)
    assert SCORE(distance="l2").clip_value(n_classes) == pytest.approx(
        0.1 * math.sqrt(n_classes / (n_classes - 1)))
    for distance in ("se", "kl", "js"):
        assert SCORE(distance=distance).clip_value(n_classes) is None
    assert SCORE(distance="l1", clip=None).clip_value(n_classes) is None
    assert SCORE(distance="se", clip=0.3).clip_value(n_classes) == 0.3


def test_score_attack_starts_uniformly_in_the_ball():
    """With no ascent step the adversarial point is the start: a uniform draw in the ball."""
    net, threat = tiny_net(), ThreatModel(eps=0.1, bounds=(0, 1))
    torch.manual_seed(2)
    loss, _ = SCORE(beta=1.0, steps=0)(net, X, Y, threat)
    torch.manual_seed(2)
    x_adv = (X + (2 * torch.rand(X.shape) - 1) * 0.1).clamp(0, 1)
    p, q = torch.softmax(net(X), 1), torch.softmax(net(x_adv), 1)
    expected = (p - F.one_hot(Y, 3)).pow(2).sum(1).mean() + (p - q).pow(2).sum(1).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_score_l1_trains_on_digits(digits_images):
    """Regression: unclipped, the l1 distance traps training at the constant predictor
    (loss 0.9, 10% accuracy); the default clip='auto' trains (86% measured)."""
    X_train, X_test, y_train, y_test = digits_images
    clf = SCOREClassifier(eps=0.1, distance="l1", attack_steps=3, max_epochs=5,
                          random_state=0).fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.75


def test_lipschitz_yang2020_is_the_ratio_at_the_last_fixed_step_iterate():
    net, eps = tiny_net(), 0.1
    threat = ThreatModel(eps=eps, bounds=(0, 1))
    got = _ratios(net, X, threat, torch.Generator().manual_seed(3), steps=10, step_size=0.003,
                  last_only=True)
    x_adv = threat.gaussian_start(X, generator=torch.Generator().manual_seed(3))
    reference = net(X).detach()

    def ratio(z):
        return (net(z) - reference).abs().sum(1) / (z - X).abs().amax(1)

    for _ in range(10):
        z = x_adv.requires_grad_(True)
        (g,) = torch.autograd.grad(ratio(z).sum(), z)
        x_adv = threat.project(z.detach() + 0.003 * g.sign(), X)
    torch.testing.assert_close(got, ratio(x_adv).detach())


def test_lipschitz_protocol_option(digits_images):
    X_train, X_test, y_train, _ = digits_images
    clf = NaturalClassifier(max_epochs=1, random_state=0).fit(X_train[:200], y_train[:200])
    yang = local_lipschitz_score(clf, X_test[:50], eps=0.1, protocol="yang2020",
                                 random_state=0)
    explicit = local_lipschitz_score(clf, X_test[:50], eps=0.1, protocol="yang2020",
                                     step_size=0.003, random_state=0)
    best = local_lipschitz_score(clf, X_test[:50], eps=0.1, random_state=0)
    assert yang == pytest.approx(explicit) and 0 < yang and yang != pytest.approx(best)
    last = local_lipschitz_score(clf, X_test[:50], eps=0.1, protocol="yang2020",
                                 step_size=0.025, random_state=0)
    best_same_step = local_lipschitz_score(clf, X_test[:50], eps=0.1, step_size=0.025,
                                           random_state=0)
    assert last <= best_same_step + 1e-9  # the best iterate is never below the last
    with pytest.raises(ValueError, match="'protocol' parameter of local_lipschitz_score"):
        local_lipschitz_score(clf, X_test[:5], eps=0.1, protocol="paper")
