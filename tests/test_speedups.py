"""The speed-ups change nothing but speed: one shared clean forward, channels-last weights.

Which networks may share the forward (``mode_independent``) is tested in test_utils.py.
"""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from sklearn_robust import ThreatModel, TRADESClassifier
from sklearn_robust.estimators import SmallCNN
from sklearn_robust.objectives import SCORE, TRADES
from sklearn_robust.persistence import load_model, save_model


class Wrapped(nn.Module):
    """A user's network: its forward might read ``self.training``, so it is not trusted."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


def _count_forwards(module):
    calls = []
    handle = module.register_forward_pre_hook(
        lambda mod, inputs: calls.append(any(p.requires_grad for p in mod.parameters()))
    )
    return calls, handle


@pytest.mark.parametrize("objective", [TRADES(beta=6.0, steps=3), SCORE(beta=4.0, steps=3),
                                       SCORE(distance="kl", steps=3)], ids=repr)
def test_shared_clean_forward_gives_the_reference_loss_and_gradients(objective, digits_images):
    """One clean forward (mode-independent network) equals the reference's two."""
    X, _, y, _ = digits_images
    x, y = torch.as_tensor(X[:32]), torch.as_tensor(y[:32])
    threat = ThreatModel(eps=0.1, bounds=(0, 1))
    torch.manual_seed(0)
    fast = SmallCNN((1, 8, 8), 10).train()
    slow = Wrapped(copy.deepcopy(fast)).train()  # same function, not trusted: two passes
    results = []
    for module in (fast, slow):
        calls, handle = _count_forwards(module)
        torch.manual_seed(1)  # the same random start
        loss, logits = objective(module, x, y, threat)
        loss.backward()
        handle.remove()
        grads = [p.grad.clone() for p in module.parameters()]
        results.append((loss.detach(), logits.detach(), grads, calls))
    (loss_f, logits_f, grads_f, calls_f), (loss_s, logits_s, grads_s, calls_s) = results
    torch.testing.assert_close(loss_f, loss_s, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logits_f, logits_s, rtol=1e-5, atol=1e-6)
    for got, want in zip(grads_f, grads_s, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    # the reference: 1 frozen target pass, 3 attack passes, 2 outer passes; shared: 1 fewer
    assert (calls_s.count(False), calls_s.count(True)) == (4, 2)
    assert (calls_f.count(False), calls_f.count(True)) == (3, 2)


def test_channels_last_is_the_same_function(digits_images):
    X = digits_images[0]
    x = torch.as_tensor(X[:16]).requires_grad_(True)
    torch.manual_seed(0)
    plain = SmallCNN((1, 8, 8), 10, channels_last=False)
    fast = SmallCNN((1, 8, 8), 10)
    fast.load_state_dict(plain.state_dict())
    conv = fast.features[2].weight  # the second: with 1 input channel both layouts agree
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    out_plain, out_fast = plain(x), fast(x)
    torch.testing.assert_close(out_fast, out_plain, rtol=1e-5, atol=1e-5)
    (g_plain,) = torch.autograd.grad(out_plain.sum(), x)
    (g_fast,) = torch.autograd.grad(out_fast.sum(), x)
    torch.testing.assert_close(g_fast, g_plain, rtol=1e-4, atol=1e-6)
    assert g_fast.shape == x.shape


def test_channels_last_estimator_fits_saves_and_loads(digits_images, tmp_path):
    X, _, y, _ = digits_images
    clf = TRADESClassifier(eps=0.1, attack_steps=2, max_epochs=1, random_state=0,
                           bounds=(0.0, 1.0)).fit(X[:200], y[:200])
    weight = clf.module_.features[2].weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    save_model(clf, tmp_path / "m.srm")
    loaded = load_model(tmp_path / "m.srm")
    np.testing.assert_allclose(loaded.predict_proba(X[200:260]), clf.predict_proba(X[200:260]),
                               rtol=1e-5, atol=1e-6)


def _textbook_order(cnn):
    """``cnn`` with each ``max-pool, ReLU`` put back in the textbook order ``ReLU, max-pool``."""
    layers = list(cnn.features)
    for i in range(len(layers) - 1):
        if isinstance(layers[i], nn.MaxPool2d) and isinstance(layers[i + 1], nn.ReLU):
            layers[i], layers[i + 1] = layers[i + 1], layers[i]
    textbook = copy.deepcopy(cnn)
    textbook.features = nn.Sequential(*layers)
    return textbook


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28)])
def test_pooling_before_the_relu_is_the_same_network(batch_norm, shape):
    """SmallCNN's ``conv, max-pool, ReLU``: the textbook network's outputs and gradients."""
    torch.manual_seed(0)
    fast = SmallCNN(shape, 10, batch_norm=batch_norm).train()
    kinds = [type(m).__name__ for m in fast.features]
    assert kinds.count("MaxPool2d") == 2
    assert all(kinds[i + 1] == "ReLU" for i, k in enumerate(kinds) if k == "MaxPool2d")
    textbook = _textbook_order(fast)
    assert list(fast.state_dict()) == list(textbook.state_dict())  # same keys: old files load
    x = torch.rand(16, *shape, generator=torch.Generator().manual_seed(1))
    for mode in (True, False):  # BatchNorm in both modes
        results = []
        for net in (fast, textbook):
            net.train(mode)
            x_in = x.clone().requires_grad_(True)
            net.zero_grad()
            out = net(x_in)
            loss = out.logsumexp(dim=1).sum()
            (g_input,) = torch.autograd.grad(loss, x_in, retain_graph=True)
            loss.backward()
            results.append((out.detach(), g_input, [p.grad.clone() for p in net.parameters()]))
        (out_f, gx_f, gp_f), (out_t, gx_t, gp_t) = results
        assert torch.equal(out_f, out_t) and torch.equal(gx_f, gx_t)
        for got, want in zip(gp_f, gp_t, strict=True):
            assert torch.equal(got, want)
