"""Tensors, devices and random generators for the torch backend.

This module is the one place where NumPy arrays become tensors and back
(rule 9 of STYLE.md): estimators hold NumPy arrays in their public attributes.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

name = "torch"

_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def resolve_device(device: str) -> str:
    """Map "auto" to "cuda" when a CUDA device is available, else "cpu"; validate."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"Invalid device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} but no CUDA device is available; use device='auto' "
            "or 'cpu'."
        )
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r}: only 'cpu' and 'cuda[:N]' are supported.")
    return str(dev)


def make_rng(seed: int, device: str = "cpu") -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


def torch_dtype(dtype) -> torch.dtype:
    return _DTYPES[np.dtype(dtype)]


def asarray(x, dtype, device: str = "cpu") -> torch.Tensor:
    """NumPy (or sparse, densified) -> tensor; shares memory on the CPU when it can."""
    if sp.issparse(x):
        x = x.toarray()
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=torch_dtype(dtype))
    x = np.asarray(x, dtype=dtype)
    if not x.flags.writeable or min(x.strides, default=0) < 0:
        x = x.copy()  # torch takes neither read-only nor negatively strided arrays
    return torch.as_tensor(x, device=device)


def to_numpy(a: torch.Tensor) -> np.ndarray:
    return a.detach().cpu().numpy()


def copy(a: torch.Tensor) -> torch.Tensor:
    return a.clone()


def max_abs(a: torch.Tensor) -> float:
    """Largest absolute entry; NaN if any entry is NaN."""
    return float(a.abs().max()) if a.numel() else 0.0


def zeros_like(a: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(a)


def full(shape, value, like: torch.Tensor) -> torch.Tensor:
    return torch.full(shape, value, dtype=like.dtype, device=like.device)


def to_float(a) -> float:
    return float(a)


def as_target(y: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """Targets as a tensor: integer class codes -> int64, anything else unchanged."""
    y = np.asarray(y)
    if y.dtype.kind in "iub":
        y = y.astype(np.int64)
    return torch.as_tensor(np.array(y), device=device)
