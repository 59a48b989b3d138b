"""Tensors, devices, random generators and threads for the torch backend.

This module is the one place where NumPy arrays become tensors and back
(CONTRIBUTING.md, convention 9): estimators hold NumPy arrays in their public
attributes.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading

import numpy as np
import threadpoolctl
import torch

from skebm._backends.numpy import core as numpy_core

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
    # mps: the device of an input tensor (array API dispatch)
    mps = dev.type == "mps" and torch.backends.mps.is_available()
    if dev.type not in ("cpu", "cuda") and not mps:
        raise ValueError(f"device={device!r}: only 'cpu' and 'cuda[:N]' are supported.")
    return str(dev)


def make_rng(seed: int, device: str = "cpu") -> torch.Generator:
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


def torch_dtype(dtype) -> torch.dtype:
    """The torch dtype of a NumPy floating dtype (a torch dtype passes through)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    return _DTYPES[np.dtype(dtype)]


def asarray(x, dtype=None, device: str = "cpu") -> torch.Tensor:
    """NumPy (or sparse, densified) -> tensor; shares memory on the CPU when it can.

    A tensor passes through (moved or cast only where ``device`` or ``dtype`` say
    so); ``dtype=None`` keeps the dtype of ``x``.
    """
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=None if dtype is None else torch_dtype(dtype))
    x = numpy_core.asarray(x, dtype)  # densifies a sparse matrix
    if not x.flags.writeable or min(x.strides, default=0) < 0:
        x = x.copy()  # torch takes neither read-only nor negatively strided arrays
    return torch.as_tensor(x, device=device)


def sum_is_finite(X: np.ndarray) -> bool:
    """As the NumPy backend's, with torch's vectorised, multi-threaded reduction on the
    CPU (0.3 ms for 4000 x 1024 float64). Read-only or negatively strided arrays,
    which torch cannot view, take the NumPy backend's check."""
    if not X.flags.writeable or min(X.strides, default=0) < 0:
        return numpy_core.sum_is_finite(X)
    return bool(torch.isfinite(torch.from_numpy(X).sum()))


def to_numpy(a: torch.Tensor) -> np.ndarray:
    return a.detach().cpu().numpy()


def copy(a: torch.Tensor) -> torch.Tensor:
    return a.clone()


def concat_rows(blocks: list[torch.Tensor]) -> torch.Tensor:
    """Row blocks (at least one) stacked into one tensor."""
    return blocks[0] if len(blocks) == 1 else torch.cat(blocks)


def max_abs(a: torch.Tensor) -> float:
    """Largest absolute entry; NaN if any entry is NaN."""
    return float(a.abs().max()) if a.numel() else 0.0


to_float = numpy_core.to_float  # float() reads a 0-d tensor as it reads an array


def as_target(y: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """Targets as a tensor: integer class codes -> int64, anything else unchanged."""
    y = np.asarray(y)
    if y.dtype.kind in "iub":
        y = y.astype(np.int64)
    return torch.as_tensor(np.array(y), device=device)


#: multiply-adds per thread below which another intra-op thread costs more in
#: synchronisation than it saves: a layer of 64 x 128 weights over a batch of 64 rows
#: is 0.5 M, the digits networks 2 to 7 M per forward pass; see
#: ``benchmarks/results/threads.md``
WORK_PER_THREAD = 2**23

#: environment variable that fixes the number of torch threads of skebm's calls
THREADS_ENV = "SKEBM_TORCH_THREADS"


@functools.cache
def _settable_thread_pool() -> bool:
    """False for torch's native thread pool, whose size is fixed once it has run."""
    return "native thread pool" not in torch.__config__.parallel_info()


@functools.cache
def _thread_pools() -> threadpoolctl.ThreadpoolController:
    """The BLAS / OpenMP libraries loaded with torch, found once per process.

    Scanning the loaded libraries (``threadpool_info``) takes milliseconds; asking
    the found ones for their current thread count takes microseconds, and
    ``thread_limit`` runs around every prediction.
    """
    return threadpoolctl.ThreadpoolController()


def _thread_budget() -> int | None:
    """The fewest threads any BLAS / OpenMP library loaded here may use, or None.

    This is the limit in effect for the calling thread, as ``threadpoolctl``
    reports it: ``threadpool_limits``, the ``OMP_NUM_THREADS``-style variables that
    joblib's loky backend (``inner_max_num_threads``) and Dask's nanny set in
    worker processes, or the number of CPUs when nothing limits.
    """
    counts = [lib.num_threads for lib in _thread_pools().lib_controllers]
    return min(counts, default=None)


def _in_joblib_worker_thread() -> bool:
    """True in a worker thread of a joblib ``Parallel`` call (the threading backend,
    or threads a loky worker starts): its siblings already use the other cores."""
    parallel = sys.modules.get("joblib.parallel")
    if parallel is None or threading.current_thread() is threading.main_thread():
        return False
    backend, _ = parallel.get_active_backend()
    return getattr(backend, "nesting_level", 0) >= 1


def network_work(module: torch.nn.Module, rows: int) -> float:
    """Multiply-adds of a forward pass of ``rows`` rows, about: rows x parameters."""
    return float(rows) * sum(p.numel() for p in module.parameters())


def threads_for(work: float | None, current: int) -> int:
    """The torch thread count for an operation of ``work`` multiply-adds.

    ``SKEBM_TORCH_THREADS`` when set; otherwise the fewest of ``current`` (torch's
    count, set by the user or from ``OMP_NUM_THREADS``), the threadpoolctl budget,
    one per ``WORK_PER_THREAD`` multiply-adds of ``work`` (None: no size rule), and
    one inside a joblib worker thread. Never more than ``current`` unless requested.
    """
    requested = os.environ.get(THREADS_ENV, "").strip()
    if requested.isdigit() and int(requested) > 0:  # ignored when invalid
        return int(requested)
    n = current
    budget = _thread_budget()
    if budget is not None:
        n = min(n, budget)
    if work is not None:
        n = min(n, max(1, int(work // WORK_PER_THREAD)))
    if _in_joblib_worker_thread():
        n = 1
    return max(1, n)


@contextlib.contextmanager
def thread_limit(work: float | None = None):
    """Run torch's intra-op thread pool at :func:`threads_for` threads, then restore.

    ``work`` is the multiply-adds of one parallel step (for a network: rows of a
    batch times its number of parameters, :func:`network_work`); small models
    run on one thread, which on a busy machine is also the fastest. torch sizes its
    pool once per thread, from ``OMP_NUM_THREADS`` or the CPU count, and a later
    ``threadpool_limits`` misses it when torch is imported inside the ``with``
    block or works in another thread; this context applies the budget whatever
    the order. It lowers torch's count, never raises it (except to the count
    ``SKEBM_TORCH_THREADS`` asks for), and restores the caller's count on exit.
    """
    previous = torch.get_num_threads()
    n = threads_for(work, previous)
    if n == previous or not _settable_thread_pool():
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
