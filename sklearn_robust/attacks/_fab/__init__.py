"""FAB and FAB-T (Croce & Hein 2020): one run loop, the projection per norm."""

from ._attack import FAB, FABTargeted

__all__ = ["FAB", "FABTargeted"]
