"""NumPy backend: every function takes and returns ``numpy.ndarray``.

``hopfield`` and ``rbm`` are the shared numerics of ``skebm._numerics`` (written once
over an array namespace), kept here so that ``get_backend(name).<model>`` reaches them.
"""

from skebm._backends.numpy import core, primitives
from skebm._numerics import hopfield, rbm

__all__ = ["core", "hopfield", "primitives", "rbm"]
