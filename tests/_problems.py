"""A hypothesis strategy of threat models and batches, shared by the threat and attack tests.

Over norms (l_inf, l_2, l_1), radii in [0, 1], bounds (none, a scalar pair, per-feature
arrays with low <= high, some features pinned) and sample shapes ((d,) rows and (c, h, w)
images).
"""

import numpy as np
import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from torch import nn

from sklearn_robust import ThreatModel

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
N_CLASSES = 3


@st.composite
def problems(draw):
    """``(threat, x, seed)``: a threat model and a batch lying inside its bounds."""
    norm = draw(st.sampled_from(["linf", "l2", "l1"]))
    eps = draw(st.one_of(st.just(0.0), st.floats(0.0, 1.0, allow_nan=False, width=32)))
    n = draw(st.integers(1, 4))
    sample_shape = draw(st.sampled_from([(1,), (5,), (1, 3, 3), (2, 2, 3)]))
    kind = draw(st.sampled_from(["none", "scalar", "per-feature"]))
    seed = draw(st.integers(0, 2**16))
    gen = np.random.RandomState(seed)
    if kind == "none":
        bounds, low, high = None, -2.0, 2.0
    elif kind == "scalar":
        low = float(gen.uniform(-1.0, 0.5))
        high = low + float(draw(st.sampled_from([0.0, 0.05, 1.0])))
        bounds = (low, high)
    else:
        low = gen.uniform(-1.0, 0.5, size=sample_shape).astype(np.float32)
        width = gen.uniform(0.0, 1.0, size=sample_shape).astype(np.float32)
        width[gen.rand(*sample_shape) < 0.2] = 0.0  # some features pinned: low == high
        high = low + width
        bounds = (low, high)
    u = gen.rand(n, *sample_shape).astype(np.float32)
    x = torch.as_tensor(np.asarray(low, dtype=np.float32)
                        + u * (np.asarray(high, dtype=np.float32) - low))
    if bounds is not None:  # rounding must not put x outside the bounds
        x = torch.maximum(torch.minimum(x, torch.as_tensor(high)), torch.as_tensor(low))
    threat = ThreatModel(eps=eps, norm=norm, bounds=bounds)
    return threat, x, seed


def model_for(x, seed):
    """A small tanh network on samples shaped like ``x[0]``, in eval mode."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), 8), nn.Tanh(),
                         nn.Linear(8, N_CLASSES)).eval()


def labels(x, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, N_CLASSES, (x.shape[0],), generator=gen)


def assert_inside(threat, x_adv, x):
    assert x_adv.shape == x.shape
    assert torch.isfinite(x_adv).all()
    assert bool(threat.contains(x_adv, x).all()), (
        threat, (x_adv - x).flatten(1).abs().amax(1), threat.distance(x_adv, x))
