"""Bound propagation (sklearn_robust.verify): reading networks, IBP, CROWN, the slack.

Soundness first: at random points of the ball (inside the box) and at points an attack
finds, the float32 model's margins never fall below the certified lower bounds.
"""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from sklearn_robust import NaturalClassifier, ThreatModel
from sklearn_robust.attacks import APGD, PGD
from sklearn_robust.estimators import MLP, SmallCNN, default_network
from sklearn_robust.verify import (
    crown_margin_bounds,
    dense_layers,
    ibp_margin_bounds,
    network_layers,
    preactivation_bounds,
    rounding_slack,
)

NORMS = ["linf", "l2", "l1"]


# ------------------------------------------------------------------ helpers
def mlp(seed, widths=(6, 24, 24, 4)):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(widths[:-1], widths[1:], strict=False):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1]).eval()


def cnn(seed, maxpool=True):
    """conv + BN (eval, non-trivial statistics) + avg pool (+ max pool) on 1x8x8."""
    torch.manual_seed(seed)
    bn = nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
    pool = nn.MaxPool2d(2) if maxpool else nn.AvgPool2d(2)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), bn, nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1, bias=False), pool, nn.ReLU(), nn.Flatten(),
        nn.Linear(24, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 5)).eval()


def margins(model, x, y):
    """The float32 model's margins z_y - z_j, (N, C) float64 (0 at j = y)."""
    with torch.no_grad():
        z = model(x.float()).double()
    return z.gather(1, y[:, None]) - z


def in_set(x, eps, norm, lower, upper, n, seed):
    """``n`` random points per point of the ball ∩ box (linf: half of them corners)."""
    g = torch.Generator().manual_seed(seed)
    flat = x.reshape(x.shape[0], -1)
    d = flat.shape[1]
    if norm == "linf":
        step = eps * (2 * torch.rand((n, *flat.shape), generator=g) - 1)
        step[: n // 2] = eps * torch.sign(step[: n // 2])
    else:
        direction = torch.randn((n, *flat.shape), generator=g)
        if norm == "l1":
            direction = direction.sign() * torch.rand(direction.shape, generator=g) ** 8
        direction = direction / direction.norm(p=2 if norm == "l2" else 1, dim=-1,
                                               keepdim=True)
        step = eps * direction * torch.rand((n, flat.shape[0], 1), generator=g) ** (1 / d)
        step[: n // 2] = eps * direction[: n // 2]
    points = flat + step
    if lower is not None:
        points = points.clamp(min=lower, max=upper)  # clipping stays in the ball
    return points.reshape(n, *x.shape).float()


def attack_points(model, x, y, eps, norm, bounds):
    threat = ThreatModel(eps=eps, norm=norm, bounds=bounds)
    found = [PGD(threat, steps=20, restarts=1, random_state=0)(model, x.float(), y)]
    if norm != "l1":
        found.append(APGD(threat, steps=20, loss="dlr", random_state=0)(model, x.float(), y))
    return found


def assert_sound(model, x, y, bounds, eps, norm, lower=None, upper=None, n=32):
    box = None if lower is None else (lower, upper)
    points = list(in_set(x, eps, norm, lower, upper, n, seed=1))
    points += attack_points(model, x, y, eps, norm, box)
    for p in points:
        m = margins(model, p, y)
        m = m.scatter(1, y[:, None], np.inf)
        assert bool((m >= bounds).all()), float((bounds - m).max())


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    return torch.rand((24, 6), generator=g), torch.rand((12, 1, 8, 8), generator=g)


# ------------------------------------------------------------------ reading networks
def test_layers_compute_the_module_including_bn_avgpool_maxpool(data):
    from sklearn_robust.verify._network import forward_layers  # noqa: PLC0415

    _, images = data
    model = cnn(0)
    layers = network_layers(model, (1, 8, 8))
    assert [type(layer).__name__ for layer in layers] == [
        "Affine", "Affine", "ReLU", "Affine", "Affine", "MaxPool", "ReLU", "Affine",
        "ReLU", "Affine"]
    got = forward_layers(layers, images.double().reshape(12, -1))
    np.testing.assert_allclose(got, model(images).detach().double(), atol=1e-5)


@pytest.mark.parametrize("conv", [
    dict(stride=2, padding=1), dict(dilation=2, padding=2), dict(groups=2, padding="same"),
    dict(padding=1, padding_mode="reflect")], ids=str)
def test_convolutions_of_any_geometry_are_read_exactly(conv):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, **conv), nn.ReLU(),
                          nn.MaxPool2d(2, ceil_mode=True), nn.Flatten())
    layers = network_layers(model, (2, 7, 7))  # raises if the layers differ from forward
    assert layers[0].weight.shape[1] == 2 * 7 * 7


