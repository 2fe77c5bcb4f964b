"""Adversarial weight perturbation (AWP): the objective wrapper and the estimators' awp_gamma."""

import copy

import pytest
import torch
from _nets import BNDropoutNet
from sklearn.base import clone

from sklearn_robust import (
    ATClassifier,
    LLRClassifier,
    SCOREClassifier,
    ThreatModel,
    TRADESClassifier,
)
from sklearn_robust.callbacks import AttackStepsSchedule
from sklearn_robust.objectives import (
    LLR,
    RST,
    SCORE,
    TRADES,
    Natural,
    PerturbedWeights,
    PGDAdversarial,
    WeightPerturbation,
    inner_maximise,
    recorded_searches,
)


def mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16),
                               torch.nn.ReLU(), torch.nn.Linear(16, 3))


def batch():
    generator = torch.Generator().manual_seed(1)
    return torch.rand(12, 8, generator=generator), torch.randint(0, 3, (12,),
                                                                 generator=generator)


THREAT = ThreatModel(eps=0.1, bounds=(0, 1))
OBJECTIVES = [TRADES(steps=3), SCORE(steps=3), SCORE(distance="l1", steps=3),
              PGDAdversarial(steps=3), RST(lam=2.0, steps=3), LLR(steps=2),
              LLR(steps=2, form="yang2020")]


@pytest.mark.parametrize("objective", OBJECTIVES, ids=repr)
def test_gradient_is_the_loss_gradient_at_the_perturbed_weights(objective):
    """Against the reference's procedure, written out: a proxy copy takes one SGD ascent
    step, the per-layer difference is rescaled to gamma * ||w||, the weights of a second
    copy are moved by it in place and the loss is back-propagated there."""
    gamma = 0.02
    module, (x, y) = mlp(), batch()
    torch.manual_seed(5)
    loss, _ = WeightPerturbation(objective, gamma=gamma)(module, x, y, THREAT)
    loss.backward()

    reference = copy.deepcopy(module)
    reference.zero_grad()
    torch.manual_seed(5)
    with recorded_searches() as record:
        objective(copy.deepcopy(module), x, y, THREAT)  # the adversarial points at w
    proxy = copy.deepcopy(reference)
    with record.replayed():
        proxy_loss, _ = objective(proxy, x, y, THREAT)
    optimiser = torch.optim.SGD(proxy.parameters(), lr=0.01)
    (-proxy_loss).backward()
    optimiser.step()
    with torch.no_grad():
        for w, w_proxy in zip(reference.parameters(), proxy.parameters(), strict=True):
            if w.dim() > 1:
                diff = w_proxy - w
                w.add_(gamma * w.norm() / diff.norm() * diff)
    with record.replayed():
        reference_loss, _ = objective(reference, x, y, THREAT)
    reference_loss.backward()

    torch.testing.assert_close(loss, reference_loss, rtol=1e-5, atol=1e-6)
    for p, q in zip(module.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6)


def test_the_perturbation_raises_the_loss_on_the_same_points():
    """The offset is an ascent direction: the loss at w + v exceeds the loss at w."""
    module, (x, y) = mlp(), batch()
    objective = TRADES(steps=3)
    torch.manual_seed(0)
    perturbed, _ = WeightPerturbation(objective, gamma=0.01)(module, x, y, THREAT)
    torch.manual_seed(0)
    with recorded_searches() as record:
        plain, _ = objective(module, x, y, THREAT)
    with record.replayed():
        again, _ = objective(module, x, y, THREAT)
    assert torch.equal(plain, again)  # the replay reproduces the loss at w exactly
    assert perturbed > plain
    # and gamma -> 0 gives the objective's own loss back
    torch.manual_seed(0)
    tiny, _ = WeightPerturbation(objective, gamma=1e-9)(module, x, y, THREAT)
    torch.testing.assert_close(tiny, plain)


def test_the_search_runs_once_and_the_module_is_left_as_it_was():
    module, (x, y) = mlp(), batch()
    before = copy.deepcopy(module.state_dict())
    frozen_passes = []
    module.register_forward_pre_hook(
        lambda m, args: frozen_passes.append(not m[0].weight.requires_grad))
    loss, logits = WeightPerturbation(PGDAdversarial(steps=4))(module, x, y, THREAT)
    assert sum(frozen_passes) == 4  # the 4 attack steps, once
    assert logits.shape == (12, 3) and loss.requires_grad
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(p.requires_grad and p.grad is None for p in module.parameters())
    assert module.training


