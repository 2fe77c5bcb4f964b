"""r-separation of labelled data (Yang et al. 2020, "A Closer Look at Accuracy vs. Robustness").

How far apart are the classes? :func:`r_separation` measures, exactly and in bounded
memory, the distance from every training point to the nearest training point of another
class (Train-Train) and from every test point to the training set (Test-Train), and
compares them with ``2 * eps``. :class:`RSeparation` turns the same distances into a
transformer whose ``argmin`` is the astute classifier of the paper's constructive proof.
"""

from ._report import SeparationReport, r_separation
from ._transformer import RSeparation

__all__ = ["RSeparation", "SeparationReport", "r_separation"]