@pytest.mark.parametrize("conv", [
    dict(padding=1), dict(stride=2, padding=1), dict(dilation=2, padding=2),
    dict(groups=2, padding=1, bias=False)], ids=str)
def test_native_convolutions_give_the_products_of_their_matrix(conv):
    """A convolution large enough to run as one keeps no matrix until asked, and each of
    its products equals the dense matrix's up to float64 rounding."""
    torch.manual_seed(0)
    module = nn.Conv2d(2, 4, 3, **conv)
    [layer] = network_layers(module, (2, 9, 9))
    assert layer.native and layer._weight is None
    kernel = module.weight.detach().double()
    basis = torch.eye(162, dtype=torch.float64).reshape(162, 2, 9, 9)
    dense = nn.functional.conv2d(basis, kernel, None, module.stride, module.padding,
                                 module.dilation, module.groups).reshape(162, -1).T
    bias = module(torch.zeros(1, 2, 9, 9)).detach().double().reshape(-1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn((5, 162), generator=g, dtype=torch.float64)
    a = torch.randn((5, 3, dense.shape[0]), generator=g, dtype=torch.float64)
    for got, expected in ((layer.forward(x), x @ dense.T + bias),
                          (layer.forward_abs(x.abs()), x.abs() @ dense.abs().T),
                          (layer.backward(a), a @ dense),
                          (layer.backward_abs(a.abs()), a.abs() @ dense.abs()),
                          (layer.backward(a[:, :0]), a[:, :0] @ dense)):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.bias, bias, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(layer.weight, dense, rtol=1e-12, atol=1e-14)  # built now


def test_small_convolutions_stay_dense_and_batchnorm_scales_native_kernels():
    from sklearn_robust.verify._layers import merged  # noqa: PLC0415

    torch.manual_seed(0)
    cnn_layers = network_layers(SmallCNN((1, 8, 8), 10), (1, 8, 8))
    convs = [layer for layer in cnn_layers if getattr(layer, "kind", "") == "conv"]
    # 8x8 maps run as convolutions, 4x4 ones as their (smaller, faster) matrices
    assert [layer.native for layer in convs] == [True, True, False, False]
    # a channels-last kernel with one input channel is stored in the standard layout
    assert convs[0].conv["weight"].stride() == (9, 9, 3, 1)
    layers = network_layers(cnn(0), (1, 8, 8))  # conv, BatchNorm, ReLU, ...
    conv_bn = merged(layers)[0]
    assert conv_bn.native and conv_bn.kind == "merged"
    x = torch.rand((3, 64), dtype=torch.float64)
    np.testing.assert_allclose(conv_bn.forward(x), layers[1].forward(layers[0].forward(x)),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv_bn.weight, layers[1].diagonal[:, None] * layers[0].weight,
                               rtol=1e-12, atol=1e-14)


def test_full_crown_reads_native_convolution_rows_without_their_matrix():
    """Full CROWN takes the rows of a convolution it tightens from the transposed
    convolution: the same bounds as from the dense matrix, and no matrix built."""
    torch.manual_seed(0)
    module = SmallCNN((1, 12, 12), 3, channels=(2, 2), hidden_units=8,
                      channels_last=False).eval()
    lazy, dense = network_layers(module, (1, 12, 12)), network_layers(module, (1, 12, 12))
    convs = [k for k, layer in enumerate(lazy) if getattr(layer, "native", False)]
    assert convs and all(lazy[k]._weight is None for k in convs)
    for k in convs:
        assert dense[k].weight.shape[1] == 144 * (1 if k == 0 else 2)  # built here
    x = torch.rand((3, 1, 12, 12), dtype=torch.float64)
    y = torch.tensor([0, 1, 2])
    got = crown_margin_bounds(lazy, x, y, eps=0.02, lower=0, upper=1)
    expected = crown_margin_bounds(dense, x, y, eps=0.02, lower=0, upper=1)
    finite = torch.isfinite(expected)
    assert torch.equal(finite, torch.isfinite(got))
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-10, atol=1e-12)
    assert all(lazy[k]._weight is None for k in convs)


