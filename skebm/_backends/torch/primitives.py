"""What the array API standard lacks, torch backend.

The same names and signatures as ``skebm/_backends/numpy/primitives.py``, where
they are documented.
"""

from __future__ import annotations

import functools
import platform

import torch

from skebm._backends.torch.core import torch_dtype


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """1 / (1 + exp(-x))."""
    return torch.sigmoid(x)


def softplus(x: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(x)) without overflow (exact, no linear threshold)."""
    return torch.clamp_min(x, 0) + torch.log1p(torch.exp(-torch.abs(x)))


#: torch has one logistic function (NumPy's sigmoid may round unlike its expit)
expit = sigmoid


def softmax(x: torch.Tensor) -> torch.Tensor:
    """exp(x) / sum exp(x) along the last axis, without overflow."""
    return torch.softmax(x, dim=-1)


def logsumexp(x: torch.Tensor, axis: int | None = None) -> float | torch.Tensor:
    """log sum exp(x) without overflow: over every entry (a float), or along ``axis``."""
    if axis is None:
        return float(torch.logsumexp(x.reshape(-1), dim=0))
    return torch.logsumexp(x, dim=axis)


def bernoulli(p: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Independent Bernoulli draws with success probabilities ``p``, as p's dtype."""
    u = torch.rand(p.shape, generator=rng, dtype=p.dtype, device=p.device)
    return (u < p).to(p.dtype)


def standard_normal(like: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """N(0, 1) draws of the shape, dtype and device of ``like``."""
    return torch.randn(like.shape, generator=rng, dtype=like.dtype, device=like.device)


def uniform(shape: tuple, like: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Uniform draws on [0, 1) in the dtype and on the device of ``like``."""
    return torch.rand(shape, generator=rng, dtype=like.dtype, device=like.device)


def normal(shape: tuple, like: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """N(0, 1) draws in the dtype and on the device of ``like``."""
    return torch.randn(shape, generator=rng, dtype=like.dtype, device=like.device)


def permutation(n: int, rng: torch.Generator) -> list[int]:
    """A random order of range(n)."""
    return torch.randperm(n, generator=rng, device=rng.device).tolist()


def categorical(p: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """One index per row of ``p`` (n, K), drawn with the probabilities of the row."""
    return torch.multinomial(p, 1, generator=rng).squeeze(1)


def choice(w: torch.Tensor, n: int, rng: torch.Generator) -> torch.Tensor:
    """``n`` indices drawn with replacement with weights ``w`` (K,) (unnormalised)."""
    return torch.multinomial(w, n, replacement=True, generator=rng)


def fill_diagonal(a: torch.Tensor, value: float) -> torch.Tensor:
    """Set the diagonal of the square matrix ``a`` to ``value``, in place; returns a."""
    return a.fill_diagonal_(value)


def matmul_into(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """a @ b, written into ``out`` (of its shape and dtype); returns out."""
    return torch.matmul(a, b, out=out)


def take_into(
    x: torch.Tensor, indices: torch.Tensor, out: torch.Tensor
) -> torch.Tensor:
    """The rows ``x[indices]``, written into ``out``; returns out."""
    return torch.index_select(x, 0, indices, out=out)


def sign_inplace(x: torch.Tensor) -> torch.Tensor:
    """sign(x) (-1, 0 or +1), in place; returns x."""
    return x.sign_()


def from_mask(mask: torch.Tensor, dtype) -> torch.Tensor:
    """The booleans ``mask`` as 0 and 1 in ``dtype``; int8 views the mask's bytes."""
    dtype = torch_dtype(dtype)
    return mask.view(dtype) if dtype == torch.int8 else mask.to(dtype)


def spin_dtype(n_units: int, like: torch.Tensor) -> torch.dtype | None:
    """float32 (exact overlaps for N < 2**24), else None."""
    return torch.float32 if n_units < 2**24 else None


@functools.cache
def _int_mm_works() -> bool:
    """Whether ``torch._int_mm`` (int8 x int8 -> int32 GEMM) exists and is exact on
    the CPU (some torch versions raise NotImplementedError there). Checked once."""
    a = torch.tensor([[1, -1, 1], [-1, -1, 1]], dtype=torch.int8)
    try:
        return bool((torch._int_mm(a, a.T) == torch.tensor([[3, 1], [1, 3]])).all())
    except (AttributeError, RuntimeError):
        return False


def overlap_dtype(n_units: int, like: torch.Tensor) -> torch.dtype | None:
    """The fast path of binary modern recall, chosen here only: int8 spins, whose
    overlaps come from ``torch._int_mm`` (int32 sums, exact), on an x86 CPU with
    oneDNN (int8 dot-product instructions, several times float32's rate; without
    oneDNN torch falls back to a loop far slower than float32). Else
    :func:`spin_dtype`. CUDA keeps float32: its int8 kernels need dimensions in
    multiples of 8. Fewer than 8 units keep float32 too (``_int_mm`` returns wrong
    sums over a single unit, and the speed does not matter there)."""
    if (
        8 <= n_units < 2**31
        and like.device.type == "cpu"
        and platform.machine().lower() in ("x86_64", "amd64")
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and _int_mm_works()
    ):
        return torch.int8
    return spin_dtype(n_units, like)


def spin_overlaps(s: torch.Tensor, Xi: torch.Tensor) -> torch.Tensor:
    """Xi s for spin states ``s``: int8 through ``torch._int_mm`` (int32 sums)."""
    if s.dtype == torch.int8:
        if s.stride() != (s.shape[1], 1):
            # _int_mm reads the strides as given, and a column-major block (from a
            # Fortran-ordered X) can have strides (1, 1) in one row, which torch
            # calls contiguous: copy to row-major strides
            s = torch.empty(s.shape, dtype=s.dtype, device=s.device).copy_(s)
        return torch._int_mm(s, Xi.to(torch.int8).T)
    return s @ Xi.to(s.dtype).T


def float64_bits(x: torch.Tensor) -> torch.Tensor:
    """The bit patterns of x in float64, as an int64 tensor of its shape."""
    return x.to(torch.float64).contiguous().view(torch.int64)
