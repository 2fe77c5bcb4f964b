"""Exact verification by MILP (issue 29, method 'exact'): known answers and brute force.

Hand-made networks have known robust radii; random networks are checked against random
samples and PGD (a 'robust' point has no adversarial sample and a certified margin below
every sampled one; every counterexample lies in the input set and flips a float32 forward
pass); the box, the l_1 ball, time limits, given pre-activation bounds and a trained
digits MLP complete the picture.
"""

import time

import numpy as np
import pytest
import torch
from scipy.optimize import Bounds, milp

from sklearn_robust import verify
from sklearn_robust.verify._milp import exact_verify, exact_verify_batch, interval_bounds
from sklearn_robust.verify._milp_encoding import Encoding

# --------------------------------------------------------------------------- helpers


def relu_net(*pairs):
    return [(np.array(W, dtype=np.float64), np.array(b, dtype=np.float64)) for W, b in pairs]


#: z0 = relu(x) - 2 relu(x - 1), z1 = 0.5: class 0 on (0.5, 1.5), radius 0.5 at x = 1.
TENT = relu_net(([[1.0], [1.0]], [0.0, -1.0]), ([[1.0, -2.0], [0.0, 0.0]], [0.0, 0.5]))
#: z1 = x1 + x2 - 2 relu(x1 + x2 - 1) (XOR on the corners of [0, 1]^2), z0 = 0.5.
XOR = relu_net(([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [0.0, 0.0, -1.0]),
               ([[0.0, 0.0, 0.0], [1.0, 1.0, -2.0]], [0.5, 0.0]))
#: z0 = 0.5 - 2 relu(x - 1), z1 = 0: class 0 everywhere below x = 1.25.
WALL = relu_net(([[1.0]], [-1.0]), ([[-2.0], [0.0]], [0.5, 0.0]))


def rand_net(sizes, seed):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(o, i)) / np.sqrt(i), rng.normal(size=o) * 0.1)
            for i, o in zip(sizes[:-1], sizes[1:], strict=True)]


def forward64(layers, X):
    h = np.atleast_2d(X)
    for W, b in layers[:-1]:
        h = np.maximum(h @ W.T + b, 0.0)
    return h @ layers[-1][0].T + layers[-1][1]


def torch_net(layers, dtype=torch.float32):
    mods = []
    for k, (W, b) in enumerate(layers):
        lin = torch.nn.Linear(W.shape[1], W.shape[0]).to(dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(W))
            lin.bias.copy_(torch.as_tensor(b))
        mods += [lin, torch.nn.ReLU()] if k < len(layers) - 1 else [lin]
    return torch.nn.Sequential(*mods)


def predict32(layers, x):
    with torch.no_grad():
        return int(torch_net(layers)(torch.as_tensor(x, dtype=torch.float32)[None]).argmax())


def margins(Z, y):
    others = Z.copy()
    others[:, y] = -np.inf
    return Z[:, y] - others.max(axis=1)


def sampled_min_margin(layers, x, y, eps, norm, lo, hi, n=4000, seed=0):
    """The smallest float64 margin among random points (corners, vertices) of the set."""
    rng = np.random.default_rng(seed)
    d = x.size
    if norm == "linf":
        a, b = np.maximum(x - eps, lo), np.minimum(x + eps, hi)
        corners = np.where(rng.random((n, d)) < 0.5, a, b)
        pts = np.vstack([a + (b - a) * rng.random((n, d)), corners])
    else:
        signs = np.vstack([np.eye(d), -np.eye(d)]) * eps
        radii = eps * rng.random((n, 1)) ** (1 / d)
        dirs = rng.laplace(size=(n, d))
        dirs /= np.abs(dirs).sum(axis=1, keepdims=True)
        pts = np.clip(x + np.vstack([signs, radii * dirs]), lo, hi)
    return margins(forward64(layers, pts), y).min()