def test_a_convolution_too_large_for_a_matrix_is_read_and_refused_only_when_built(
        monkeypatch):
    """Reading a network never builds a convolution's matrix; IBP runs without one, and
    only a method that needs the matrix (the MILP) is refused, naming the layer."""
    from sklearn_robust.verify import _layers  # noqa: PLC0415

    monkeypatch.setattr(_layers, "MAX_DENSE", 2**12)
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(),
                           nn.Linear(2 * 64, 3)).eval()
    layers = network_layers(module, (1, 8, 8))
    assert layers[0].native and layers[0]._weight is None
    x, y = torch.rand((2, 1, 8, 8), dtype=torch.float64), torch.tensor([0, 1])
    assert torch.isfinite(ibp_margin_bounds(layers, x, y, eps=0.01)).any()
    with pytest.raises(ValueError, match=r"conv layer: its dense matrix \(128 x 64\)"):
        dense_layers(layers)


def test_library_networks_declare_their_layers():
    torch.manual_seed(0)
    assert [type(m).__name__ for m in MLP(4, 3, hidden_units=(5,)).sequential_layers()] \
        == ["Linear", "ReLU", "Linear"]
    for model, shape in [(MLP(64, 10), (64,)), (SmallCNN((1, 8, 8), 10), (1, 8, 8)),
                         (SmallCNN((1, 8, 8), 10, batch_norm=True, dropout=0.5), (1, 8, 8)),
                         (default_network((64,), 10, input_shape=(1, 8, 8)), (64,))]:
        layers = network_layers(model, shape)
        assert layers[-1].out_features == 10


def test_a_traced_plain_chain_is_accepted():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 3)

        def forward(self, x):
            return self.b(torch.relu(self.a(torch.flatten(x, 1))))

    assert len(network_layers(Net(), (2, 2))) == 3


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return x + self.lin(x)


class Inline(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return torch.tanh(self.lin(x))


@pytest.mark.parametrize("bad,match", [
    (lambda: nn.Sequential(nn.Linear(4, 4), nn.Tanh()), "Tanh"),
    (lambda: nn.Sequential(nn.Linear(4, 4), nn.GELU()), "GELU"),
    (lambda: nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)), "LayerNorm"),
    (lambda: nn.Sequential(nn.Linear(4, 4), nn.Sigmoid()), "Sigmoid"),
    (lambda: Residual(), "Residual.*sequential_layers"),
    (lambda: nn.Sequential(nn.Linear(4, 4), Inline()), "Inline.*sequential_layers"),
], ids=["tanh", "gelu", "layernorm", "sigmoid", "residual", "inline"])
def test_unsupported_layers_are_refused_by_name(bad, match):
    with pytest.raises(TypeError, match=match):
        network_layers(bad(), (4,))


def test_a_wrong_sequential_layers_declaration_is_caught():
    class Liar(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            return 2 * self.lin(x)

        def sequential_layers(self):
            return [self.lin]

    with pytest.raises(ValueError, match="do not compute its forward"):
        network_layers(Liar(), (4,))


def test_the_module_is_left_untouched():
    model = nn.Sequential(*cnn(0)).train()
    model[0].weight.requires_grad_(False)
    model(torch.rand(4, 1, 8, 8)).sum().backward()  # grads present, BN stats moved
    before = copy.deepcopy(model.state_dict())
    grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    flags = [(m.training, [p.requires_grad for p in m.parameters(recurse=False)])
             for m in model.modules()]
    x, y = torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2])
    rng = torch.get_rng_state()
    layers = network_layers(model, (1, 8, 8))
    crown_margin_bounds(layers, x, y, eps=0.01, alpha_steps=2)
    ibp_margin_bounds(layers, x, y, eps=0.01)
    preactivation_bounds(layers, x, eps=0.01)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all((g is None and p.grad is None) or torch.equal(g, p.grad)
               for g, p in zip(grads, model.parameters(), strict=True))
    assert flags == [(m.training, [p.requires_grad for p in m.parameters(recurse=False)])
                     for m in model.modules()]
    assert torch.equal(rng, torch.get_rng_state())


