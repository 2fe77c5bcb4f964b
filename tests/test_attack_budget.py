"""What an attack may cost, said before it starts (``attacks/_budget.py``)."""

import warnings

import pytest
import torch

from sklearn_robust import ThreatModel
from sklearn_robust.attacks import (
    APGD,
    FAB,
    FGSM,
    PGD,
    APGDTargeted,
    Attack,
    AutoAttack,
    Cascade,
    FABTargeted,
    LongEvaluationWarning,
    Square,
    _budget,
)

THREAT = ThreatModel(eps=0.1, bounds=(0, 1))


def test_passes_per_point_is_each_attacks_whole_budget():
    assert PGD(THREAT, steps=7, restarts=3).passes_per_point(10) == (21, 0)
    assert FGSM(THREAT).passes_per_point(10) == (1, 0)
    assert APGD(THREAT, steps=50, restarts=2, eot_iter=4).passes_per_point(10) == (400, 0)
    # Targets are capped at the other classes: 3 of 4 classes.
    assert APGDTargeted(THREAT, steps=10, n_target_classes=9).passes_per_point(4) == (30, 0)
    # Untargeted FAB differentiates every logit per step; FAB-T one difference.
    assert FAB(THREAT, steps=10).passes_per_point(5) == (50, 10)
    assert FABTargeted(THREAT, steps=10, n_target_classes=2).passes_per_point(5) == (20, 20)
    assert Square(THREAT, n_queries=300).passes_per_point(10) == (0, 300)
    # AutoAttack 'standard' on 10 classes: APGD-CE 100 + APGD-T 900 + FAB-T 900 gradient
    # passes; FAB-T 900 + Square 5000 forward passes.
    assert AutoAttack(THREAT).passes_per_point(10) == (1900, 5900)
    cascade = Cascade(THREAT, [PGD(THREAT, steps=5), Square(THREAT, n_queries=20)])
    assert cascade.passes_per_point(10) == (5, 20)


class _Unknown(Attack):
    def perturb(self, module, x, y, generator):
        return x


def test_an_unknown_budget_is_none_and_makes_a_cascade_unknown():
    assert _Unknown(THREAT).passes_per_point(10) is None
    assert Cascade(THREAT, [PGD(THREAT), _Unknown(THREAT)]).passes_per_point(10) is None


class _CountingNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.norm = torch.nn.BatchNorm1d(3)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.norm(self.linear(x))


class _Failing(PGD):
    def perturb(self, module, x, y, generator):
        raise RuntimeError("attack started")


def _data(n=40):
    generator = torch.Generator().manual_seed(0)
    return torch.rand(n, 4, generator=generator), torch.randint(0, 3, (n,), generator=generator)


def test_a_long_evaluation_is_announced_before_the_attack_starts(monkeypatch):
    monkeypatch.setattr(_budget, "LONG_EVALUATION_SECONDS", 0.0)
    monkeypatch.setattr(_budget, "_TIMED_FROM_PASSES", 0)
    X, y = _data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError, match="attack started"):
            _Failing(THREAT, steps=30, restarts=2)(_CountingNet(), X, y)
    messages = [str(w.message) for w in caught if w.category is LongEvaluationWarning]
    assert len(messages) == 1
    assert "_Failing on 40 points may take up to about" in messages[0]
    assert "60 gradient and 0 forward passes" in messages[0]


def test_short_evaluations_are_neither_timed_nor_announced(monkeypatch):
    def never(module, x):
        raise AssertionError("a short evaluation was timed")

    monkeypatch.setattr(_budget, "pass_times", never)
    X, y = _data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        PGD(THREAT, steps=3)(_CountingNet(), X, y)
        AutoAttack(THREAT, version="fast")(_CountingNet(), X, y)  # 40 x 700 passes
    assert not [w for w in caught if w.category is LongEvaluationWarning]


def test_timing_the_model_leaves_it_as_it_was(monkeypatch):
    monkeypatch.setattr(_budget, "_TIMED_FROM_PASSES", 0)
    X, y = _data()
    net = _CountingNet().train()
    for p in net.parameters():
        p.grad = torch.ones_like(p)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    PGD(THREAT, steps=2)(net, X, y)
    assert net.calls > 2 + 4  # the checks, the attack and the timing
    assert net.training
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert all(p.requires_grad and torch.equal(p.grad, torch.ones_like(p))
               for p in net.parameters())