def pgd_min_margin(layers, x, y, eps, lo, hi, steps=60, restarts=8, seed=0):
    """The smallest margin PGD (float64, l_inf) reaches from random starts."""
    net = torch_net(layers, torch.float64)
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.as_tensor(x)
    a = torch.maximum(x0 - eps, torch.as_tensor(lo, dtype=torch.float64))
    b = torch.minimum(x0 + eps, torch.as_tensor(hi, dtype=torch.float64))
    xa = a + (b - a) * torch.rand(restarts, x.size, generator=gen, dtype=torch.float64)
    best = np.inf
    for t in range(steps):
        xa.requires_grad_(True)
        z = net(xa)
        others = z.clone()
        others[:, y] = -np.inf
        m = z[:, y] - others.max(dim=1).values
        best = min(best, float(m.detach().min()))
        (grad,) = torch.autograd.grad(m.sum(), xa)
        step = eps * (0.25 if t < steps // 2 else 0.05)
        xa = torch.clamp(xa.detach() - step * grad.sign(), a, b)
    return best


def check_counterexample(layers, res, x, y, eps, norm, lo=-np.inf, hi=np.inf):
    """``res``: an ExactResult or ``(counterexample, wrong_class, margin32)``."""
    x_adv, wrong, m32 = (res if isinstance(res, tuple) else
                         (res.counterexample, res.wrong_class, res.margin32))
    assert x_adv.shape == x.shape and x_adv.dtype == np.float64
    dist = np.abs(x_adv - x).max() if norm == "linf" else np.abs(x_adv - x).sum()
    assert dist <= eps + 1e-6
    assert (x_adv >= lo).all() and (x_adv <= hi).all()
    assert predict32(layers, x_adv) != y
    assert wrong == predict32(layers, x_adv)
    assert m32 < 0


# ------------------------------------------------------------- hand-made networks


@pytest.mark.parametrize("net,x,y,norm,radius", [
    (TENT, [1.0], 0, "linf", 0.5),
    (TENT, [0.3], 1, "linf", 0.2),  # the unstable ReLU decides
    (XOR, [1.0, 0.0], 1, "linf", 0.5),
    (XOR, [0.5, 0.5], 1, "linf", 0.25),
    (XOR, [0.5, 0.5], 1, "l1", 0.5),
    (XOR, [0.0, 0.0], 0, "l1", 0.5),
], ids=["tent", "tent-left", "xor-corner", "xor-centre", "xor-centre-l1", "xor-origin-l1"])
def test_known_radius(net, x, y, norm, radius):
    x = np.array(x)
    res = exact_verify(net, x, y, eps=0.96 * radius, norm=norm, lower=0.0, upper=1.0)
    assert res.status == "robust"
    assert 0 < res.min_margin <= 0.04 * radius * 2 + 1e-9  # the margin drops at slope <= 2
    res = exact_verify(net, x, y, eps=1.04 * radius, norm=norm, lower=0.0, upper=1.0)
    assert res.status == "counterexample"
    check_counterexample(net, res, x, y, 1.04 * radius, norm, 0.0, 1.0)


def test_tent_min_margin_is_a_lower_bound_of_the_true_one():
    res = exact_verify(TENT, np.array([1.0]), 0, eps=0.2)
    assert res.status == "robust" and 0 < res.min_margin <= 0.3 + 1e-9  # min z0 = 0.8


def test_margin_target():
    """min margin 0.3 at eps 0.2: robust for target 0.2, a 'counterexample' for 0.4."""
    x = np.array([1.0])
    assert exact_verify(TENT, x, 0, eps=0.2, margin_target=0.2).status == "robust"
    res = exact_verify(TENT, x, 0, eps=0.2, margin_target=0.4)
    assert res.status == "counterexample" and 0.2 < res.margin32 < 0.4
    assert res.wrong_class == 1 and abs(res.counterexample[0] - 1.0) <= 0.2 + 1e-9


def test_box_decides():
    """Adversarial points exist only above x = 1.25, outside the box."""
    x = np.array([1.0])
    assert exact_verify(WALL, x, 0, eps=0.5, lower=0.0, upper=1.0).status == "robust"
    res = exact_verify(WALL, x, 0, eps=0.5)
    assert res.status == "counterexample" and res.counterexample[0] > 1.25
    check_counterexample(WALL, res, x, 0, 0.5, "linf")
    res = exact_verify(WALL, x, 0, eps=0.5, norm="l1", upper=np.ones(1))
    assert res.status == "robust"


@pytest.mark.parametrize("delta", [-1e-9, 1e-9, 1e-6])
def test_near_ties_are_unknown(delta):
    """The minimum margin is -delta: too close to 0 for float64 MILP and float32 to agree."""
    res = exact_verify(TENT, np.array([1.0]), 0, eps=0.5 + delta)
    assert res.status == "unknown" and res.counterexample is None
    assert res.min_margin <= -delta + 1e-9


def test_counterexamples_are_projected_into_the_set():
    from sklearn_robust.verify._milp_encoding import project

    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 0.8, size=6)
    for norm in ("linf", "l1"):
        for _ in range(50):
            out = project(x + rng.normal(scale=0.5, size=6), x, 0.3, norm, 0.1, 0.9)
            dist = np.abs(out - x).max() if norm == "linf" else np.abs(out - x).sum()
            assert dist <= 0.3 + 1e-12 and out.min() >= 0.1 and out.max() <= 0.9


