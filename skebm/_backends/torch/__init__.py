"""PyTorch backend: the only place in skebm that imports torch.

``hopfield`` and ``rbm`` are the shared numerics of ``skebm._numerics`` (written once
over an array namespace), kept here so that ``get_backend(name).<model>`` reaches them.
"""

from skebm._backends.torch import core, langevin, nn, primitives, vae
from skebm._numerics import hopfield, rbm

__all__ = ["core", "hopfield", "langevin", "nn", "primitives", "rbm", "vae"]
