"""Root pytest configuration, shared by tests/ and the doctests in sklearn_robust/."""

import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One thread per worker: `pytest -n 2` on 2 cores would otherwise oversubscribe, and
    # small torch ops slow down by an order of magnitude under contention.
    torch.set_num_threads(1)
