"""What the array API standard lacks, NumPy backend.

Random draws from a generator, stable special functions, in-place kernels and the
spin dtypes of exact overlaps; every algorithm is written once over an array
namespace in ``skebm/_numerics/`` and reaches these through
:func:`skebm._backends.primitives_for`. ``skebm/_backends/torch/primitives.py``
has the same names and signatures (``tests/test_backend_parity.py`` checks it).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit as _expit
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


def expit(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), as ``scipy.special.expit``: the heat-bath rule of Hopfield
    sampling compares uniforms with it (:func:`sigmoid` may round differently)."""
    return _expit(x)


def softmax(x: np.ndarray) -> np.ndarray:
    """exp(x) / sum exp(x) along the last axis, without overflow; overwrites ``x``."""
    x -= x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


def logsumexp(x: np.ndarray, axis: int | None = None) -> float | np.ndarray:
    """log sum exp(x) without overflow: over every entry (a float), or along ``axis``."""
    return float(_logsumexp(x)) if axis is None else _logsumexp(x, axis=axis)


def bernoulli(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Independent Bernoulli draws with success probabilities ``p``, as p's dtype.

    float32 uniforms (24 random bits) are ample for a threshold and faster to draw.
    """
    out = np.empty_like(p)
    return np.less(rng.random(p.shape, dtype=np.float32), p, out=out)


def standard_normal(like: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """N(0, 1) draws of the shape and dtype of ``like``."""
    return rng.standard_normal(like.shape, dtype=like.dtype)


def uniform(shape: tuple, like: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uniform draws on [0, 1) in the dtype of ``like``: float64 draws, rounded."""
    return rng.random(shape).astype(like.dtype, copy=False)


def normal(shape: tuple, like: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """N(0, 1) draws in the dtype of ``like``: float64 draws, rounded (unlike
    :func:`standard_normal`, which draws in that dtype)."""
    return rng.standard_normal(shape).astype(like.dtype, copy=False)


def permutation(n: int, rng: np.random.Generator) -> list[int]:
    """A random order of range(n)."""
    return rng.permutation(n).tolist()


def categorical(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of ``p`` (n, K), drawn with the probabilities of the row."""
    u = rng.random((p.shape[0], 1))
    return np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), p.shape[1] - 1)


def choice(w: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` indices drawn with replacement with weights ``w`` (K,) (unnormalised)."""
    return categorical(np.broadcast_to(w / w.sum(), (n, w.size)), rng)


def fill_diagonal(a: np.ndarray, value: float) -> np.ndarray:
    """Set the diagonal of the square matrix ``a`` to ``value``, in place; returns a."""
    np.fill_diagonal(a, value)
    return a


def matmul_into(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """a @ b, written into ``out`` (of its shape and dtype); returns out."""
    return np.matmul(a, b, out=out)


def take_into(x: np.ndarray, indices: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The rows ``x[indices]``, written into ``out`` (of their shape and dtype);
    returns out. Indices must be valid (mode="clip": NumPy buffers ``out`` in the
    default mode, which would cost a copy)."""
    return np.take(x, indices, axis=0, out=out, mode="clip")


def sign_inplace(x: np.ndarray) -> np.ndarray:
    """sign(x) (-1, 0 or +1), in place; returns x."""
    return np.sign(x, out=x)


def from_mask(mask: np.ndarray, dtype) -> np.ndarray:
    """The booleans ``mask`` as 0 and 1 in ``dtype``, a new array (a backend may
    view the mask's bytes instead)."""
    return mask.astype(dtype)


def spin_dtype(n_units: int, like: np.ndarray) -> type | None:
    """dtype of spin states whose overlaps Xi s with spin memories are exact and
    fastest: float32 (integer sums of +-1 terms, exact for N < 2**24), else None (the
    estimator's dtype). ``like`` is an array on the target device (unused here)."""
    return np.float32 if n_units < 2**24 else None


def overlap_dtype(n_units: int, like: np.ndarray) -> type | None:
    """dtype of binary probes for modern recall's first overlaps: :func:`spin_dtype`
    here; torch on an x86 CPU chooses int8, whose overlaps come from an integer GEMM."""
    return spin_dtype(n_units, like)


def spin_overlaps(s: np.ndarray, Xi: np.ndarray) -> np.ndarray:
    """Xi s for spin states ``s`` in the dtype of :func:`overlap_dtype` (or of the
    memories): exact integer sums."""
    return s @ Xi.astype(s.dtype, copy=False).T


def float64_bits(x: np.ndarray) -> np.ndarray:
    """The bit patterns of x in float64, as an int64 array of its shape (row-major)."""
    return np.ascontiguousarray(x, dtype=np.float64).view(np.int64)
