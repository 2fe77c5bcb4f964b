"""The threat model (norm, eps, bounds) and the projected ascent every search uses.

:class:`ThreatModel` is the threat only; the schedule of a search (steps, step size,
restarts) belongs to the attack or training objective that runs it and is passed to
:func:`ascend`.
"""

from ._ascent import STARTS, ascend, check_schedule, step_length
from ._model import ThreatModel, l2_normalise

__all__ = ["STARTS", "ThreatModel", "ascend", "check_schedule", "l2_normalise", "step_length"]