def test_eps_zero_and_misclassified_point():
    assert exact_verify(TENT, np.array([1.0]), 0, eps=0.0).status == "robust"
    res = exact_verify(TENT, np.array([0.2]), 0, eps=0.0)  # clean point of class 1
    assert res.status == "counterexample" and res.n_milps == 0
    np.testing.assert_array_equal(res.counterexample, [0.2])


def test_network_without_hidden_layer():
    layers = relu_net(([[1.0, -1.0], [-1.0, 1.0]], [0.0, 0.0]))
    x = np.array([0.6, 0.4])  # margin 2 (x1 - x2) = 0.4, linf radius 0.1
    assert exact_verify(layers, x, 0, eps=0.09).status == "robust"
    assert exact_verify(layers, x, 0, eps=0.11).status == "counterexample"


# ---------------------------------------------------------------- random networks


def random_points(layers, n, d, seed):
    X = np.random.default_rng(seed).uniform(size=(n, d))
    return X, forward64(layers, X).argmax(axis=1)


@pytest.mark.parametrize("seed,eps", [(0, 0.1), (1, 0.2), (2, 0.15)])
def test_random_nets_agree_with_brute_force(seed, eps):
    layers = rand_net([10, 16, 16, 3], seed)
    X, Y = random_points(layers, 8, 10, 100 + seed)
    out = exact_verify_batch(layers, X, Y, eps=eps, lower=0.0, upper=1.0)
    assert "unknown" not in out["status"]
    for i, (x, y) in enumerate(zip(X, Y, strict=True)):
        sampled = min(sampled_min_margin(layers, x, y, eps, "linf", 0.0, 1.0),
                      pgd_min_margin(layers, x, y, eps, 0.0, 1.0))
        if out["status"][i] == "robust":
            assert sampled > 0
            assert 0 < out["min_margin"][i] <= sampled + 1e-9
        else:
            found = out["counterexample"][i], out["wrong_class"][i], out["margin32"][i]
            check_counterexample(layers, found, x, y, eps, "linf", 0.0, 1.0)


def test_random_nets_give_both_verdicts():
    layers = rand_net([10, 16, 16, 3], 0)
    X, Y = random_points(layers, 10, 10, 100)
    out = exact_verify_batch(layers, X, Y, eps=0.1, lower=0.0, upper=1.0)
    assert {"robust", "counterexample"} <= set(out["status"])


@pytest.mark.parametrize("eps", [0.3, 0.5])
def test_l1_random_net(eps):
    layers = rand_net([10, 16, 16, 3], 0)
    X, Y = random_points(layers, 10, 10, 100)
    out = exact_verify_batch(layers, X, Y, eps=eps, norm="l1", lower=0.0, upper=1.0)
    assert "unknown" not in out["status"]
    assert {"robust", "counterexample"} <= set(out["status"])
    for i, (x, y) in enumerate(zip(X, Y, strict=True)):
        if out["status"][i] == "robust":
            sampled = sampled_min_margin(layers, x, y, eps, "l1", 0.0, 1.0)
            assert 0 < out["min_margin"][i] <= sampled + 1e-9
        else:
            found = out["counterexample"][i], out["wrong_class"][i], out["margin32"][i]
            check_counterexample(layers, found, x, y, eps, "l1", 0.0, 1.0)


