"""The attacks' results, pinned: refactoring the attacks must not change what they find.

Two small MLPs on sklearn's 8x8 digits (one trained naturally, one with TRADES, both
written out here so that nothing but the attacks can move the figures) are attacked by
every attack family under every norm it supports, each with a fixed seed and a small
budget. For each case the test pins the number of robust points (of ``N_TEST``) and a
hash of the per-point mask of broken points. The values were recorded with the code as
it stood before the attack families were reorganised (issue 31) and must stay equal.

A failure names the case, the robust count and the mask hash it got: a change that is
meant to change results updates the table below, and says so.
"""

import hashlib
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sklearn_robust import ThreatModel
from sklearn_robust.attacks import (
    APGD,
    FAB,
    FGSM,
    PGD,
    APGDTargeted,
    AutoAttack,
    FABTargeted,
    Square,
)
from sklearn_robust.datasets import load_digits_images

N_TEST = 200
EPS = {"linf": 0.07, "l2": 0.5, "l1": 1.5}

#: ``case -> (attack class, norm, keyword arguments)``, every one with random_state=0.
CASES = {
    "pgd-linf": (PGD, "linf", {"steps": 10, "restarts": 2}),
    "pgd-l1": (PGD, "l1", {"steps": 10}),
    "fgsm-linf": (FGSM, "linf", {"random_start": True}),
    "apgd-ce-linf": (APGD, "linf", {"steps": 30, "restarts": 2}),
    "apgd-ce-l2": (APGD, "l2", {"steps": 30}),
    "apgd-ce-l1": (APGD, "l1", {"steps": 30, "restarts": 2, "shrinking_eps": True}),
    "apgd-dlr-l2": (APGD, "l2", {"steps": 30, "loss": "dlr"}),
    "apgd-t-linf": (APGDTargeted, "linf", {"steps": 10, "n_target_classes": 3}),
    "apgd-t-l1": (APGDTargeted, "l1", {"steps": 10, "n_target_classes": 3}),
    "fab-linf": (FAB, "linf", {"steps": 10}),
    "fab-t-linf": (FABTargeted, "linf", {"steps": 10, "n_target_classes": 3,
                                         "restarts": 2}),
    "fab-t-l2": (FABTargeted, "l2", {"steps": 10, "n_target_classes": 3}),
    "fab-t-l1": (FABTargeted, "l1", {"steps": 10, "n_target_classes": 3}),
    "square-linf": (Square, "linf", {"n_queries": 400}),
    "square-l2": (Square, "l2", {"n_queries": 400}),
    "square-l1": (Square, "l1", {"n_queries": 400}),
    "auto-linf": (AutoAttack, "linf", {"steps": 10, "n_target_classes": 3,
                                       "n_queries": 100}),
    "auto-l2-fast": (AutoAttack, "l2", {"version": "fast"}),
    "auto-l1": (AutoAttack, "l1", {"steps": 10, "n_target_classes": 3, "n_queries": 100}),
}

#: Clean-correct points of N_TEST of each model.
PINNED_CLEAN = {"natural": 194, "trades": 188}

