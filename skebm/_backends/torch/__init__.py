"""PyTorch backend: the only place in skebm that imports torch.

``rbm`` is the shared RBM numerics of ``skebm._numerics.rbm`` (written once over an
array namespace), kept here so that ``get_backend(name).rbm`` reaches it.
"""

from skebm._backends.torch import core, hopfield, langevin, nn, primitives, vae
from skebm._numerics import rbm

__all__ = ["core", "hopfield", "langevin", "nn", "primitives", "rbm", "vae"]