def test_l1_is_weaker_than_linf_at_the_same_radius():
    x = np.array([0.5, 0.5])
    assert exact_verify(XOR, x, 1, eps=0.3, norm="l1").status == "robust"
    assert exact_verify(XOR, x, 1, eps=0.3, norm="linf").status == "counterexample"


def test_tiny_time_limit_gives_unknown():
    layers = rand_net([20, 64, 64, 64, 4], 3)
    X, Y = random_points(layers, 4, 20, 7)
    out = exact_verify_batch(layers, X, Y, eps=0.3, lower=0.0, upper=1.0, time_limit=1e-3)
    assert (out["status"] == "unknown").all()
    assert (out["time"] < 0.5).all()


def test_time_limit_never_contradicts_the_unlimited_verdict():
    layers = rand_net([10, 16, 16, 3], 0)
    X, Y = random_points(layers, 10, 10, 100)
    full = exact_verify_batch(layers, X, Y, eps=0.1, lower=0.0, upper=1.0)["status"]
    for limit in (1e-3, 0.02):
        short = exact_verify_batch(layers, X, Y, eps=0.1, lower=0.0, upper=1.0,
                                   time_limit=limit)["status"]
        decided = short != "unknown"
        np.testing.assert_array_equal(short[decided], full[decided])


def lp_tightened(layers, x, eps, norm, lo, hi):
    """Pre-activation bounds from the LP relaxation, layer by layer: sound and tighter."""
    ibp = interval_bounds(layers, x, eps=eps, norm=norm, lower=lo, upper=hi)
    lower, upper = np.full(x.size, lo), np.full(x.size, hi)
    preact = []
    for k, (W, b) in enumerate(layers[:-1]):
        enc = Encoding(layers[:k + 1], preact, x, eps, norm, lower, upper)
        ends = []
        for sign in (1.0, -1.0):  # minimise, then maximise, each pre-activation
            cost = sign * (W @ enc.A_out)
            cost[:, -1] = sign * (W @ enc.c_out + b)
            ends.append(np.array([sign * milp(row, bounds=Bounds(enc.var_lb, enc.var_ub),
                                              constraints=enc.constraints).fun
                                  for row in cost]))
        preact.append((np.maximum(ends[0] - 1e-7, ibp[k][0]),
                       np.minimum(ends[1] + 1e-7, ibp[k][1])))
    return preact


def test_given_tighter_preact_gives_the_same_verdicts():
    layers = rand_net([10, 16, 16, 3], 0)
    X, Y = random_points(layers, 10, 10, 100)
    ibp = exact_verify_batch(layers, X, Y, eps=0.1, lower=0.0, upper=1.0)
    calls = []

    def preact_fn(x):
        calls.append(x)
        return lp_tightened(layers, x, 0.1, "linf", 0.0, 1.0)

    tight = exact_verify_batch(layers, X, Y, eps=0.1, lower=0.0, upper=1.0, preact_fn=preact_fn)
    np.testing.assert_array_equal(tight["status"], ibp["status"])
    assert len(calls) == len(X)
    x, y = X[0], Y[0]
    loose = interval_bounds(layers, x, eps=0.1, lower=0.0, upper=1.0)
    tighter = lp_tightened(layers, x, 0.1, "linf", 0.0, 1.0)
    n_unstable = [sum(((lo < 0) & (hi > 0)).sum() for lo, hi in p) for p in (loose, tighter)]
    assert n_unstable[1] <= n_unstable[0]
    res = exact_verify(layers, x, y, eps=0.1, lower=0.0, upper=1.0, preact=tighter)
    assert res.status == ibp["status"][0]


