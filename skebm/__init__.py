"""skebm: scikit-learn-compatible energy-based models.

The estimators follow the scikit-learn API (``fit``, ``transform``, ``score_samples``
...) and add ``energy`` and ``sample``. RBM and HopfieldMemory run on a NumPy or a
PyTorch backend; LangevinEBMClassifier and VAETransformer need PyTorch. Importing skebm never imports
torch.
"""

from skebm._hopfield import HopfieldMemory
from skebm._langevin import LangevinEBMClassifier
from skebm._rbm import RBM
from skebm._vae import VAETransformer
from skebm._version import __version__

__all__ = [
    "HopfieldMemory",
    "LangevinEBMClassifier",
    "RBM",
    "VAETransformer",
    "__version__",
]
