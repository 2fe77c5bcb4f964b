"""The helpers every layer shares (``sklearn_robust.utils``, private to the package).

Validation on scikit-learn's parameter validation (booleans are not numbers, numbers are
finite, the error names the parameter and the caller), bounds checks, the torch helpers
(freezing a model and restoring it exactly, devices, generators, callables as modules),
the random streams a fit owns, and docstring substitution.
"""

import threading
from numbers import Real

import numpy as np
import pytest
import torch
from torch import nn

from sklearn_robust.estimators import MLP, SmallCNN
from sklearn_robust.utils import (
    FRACTION,
    NON_NEGATIVE_INT,
    NORMS,
    POSITIVE_INT,
    CallableModule,
    FitStreams,
    Interval,
    InvalidParameterError,
    StrOptions,
    Substitution,
    active_generator,
    active_streams,
    as_module,
    building_from,
    check_bounds,
    check_bounds_contain,
    check_eps,
    check_fraction,
    check_int,
    check_norm,
    check_positive,
    check_scalar_param,
    cuda_devices,
    drawing_from,
    forked_rng,
    frozen,
    make_generator,
    mix_seed,
    mode_independent,
    module_device,
    per_sample,
    resolve_device,
    seed_from,
    validate_params_of,
)


# ---------------------------------------------------------------------------- validation
def test_validate_params_of_adds_booleans_and_finiteness_to_sklearns_rules():
    constraints = {"eps": [Interval(Real, 0, None, closed="left")], "flag": ["boolean"],
                   "anything": "no_validation", "step": [None, Interval(Real, 0, None,
                                                                       closed="neither")]}
    validate_params_of(constraints, {"eps": 0.0, "flag": True, "anything": object(),
                                     "step": None, "unchecked": "whatever"}, "Caller")
    cases = [({"eps": True}, "'eps' parameter of Caller must be a number, not a boolean"),
             ({"eps": np.bool_(False)}, "not a boolean"),
             ({"eps": float("inf")}, "'eps' parameter of Caller must be finite"),
             ({"eps": -1.0}, "'eps' parameter of Caller must be a float in the range"),
             ({"flag": 1.5}, "'flag' parameter of Caller"),
             ({"step": 0.0}, "'step' parameter of Caller")]
    for params, match in cases:
        with pytest.raises(InvalidParameterError, match=match) as info:
            validate_params_of(constraints, params, "Caller")
        assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


def test_the_check_helpers_return_the_checked_value():
    value = [1, 2]
    assert check_scalar_param(value, "v", [list], "f") is value  # unchanged
    assert check_eps(1) == 1.0 and type(check_eps(1)) is float
    assert check_eps(0.0) == 0.0
    with pytest.raises(ValueError, match="'radius' parameter of f must be a float in the "
                                         "range \\(0.0, inf\\)"):
        check_eps(0.0, "radius", "f", positive=True)
    with pytest.raises(ValueError, match="'eps' parameter of sklearn_robust"):  # the default
        check_eps(-1.0)
    assert check_positive(2, "lr") == 2.0
    with pytest.raises(ValueError, match="'lr' parameter"):
        check_positive(0, "lr")
    assert check_int(3, "steps") == 3 and check_int(0, "steps", low=0) == 0
    for bad in (0, 1.0, True, "3"):
        with pytest.raises(ValueError, match="'steps' parameter of PGD"):
            check_int(bad, "steps", "PGD")
    assert check_fraction(1, "f") == 1.0
    with pytest.raises(ValueError, match="range \\(0.0, 1.0\\]"):
        check_fraction(0.0, "f")
    assert NORMS == ("linf", "l2", "l1")
    assert check_norm("l1") == "l1"
    with pytest.raises(ValueError, match="'p' parameter of f must be a str among"):
        check_norm("l1", "p", "f", norms=("linf", "l2"))


def test_the_shared_constraints():
    def ok(constraint, value):
        try:
            check_scalar_param(value, "x", constraint, "f")
        except InvalidParameterError:
            return False
        return True

    assert ok(POSITIVE_INT, 1) and not ok(POSITIVE_INT, 0)
    assert ok(NON_NEGATIVE_INT, 0) and not ok(NON_NEGATIVE_INT, -1)
    assert ok(FRACTION, 1.0) and not ok(FRACTION, 0.0) and not ok(FRACTION, 1.01)
    assert ok([StrOptions({"a"})], "a") and not ok([StrOptions({"a"})], "b")


