"""PyTorch backend: the only place in skebm that imports torch."""

from skebm._backends.torch import core, hopfield, langevin, nn, rbm, vae

__all__ = ["core", "hopfield", "langevin", "nn", "rbm", "vae"]
