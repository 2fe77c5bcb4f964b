"""The threat model (norm, eps, bounds) and the projected ascent every search uses.

:class:`ThreatModel` is the threat only; the schedule of a search (steps, step size,
restarts) belongs to the attack or training objective that runs it and is passed to
:func:`ascend`. Under l_1 the geometry (exact projection onto the ball inside the box,
uniform starts, sparse steps) is in ``_l1.py``.
"""

from ._ascent import STARTS, ascend, check_schedule, step_length
from ._l1 import L1_FRACTION, project_l1_box, sparse_direction
from ._model import ThreatModel, l2_normalise

__all__ = [
    "L1_FRACTION", "STARTS", "ThreatModel", "ascend", "check_schedule", "l2_normalise",
    "project_l1_box", "sparse_direction", "step_length",
]