def test_check_bounds():
    assert check_bounds(None) is None
    low, high = check_bounds((0, 1))
    assert low.shape == high.shape == () and low.dtype == high.dtype == np.float32
    low, high = check_bounds((np.zeros(2), 1))  # arrays and scalars mix
    assert low.tolist() == [0.0, 0.0] and float(high) == 1.0
    assert check_bounds((0.5, 0.5))[0] == 0.5  # a pinned range is valid
    for bad, match in [("ab", "a \\(low, high\\) pair"), ((1,), "pair"), ((1, 2, 3), "pair"),
                       (("a", "b"), "must hold numbers"), ((0, np.nan), "must be finite"),
                       (([0, 0], [[1, 1, 1]]), "incompatible shapes"),
                       ((np.zeros(2), [1.0, -1.0]), "low <= high")]:
        with pytest.raises(ValueError, match=match):
            check_bounds(bad)
    with pytest.raises(ValueError, match="box must be finite"):
        check_bounds((0, np.inf), name="box")


def test_check_bounds_contain():
    X = np.full((2, 3), 1.0 + 5e-7)  # within the 1e-6 tolerance of high
    assert check_bounds_contain(None, X) is None
    low, high = check_bounds_contain((0, 1), X)
    assert (float(low), float(high)) == (0.0, 1.0)
    check_bounds_contain((np.zeros(3), np.full(3, 2.0)), X)  # per feature
    with pytest.raises(ValueError, match="broadcast to one sample's shape \\(3,\\)"):
        check_bounds_contain((np.zeros(2), 1), X)
    with pytest.raises(ValueError, match="outside the declared bounds"):
        check_bounds_contain((0, 1), X + 1e-5)


# ---------------------------------------------------------------------------- torch
def test_frozen_restores_every_flag_even_after_an_error():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Dropout(0.5), nn.Linear(3, 1))
    model.train()
    model[2].eval()  # mixed modes
    model[3].bias.requires_grad_(False)  # mixed flags
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    stats = model[1].running_mean.clone()
    with pytest.raises(RuntimeError, match="inside"), frozen(model) as inside:
        assert inside is model
        assert not any(m.training for m in model.modules())
        assert not any(p.requires_grad for p in model.parameters())
        model(torch.randn(4, 2))  # eval mode: BatchNorm's statistics are not updated
        raise RuntimeError("inside")
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert torch.equal(model[1].running_mean, stats)