#: ``(model, case) -> (robust points of N_TEST, hash of the broken mask)``, recorded
#: before the reorganisation.
PINNED = {
    ('natural', 'apgd-ce-l1'): (54, 'ecfa6e988ed2'),
    ('natural', 'apgd-ce-l2'): (68, 'f0b20ca69d71'),
    ('natural', 'apgd-ce-linf'): (110, '0a64302ba012'),
    ('natural', 'apgd-dlr-l2'): (77, '824636c2cc52'),
    ('natural', 'apgd-t-l1'): (56, 'fc1aeba31882'),
    ('natural', 'apgd-t-linf'): (108, 'cae07c5f6bed'),
    ('natural', 'auto-l1'): (40, 'cc57b1c32766'),
    ('natural', 'auto-l2-fast'): (63, '09004f32b873'),
    ('natural', 'auto-linf'): (108, 'cae07c5f6bed'),
    ('natural', 'fab-linf'): (111, 'f348fdd0a35a'),
    ('natural', 'fab-t-l1'): (50, 'dfdc9cc55278'),
    ('natural', 'fab-t-l2'): (64, '1dfe7d57a4b3'),
    ('natural', 'fab-t-linf'): (109, '1cf3bd4c592e'),
    ('natural', 'fgsm-linf'): (130, '2cd886f8740e'),
    ('natural', 'pgd-l1'): (68, '81d0ad86f161'),
    ('natural', 'pgd-linf'): (110, '3c8a785bf4cb'),
    ('natural', 'square-l1'): (120, 'eee015d7e921'),
    ('natural', 'square-l2'): (104, 'fd9700e169dc'),
    ('natural', 'square-linf'): (119, '2f9ad3272cf4'),
    ('trades', 'apgd-ce-l1'): (66, '81c9c31c812e'),
    ('trades', 'apgd-ce-l2'): (135, 'd809c277af25'),
    ('trades', 'apgd-ce-linf'): (164, 'dd362a1fe8a3'),
    ('trades', 'apgd-dlr-l2'): (124, 'a14c1bcab0f0'),
    ('trades', 'apgd-t-l1'): (49, '2673009095c7'),
    ('trades', 'apgd-t-linf'): (163, '4ca2b18e68a6'),
    ('trades', 'auto-l1'): (42, '47c24748423a'),
    ('trades', 'auto-l2-fast'): (122, '7c8853bcbf26'),
    ('trades', 'auto-linf'): (163, '4ca2b18e68a6'),
    ('trades', 'fab-linf'): (163, '4ca2b18e68a6'),
    ('trades', 'fab-t-l1'): (44, '6f16ac1ad271'),
    ('trades', 'fab-t-l2'): (123, 'd93cf4d9f841'),
    ('trades', 'fab-t-linf'): (163, '4ca2b18e68a6'),
    ('trades', 'fgsm-linf'): (167, '430e04766e07'),
    ('trades', 'pgd-l1'): (58, 'a136fc18b7a0'),
    ('trades', 'pgd-linf'): (164, 'dd362a1fe8a3'),
    ('trades', 'square-l1'): (124, '54cc59ce657d'),
    ('trades', 'square-l2'): (145, '055126658b70'),
    ('trades', 'square-linf'): (163, '4ca2b18e68a6'),
}


def _train(trades):
    """An MLP trained full-batch with Adam: cross-entropy, or TRADES (beta 6, l_inf 0.1)."""
    X_train, X_test, y_train, y_test = load_digits_images()
    X, y = torch.tensor(X_train), torch.tensor(y_train)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    noise = torch.Generator().manual_seed(1)
    for _ in range(120 if trades else 200):
        loss = F.cross_entropy(model(X), y)
        if trades:  # five sign steps on KL(p(x) || p(x')) inside the ball, then the penalty
            p_clean = model(X).softmax(dim=1).detach()
            x_adv = X + 0.001 * torch.randn(X.shape, generator=noise)
            for _ in range(5):
                x_adv.requires_grad_(True)
                kl = F.kl_div(model(x_adv).log_softmax(dim=1), p_clean, reduction="sum")
                (grad,) = torch.autograd.grad(kl, x_adv)
                x_adv = torch.minimum(torch.maximum(x_adv.detach() + 0.025 * grad.sign(),
                                                    X - 0.1), X + 0.1).clamp(0, 1)
            logits = model(X)
            loss = F.cross_entropy(logits, y) + 6.0 * F.kl_div(
                model(x_adv).log_softmax(dim=1), logits.softmax(dim=1), reduction="batchmean")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, torch.tensor(X_test[:N_TEST]), torch.tensor(y_test[:N_TEST])


@pytest.fixture(scope="module")
def models():
    return {"natural": _train(trades=False), "trades": _train(trades=True)}


def run_case(model, X, y, case):
    """``(robust points, broken-mask hash)`` of one case, after checking the ball."""
    cls, norm, kwargs = CASES[case]
    threat = ThreatModel(eps=EPS[norm], norm=norm, bounds=(0, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        X_adv = cls(threat, random_state=0, **kwargs)(model, X, y)
    assert bool(threat.contains(X_adv, X, atol=1e-5).all())
    with torch.no_grad():
        broken = (model(X_adv).argmax(dim=1) != y).numpy()
    digest = hashlib.sha1(np.packbits(broken).tobytes()).hexdigest()[:12]
    return int((~broken).sum()), digest


@pytest.mark.parametrize("which", ["natural", "trades"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_results_are_the_pinned_ones(models, which, case):
    model, X, y = models[which]
    assert run_case(model, X, y, case) == PINNED[which, case]


def test_the_models_are_the_pinned_ones(models):
    """The figures are only comparable on the same two models (clean robust counts)."""
    with torch.no_grad():
        clean = {which: int((m(X).argmax(dim=1) == y).sum())
                 for which, (m, X, y) in models.items()}
    assert clean == PINNED_CLEAN