def test_preact_as_preactivation_bounds_gives_it():
    """Pairs of shape (1, width) and a last pair for the logits are taken."""
    layers = rand_net([10, 16, 16, 3], 0)
    X, Y = random_points(layers, 3, 10, 100)
    for x, y in zip(X, Y, strict=True):
        pairs = lp_tightened(layers, x, 0.1, "linf", 0.0, 1.0)
        batched = [(lo[None], hi[None]) for lo, hi in pairs] + [(np.full((1, 3), -9.0),
                                                                 np.full((1, 3), 9.0))]
        res = exact_verify(layers, x, y, eps=0.1, lower=0.0, upper=1.0, preact=batched)
        assert res.status == exact_verify(layers, x, y, eps=0.1, lower=0.0, upper=1.0).status


def test_crown_preact_gives_the_same_verdicts():
    layers = rand_net([10, 16, 16, 3], 0)
    model = torch_net(layers, torch.float64)
    canonical = verify.network_layers(model, (10,))
    X, Y = random_points(layers, 10, 10, 100)
    out_ibp = exact_verify_batch(layers, X, Y, eps=0.1, lower=0.0, upper=1.0)

    def crown(x):
        return verify.preactivation_bounds(canonical, torch.as_tensor(x)[None], eps=0.1,
                                           lower=torch.zeros(1, 10), upper=torch.ones(1, 10))

    out = exact_verify_batch(layers, X, Y, eps=0.1, lower=0.0, upper=1.0, preact_fn=crown)
    np.testing.assert_array_equal(out["status"], out_ibp["status"])


def test_interval_bounds_hold_and_l1_is_tighter_than_its_box():
    layers = rand_net([10, 16, 16, 3], 1)
    x = np.full(10, 0.5)
    for norm in ("linf", "l1"):
        bounds = interval_bounds(layers, x, eps=0.2, norm=norm, lower=0.0, upper=1.0)
        rng = np.random.default_rng(0)
        delta = rng.uniform(-0.2, 0.2, size=(2000, 10))
        if norm == "l1":
            delta *= 0.2 / np.maximum(np.abs(delta).sum(axis=1, keepdims=True), 0.2)
        h = np.clip(x + delta, 0, 1)
        for (W, b), (lo, hi) in zip(layers[:-1], bounds, strict=True):
            z = h @ W.T + b
            assert (z >= lo - 1e-12).all() and (z <= hi + 1e-12).all()
            h = np.maximum(z, 0)
    l1 = interval_bounds(layers, x, eps=0.2, norm="l1")[0]
    linf = interval_bounds(layers, x, eps=0.2, norm="linf")[0]
    assert (l1[1] - l1[0] < linf[1] - linf[0]).all()


def test_batch_matches_single_calls():
    X = np.array([[1.0, 0.0], [0.6, 0.6], [0.0, 0.05]])  # radii 0.5, 0.15, 0.225
    Y = np.array([1, 1, 0])
    out = exact_verify_batch(XOR, X, Y, eps=0.2, lower=0.0, upper=1.0)
    for i in range(3):
        res = exact_verify(XOR, X[i], Y[i], eps=0.2, lower=0.0, upper=1.0)
        assert out["status"][i] == res.status
        assert out["wrong_class"][i] == (-1 if res.wrong_class is None else res.wrong_class)
    assert out["status"].tolist() == ["robust", "counterexample", "robust"]
    assert set(out) >= {"status", "counterexample", "min_margin", "wrong_class", "time",
                        "n_milps"}


# ----------------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(eps=-0.1), ValueError, "eps"),
    (dict(eps=np.nan), ValueError, "eps"),
    (dict(eps=0.1, norm="l2"), ValueError, "supports 'linf' and 'l1'"),
    (dict(eps=0.1, norm="inf"), ValueError, "norm"),
    (dict(eps=0.1, x=np.array([0.5])), ValueError, "x must have shape"),
    (dict(eps=0.1, x=np.array([np.nan, 0.5])), ValueError, "x holds NaN"),
    (dict(eps=0.1, y=2), ValueError, "y=2"),
    (dict(eps=0.1, y=0.5), TypeError, "y must be an integer"),
    (dict(eps=0.1, lower=np.zeros(3)), ValueError, "lower must be"),
    (dict(eps=0.1, lower=1.0, upper=0.0), ValueError, "lower must not exceed upper"),
    (dict(eps=0.1, upper=0.2), ValueError, "outside the box"),
    (dict(eps=0.1, preact=[]), ValueError, "preact must hold one"),
    (dict(eps=0.1, preact=[(np.zeros(3), np.zeros(2))]), ValueError, r"preact\[0\]"),
    (dict(eps=0.1, preact=[(np.ones(3), np.zeros(3))]), ValueError, r"preact\[0\]"),
    (dict(eps=0.1, time_limit=0), ValueError, "time_limit"),
    (dict(eps=0.1, margin_target=np.inf), ValueError, "margin_target"),
])
def test_invalid_arguments_are_refused(kwargs, error, match):
    kwargs = dict(dict(x=np.array([0.5, 0.5]), y=1), **kwargs)
    with pytest.raises(error, match=match):
        exact_verify(XOR, kwargs.pop("x"), kwargs.pop("y"), **kwargs)