def test_a_train_mode_module_is_bounded_as_in_eval_mode(data):
    _, x = data
    model = cnn(1).train()
    layers = network_layers(model, (1, 8, 8))
    y = torch.arange(len(x)) % 5
    bounds = ibp_margin_bounds(layers, x, y, eps=0.0)
    exact = margins(model.eval(), x, y)
    finite = torch.isfinite(bounds)
    assert bool(((bounds - exact)[finite].abs() <= 1e-4).all())


def test_dense_layers_compose_to_the_network_and_refuse_max_pool():
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8).eval(), nn.ReLU(),
                          nn.Linear(8, 8), nn.Linear(8, 3))
    pairs = dense_layers(network_layers(model, (6,)))
    assert [w.shape for w, _ in pairs] == [(8, 6), (3, 8)]
    x = np.random.default_rng(0).random((5, 6))
    h = np.maximum(x @ pairs[0][0].T + pairs[0][1], 0) @ pairs[1][0].T + pairs[1][1]
    np.testing.assert_allclose(h, model.eval()(torch.tensor(x).float()).detach(), atol=1e-5)
    with pytest.raises(ValueError, match="max pool"):
        dense_layers(network_layers(cnn(0), (1, 8, 8)))


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize("kwargs,match", [
    (dict(eps=-0.1), "eps"), (dict(eps=float("nan")), "eps"), (dict(eps=0.1, norm="l3"),
                                                               "norm"),
    (dict(eps=0.1, lower=1.0, upper=0.0), "lower"), (dict(eps=0.1, lower=0.5, upper=1.0),
                                                     "outside the box"),
    (dict(eps=0.1, precision="float16"), "precision"),
    (dict(eps=0.1, alpha_steps=-1), "alpha_steps"), (dict(eps=0.1, intermediate="x"),
                                                     "intermediate"),
])
def test_bad_arguments_are_refused_before_any_work(data, kwargs, match):
    x, _ = data
    layers = network_layers(mlp(0), (6,))
    y = torch.zeros(24, dtype=torch.long)
    with pytest.raises(ValueError, match=match):
        crown_margin_bounds(layers, x, y, **kwargs)


def test_bad_inputs_are_refused(data):
    x, _ = data
    layers = network_layers(mlp(0), (6,))
    y = torch.zeros(24, dtype=torch.long)
    with pytest.raises(ValueError, match="x has samples of shape"):
        ibp_margin_bounds(layers, x[:, :5], y, eps=0.1)
    bad = x.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        ibp_margin_bounds(layers, bad, y, eps=0.1)
    with pytest.raises(ValueError, match="y must have shape"):
        ibp_margin_bounds(layers, x, y[:3], eps=0.1)
    with pytest.raises(ValueError, match="class indices"):
        ibp_margin_bounds(layers, x, y + 9, eps=0.1)
    with pytest.raises(ValueError, match="method"):
        preactivation_bounds(layers, x, eps=0.1, method="lp")
    with pytest.raises(TypeError, match="layers"):
        ibp_margin_bounds(mlp(0), x, y, eps=0.1)