class UserModule(nn.Module):
    """A user's network: its forward might read ``self.training``, so it is not trusted."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


class SubCNN(SmallCNN):
    """A subclass does not inherit the declaration: it may override the forward."""


@pytest.mark.parametrize("module,expected", [
    (SmallCNN((1, 8, 8), 10), True),
    (MLP(4, 3), True),
    (nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.ReLU()), True),
    (SmallCNN((1, 8, 8), 10, dropout=0.1), False),
    (SmallCNN((1, 8, 8), 10, batch_norm=True), False),
    (MLP(4, 3, dropout=0.2), False),
    (nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.GroupNorm(2, 4)), True),
    (nn.Sequential(nn.Linear(4, 4), nn.InstanceNorm1d(4)), False),
    (UserModule(nn.Linear(4, 2)), False),
    (SubCNN((1, 8, 8), 10), False),
], ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else str(v))
def test_mode_independence_is_recognised_conservatively(module, expected):
    assert mode_independent(module) is expected


def test_module_device():
    assert module_device(nn.Linear(2, 2)) == torch.device("cpu")
    buffers_only = nn.Module()
    buffers_only.register_buffer("scale", torch.ones(1, dtype=torch.float64))
    assert module_device(buffers_only) == torch.device("cpu")
    declared = nn.Module()
    declared.device = "meta"  # a parameterless bridge module declares where it runs
    assert module_device(declared) == torch.device("meta")
    assert module_device(nn.ReLU()) == torch.device("cpu")


def test_device_auto_resolves_to_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")


def test_device_auto_picks_cuda_when_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(ValueError, match="only 2 CUDA"):
        resolve_device("cuda:2")


def test_resolve_device_passes_none_and_names_bad_devices():
    assert resolve_device(None) is None  # skorch's "do not move"
    assert resolve_device("cpu") == "cpu"
    assert resolve_device(torch.device("cpu")) == "cpu"  # a device object becomes a string
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device(3.5)


def test_seeds_and_generators_follow_random_state():
    assert seed_from(5) == 5  # an int is the seed
    assert seed_from(np.random.RandomState(0)) == seed_from(np.random.RandomState(0))
    state = np.random.RandomState(0)
    assert seed_from(state) != seed_from(state)  # a RandomState is drawn from
    np.random.seed(1)
    from_global = seed_from(None)
    np.random.seed(1)
    assert seed_from(None) == from_global  # None: numpy's global stream, sklearn's rule
    a = torch.rand(3, generator=make_generator(0, "cpu"))
    b = torch.rand(3, generator=make_generator(0, torch.device("cpu")))
    c = torch.rand(3, generator=make_generator(1, "cpu"))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert make_generator(0, "cpu").device == torch.device("cpu")


def test_per_sample_broadcasts_one_value_per_row():
    x = torch.ones(2, 3, 4)
    scaled = x * per_sample(torch.tensor([2.0, 3.0]), x)
    assert scaled[0].unique().tolist() == [2.0] and scaled[1].unique().tolist() == [3.0]


def test_callables_become_parameterless_modules():
    linear = nn.Linear(2, 2)
    assert as_module(linear) is linear
    wrapped = as_module(lambda x: np.ones((x.shape[0], 3)))  # numpy scores
    assert isinstance(wrapped, CallableModule) and list(wrapped.parameters()) == []
    out = wrapped(torch.zeros(4, 2, dtype=torch.float64))
    assert out.shape == (4, 3) and out.dtype == torch.float64  # x's dtype and device
    tensor_out = torch.arange(3.0)
    assert as_module(lambda x: tensor_out)(torch.zeros(1)) is tensor_out  # tensors as they are
    with pytest.raises(TypeError, match="torch module or a callable, got int"):
        as_module(3)


# ---------------------------------------------------------------------------- random streams
def test_mix_seed():
    assert mix_seed(0, 1) == mix_seed(0, 1)
    assert len({mix_seed(0, 1), mix_seed(0, 2), mix_seed(1, 1), mix_seed(0)}) == 4
    assert all(0 <= mix_seed(s, 7) < 2**32 for s in range(5))


def test_fit_streams():
    streams = FitStreams(3)
    assert streams.generator("cpu") is streams.generator(torch.device("cpu"))  # one per device
    first = torch.rand(4, generator=streams.generator())
    seed = streams.draw_seed()
    streams.reseed(3)  # every stream restarts
    assert torch.equal(torch.rand(4, generator=streams.generator()), first)
    assert streams.draw_seed() == seed and streams.seed == 3
    assert FitStreams(4).draw_seed() != FitStreams(3).draw_seed()


def test_drawing_from_is_per_thread_and_nests():
    outer, inner = FitStreams(0), FitStreams(1)
    assert active_streams() is None and active_generator() is None
    seen = {}
    with drawing_from(outer):
        assert active_streams() is outer
        assert active_generator("cpu") is outer.generator("cpu")
        with drawing_from(inner):
            assert active_streams() is inner
        assert active_streams() is outer
        thread = threading.Thread(target=lambda: seen.update(other=active_streams()))
        thread.start()
        thread.join()
    assert seen == {"other": None}  # another thread draws from its own (no) fit
    assert active_streams() is None


def test_forked_rng_restores_the_global_stream_even_after_an_error():
    torch.manual_seed(0)
    state = torch.get_rng_state()
    with forked_rng(5):
        a = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), state)
    with pytest.raises(RuntimeError), forked_rng(5):
        assert torch.equal(torch.rand(3), a)  # seeded inside: the same draws
        raise RuntimeError
    assert torch.equal(torch.get_rng_state(), state)
    with forked_rng():  # unseeded: continues the global stream, then rewinds it
        b = torch.rand(3)
    assert torch.equal(torch.rand(3), b)


def test_building_from_draws_a_users_weights_from_the_fit_stream():
    torch.manual_seed(0)
    state = torch.get_rng_state()
    streams = FitStreams(11)
    with building_from(streams):
        built = nn.Linear(3, 2).weight.detach().clone()
    assert torch.equal(torch.get_rng_state(), state)  # the global stream untouched
    torch.manual_seed(11)
    assert torch.equal(nn.Linear(3, 2).weight.detach(), built)  # as after manual_seed(11)
    after = torch.rand(2)
    assert torch.equal(torch.rand(2, generator=streams.generator()), after)  # it went on
    torch.manual_seed(2)
    state = torch.get_rng_state()
    with building_from(None):  # no fit: the global stream, as usual (not forked)
        nn.Linear(3, 2)
    assert not torch.equal(torch.get_rng_state(), state)


def test_cuda_devices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cuda_devices() == []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert cuda_devices() == [0, 1, 2]


# ---------------------------------------------------------------------------- docstrings
def test_substitution_fills_blocks_at_the_placeholders_indent():
    shared = Substitution(eps="""
        eps : float
            Radius of the ball.
        """, name="the ball")

    @shared
    def f():
        """Measure %(name)s.

        Parameters
        ----------
        %(eps)s
        %(unknown)s
        """

    lines = f.__doc__.splitlines()
    assert lines[0] == "Measure the ball."  # inline placeholders too
    at = lines.index("        eps : float")  # the placeholder's indent
    assert lines[at + 1] == "            Radius of the ball."
    assert "        %(unknown)s" in lines  # a name it does not know stays
    assert shared.fill("%(name)s\n") == "the ball\n"  # the final newline is kept

    @shared
    def g():
        pass

    assert g.__doc__ is None and shared.fill("no placeholders") == "no placeholders"
