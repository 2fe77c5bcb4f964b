"""Square Attack (Andriushchenko et al. 2020; l_1: Croce & Hein 2021): one random search,
the proposal per norm."""

from ._attack import Square

__all__ = ["Square"]
