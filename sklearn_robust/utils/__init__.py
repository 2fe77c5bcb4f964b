"""Internal helpers shared by every layer (validation, torch, docstrings); not public API.

The package imports these names from here, never from the private modules, and users
should not rely on them: they may change without notice.
"""

from ._docstring import Substitution
from ._random import (
    FitStreams,
    active_generator,
    active_streams,
    building_from,
    cuda_devices,
    drawing_from,
    forked_rng,
    global_stream_lock,
    mix_seed,
)
from ._torch import (
    CallableModule,
    as_module,
    frozen,
    make_generator,
    mode_independent,
    module_device,
    per_sample,
    resolve_device,
    seed_from,
)
from ._validation import (
    BOUNDS,
    FRACTION,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    NORMS,
    POSITIVE,
    POSITIVE_INT,
    POSITIVE_INT_OR_AUTO,
    HasMethods,
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    check_bounds,
    check_bounds_contain,
    check_eps,
    check_fraction,
    check_int,
    check_norm,
    check_positive,
    check_scalar_param,
    validate_params_of,
)

__all__ = [
    "BOUNDS", "FRACTION", "NON_NEGATIVE", "NON_NEGATIVE_INT", "NORMS", "POSITIVE",
    "POSITIVE_INT", "POSITIVE_INT_OR_AUTO", "CallableModule", "FitStreams",
    "active_generator", "active_streams",
    "building_from", "drawing_from", "global_stream_lock", "mix_seed", "HasMethods", "Hidden",
    "Interval",
    "InvalidParameterError", "Options", "StrOptions", "Substitution", "as_module",
    "check_bounds", "check_bounds_contain", "check_eps", "check_fraction", "check_int",
    "check_norm", "check_positive", "check_scalar_param",
    "cuda_devices", "forked_rng", "frozen", "make_generator", "mode_independent",
    "module_device", "per_sample",
    "resolve_device", "seed_from", "validate_params_of",
]
