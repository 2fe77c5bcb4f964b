"""Warnings issued once per attack call, however many batches or stages repeat them.

An attack call opens a :func:`warning_scope`; a cascade's stages run inside the cascade's
scope, so a fallback announced by a stage is announced once per cascade call too.
"""

import warnings
from contextlib import contextmanager
from contextvars import ContextVar

# The messages already issued in the current (outermost) scope; None outside any scope.
_ISSUED = ContextVar("sklearn_robust_attack_warnings", default=None)


@contextmanager
def warning_scope():
    """Within the outermost open scope, :func:`warn_once` issues each message once."""
    token = _ISSUED.set(set()) if _ISSUED.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _ISSUED.reset(token)


def warn_once(message, stacklevel=2, *, key=None):
    """Issue ``message`` as a ``UserWarning`` unless the current scope already did.

    ``key`` (default: the message) names the problem: messages sharing a key, such as
    the same check raised by several stages of a cascade, are issued once in all.
    """
    issued = _ISSUED.get()
    key = message if key is None else key
    if issued is not None:
        if key in issued:
            return
        issued.add(key)
    warnings.warn(message, UserWarning, stacklevel=stacklevel + 1)
