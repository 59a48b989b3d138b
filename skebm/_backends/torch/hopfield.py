"""Hopfield network numerics, torch backend.

Mirrors ``skebm/_backends/numpy/hopfield.py`` function for function; the equations
and the notation are documented there. The unit orders of asynchronous recall come
from the NumPy generator the estimator passes in, so both backends visit the units in
the same order and recall identically.
"""

from __future__ import annotations

import functools
import math
import platform
from collections.abc import Callable

import numpy as np
import torch

from skebm._backends.torch.core import torch_dtype

CONVERGED, CYCLE, MAX_ITER = 0, 1, 2

# -- encoding ----------------------------------------------------------------------------


def to_spins(
    X: torch.Tensor, threshold: float, out: torch.Tensor | None = None, dtype=None
) -> torch.Tensor:
    mask = X > threshold
    if out is None:
        dtype = X.dtype if dtype is None else torch_dtype(dtype)
        s = mask.view(dtype) if dtype == torch.int8 else mask.to(dtype)
    else:
        s = out.copy_(mask)
    return s.mul_(2).sub_(1)


def random_spins(
    n_samples: int, n_units: int, dtype: np.dtype, rng: torch.Generator
) -> torch.Tensor:
    u = torch.rand(
        (n_samples, n_units), generator=rng, dtype=torch_dtype(dtype), device=rng.device
    )
    return to_spins(u, 0.5)


# -- storage -----------------------------------------------------------------------------


def hebbian_update(W: torch.Tensor, Xi: torch.Tensor) -> torch.Tensor:
    W = W + (Xi.T @ Xi) / W.shape[0]
    return W.fill_diagonal_(0.0)


def storkey_block_size(n_units: int) -> int:
    return max(1, min(64, int(math.log(1e4) / math.log1p(2.0 / n_units))))


def storkey_store(W: torch.Tensor, Xi: torch.Tensor) -> torch.Tensor:
    n = W.shape[0]
    c = 1.0 + 2.0 / n
    W = W.clone()
    size = storkey_block_size(n)
    kw = {"dtype": W.dtype, "device": W.device}
    for start in range(0, Xi.shape[0], size):
        X = Xi[start : start + size]
        b = X.shape[0]
        F0 = X @ W
        gram = X @ X.T
        H, R = torch.empty_like(X), torch.empty_like(X)
        for j in range(b):
            h = c**j * F0[j]
            if j:
                w = c ** torch.arange(j - 1, -1, -1, **kw)
                a = gram[:j, j]
                h = h + ((w * (a - H[:j] @ X[j])) @ X[:j] - (w * a) @ H[:j]) / n
                h = h - (w @ R[:j]) * X[j]
            H[j] = h
            R[j] = (1.0 - 2.0 * X[j] * h) / n
        d = c ** torch.arange(b - 1, -1, -1, **kw)
        XD = X.T * d
        K = XD @ H
        W *= c**b
        W += (XD @ X - K - K.T) / n
        W.fill_diagonal_(0.0)
    return W


