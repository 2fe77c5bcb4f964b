"""APGD and APGD-T (Croce & Hein 2020, 2021): one run loop, the step rule per norm."""

from ._attack import APGD
from ._steps import apgd_checkpoints
from ._targeted import APGDTargeted

__all__ = ["APGD", "APGDTargeted", "apgd_checkpoints"]
