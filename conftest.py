"""Root pytest configuration, shared by tests/ and the doctests in sklearn_robust/."""

import torch

# The test models are tiny: one intra-op thread is faster than two, and with
# `pytest -n 2` on 2 cores more threads would oversubscribe the machine (small torch ops
# slow down by an order of magnitude under contention).
torch.set_num_threads(1)
