"""Mixed precision of training: ``precision=None|'fp32'|'bf16'|'fp16'``."""

import warnings
from contextlib import nullcontext

import torch

from ..utils import StrOptions

#: The values of the ``precision`` parameter (``None`` is float32 too).
PRECISIONS = ("fp32", "bf16", "fp16")
PRECISION_CONSTRAINT = [None, StrOptions(set(PRECISIONS))]
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class PrecisionMixin:
    """Autocast of the training forward passes and, for ``'fp16'``, loss scaling.

    The training step calls :meth:`_autocast` around the objective and :meth:`_backward`
    on its loss; prediction and evaluation never autocast. An accelerator's training step
    (skorch's ``AccelerateMixin``) uses its own autocast and backward instead, so
    ``precision`` must then stay ``None`` or ``'fp32'``.
    """

    def _check_precision(self):
        """Refuse ``precision`` beside an accelerator, whose autocast is the one in force."""
        if getattr(self, "accelerator", None) is not None and self.precision in AUTOCAST_DTYPES:
            raise ValueError(
                f"precision={self.precision!r} cannot be combined with an accelerator: leave "
                "precision=None and pass Accelerator(mixed_precision=...)."
            )

    def _initialize_precision(self, keep):
        """Check ``precision`` against the device in use; build the fp16 loss scaler."""
        param = next(iter(self.module_.parameters()), None)
        device_type = param.device.type if param is not None else "cpu"
        if self.precision == "fp16" and device_type != "cuda":
            warnings.warn(
                f"precision='fp16' on a {device_type!r} device: float16 autocast runs but is "
                "slow there and loss scaling is only needed on GPUs; use precision='bf16' "
                "on CPU.",
                UserWarning, stacklevel=3,
            )
        if (self.precision == "bf16" and device_type == "cuda"
                and not torch.cuda.is_bf16_supported()):
            raise ValueError(
                "precision='bf16' was requested but this GPU does not support bfloat16; "
                "use precision='fp16'."
            )
        if self.precision != "fp16":
            self.grad_scaler_ = None
        elif not (keep and getattr(self, "grad_scaler_", None) is not None):
            self.grad_scaler_ = torch.amp.GradScaler(device_type)

    def _autocast(self, device_type):
        """The ``precision`` autocast for the training forward passes on ``device_type``."""
        dtype = AUTOCAST_DTYPES.get(self.precision)
        return nullcontext() if dtype is None else torch.autocast(device_type, dtype=dtype)

    def _backward(self, loss):
        """Back-propagate ``loss``, scaled for fp16 (gradients left at their true scale)."""
        scaler = getattr(self, "grad_scaler_", None)
        if scaler is None:
            loss.backward()
            return
        scaler.scale(loss).backward()
        for name in self._optimizers:  # true-scale gradients for on_grad_computed
            scaler.unscale_(getattr(self, name + "_"))

    def _step_optimizer(self, step_fn):
        scaler = getattr(self, "grad_scaler_", None)
        if scaler is None:
            return super()._step_optimizer(step_fn)
        # GradScaler cannot step with a closure: compute the gradients, then step (it skips
        # steps whose gradients overflowed) and update the scale.
        step_fn()
        for name in self._optimizers:
            scaler.step(getattr(self, name + "_"))
        scaler.update()