@pytest.mark.parametrize("layers,match", [
    ([], "non-empty"),
    ([(np.ones((2, 2)),)], r"layers\[0\] must be a \(W, b\) pair"),
    ([(np.ones((2, 2)), np.ones(3))], r"layers\[0\]: W must have shape"),
    ([(np.ones((3, 2)), np.ones(3)), (np.ones((2, 2)), np.ones(2))], "takes 2 inputs"),
    ([(np.full((2, 2), np.nan), np.ones(2))], "NaN"),
    ([(np.ones((1, 2)), np.ones(1))], "at least 2 logits"),
])
def test_invalid_layers_are_refused(layers, match):
    with pytest.raises(ValueError, match=match):
        exact_verify(layers, np.zeros(2), 0, eps=0.1)


def test_batch_validates_every_row_before_any_work():
    calls = []
    X = np.array([[0.5, 0.5], [0.5, 2.0]])
    with pytest.raises(ValueError, match=r"X\[1\] lies outside"):
        exact_verify_batch(XOR, X, [1, 1], eps=0.1, lower=0.0, upper=1.0,
                           preact_fn=lambda x: calls.append(x))
    assert not calls
    with pytest.raises(ValueError, match="Y must have shape"):
        exact_verify_batch(XOR, X, [1], eps=0.1)
    with pytest.raises(ValueError, match="X must have shape"):
        exact_verify_batch(XOR, X[:, :1], [1, 1], eps=0.1)
    with pytest.raises(ValueError, match="supports 'linf' and 'l1'"):
        exact_verify_batch(XOR, X, [1, 1], eps=0.1, norm="l2")


# ------------------------------------------------------------------ trained digits MLP


@pytest.fixture(scope="module")
def digits_mlp(digits_flat):
    from sklearn_robust import NaturalClassifier

    X_train, X_test, y_train, y_test = digits_flat
    clf = NaturalClassifier(module__hidden_units=(32, 32), max_epochs=10, random_state=0)
    clf.fit(X_train, y_train)
    layers = [(m.weight.detach().double().numpy(), m.bias.detach().double().numpy())
              for m in clf.module_.net if isinstance(m, torch.nn.Linear)]
    return clf, layers, X_test[:20], y_test[:20]


@pytest.mark.parametrize("eps", [0.05, pytest.param(0.1, marks=pytest.mark.slow)])
def test_digits_mlp(digits_mlp, eps):
    clf, layers, X, y = digits_mlp
    start = time.perf_counter()
    out = exact_verify_batch(layers, X.astype(np.float64), y, eps=eps, lower=0.0, upper=1.0,
                             time_limit=30)
    elapsed = time.perf_counter() - start
    status = out["status"]
    counts = {s: int((status == s).sum()) for s in ("robust", "counterexample", "unknown")}
    print(f"digits eps={eps}: {counts} "
          f"in {elapsed:.2f} s, slowest point {out['time'].max():.2f} s")
    assert "unknown" not in status and "robust" in status
    for i in np.flatnonzero(status == "counterexample"):
        x32 = out["counterexample"][i].astype(np.float32)
        assert np.abs(x32 - X[i]).max() <= eps + 1e-6 and x32.min() >= 0 and x32.max() <= 1
        assert clf.predict(x32[None])[0] != y[i]
    robust = status == "robust"
    assert (out["min_margin"][robust] > 0).all()
    assert (clf.predict(X[robust]) == y[robust]).all()
