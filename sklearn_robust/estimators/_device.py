"""Where an estimator runs: ``device='auto'``, pinned memory and non-blocking copies.

:func:`resolve_device` lives in :mod:`sklearn_robust.utils` and is re-exported here.
"""

import torch
from skorch.utils import to_tensor

from ..utils import resolve_device

__all__ = ["DeviceMixin", "resolve_device"]


class DeviceParameter:
    """The ``device`` parameter: kept as given, read as the concrete device.

    skorch reads ``self.device`` wherever it places a module, a criterion or a batch
    (initialisation by ``fit``, by ``initialize()`` or by ``set_params`` of a module or
    criterion parameter, ``infer``, ``get_loss``, loading parameters), and none of those
    accepts ``'auto'``. Reading the attribute therefore resolves the stored value
    (``'auto'`` to ``'cuda'`` or ``'cpu'``), while ``get_params``, ``clone`` and pickles see
    the value the user gave. Nothing is swapped while the estimator works, so threads
    sharing an estimator never see each other's state. A value that cannot be resolved
    (CUDA asked for where there is none) reads as given; ``fit`` refuses it with a clear
    error first.
    """

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        requested = vars(obj).get("device")
        try:
            return resolve_device(requested)
        except ValueError:
            return requested

    def __set__(self, obj, value):
        vars(obj)["device"] = value


class DeviceMixin:
    """skorch hooks that accept ``device='auto'`` and feed a GPU efficiently.

    ``device`` is a :class:`DeviceParameter`: skorch always reads a concrete device and
    the parameter keeps the value the user gave, so ``clone`` and pickles stay portable.
    On a CUDA device the data loaders pin memory and batches are copied with
    ``non_blocking=True``.
    """

    device = DeviceParameter()

    @property
    def requested_device(self):
        """The ``device`` parameter as given (``'auto'`` unresolved)."""
        return vars(self).get("device")

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        if "device" in params:
            params["device"] = self.requested_device
        return params

    def _on_cuda(self):
        device = self.device
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

    def infer(self, x, **fit_params):
        return super().infer(self._to_device(x), **fit_params)

    def load_params(self, *args, **kwargs):
        # skorch writes the concrete device it loaded to back into ``device``.
        requested = self.requested_device
        try:
            return super().load_params(*args, **kwargs)
        finally:
            self.device = requested

    def __setstate__(self, state):
        requested = state.get("device")
        if requested == "auto":
            state["device"] = resolve_device("auto")
        super().__setstate__(state)
        if requested == "auto":  # any other device is skorch's to map (CUDA to CPU, say)
            self.device = requested
