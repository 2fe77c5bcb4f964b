"""Where an estimator runs: ``device='auto'``, pinned memory and non-blocking copies.

:func:`resolve_device` lives in :mod:`sklearn_robust.utils` and is re-exported here.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from skorch.utils import to_tensor

from ..utils import resolve_device

__all__ = ["DeviceMixin", "resolve_device"]


class DeviceMixin:
    """skorch hooks that accept ``device='auto'`` and feed a GPU efficiently.

    skorch sees a concrete device while it works (:meth:`_resolved_device`) and the
    parameter keeps the value the user gave, so ``clone`` and pickles stay portable. On a
    CUDA device the data loaders pin memory and batches are copied with
    ``non_blocking=True``.
    """

    @contextmanager
    def _resolved_device(self):
        """Let skorch see a concrete device while it works, keep ``device`` as given."""
        requested = self.device
        concrete = resolve_device(requested)
        if concrete == requested:
            yield
            return
        self.device = concrete
        try:
            yield
        finally:
            self.device = requested

    def _on_cuda(self):
        device = resolve_device(self.device)
        return device is not None and torch.device(device).type == "cuda"

    def _to_device(self, data):
        """skorch's ``to_tensor``, with non-blocking copies of tensors to a CUDA device.

        The copy from pinned memory (see :meth:`get_params_for`) then overlaps with
        computation; later kernels on the same stream wait for it.
        """
        if self._on_cuda():
            data = to_tensor(data, device=None)
            if isinstance(data, torch.Tensor):
                return data.to(self.device, non_blocking=True)
        return to_tensor(data, device=self.device)

    def get_params_for(self, prefix):
        """skorch's, plus ``pin_memory=True`` for the data loaders on a CUDA device."""
        params = super().get_params_for(prefix)
        if prefix in ("iterator_train", "iterator_valid") and "pin_memory" not in params:
            iterator = getattr(self, prefix)
            if (isinstance(iterator, type) and issubclass(iterator, torch.utils.data.DataLoader)
                    and self._on_cuda()):
                params["pin_memory"] = True
        return params

    def initialize(self):
        with self._resolved_device():
            return super().initialize()

    def infer(self, x, **fit_params):
        return super().infer(self._to_device(x), **fit_params)

    def forward_iter(self, X, training=False, device="cpu"):
        with self._resolved_device():
            yield from super().forward_iter(X, training=training, device=device)

    def load_params(self, *args, **kwargs):
        with self._resolved_device():
            return super().load_params(*args, **kwargs)

    def __setstate__(self, state):
        requested = state.get("device")
        if requested == "auto":
            state["device"] = resolve_device("auto")
        super().__setstate__(state)
        if requested == "auto":
            self.device = "auto"
