"""What the array API standard lacks, NumPy backend.

Random draws from a generator and stable special functions; every algorithm is
written once over an array namespace in ``skebm/_numerics/`` and reaches these
through :func:`skebm._backends.primitives`. ``skebm/_backends/torch/primitives.py``
has the same names and signatures (``tests/test_backend_parity.py`` checks it).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp as _logsumexp


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)); may overwrite ``x`` (callers pass a fresh temporary).

    exp(-x) overflows to inf for x < -709 and gives the right limit 0; the overflow
    flag is silenced. About three times faster than ``scipy.special.expit``.
    """
    with np.errstate(over="ignore"):
        np.negative(x, out=x)
        np.exp(x, out=x)
    x += 1.0
    return np.reciprocal(x, out=x)


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) without overflow."""
    return np.logaddexp(0.0, x)


def logsumexp(x: np.ndarray) -> float:
    """log sum exp(x) over every entry, without overflow."""
    return float(_logsumexp(x))


def bernoulli(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Independent Bernoulli draws with success probabilities ``p``, as p's dtype.

    float32 uniforms (24 random bits) are ample for a threshold and faster to draw.
    """
    out = np.empty_like(p)
    return np.less(rng.random(p.shape, dtype=np.float32), p, out=out)


def standard_normal(like: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """N(0, 1) draws of the shape and dtype of ``like``."""
    return rng.standard_normal(like.shape, dtype=like.dtype)
