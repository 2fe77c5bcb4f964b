"""Resolving the ``device`` parameter: 'auto', 'cpu', 'cuda', 'cuda:N'."""

from __future__ import annotations

import torch


def resolve_device(device):
    """The concrete torch device string for the ``device`` parameter.

    ``'auto'`` picks ``'cuda'`` when CUDA is available and ``'cpu'`` otherwise. Asking for
    CUDA (or a CUDA index) that this machine does not have raises ``ValueError``. ``None``
    is skorch's "do not move" and is returned unchanged.

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    >>> resolve_device("auto") in ("cpu", "cuda")
    True
    """
    if device is None:
        return None
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}."
        ) from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on this machine; "
                "use device='auto' or 'cpu'."
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but only {torch.cuda.device_count()} "
                "CUDA device(s) exist."
            )
    elif parsed.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError(f"device={device!r} was requested but MPS is not available.")
    return str(parsed) if not isinstance(device, str) else device


def rng_devices(device):
    """CUDA device indices whose RNG must be forked for a fit on ``device``.

    ``None`` (skorch does not place the module; Accelerate may) forks every visible GPU.
    """
    if device is None:
        return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    parsed = torch.device(device)
    if parsed.type != "cuda":
        return []
    return [parsed.index if parsed.index is not None else torch.cuda.current_device()]
