"""Certified training's bounds (sklearn_robust.verify.training_margin_bounds).

The same numbers as the verifiers' float64 IBP and CROWN-IBP (one implementation), sound
in float32, differentiable in every parameter, and the module left as it was.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sklearn_robust.estimators import MLP, SmallCNN, default_network
from sklearn_robust.verify import (
    crown_margin_bounds,
    ibp_margin_bounds,
    network_layers,
    training_margin_bounds,
)

EPS = 0.05


# ------------------------------------------------------------------ helpers
def cnn(seed):
    """Stride-2 convolution (the transpose needs an output padding) and a max pool."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, padding=1),
        nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(24, 16), nn.ReLU(),
        nn.Dropout(0.3), nn.Linear(16, 5))


def odd_cnn(seed):
    """Circular padding and an average pool: transposes by vjp, not by formula."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, padding_mode="circular"), nn.ReLU(), nn.AvgPool2d(2),
        nn.ReLU(), nn.Conv2d(3, 4, 2, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(16, 4))


def mlp(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 20), nn.ReLU(), nn.Linear(20, 20), nn.ReLU(),
                         nn.Linear(20, 4))


class Traced(nn.Module):
    """A chain only torch.fx can read (no sequential_layers)."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv1d(2, 3, 3), nn.Linear(12, 3)

    def forward(self, x):
        return self.fc(torch.flatten(F.relu(self.conv(x)), 1))


def networks():
    torch.manual_seed(0)
    return [("mlp", mlp(0), (6,)), ("cnn", cnn(1), (1, 8, 8)),
            ("odd_cnn", odd_cnn(2), (1, 8, 8)), ("traced", Traced(), (2, 6)),
            ("conv_last", nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Conv2d(3, 4, 4),
                                        nn.Flatten()), (1, 6, 6)),
            ("pool_last", nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 3, 2),
                                        nn.MaxPool2d(2, padding=1), nn.Flatten()), (1, 5, 5)),
            ("MLP", MLP(64, 10, hidden_units=(32, 32)), (64,)),
            ("SmallCNN", SmallCNN((1, 8, 8), 10, channels=(8, 16), hidden_units=32),
             (1, 8, 8)),
            ("reshape+SmallCNN", default_network((64,), 10, input_shape=(1, 8, 8),
                                                 channels=(4, 8), hidden_units=16), (64,))]


def batch(shape, n_classes, n=6, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, *shape), generator=g, dtype=dtype)
    return x, torch.randint(0, n_classes, (n,), generator=g)


def n_out(module, shape):
    return module(torch.zeros((1, *shape), dtype=next(module.parameters()).dtype)).shape[1]


def margins(module, x, y):
    z = module(x)
    return z.gather(1, y[:, None]) - z


# ------------------------------------------------------------------ (a) the same numbers
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("name,module,shape", networks(), ids=[n[0] for n in networks()])
def test_equals_the_float64_verifiers(name, module, shape, norm):
    module = module.double().eval()
    x, y = batch(shape, n_out(module, shape), dtype=torch.float64)
    layers = network_layers(module, shape)
    for box in ((None, None), (0.0, 1.0)):
        kw = dict(eps=EPS, norm=norm, lower=box[0], upper=box[1])
        ibp = ibp_margin_bounds(layers, x, y, precision=None, **kw)
        crown = crown_margin_bounds(layers, x, y, intermediate="ibp", alpha_steps=0,
                                    precision=None, **kw)
        ibp, crown = (b.scatter(1, y[:, None], 0.0) for b in (ibp, crown))  # +inf -> 0
        got_ibp = training_margin_bounds(module, x, y, crown_weight=0, **kw)
        got_crown = training_margin_bounds(module, x, y, crown_weight=1, **kw)
        got_half = training_margin_bounds(module, x, y, crown_weight=0.5, **kw)
        assert got_ibp.dtype == torch.float64
        torch.testing.assert_close(got_ibp, ibp, rtol=0, atol=1e-9)
        torch.testing.assert_close(got_crown, crown, rtol=0, atol=1e-9)
        torch.testing.assert_close(got_half, (crown + ibp) / 2, rtol=0, atol=1e-9)
        assert bool((got_ibp.gather(1, y[:, None]) == 0).all())
        if norm == "linf" and box[0] is not None and name != "traced":  # tighter somewhere
            assert bool((got_crown > got_ibp + 1e-6).any())


def test_smallcnn_takes_height_width_batches():
    module = SmallCNN((1, 8, 8), 10, channels=(4, 8), hidden_units=16)
    x, y = batch((1, 8, 8), 10)
    with_channel = training_margin_bounds(module, x, y, eps=EPS, crown_weight=1)
    without = training_margin_bounds(module, x[:, 0], y, eps=EPS, crown_weight=1)
    torch.testing.assert_close(without, with_channel)