def projection_update(
    W: torch.Tensor, d: torch.Tensor, Xi: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    P = W + torch.diag(d)
    R = Xi - Xi @ P
    _, sv, Vt = torch.linalg.svd(R, full_matrices=False)
    tol = math.sqrt(torch.finfo(W.dtype).eps) * math.sqrt(W.shape[0])
    V = Vt[sv > tol]
    P += V.T @ V
    d = torch.diagonal(P).clone()
    return P.fill_diagonal_(0.0), d


# -- energies and gaps -------------------------------------------------------------------


def tie_tolerance(scale: torch.Tensor, n_terms: int) -> torch.Tensor:
    return 8.0 * math.sqrt(n_terms) * torch.finfo(scale.dtype).eps * scale


def sign_update(
    gap: torch.Tensor, s: torch.Tensor, tol: torch.Tensor | float
) -> torch.Tensor:
    out = torch.where(gap > tol, 1.0, s)
    return torch.where(gap < -tol, -1.0, out).to(s.dtype)


def heat_bath(gap: torch.Tensor, temperature: float, u: torch.Tensor) -> torch.Tensor:
    return torch.where(u < torch.sigmoid(gap / temperature), 1.0, -1.0).to(gap.dtype)


def pairwise_energy(s: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((s @ W) * s).sum(dim=1)


def pairwise_gap(s: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    return (s @ W).mul_(2.0)


def hebbian_factors(Xi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    exact32 = Xi.shape[0] * Xi.shape[1] < 2**24
    Xi = Xi.to(torch.float32 if exact32 else torch.float64)
    return Xi, (Xi * Xi).sum(dim=0)


def hebbian_sync_step(
    s: torch.Tensor, Xi: torch.Tensor, shift: torch.Tensor | float, out: torch.Tensor
) -> torch.Tensor:
    g = torch.matmul(s @ Xi.T, Xi, out=out[: s.shape[0]])
    if isinstance(shift, float):  # spin patterns: d = P everywhere, one fused pass
        return g.sub_(s, alpha=shift).sign_()
    return g.sub_(s * shift).sign_()


def hebbian_energy(s: torch.Tensor, Xi: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    m = (s @ Xi.T).to(torch.float64)
    return -0.5 * ((m * m).sum(dim=1) - float(d.sum())) / s.shape[1]


def pairwise_tolerance(W: torch.Tensor) -> torch.Tensor:
    return tie_tolerance(2.0 * W.abs().sum(dim=0), W.shape[0])


def pairwise_energy_tolerance(tol: torch.Tensor) -> float:
    return 0.25 * math.sqrt(tol.shape[0]) * float(tol.sum())


def dense_interaction(a: torch.Tensor, degree: int, n_units: int) -> torch.Tensor:
    return n_units * (a / n_units) ** degree


def dense_energy(s: torch.Tensor, Xi: torch.Tensor, degree: int) -> torch.Tensor:
    return -dense_interaction(s @ Xi.T, degree, s.shape[1]).sum(dim=1)


def dense_gap(
    s: torch.Tensor, Xi: torch.Tensor, degree: int
) -> tuple[torch.Tensor, torch.Tensor]:
    n, deg = s.shape[1], degree
    m = s @ Xi.T
    f_lo, f_mid = dense_interaction(m - 2, deg, n), dense_interaction(m, deg, n)
    f_hi = dense_interaction(m + 2, deg, n)
    A = 0.5 * (f_hi - f_lo)
    B = f_mid - 0.5 * (f_lo + f_hi)
    gap = A @ Xi + s * B.sum(dim=1, keepdim=True)
    scale = A.abs().sum(dim=1, keepdim=True) + B.abs().sum(dim=1, keepdim=True)
    return gap, tie_tolerance(scale, Xi.shape[0])


def modern_softmax(x: torch.Tensor, Xi: torch.Tensor, beta: float) -> torch.Tensor:
    return torch.softmax(beta * (x @ Xi.T), dim=1)


def modern_energy(x: torch.Tensor, Xi: torch.Tensor, beta: float) -> torch.Tensor:
    lse = torch.logsumexp(beta * (x @ Xi.T), dim=1) / beta
    const = math.log(Xi.shape[0]) / beta + 0.5 * float((Xi * Xi).sum(dim=1).max())
    return -lse + 0.5 * (x * x).sum(dim=1) + const


# -- recall ------------------------------------------------------------------------------


def _int_arrays(n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    n_iter = torch.zeros(n, dtype=torch.int64, device=device)
    return n_iter, torch.full((n,), MAX_ITER, dtype=torch.int64, device=device)


def sync_loop(
    s: torch.Tensor,
    update: Callable,
    energy: Callable,
    max_iter: int,
    energy_tol: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = s.shape[0]
    n_iter, status = _int_arrays(n, s.device)
    active, cur, last = torch.arange(n, device=s.device), s, None
    for _ in range(max_iter):
        new = update(cur)
        n_iter[active] += 1
        flip = new != cur
        moving = flip.any(dim=1)
        if last is not None:
            cycle = moving & (flip == last).all(dim=1)
        else:
            cycle = torch.zeros_like(moving)
        if bool(cycle.any()):
            lower = energy(new[cycle]) < energy(cur[cycle]) - energy_tol
            new[cycle] = torch.where(lower[:, None], new[cycle], cur[cycle])
        stop = ~moving | cycle
        status[active[~moving]] = CONVERGED
        status[active[cycle]] = CYCLE
        if bool(stop.any()):
            s[active[stop]] = new[stop]
            keep = ~stop
            active, new, flip = active[keep], new[keep], flip[keep]
        cur, last = new, flip
        if not active.numel():
            break
    s[active] = cur
    return s, n_iter, status


def async_loop(
    s: torch.Tensor, sweep: Callable, max_iter: int, order_rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n, n_units = s.shape
    n_iter, status = _int_arrays(n, s.device)
    active = torch.arange(n, device=s.device)
    for _ in range(max_iter):
        order = torch.as_tensor(order_rng.permutation(n_units), device=s.device)
        sub = s[active]
        changed = sweep(sub, order)
        s[active] = sub
        n_iter[active] += 1
        status[active[~changed]] = CONVERGED
        active = active[changed]
        if not active.numel():
            break
    return s, n_iter, status


def _uniforms(
    S: torch.Tensor, temperature: float, rng: torch.Generator
) -> torch.Tensor | None:
    if temperature <= 0:
        return None
    return torch.rand(S.shape, generator=rng, dtype=S.dtype, device=S.device)


def pairwise_sweep(
    s: torch.Tensor,
    W: torch.Tensor,
    order: torch.Tensor,
    tol: torch.Tensor | float,
    temperature: float = 0.0,
    rng: torch.Generator | None = None,
    block_size: int = 64,
) -> torch.Tensor:
    S = s.T.contiguous()
    changed = torch.zeros(s.shape[0], dtype=torch.bool, device=s.device)
    U = _uniforms(S, temperature, rng)
    order = torch.as_tensor(order, device=s.device)
    for start in range(0, order.numel(), block_size):
        block = order[start : start + block_size]
        G = (W[block] @ S).mul_(2.0)
        Wbb = 2.0 * W[block][:, block]
        for j, u in enumerate(block.tolist()):
            if U is None:
                new = sign_update(G[j], S[u], tol[u])
            else:
                new = heat_bath(G[j], temperature, U[u])
            delta = new - S[u]
            moved = delta != 0
            if bool(moved.any()):
                G[j + 1 :] += Wbb[j + 1 :, j, None] * delta
                S[u] = new
                changed |= moved
    s.copy_(S.T)
    return changed


def dense_sweep(
    s: torch.Tensor,
    Xi: torch.Tensor,
    degree: int,
    order: torch.Tensor,
    temperature: float = 0.0,
    rng: torch.Generator | None = None,
) -> torch.Tensor:
    n, n_units = s.shape
    S = s.T.contiguous()
    XiT = Xi.T.contiguous()
    m = s @ Xi.T
    changed = torch.zeros(n, dtype=torch.bool, device=s.device)
    U = _uniforms(S, temperature, rng)
    for u in torch.as_tensor(order).tolist():
        xi = XiT[u]
        a = m - S[u, :, None] * xi
        G = dense_interaction(a + 1, degree, n_units)
        G -= dense_interaction(a - 1, degree, n_units)
        g = G @ xi
        if U is None:
            new = sign_update(g, S[u], tie_tolerance(G.abs().sum(dim=1), xi.numel()))
        else:
            new = heat_bath(g, temperature, U[u])
        delta = new - S[u]
        moved = delta != 0
        if bool(moved.any()):
            m += delta[:, None] * xi
            S[u] = new
            changed |= moved
    s.copy_(S.T)
    return changed


def sync_block_rows(n_units: int, like: torch.Tensor) -> int:
    if like.device.type != "cpu":  # a GPU wants every row in one launch
        return like.shape[0]
    return max(64, (1 << 20) // n_units)


def pairwise_recall(
    s: torch.Tensor,
    W: torch.Tensor,
    tol: torch.Tensor,
    *,
    update: str,
    max_iter: int,
    order_rng: np.random.Generator,
    factors: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if update == "sync" and factors is None:
        return sync_loop(
            s,
            lambda t: sign_update(pairwise_gap(t, W), t, tol),
            lambda t: pairwise_energy(t, W),
            max_iter,
            energy_tol=pairwise_energy_tolerance(tol),
        )
    if update == "sync":
        Xi, d = factors
        rows = max(1, min(s.shape[0], sync_block_rows(s.shape[1], s)))
        shift = float(d[0]) - 0.5 if bool((d == d[0]).all()) else d - 0.5
        buffers = [
            torch.empty((rows, s.shape[1]), dtype=Xi.dtype, device=s.device)
            for _ in range(2)
        ]
        first = buffers[0].untyped_storage().data_ptr()

        def step(u):  # into the buffer that does not hold u
            out = buffers[int(u.untyped_storage().data_ptr() == first)]
            return hebbian_sync_step(u, Xi, shift, out)

        states = torch.empty(s.shape, dtype=W.dtype, device=s.device)
        n_iter, status = _int_arrays(s.shape[0], s.device)
        for start in range(0, s.shape[0], rows):
            block = slice(start, start + rows)
            states[block], n_iter[block], status[block] = sync_loop(
                s[block].to(Xi.dtype),
                step,
                lambda u: hebbian_energy(u, Xi, d),
                max_iter,
            )
        return states, n_iter, status
    return async_loop(
        s, lambda t, order: pairwise_sweep(t, W, order, tol), max_iter, order_rng
    )


def dense_recall(
    s: torch.Tensor,
    Xi: torch.Tensor,
    degree: int,
    *,
    update: str,
    max_iter: int,
    order_rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if update == "sync":

        def step(t):
            gap, tol = dense_gap(t, Xi, degree)
            return sign_update(gap, t, tol)

        return sync_loop(s, step, lambda t: dense_energy(t, Xi, degree), max_iter)
    return async_loop(
        s, lambda t, order: dense_sweep(t, Xi, degree, order), max_iter, order_rng
    )


def modern_recall(
    x: torch.Tensor, Xi: torch.Tensor, beta: float, *, max_iter: int, tol: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    n = x.shape[0]
    n_iter, status = _int_arrays(n, x.device)
    active, P = torch.arange(n, device=x.device), None
    for it in range(max_iter):
        every = active.numel() == n
        xa = x if every else x[active]
        p = modern_softmax(xa, Xi, beta)
        new = p @ Xi
        n_iter[active] += 1
        if every:
            P = p
        else:
            P[active] = p
        if it == max_iter - 1:
            if every:
                x = new
            else:
                x[active] = new
            break
        done = (new - xa).abs().amax(dim=1) <= tol
        if every:
            x = new
        else:
            x[active] = new
        status[active[done]] = CONVERGED
        active = active[~done]
        if not active.numel():
            break
    return x, P, n_iter, status


def spin_dtype(n_units: int, like: torch.Tensor) -> torch.dtype | None:
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
    multiples of 8."""
    if (
        n_units < 2**31
        and like.device.type == "cpu"
        and platform.machine().lower() in ("x86_64", "amd64")
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and _int_mm_works()
    ):
        return torch.int8
    return spin_dtype(n_units, like)


def spin_overlaps(s: torch.Tensor, Xi: torch.Tensor) -> torch.Tensor:
    if s.dtype == torch.int8:
        return torch._int_mm(s, Xi.to(torch.int8).T)
    return s @ Xi.to(s.dtype).T


def modern_recall_spins(
    s: torch.Tensor,
    Xi: torch.Tensor,
    beta: float,
    *,
    max_iter: int,
    tol: float,
    tie: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    n, dtype, device = s.shape[0], Xi.dtype, s.device
    n_iter, status = _int_arrays(n, device)
    out = None
    slack = 4.0 * (Xi.shape[0] + 1) * torch.finfo(dtype).eps
    known_above = 0.5 * (1.0 + tie) + slack
    x, active = s, torch.arange(n, device=device)
    for it in range(max_iter):
        a = (spin_overlaps(x, Xi) if x.dtype != dtype else x @ Xi.T).to(dtype)
        p = torch.softmax(beta * a, dim=1)
        p_top, top = p.max(dim=1)
        n_iter[active] += 1
        if it == 0:  # every row: the weights are this array
            P = p
        else:
            P[active] = p
        last = it == max_iter - 1
        known = p_top > known_above
        if not last and bool(known.any()):
            k = torch.nonzero(known).squeeze(1)
            dev = (Xi[top[k]] - x[k]).abs().amax(dim=1)
            known[k] = dev + 2.0 * (1.0 - p_top[k]) + slack <= tol
        k = torch.nonzero(known).squeeze(1)
        u = torch.nonzero(~known).squeeze(1)
        if k.numel() == n:  # this update settles every row (no earlier one settled any)
            out = torch.index_select(Xi, 0, top)
        else:
            if out is None:
                out = torch.empty((n, Xi.shape[1]), dtype=dtype, device=device)
            out[active[k]] = Xi[top[k]]
        if not last:
            status[active[k]] = CONVERGED
        if not u.numel():
            break
        new = p[u] @ Xi
        if last:
            done = torch.ones(u.numel(), dtype=torch.bool, device=device)
        else:
            done = (new - x[u]).abs().amax(dim=1) <= tol
            status[active[u[done]]] = CONVERGED
        d = u[done]
        if d.numel():
            s0 = s[active[d]].to(dtype)
            out[active[d]] = modern_spins(new[done], p[d], s0, tie)
        active, x = active[u[~done]], new[~done]
        if not active.numel():
            break
    return out, P, n_iter, status


def modern_spins(
    x: torch.Tensor, p: torch.Tensor, s: torch.Tensor, tol: float
) -> torch.Tensor:
    rows = torch.nonzero(p.amax(dim=1) <= 0.5 * (1.0 + tol)).squeeze(1)
    tied = sign_update(x[rows], s[rows], tol) if rows.numel() else None
    out = to_spins(x, 0.0, out=x)
    if rows.numel():
        out[rows] = tied
    return out


# -- sampling ----------------------------------------------------------------------------


def _permutation(n: int, rng: torch.Generator) -> torch.Tensor:
    return torch.randperm(n, generator=rng, device=rng.device)


def pairwise_glauber(
    s: torch.Tensor,
    W: torch.Tensor,
    tol: torch.Tensor,
    temperature: float,
    n_steps: int,
    rng: torch.Generator,
) -> torch.Tensor:
    for _ in range(n_steps):
        pairwise_sweep(s, W, _permutation(s.shape[1], rng), tol, temperature, rng)
    return s


def dense_glauber(
    s: torch.Tensor,
    Xi: torch.Tensor,
    degree: int,
    temperature: float,
    n_steps: int,
    rng: torch.Generator,
) -> torch.Tensor:
    for _ in range(n_steps):
        dense_sweep(s, Xi, degree, _permutation(s.shape[1], rng), temperature, rng)
    return s


def categorical(p: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    return torch.multinomial(p, 1, generator=rng).squeeze(1)


def modern_base_sample(
    Xi: torch.Tensor, beta: float, n_samples: int, rng: torch.Generator
) -> torch.Tensor:
    logw = 0.5 * beta * (Xi * Xi).sum(dim=1)
    w = torch.exp(logw - logw.max())
    mu = torch.multinomial(w, n_samples, replacement=True, generator=rng)
    noise = torch.randn(
        (n_samples, Xi.shape[1]), generator=rng, dtype=Xi.dtype, device=Xi.device
    )
    return Xi[mu] + noise / math.sqrt(beta)


def modern_gibbs(
    x: torch.Tensor, Xi: torch.Tensor, beta: float, n_steps: int, rng: torch.Generator
) -> torch.Tensor:
    for _ in range(n_steps):
        mu = categorical(modern_softmax(x, Xi, beta), rng)
        noise = torch.randn(x.shape, generator=rng, dtype=x.dtype, device=x.device)
        x = Xi[mu] + noise / math.sqrt(beta)
    return x


# -- read-out ----------------------------------------------------------------------------


def nearest_memory(
    s: torch.Tensor, Xi: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    d2 = (s * s).sum(dim=1, keepdim=True) - 2.0 * (s @ Xi.T) + (Xi * Xi).sum(dim=1)
    idx = d2.argmin(dim=1)
    return idx, d2[torch.arange(s.shape[0], device=s.device), idx].clamp_min(0.0)