def test_batchnorm_statistics_move_once_per_batch():
    """Only the passes at w + v update the running statistics, as a plain step would."""

    class Spy(TRADES):  # TRADES, keeping the networks it was called with
        seen = []

        def __call__(self, module, x, y, threat):
            self.seen.append(module)
            return super().__call__(module, x, y, threat)

    torch.manual_seed(0)
    net = BNDropoutNet(n_features=8, n_classes=3, hidden=16, dropout=0.0).train()
    x, y = batch()
    plain, awp, replayed = copy.deepcopy(net), copy.deepcopy(net), copy.deepcopy(net)
    torch.manual_seed(3)
    with recorded_searches() as record:
        TRADES(steps=2)(plain, x, y, THREAT)
    torch.manual_seed(3)
    WeightPerturbation(Spy(steps=2))(awp, x, y, THREAT)
    first, second = Spy.seen
    assert first is awp and isinstance(second, PerturbedWeights)
    bn_plain, bn_awp = plain.body[1], awp.body[1]
    assert bn_awp.num_batches_tracked == bn_plain.num_batches_tracked == 2
    # the statistics are exactly those of the passes at w + v on the recorded points
    with record.replayed():
        TRADES(steps=2)(PerturbedWeights(replayed, second.offsets), x, y, THREAT)
    assert torch.equal(bn_awp.running_mean, replayed.body[1].running_mean)
    assert torch.equal(bn_awp.running_var, replayed.body[1].running_var)
    assert not torch.equal(bn_awp.running_mean, bn_plain.running_mean)


def test_a_replay_refuses_a_search_it_did_not_record():
    module, (x, _) = mlp(), batch()
    with recorded_searches() as record:
        inner_maximise(module, x, THREAT, lambda z: z[:, 0], steps=1)
    with record.replayed(), pytest.raises(RuntimeError, match="searched 2 times"):
        inner_maximise(module, x, THREAT, lambda z: z[:, 0], steps=1)
        inner_maximise(module, x, THREAT, lambda z: z[:, 0], steps=1)


def test_perturbed_weights_are_differentiable_offsets():
    module = mlp()
    offsets = {"0.weight": torch.full((16, 8), 0.1)}
    x = torch.rand(3, 8)
    out = PerturbedWeights(module, offsets)(x)
    moved = copy.deepcopy(module)
    with torch.no_grad():
        moved[0].weight.add_(0.1)
    torch.testing.assert_close(out, moved(x))
    out.sum().backward()  # the offsets move the weights; the gradient is the moved net's
    moved(x).sum().backward()
    torch.testing.assert_close(module[0].weight.grad, moved[0].weight.grad)
    assert float(module[0].weight.grad.abs().sum()) > 0


def test_wrapper_parameters_schedule_and_validation():
    awp = WeightPerturbation(TRADES(beta=3.0, steps=4), gamma=0.01)
    params = awp.get_params()
    assert set(params) == {"objective", "gamma"} and params["gamma"] == 0.01
    assert params["objective"].get_params()["beta"] == 3.0
    assert (awp.steps, awp.step_size) == (4, None)
    changed = awp.replace(steps=7, beta=5.0, gamma=0.02)
    assert (changed.steps, changed.objective.beta, changed.gamma) == (7, 5.0, 0.02)
    assert (awp.steps, awp.objective.beta, awp.gamma) == (4, 3.0, 0.01)  # unchanged
    with pytest.raises(ValueError, match="gamma"):
        WeightPerturbation(TRADES(), gamma=0.0)
    with pytest.raises(ValueError, match="objective"):
        WeightPerturbation(Natural())
    with pytest.raises(ValueError, match="no parameter"):
        awp.replace(lam=1.0)


# ---------------------------------------------------------------- estimators
@pytest.mark.parametrize("cls", [TRADESClassifier, SCOREClassifier, ATClassifier,
                                 LLRClassifier])
def test_estimators_train_with_awp_gamma(cls, digits_flat):
    X_train, X_test, y_train, y_test = digits_flat
    clf = cls(awp_gamma=0.005, attack_steps=2, max_epochs=2, random_state=0)
    assert clone(clf).get_params()["awp_gamma"] == 0.005
    clf.fit(X_train, y_train)
    assert isinstance(clf.objective_, WeightPerturbation)
    assert clf.objective_.gamma == 0.005 and clf.objective_.steps == 2
    assert clf.score(X_test, y_test) > 0.5
    plain = cls(attack_steps=2, max_epochs=1, random_state=0)
    assert not isinstance(plain.make_objective(), WeightPerturbation)


@pytest.mark.parametrize("value", [0.0, -0.01, "0.01"])
def test_bad_awp_gamma_is_refused_before_training(value, digits_flat):
    X_train, _, y_train, _ = digits_flat
    clf = TRADESClassifier(awp_gamma=value, max_epochs=1)
    with pytest.raises(ValueError, match="'awp_gamma' parameter of TRADESClassifier"):
        clf.fit(X_train[:50], y_train[:50])
    assert not clf.initialized_


def test_attack_steps_schedule_reaches_the_wrapped_objective(digits_flat):
    X_train, _, y_train, _ = digits_flat
    clf = TRADESClassifier(awp_gamma=0.005, attack_steps=1, max_epochs=2, random_state=0,
                           callbacks=[AttackStepsSchedule({2: 3})])
    clf.fit(X_train[:200], y_train[:200])
    assert clf.history[:, "attack_steps"] == [1, 3]
    assert isinstance(clf.objective_, WeightPerturbation) and clf.objective_.steps == 1