# ------------------------------------------------------------------ (b) sound in float32
def points_in_ball(x, eps, norm, n, seed):
    """``n`` random points per point of the ball ∩ [0, 1] (half on the sphere)."""
    g = torch.Generator().manual_seed(seed)
    flat = x.reshape(x.shape[0], -1)
    if norm == "linf":
        step = eps * (2 * torch.rand((n, *flat.shape), generator=g) - 1)
        step[: n // 2] = eps * torch.sign(step[: n // 2])
    else:
        direction = torch.randn((n, *flat.shape), generator=g)
        direction = direction / direction.norm(dim=-1, keepdim=True)
        step = eps * direction * torch.rand((n, flat.shape[0], 1), generator=g)
        step[: n // 2] = eps * direction[: n // 2]
    return (flat + step).clamp(0, 1).reshape(n, *x.shape)


def pgd(module, x, y, eps, norm, steps=20):
    """Points of the ball ∩ [0, 1] that push down the smallest wrong margin."""
    delta = torch.zeros_like(x, requires_grad=True)
    for _ in range(steps):
        m = margins(module, x + delta, y).scatter(1, y[:, None], torch.inf)
        (grad,) = torch.autograd.grad(m.min(1).values.sum(), delta)
        with torch.no_grad():
            if norm == "linf":
                delta -= eps / 8 * grad.sign()
                delta.clamp_(-eps, eps)
            else:
                flat = grad.reshape(len(x), -1)
                delta -= eps / 4 * (flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)
                                    ).reshape(x.shape)
                d = delta.reshape(len(x), -1)
                d.mul_((eps / d.norm(dim=1, keepdim=True).clamp_min(1e-12)).clamp(max=1))
            delta.copy_((x + delta).clamp(0, 1) - x)
    return (x + delta).detach()


@pytest.mark.parametrize("norm,eps", [("linf", 0.03), ("l2", 0.3)])
@pytest.mark.parametrize("crown_weight", [0.0, 1.0])
def test_sound_in_float32(norm, eps, crown_weight):
    for module, shape in ((cnn(3).eval(), (1, 8, 8)),
                          (SmallCNN((1, 8, 8), 10, channels=(8, 8), hidden_units=32),
                           (1, 8, 8))):
        x, y = batch(shape, n_out(module, shape), n=8)
        bounds = training_margin_bounds(module, x, y, eps=eps, norm=norm, lower=0,
                                        upper=1, crown_weight=crown_weight).detach()
        assert bounds.dtype == torch.float32
        clean = margins(module, x, y).detach()
        assert bool((bounds <= clean + 1e-5 * (1 + clean.abs())).all())
        with torch.no_grad():
            many = points_in_ball(x, eps, norm, 64, seed=1)
            worst = torch.stack([margins(module, p, y) for p in many]).amin(0)
        attacked = margins(module, pgd(module, x, y, eps, norm), y).detach()
        worst = torch.minimum(worst, attacked)
        assert bool((bounds <= worst + 1e-5 * (1 + worst.abs())).all())
        assert bool((bounds < clean - 1e-3).any())  # a real bound, not the clean margin


# ------------------------------------------------------------------ (c) gradients
@pytest.mark.parametrize("crown_weight", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_every_parameter_gets_a_gradient(crown_weight, norm):
    module = SmallCNN((1, 8, 8), 10, channels=(8, 8), hidden_units=32)
    x, y = batch((1, 8, 8), 10, n=16)
    x.requires_grad_(True)
    bounds = training_margin_bounds(module, x, y, eps=0.05 if norm == "linf" else 0.5,
                                    norm=norm, lower=0, upper=1, crown_weight=crown_weight)
    F.cross_entropy(-bounds, y).backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, name
        assert bool(torch.isfinite(p.grad).all()), name
        assert p.grad.abs().sum() > 0, name
    assert bool(torch.isfinite(x.grad).all()) and x.grad.abs().sum() > 0


def test_gradients_at_eps_zero_are_finite():
    module = cnn(4).eval()  # a zero-width interval everywhere: no 0 / 0 on the way back
    x, y = batch((1, 8, 8), 5)
    F.cross_entropy(-training_margin_bounds(module, x, y, eps=0.0, crown_weight=1), y
                    ).backward()
    assert all(bool(torch.isfinite(p.grad).all()) for p in module.parameters())


@pytest.mark.parametrize("crown_weight", [0.0, 1.0])
def test_gradcheck_tiny_conv_net(crown_weight):
    torch.manual_seed(5)
    module = nn.Sequential(
        nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(2, 3, 2),
        nn.MaxPool2d(2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(12, 3)).double()
    x, y = batch((1, 6, 6), 3, n=2, dtype=torch.float64)
    # gradcheck perturbs its inputs in place: given the parameters themselves, each
    # finite difference is seen by the module the bounds read
    params = tuple(module.parameters())

    def bounds(*_):
        return training_margin_bounds(module, x, y, eps=0.1, lower=0, upper=1,
                                      crown_weight=crown_weight)

    assert torch.autograd.gradcheck(bounds, params, eps=1e-6, atol=1e-6)


# ------------------------------------------------------------------ (d) refusals
def test_refusals():
    x, y = batch((1, 8, 8), 10)
    with pytest.raises(TypeError, match="certified training does not support BatchNorm"):
        training_margin_bounds(SmallCNN((1, 8, 8), 10, channels=(4, 4), batch_norm=True),
                               x, y, eps=0.1)
    tanh = nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.Tanh())
    with pytest.raises(TypeError, match="Tanh"):
        training_margin_bounds(tanh, x, y, eps=0.1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(ValueError, match="eps"):
        training_margin_bounds(model, x, y, eps=-0.1)
    with pytest.raises(ValueError, match="norm"):
        training_margin_bounds(model, x, y, eps=0.1, norm="l3")
    with pytest.raises(ValueError, match="crown_weight"):
        training_margin_bounds(model, x, y, eps=0.1, crown_weight=1.5)
    with pytest.raises(ValueError, match="y must"):
        training_margin_bounds(model, x, y[:3], eps=0.1)
    with pytest.raises(ValueError, match=r"class indices in \[0, 10\)"):
        training_margin_bounds(model, x, y + 10, eps=0.1)
    with pytest.raises(ValueError, match="lower must be <= upper"):
        training_margin_bounds(model, x, y, eps=0.1, lower=torch.ones(1, 8, 8), upper=0.5)
    with pytest.raises(ValueError, match="Linear expects 64 features"):
        training_margin_bounds(model, torch.rand(6, 1, 4, 4), y, eps=0.1)

    class Liar(nn.Module):  # declares a chain its forward does not compute
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(64, 8), nn.Linear(8, 10)

        def forward(self, x):
            return self.b(torch.relu(self.a(x.flatten(1))))

        def sequential_layers(self):
            return [nn.Flatten(), self.a, self.b]

    with pytest.raises(ValueError, match="do not compute its forward"):
        training_margin_bounds(Liar(), x, y, eps=0.1)


def test_autocast_is_off_inside():
    module = cnn(7).eval()
    x, y = batch((1, 8, 8), 5)
    plain = training_margin_bounds(module, x, y, eps=0.05, crown_weight=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = training_margin_bounds(module, x, y, eps=0.05, crown_weight=1)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, plain)


# ------------------------------------------------------------------ (e, f) l2, the module
def test_module_is_left_as_it_was():
    module = MLP(64, 10, hidden_units=(16,), dropout=0.5).train()
    module.net[0].weight.requires_grad_(False)  # a frozen layer stays frozen
    before = copy.deepcopy(module.state_dict())
    x, y = batch((64,), 10)
    rng = torch.get_rng_state()
    first = training_margin_bounds(module, x, y, eps=0.1, norm="l2", crown_weight=1)
    second = training_margin_bounds(module, x, y, eps=0.1, norm="l2", crown_weight=1)
    assert torch.equal(first, second)  # dropout read as the identity: no draw
    assert torch.equal(torch.get_rng_state(), rng)
    assert module.training and all(m.training for m in module.modules())
    assert not module.net[0].weight.requires_grad and module.net[3].weight.requires_grad
    assert all(p.grad is None for p in module.parameters())
    for key, value in module.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert first.requires_grad and first.grad_fn is not None


def test_live_parameters_and_wrappers():
    module = mlp(6)
    x, y = batch((6,), 4)
    base = training_margin_bounds(module, x, y, eps=0.1, crown_weight=1)
    with torch.no_grad():
        module[2].weight.mul_(2)  # in place: the next call sees it
    doubled = training_margin_bounds(module, x, y, eps=0.1, crown_weight=1)
    assert not torch.allclose(base, doubled)
    expected = crown_margin_bounds(network_layers(module, (6,)), x, y, eps=0.1,
                                   intermediate="ibp", precision=None)
    torch.testing.assert_close(doubled.double(), expected.scatter(1, y[:, None], 0.0),
                               rtol=0, atol=1e-4)
    module[0] = nn.Linear(6, 20)  # a new layer: the reading is redone
    replaced = training_margin_bounds(module, x, y, eps=0.1, crown_weight=1)
    assert not torch.allclose(replaced, doubled)

    class View(nn.Module):  # the library's SynchronisedView keeps DDP as .parallel
        def __init__(self, parallel):
            super().__init__()
            self.parallel = parallel

    wrapped = View(nn.DataParallel(module))
    torch.testing.assert_close(training_margin_bounds(wrapped, x, y, eps=0.1,
                                                      crown_weight=1), replaced)
