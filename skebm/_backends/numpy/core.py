"""Arrays, devices and random generators for the NumPy backend."""

from __future__ import annotations

import contextlib

import numpy as np
import scipy.sparse as sp


def resolve_device(device: str) -> str:
    """NumPy runs on the CPU: accept "auto" and "cpu", reject CUDA devices."""
    if device in ("auto", "cpu"):
        return "cpu"
    raise ValueError(
        f"device={device!r} needs backend='torch'; the numpy backend runs on the CPU "
        "only (use device='auto' or 'cpu')."
    )


def make_rng(seed: int, device: str = "cpu") -> np.random.Generator:
    """A generator for one fit / partial_fit / sampling call, from an integer seed."""
    return np.random.default_rng(seed)


def asarray(x, dtype, device: str = "cpu") -> np.ndarray:
    """Convert a NumPy array (or a sparse matrix, densified) to a backend array."""
    if sp.issparse(x):
        x = x.toarray()
    return np.asarray(x, dtype=dtype)


def to_numpy(a) -> np.ndarray:
    return np.asarray(a)


def copy(a: np.ndarray) -> np.ndarray:
    return a.copy(order="K")  # keeps a column-major array column-major


def max_abs(a: np.ndarray) -> float:
    """Largest absolute entry; NaN if any entry is NaN."""
    return float(np.abs(a).max()) if a.size else 0.0


def to_float(a) -> float:
    return float(a)


def sum_is_finite(X: np.ndarray) -> bool:
    """Whether the sum of a floating 2-D NumPy array is finite (then so is every
    entry). The row sums come from BLAS's matrix-vector product with a vector of
    ones, which NaN and infinity reach as they reach any sum: 0.6 ms for
    4000 x 1024 float64, against 2.1 ms for ``np.sum``'s pairwise summation."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite((X @ np.ones(X.shape[1], dtype=X.dtype)).sum()))


def thread_limit(work: float | None = None) -> contextlib.AbstractContextManager:
    """No-op: NumPy's BLAS follows ``threadpoolctl`` limits by itself (``work``,
    the multiply-adds of one step, sizes the torch backend's pool)."""
    return contextlib.nullcontext()