# ------------------------------------------------------------------ exactness
@pytest.mark.parametrize("norm", NORMS)
def test_a_linear_model_is_bounded_exactly(norm):
    torch.manual_seed(0)
    model = nn.Linear(5, 4)
    layers = network_layers(model, (5,))
    x, y, eps = torch.rand(7, 5), torch.arange(7) % 4, 0.1
    w, b = model.weight.double(), model.bias.double()
    rows = w[y][:, None] - w[None]  # (N, C, d)
    dual = {"linf": 1, "l2": 2, "l1": np.inf}[norm]
    exact = (torch.einsum("ncd,nd->nc", rows, x.double()) + (b[y][:, None] - b)
             - eps * torch.linalg.vector_norm(rows, ord=dual, dim=-1))
    exact = exact.scatter(1, y[:, None], np.inf)
    for bound in (ibp_margin_bounds, crown_margin_bounds):
        got = bound(layers, x, y, eps=eps, norm=norm, precision=None)
        torch.testing.assert_close(got, exact, rtol=0, atol=1e-12)
    # linf inside a box: the minimum over the clipped box, coordinate by coordinate
    if norm == "linf":
        x_box = x.clamp(0.05, 0.9)
        lo, hi = (x_box.double() - eps).clamp(min=0.05), (x_box.double() + eps).clamp(max=0.9)
        boxed = (torch.einsum("ncd,nd->nc", rows.clamp(min=0), lo)
                 + torch.einsum("ncd,nd->nc", rows.clamp(max=0), hi) + (b[y][:, None] - b))
        got = crown_margin_bounds(layers, x_box, y, eps=eps, lower=0.05, upper=0.9,
                                  precision=None)
        torch.testing.assert_close(got, boxed.scatter(1, y[:, None], np.inf), rtol=0,
                                   atol=1e-12)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_eps_zero_gives_the_exact_margins_up_to_the_slack(data, kind):
    model, shape = (mlp(0), (6,)) if kind == "mlp" else (cnn(0), (1, 8, 8))
    x = data[0] if kind == "mlp" else data[1]
    y = model(x).argmax(1)
    layers = network_layers(model, shape)
    exact = margins(model, x, y).scatter(1, y[:, None], np.inf)
    slack = rounding_slack(layers, x, y, eps=0.0)
    for bound in (ibp_margin_bounds, crown_margin_bounds):
        got = bound(layers, x, y, eps=0.0)
        finite = torch.isfinite(exact)
        assert bool((got <= exact).all())
        assert bool((exact - got)[finite].le(slack[finite] * 2 + 1e-6).all())


def test_the_rounding_slack_is_present_and_small(trained):
    nets, y = trained
    model, x, shape = nets[0]
    layers = network_layers(model, shape)
    slack = rounding_slack(layers, x, y, eps=0.01, lower=0, upper=1)
    off_diagonal = slack.scatter(1, y[:, None], np.inf)
    assert bool((off_diagonal > 0).all()) and float(slack.max()) < 1e-2
    exact = crown_margin_bounds(layers, x, y, eps=0.01, lower=0, upper=1, precision=None)
    rounded = crown_margin_bounds(layers, x, y, eps=0.01, lower=0, upper=1)
    torch.testing.assert_close(exact - rounded, slack.scatter(1, y[:, None], np.nan),
                               equal_nan=True, rtol=1e-9, atol=1e-12)
    certified = [int((b.min(1).values > 0).sum()) for b in (exact, rounded)]
    assert certified[0] - 1 <= certified[1] <= certified[0]
    tf32 = rounding_slack(layers, x, y, eps=0.01, lower=0, upper=1, precision="tf32")
    assert bool((tf32 >= slack).all()) and float(tf32.max()) > 100 * float(slack.max())
    none = rounding_slack(layers, x, y, eps=0.01, precision=None)
    assert float(none.abs().max()) == 0


# ------------------------------------------------------------------ soundness
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("boxed", [False, True])
def test_ibp_and_crown_are_sound_on_a_random_mlp(data, norm, boxed):
    x, _ = data
    model = mlp(1)
    y = model(x).argmax(1)
    layers = network_layers(model, (6,))
    eps = {"linf": 0.05, "l2": 0.1, "l1": 0.2}[norm]
    box = dict(lower=0.0, upper=1.0) if boxed else {}
    ibp = ibp_margin_bounds(layers, x, y, eps=eps, norm=norm, **box)
    crown_ibp = crown_margin_bounds(layers, x, y, eps=eps, norm=norm, intermediate="ibp",
                                    **box)
    crown = crown_margin_bounds(layers, x, y, eps=eps, norm=norm, **box)
    alpha = crown_margin_bounds(layers, x, y, eps=eps, norm=norm, alpha_steps=10, **box)
    assert bool((crown_ibp >= ibp).all() and (crown >= ibp).all() and (alpha >= crown).all())
    assert float(crown.min(1).values.sum()) > float(ibp.min(1).values.sum())
    for bound in (ibp, crown_ibp, crown, alpha):
        assert_sound(model, x, y, bound, eps, norm, **box)
    if boxed:  # the box helps IBP everywhere; CROWN in aggregate (its adaptive slopes
        # may turn out worse for some margins with tighter intermediate bounds)
        free = ibp_margin_bounds(layers, x, y, eps=eps, norm=norm)
        assert bool((ibp >= free - 1e-12).all())
        free = crown_margin_bounds(layers, x, y, eps=eps, norm=norm)
        assert float(crown.min(1).values.sum()) >= float(free.min(1).values.sum())


