"""NumPy backend: every function takes and returns ``numpy.ndarray``."""

from skebm._backends.numpy import core, hopfield, rbm

__all__ = ["core", "hopfield", "rbm"]
