"""NumPy backend: every function takes and returns ``numpy.ndarray``.

``rbm`` is the shared RBM numerics of ``skebm._numerics.rbm`` (written once over an
array namespace), kept here so that ``get_backend(name).rbm`` reaches it.
"""

from skebm._backends.numpy import core, hopfield, primitives
from skebm._numerics import rbm

__all__ = ["core", "hopfield", "primitives", "rbm"]