@pytest.mark.parametrize("norm", NORMS)
def test_ibp_and_crown_are_sound_on_a_cnn_with_bn_avgpool_maxpool(data, norm):
    _, x = data
    model = cnn(2)
    y = model(x).argmax(1)
    layers = network_layers(model, (1, 8, 8))
    eps = {"linf": 0.02, "l2": 0.1, "l1": 0.3}[norm]
    ibp = ibp_margin_bounds(layers, x, y, eps=eps, norm=norm, lower=0, upper=1)
    crown = crown_margin_bounds(layers, x, y, eps=eps, norm=norm, lower=0, upper=1)
    assert bool((crown >= ibp).all())
    for bound in (ibp, crown):
        assert_sound(model, x, y, bound, eps, norm, lower=0.0, upper=1.0, n=16)


def test_crown_pre_activation_bounds_lie_within_ibp_and_hold(data):
    _, x = data
    model = cnn(3)
    layers = network_layers(model, (1, 8, 8))
    ibp = preactivation_bounds(layers, x, eps=0.03, lower=0, upper=1, method="ibp")
    crown = preactivation_bounds(layers, x, eps=0.03, lower=0, upper=1)
    assert len(ibp) == len(crown) == 5  # ReLU, max pool, ReLU, ReLU; then the logits
    for (li, ui), (lc, uc) in zip(ibp, crown, strict=True):
        assert bool((lc >= li - 1e-12).all() and (uc <= ui + 1e-12).all()
                    and (lc <= uc + 1e-9).all())
    tighter = sum(float((ui - li).sum() - (uc - lc).sum())
                  for (li, ui), (lc, uc) in zip(ibp, crown, strict=True))
    assert tighter > 0
    # the real pre-activations at points of the set lie inside (up to float32 rounding)
    for p in in_set(x, 0.03, "linf", 0.0, 1.0, 8, seed=3):
        seen = {}
        hooks = [model[k].register_forward_hook(
            lambda m, i, o, key=k, seen=seen: seen.update({key: (i[0], o)}))
            for k in (1, 5, 8, 11)]
        with torch.no_grad():
            model(p)
        for h in hooks:
            h.remove()
        values = [seen[1][1], seen[5][0], seen[5][1], seen[8][1], seen[11][1]]
        for v, (lo, hi) in zip(values, crown, strict=True):
            v = v.reshape(len(p), -1)
            assert bool(((lo - 1e-5 <= v) & (v <= hi + 1e-5)).all())


# ------------------------------------------------------------------ library networks
@pytest.fixture(scope="module")
def trained(digits_flat, digits_images):
    X, X_test, y, y_test = digits_flat
    mlp_clf = NaturalClassifier(max_epochs=2, random_state=0,
                                module__hidden_units=(64, 64)).fit(X, y)
    Xi, Xi_test, yi, _ = digits_images
    cnn_clf = NaturalClassifier(max_epochs=1, random_state=0, module__channels=(8, 16),
                                module__hidden_units=32).fit(Xi, yi)
    return [(mlp_clf.module_, torch.tensor(X_test[:40]), (64,)),
            (cnn_clf.module_, torch.tensor(Xi_test[:40]), (1, 8, 8))], \
        torch.tensor(y_test[:40])


def test_certified_points_of_library_networks_survive_attacks(trained):
    nets, y = trained
    for model, x, shape in nets:
        layers = network_layers(model, shape)
        correct = model.eval()(x).argmax(1) == y
        eps = 0.02
        bounds = crown_margin_bounds(layers, x[correct], y[correct], eps=eps, lower=0,
                                     upper=1)
        crown_ibp = crown_margin_bounds(layers, x[correct], y[correct], eps=eps, lower=0,
                                        upper=1, intermediate="ibp")
        for bound in (bounds, crown_ibp):
            assert_sound(model, x[correct], y[correct], bound, eps, "linf", 0.0, 1.0, n=8)
        certified = bounds.min(1).values > 0
        assert int(certified.sum()) >= int((crown_ibp.min(1).values > 0).sum())
        assert int(certified.sum()) > 0
        xc, yc = x[correct][certified], y[correct][certified]
        for adversarial in attack_points(model, xc, yc, eps, "linf", (0.0, 1.0)):
            assert bool((model(adversarial).argmax(1) == yc).all())