def test_the_estimate_scales_with_the_points_and_the_budget(monkeypatch):
    monkeypatch.setattr(_budget, "_TIMED_FROM_PASSES", 0)
    monkeypatch.setattr(_budget, "pass_times", lambda module, x: (0.002, 0.001))
    net, x = _CountingNet().eval(), torch.zeros(8, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _budget.plan_run(AutoAttack(THREAT), net, x, 1000, 10)  # 1000 x 9.7 s
        _budget.plan_run(AutoAttack(THREAT), net, x, 5, 10)  # 48.5 s: not announced
    assert len(caught) == 1 and "up to about 2.7 h" in str(caught[0].message)


class _ThreadsSeen(PGD):
    def perturb(self, module, x, y, generator):
        self.threads_seen = torch.get_num_threads()
        return super().perturb(module, x, y, generator)


def test_busy_cores_get_fewer_threads_and_the_setting_comes_back(monkeypatch):
    """Where fewer threads run the model faster (other work on the cores), the attack
    uses them, never more than torch's setting, and restores the setting after."""
    monkeypatch.setattr(_budget, "_TIMED_FROM_PASSES", 0)
    seconds = {8: 8e-4, 4: 4e-4, 2: 1e-4, 1: 1e-4}  # 2 threads: as fast as 1
    monkeypatch.setattr(_budget, "pass_times", lambda module, x: (
        seconds[torch.get_num_threads()], 0.0))
    setting = torch.get_num_threads()
    torch.set_num_threads(8)
    try:
        assert _budget.fastest_threads(_CountingNet(), torch.zeros(4, 4))[0] == 2
        attack = _ThreadsSeen(THREAT, steps=2)
        attack(_CountingNet(), *_data())
        assert attack.threads_seen == 2 and torch.get_num_threads() == 8
        # As fast with the setting: kept.
        monkeypatch.setattr(_budget, "pass_times", lambda module, x: (1e-4, 1e-4))
        attack(_CountingNet(), *_data())
        assert attack.threads_seen == 8
    finally:
        torch.set_num_threads(setting)


def test_batch_size_auto_fits_the_networks_widest_tensor():
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.Flatten(),
                               torch.nn.Linear(32 * 8 * 8, 10))
    x = torch.zeros(10_000, 1, 8, 8)
    assert _budget.resolve_batch_size(100, conv, x) == 100
    assert _budget.resolve_batch_size("auto", conv, x[:200]) == 256  # one batch anyway
    # The convolution's output, 32 x 8 x 8 values per sample, sets the batch.
    assert _budget.resolve_batch_size("auto", conv, x) == 2 ** 24 // 2048
    wide = torch.nn.Conv2d(1, 2 ** 16, 1)  # 2**22 values per 8x8 sample: the floor, 256
    assert _budget.resolve_batch_size("auto", wide, x[:300]) == 256


def test_the_footprint_of_a_callable_is_its_input_or_output():
    from sklearn_robust.attacks._parallel import sample_footprint

    assert sample_footprint(lambda z: z.repeat(1, 3), torch.zeros(4, 5)) == 15
    assert sample_footprint(lambda z: z[:, :2], torch.zeros(4, 5)) == 5


def test_robust_accuracy_takes_batch_size_auto_and_names_a_bad_one():
    from sklearn.datasets import load_digits

    from sklearn_robust import NaturalClassifier
    from sklearn_robust.metrics import robust_accuracy_score

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype("float32")
    clf = NaturalClassifier(max_epochs=1, random_state=0).fit(X[:300], y[:300])
    scores = [robust_accuracy_score(clf, X[:300], y[:300], eps=0.1, attack="fgsm",
                                    batch_size=size) for size in ("auto", 300, 7)]
    assert scores[0] == scores[1] == scores[2]  # FGSM from x: batching changes nothing
    with pytest.raises(ValueError, match="batch_size"):
        robust_accuracy_score(clf, X[:10], y[:10], eps=0.1, batch_size="big")
