"""NumPy backend: every function takes and returns ``numpy.ndarray``."""

from skebm._backends.numpy import core, rbm

__all__ = ["core", "rbm"]
