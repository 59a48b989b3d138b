"""Hopfield network numerics, NumPy backend.

Notation (shared with ``skebm/_backends/torch/hopfield.py``, which mirrors this file):
``s`` binary states (n, N) with entries in {-1, +1}; ``x`` continuous states (n, N)
of the modern rule; ``Xi`` memories (P, N), one per row ({-1, +1} for the binary
rules); ``W`` (N, N) symmetric weights with zero diagonal.

A binary rule is its energy E(s). Its dynamics only use the energy gap of each unit,

    gap_i(s) = E(s with s_i = -1) - E(s with s_i = +1),

recall sets s_i = sign(gap_i) (keeping s_i on a tie) and Glauber dynamics at
temperature T sets s_i = +1 with probability sigmoid(gap_i / T).

    pairwise rules:    E(s) = -1/2 s^T W s                        gap = 2 W s
    dense, degree n:   E(s) = -N sum_mu (xi_mu . s / N)^n
    modern:            E(x) = -lse(beta, Xi x) + x.x / 2 + log(P) / beta + M^2 / 2

with lse(beta, a) = log(sum_mu exp(beta a_mu)) / beta and M the largest memory norm.

Recall status codes: ``CONVERGED`` (a fixed point), ``CYCLE`` (a 2-cycle of
synchronous updates) and ``MAX_ITER`` (stopped after ``max_iter`` updates).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.special import expit, logsumexp

CONVERGED, CYCLE, MAX_ITER = 0, 1, 2

# -- encoding ----------------------------------------------------------------------------


def to_spins(
    X: np.ndarray, threshold: float, out: np.ndarray | None = None, dtype=None
) -> np.ndarray:
    """+1 where X > threshold, else -1, in ``dtype`` (default: that of X), or into
    ``out`` (may be X)."""
    mask = X > threshold
    if out is None:
        s = mask.astype(X.dtype if dtype is None else dtype)
    else:
        s = out
        np.copyto(s, mask)
    s *= 2.0
    s -= 1.0
    return s


def random_spins(
    n_samples: int, n_units: int, dtype: np.dtype, rng: np.random.Generator
) -> np.ndarray:
    """Uniform draws from {-1, +1}^N."""
    return to_spins(rng.random((n_samples, n_units)).astype(dtype), 0.5)


# -- storage -----------------------------------------------------------------------------


def hebbian_update(W: np.ndarray, Xi: np.ndarray) -> np.ndarray:
    """W + Xi^T Xi / N with a zero diagonal: the Hebb rule, exact in any number of calls."""
    W = W + (Xi.T @ Xi) / W.shape[0]
    np.fill_diagonal(W, 0.0)
    return W


def storkey_block_size(n_units: int) -> int:
    """Patterns per block of :func:`storkey_store`: c^B = (1 + 2/N)^B stays below 1e4."""
    return max(1, min(64, int(math.log(1e4) / math.log1p(2.0 / n_units))))


def storkey_store(W: np.ndarray, Xi: np.ndarray) -> np.ndarray:
    """Store the rows of Xi one after another by Storkey's rule, in blocks.

    Storkey's rule (the local-field form of Storkey 1997) stores one pattern as

        W'_ij = W_ij + (xi_i xi_j - xi_i h_ji - h_ij xi_j) / N   (i != j),
        h_ij = sum_{k != i, j} W_ik xi_k = h_i - W_ij xi_j,       h = W xi,

    which for xi in {-1, +1}^N and a symmetric, zero-diagonal W is
    W' = (1 + 2/N) W + (xi (xi - h)^T - h xi^T) / N off the diagonal.

    Within a block of B patterns, W_j = c^j W_0 + sum_{l<j} c^(j-1-l) (R_l - diag r_l)
    with c = 1 + 2/N, R_l = (xi_l xi_l^T - xi_l h_l^T - h_l xi_l^T) / N and r_l its
    diagonal. So the fields h_j = W_j xi_j need one GEMM (W_0 Xi^T) plus corrections
    from the earlier patterns of the block, and the block adds to W by two GEMMs: the
    result equals the pattern-by-pattern rule up to rounding, at BLAS speed.
    """
    n = W.shape[0]
    c = 1.0 + 2.0 / n
    W = W.copy()
    size = storkey_block_size(n)
    for start in range(0, Xi.shape[0], size):
        X = Xi[start : start + size]
        b = X.shape[0]
        F0 = X @ W
        gram = X @ X.T
        H, R = np.empty_like(X), np.empty_like(X)
        for j in range(b):
            h = c**j * F0[j]
            if j:
                w = c ** np.arange(j - 1, -1, -1, dtype=X.dtype)
                a = gram[:j, j]
                h += ((w * (a - H[:j] @ X[j])) @ X[:j] - (w * a) @ H[:j]) / n
                h -= (w @ R[:j]) * X[j]
            H[j] = h
            R[j] = (1.0 - 2.0 * X[j] * h) / n
        d = c ** np.arange(b - 1, -1, -1, dtype=X.dtype)
        XD = X.T * d
        K = XD @ H
        W *= c**b
        W += (XD @ X - K - K.T) / n
        np.fill_diagonal(W, 0.0)
    return W


def projection_update(
    W: np.ndarray, d: np.ndarray, Xi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Add the rows of Xi to the projection (pseudo-inverse) rule.

    With the full projector P = W + diag(d) onto the span of the stored patterns, the
    residuals R = Xi - Xi P are the parts of the new patterns outside that span. Their
    orthonormal row basis V (SVD, singular values above sqrt(eps) ||xi||) extends the
    span: P' = P + V^T V. A single pattern gives the rank-one (Greville) update
    P' = P + r r^T / r.r, and fit is this update from P = 0, P = Xi^+ Xi.

    Returns
    -------
    W : ndarray of shape (N, N)
        P' with a zero diagonal.
    d : ndarray of shape (N,)
        The diagonal of P'.
    """
    P = W + np.diag(d)
    R = Xi - Xi @ P
    _, sv, Vt = np.linalg.svd(R, full_matrices=False)
    tol = math.sqrt(np.finfo(W.dtype).eps) * math.sqrt(W.shape[0])
    V = Vt[sv > tol]
    P += V.T @ V
    d = np.diag(P).copy()
    np.fill_diagonal(P, 0.0)
    return P, d


# -- energies and gaps -------------------------------------------------------------------


def tie_tolerance(scale: np.ndarray, n_terms: int) -> np.ndarray:
    """Gaps within 8 sqrt(n_terms) eps * scale of 0 are ties (rounding noise).

    ``scale`` bounds the sum of the absolute terms of a gap.
    """
    return 8.0 * math.sqrt(n_terms) * np.finfo(scale.dtype).eps * scale


def sign_update(gap: np.ndarray, s: np.ndarray, tol: np.ndarray | float) -> np.ndarray:
    """sign(gap), keeping s where |gap| <= tol."""
    out = (gap > tol).astype(s.dtype)
    out -= gap < -tol
    tie = out == 0
    if tie.any():
        np.copyto(out, s, where=tie)
    return out


def heat_bath(gap: np.ndarray, temperature: float, u: np.ndarray) -> np.ndarray:
    """+1 with probability sigmoid(gap / T), else -1, from uniforms u."""
    one = gap.dtype.type(1)
    return np.where(u < expit(gap / temperature), one, -one)


def pairwise_energy(s: np.ndarray, W: np.ndarray) -> np.ndarray:
    """E(s) = -1/2 s^T W s, shape (n,)."""
    return -0.5 * ((s @ W) * s).sum(axis=1)


def pairwise_gap(s: np.ndarray, W: np.ndarray) -> np.ndarray:
    """gap = 2 W s, shape (n, N)."""
    g = s @ W
    g *= 2.0
    return g


def hebbian_factors(Xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Xi, d) for :func:`hebbian_sync_step`, d the diagonal of Xi^T Xi, from spin patterns.

    With spin states and patterns every sum in the field is an integer of magnitude
    at most P N; below 2**24 float32 holds them exactly, so the factors are then
    float32, whose GEMMs run at twice the rate of float64's, with the same signs;
    above, they are float64 (exact up to 2**53), whatever the patterns' dtype.
    """
    dtype = np.float32 if Xi.shape[0] * Xi.shape[1] < 2**24 else np.float64
    Xi = Xi.astype(dtype, copy=False)
    return Xi, (Xi * Xi).sum(axis=0)


def hebbian_sync_step(
    s: np.ndarray, Xi: np.ndarray, shift: np.ndarray | float, out: np.ndarray
) -> np.ndarray:
    """One synchronous update for the Hebbian W = (Xi^T Xi - diag(d)) / N, into ``out``;
    ``shift`` = d - 1/2 (an array, or one float when d is uniform, as it is for spin
    patterns: d = P).

    N W s = Xi^T (Xi s) - d s: two GEMMs of 2 n N P flops instead of one of 2 n N^2,
    the cheaper form while 2 P < N. For spins the sums are integers, exact in
    floating point (see :func:`hebbian_factors`), so a tie is an exact 0; it keeps
    s_i, as :func:`sign_update` does: the new state is the sign of
    N W s + s / 2 = Xi^T (Xi s) - (d - 1/2) s, which is never 0.
    """
    g = np.matmul(s @ Xi.T, Xi, out=out[: s.shape[0]])
    g -= s * shift
    return np.sign(g, out=g)


def hebbian_energy(s: np.ndarray, Xi: np.ndarray, d: np.ndarray) -> np.ndarray:
    """E(s) = -1/2 s^T W s = -(||Xi s||^2 - sum(d)) / (2 N) for the Hebbian W.

    The overlaps Xi s are exact integers in the factors' dtype; their squares are
    summed in float64, so equal energies compare equal.
    """
    m = (s @ Xi.T).astype(np.float64)
    return -0.5 * ((m * m).sum(axis=1) - float(d.sum())) / s.shape[1]


def pairwise_tolerance(W: np.ndarray) -> np.ndarray:
    """Tie tolerance of each unit's gap, shape (N,)."""
    return tie_tolerance(2.0 * np.abs(W).sum(axis=0), W.shape[0])


def pairwise_energy_tolerance(tol: np.ndarray) -> float:
    """Tie tolerance of -1/2 s^T W s from the gaps' (:func:`pairwise_tolerance`).

    That is tie_tolerance(sum|W| / 2, N^2); tie_tolerance is linear in its scale, and
    the gaps' scales 2 sum_j |W_ij| add up to 2 sum|W|: O(N), not a pass over W.
    """
    return 0.25 * math.sqrt(tol.shape[0]) * float(tol.sum())


def dense_interaction(a: np.ndarray, degree: int, n_units: int) -> np.ndarray:
    """F(a) = N (a / N)^n."""
    return n_units * (a / n_units) ** degree


def dense_energy(s: np.ndarray, Xi: np.ndarray, degree: int) -> np.ndarray:
    """E(s) = -sum_mu F(xi_mu . s), shape (n,)."""
    return -dense_interaction(s @ Xi.T, degree, s.shape[1]).sum(axis=1)


def dense_gap(
    s: np.ndarray, Xi: np.ndarray, degree: int
) -> tuple[np.ndarray, np.ndarray]:
    """gap_i = sum_mu xi_mu,i [F(a + 1) - F(a - 1)] at a = m_mu - xi_mu,i s_i.

    With m = Xi s and a in {m - 1, m + 1} this is, for all units at once,
    gap = A Xi + s sum_mu B_mu with A = (F(m + 2) - F(m - 2)) / 2 and
    B = (2 F(m) - F(m - 2) - F(m + 2)) / 2: two GEMMs.

    Returns
    -------
    gap : ndarray of shape (n, N)
    tol : ndarray of shape (n, 1)
        Tie tolerance of each row.
    """
    n, deg = s.shape[1], degree
    m = s @ Xi.T
    f_lo, f_mid = dense_interaction(m - 2, deg, n), dense_interaction(m, deg, n)
    f_hi = dense_interaction(m + 2, deg, n)
    A = 0.5 * (f_hi - f_lo)
    B = f_mid - 0.5 * (f_lo + f_hi)
    gap = A @ Xi
    gap += s * B.sum(axis=1, keepdims=True)
    scale = np.abs(A).sum(axis=1, keepdims=True) + np.abs(B).sum(axis=1, keepdims=True)
    return gap, tie_tolerance(scale, Xi.shape[0])


def modern_softmax(x: np.ndarray, Xi: np.ndarray, beta: float) -> np.ndarray:
    """p = softmax(beta Xi x), shape (n, P)."""
    a = x @ Xi.T
    a *= beta
    a -= a.max(axis=1, keepdims=True)
    np.exp(a, out=a)
    a /= a.sum(axis=1, keepdims=True)
    return a


def modern_energy(x: np.ndarray, Xi: np.ndarray, beta: float) -> np.ndarray:
    """E(x) = -lse(beta, Xi x) + x.x / 2 + log(P) / beta + M^2 / 2, shape (n,)."""
    lse = logsumexp(beta * (x @ Xi.T), axis=1) / beta
    const = math.log(Xi.shape[0]) / beta + 0.5 * float((Xi * Xi).sum(axis=1).max())
    return -lse + 0.5 * (x * x).sum(axis=1) + const


# -- recall ------------------------------------------------------------------------------


def sync_loop(
    s: np.ndarray,
    update: Callable,
    energy: Callable,
    max_iter: int,
    energy_tol: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synchronous updates s <- update(s) of every row until it stops changing.

    ``update(s)`` returns the new states in an array that does not share memory
    with ``s``. A row whose update flips the same units as the previous one is
    back at the state of two updates earlier: a 2-cycle (the only cycles symmetric
    weights allow); it stops there at the lower-energy state of the two, the current
    one when the energies differ by at most ``energy_tol`` (rounding). Finished rows
    leave the batch. Works on ``s`` in place.

    Returns
    -------
    s : ndarray of shape (n, N)
    n_iter : ndarray of shape (n,)
        Updates computed per row.
    status : ndarray of shape (n,)
        CONVERGED, CYCLE or MAX_ITER per row.
    """
    n = s.shape[0]
    n_iter = np.zeros(n, dtype=np.int64)
    status = np.full(n, MAX_ITER, dtype=np.int64)
    active, cur, last = np.arange(n), s, None
    for _ in range(max_iter):
        new = update(cur)
        n_iter[active] += 1
        flip = new != cur
        moving = flip.any(axis=1)
        if last is not None:
            cycle = moving & (flip == last).all(axis=1)
        else:
            cycle = np.zeros_like(moving)
        if cycle.any():
            lower = energy(new[cycle]) < energy(cur[cycle]) - energy_tol
            new[cycle] = np.where(lower[:, None], new[cycle], cur[cycle])
        stop = ~moving | cycle
        status[active[~moving]], status[active[cycle]] = CONVERGED, CYCLE
        if stop.any():
            s[active[stop]] = new[stop]
            keep = ~stop
            active, new, flip = active[keep], new[keep], flip[keep]
        cur, last = new, flip
        if not active.size:
            break
    s[active] = cur
    return s, n_iter, status


def async_loop(
    s: np.ndarray, sweep: Callable, max_iter: int, order_rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Asynchronous sweeps until a sweep changes nothing, per row.

    Each sweep visits the units in a fresh random order from ``order_rng``, the same
    order for every row, so a row's recall does not depend on the other rows.
    ``sweep(s, order)`` updates ``s`` in place and returns which rows changed.

    Returns
    -------
    s, n_iter, status : as :func:`sync_loop`.
    """
    n, n_units = s.shape
    n_iter = np.zeros(n, dtype=np.int64)
    status = np.full(n, MAX_ITER, dtype=np.int64)
    active = np.arange(n)
    for _ in range(max_iter):
        order = order_rng.permutation(n_units)
        sub = s[active]
        changed = sweep(sub, order)
        s[active] = sub
        n_iter[active] += 1
        status[active[~changed]] = CONVERGED
        active = active[changed]
        if not active.size:
            break
    return s, n_iter, status


def pairwise_sweep(
    s: np.ndarray,
    W: np.ndarray,
    order: np.ndarray,
    tol: np.ndarray | float,
    temperature: float = 0.0,
    rng: np.random.Generator | None = None,
    block_size: int = 64,
) -> np.ndarray:
    """One sweep over the units in ``order``, in place on s; returns the changed rows.

    At temperature 0 each unit takes sign(gap) (ties keep it); above 0 it is drawn by
    the heat-bath rule P(s_i = +1) = sigmoid(gap_i / T). Units are visited in blocks:
    the gaps of a block come from one GEMM and every change corrects the gaps of the
    block's later units (W is symmetric), so the sweep is exactly sequential.
    """
    S = np.ascontiguousarray(s.T)
    changed = np.zeros(s.shape[0], dtype=bool)
    U = rng.random(S.shape).astype(S.dtype) if temperature > 0 else None
    for start in range(0, order.size, block_size):
        block = order[start : start + block_size]
        G = W[block] @ S
        G *= 2.0
        Wbb = 2.0 * W[np.ix_(block, block)]
        for j, u in enumerate(block):
            if U is None:
                new = sign_update(G[j], S[u], tol[u])
            else:
                new = heat_bath(G[j], temperature, U[u])
            delta = new - S[u]
            moved = delta != 0
            if moved.any():
                G[j + 1 :] += Wbb[j + 1 :, j, None] * delta
                S[u] = new
                changed |= moved
    s[...] = S.T
    return changed


def dense_sweep(
    s: np.ndarray,
    Xi: np.ndarray,
    degree: int,
    order: np.ndarray,
    temperature: float = 0.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """One sweep of the dense rule over the units in ``order``, in place on s.

    Keeps the overlaps m = Xi s up to date: the gap of unit u is
    sum_mu xi_mu,u [F(a + 1) - F(a - 1)] at a = m - xi_u s_u. Returns the changed rows.
    """
    n, n_units = s.shape
    S = np.ascontiguousarray(s.T)
    XiT = np.ascontiguousarray(Xi.T)
    m = s @ Xi.T
    changed = np.zeros(n, dtype=bool)
    U = rng.random(S.shape).astype(S.dtype) if temperature > 0 else None
    for u in order:
        xi = XiT[u]
        a = m - S[u, :, None] * xi
        G = dense_interaction(a + 1, degree, n_units)
        G -= dense_interaction(a - 1, degree, n_units)
        g = G @ xi
        if U is None:
            new = sign_update(g, S[u], tie_tolerance(np.abs(G).sum(axis=1), xi.size))
        else:
            new = heat_bath(g, temperature, U[u])
        delta = new - S[u]
        moved = delta != 0
        if moved.any():
            m += delta[:, None] * xi
            S[u] = new
            changed |= moved
    s[...] = S.T
    return changed


def sync_block_rows(n_units: int, like: np.ndarray) -> int:
    """Rows per block of factored synchronous recall of the probes ``like``: on the
    CPU 2**20 states (4 MB in float32), so that a block's states, fields and flip
    masks stay in the cache from one update to the next (4000 probes at N = 1024
    took 60 ms in blocks of 1024 rows and 89 ms in one block); on a GPU (torch)
    every row, in one launch."""
    return max(64, (1 << 20) // n_units)


def pairwise_recall(
    s: np.ndarray,
    W: np.ndarray,
    tol: np.ndarray,
    *,
    update: str,
    max_iter: int,
    order_rng: np.random.Generator,
    factors: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Recall under E(s) = -1/2 s^T W s; returns (s, n_iter, status).

    ``tol`` is :func:`pairwise_tolerance` of W, computed once when W is stored.
    ``factors`` = :func:`hebbian_factors` of a Hebbian W: synchronous updates then
    run on states in the factors' dtype, with updates from :func:`hebbian_sync_step`,
    in row blocks of :func:`sync_block_rows`; ``s`` may then hold the probes in any
    dtype (:func:`spin_dtype`) and may be overwritten. The states come back in W's
    dtype.
    """
    if update == "sync" and factors is None:
        return sync_loop(
            s,
            lambda t: sign_update(pairwise_gap(t, W), t, tol),
            lambda t: pairwise_energy(t, W),
            max_iter,
            energy_tol=pairwise_energy_tolerance(tol),
        )
    if update == "sync":  # exact integer fields: a tie is an exact 0
        Xi, d = factors
        rows = max(1, min(s.shape[0], sync_block_rows(s.shape[1], s)))
        shift = d - 0.5
        buffers = [np.empty((rows, s.shape[1]), dtype=Xi.dtype) for _ in range(2)]

        def step(u):  # into the buffer that does not hold u
            out = buffers[np.may_share_memory(u, buffers[0])]
            return hebbian_sync_step(u, Xi, shift, out)

        states = np.empty(s.shape, dtype=W.dtype)
        n_iter = np.empty(s.shape[0], dtype=np.int64)
        status = np.empty(s.shape[0], dtype=np.int64)
        for start in range(0, s.shape[0], rows):
            block = slice(start, start + rows)
            states[block], n_iter[block], status[block] = sync_loop(
                s[block].astype(Xi.dtype, copy=False),
                step,
                lambda u: hebbian_energy(u, Xi, d),
                max_iter,
            )
        return states, n_iter, status
    return async_loop(
        s, lambda t, order: pairwise_sweep(t, W, order, tol), max_iter, order_rng
    )


def dense_recall(
    s: np.ndarray,
    Xi: np.ndarray,
    degree: int,
    *,
    update: str,
    max_iter: int,
    order_rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Recall under the dense energy; returns (s, n_iter, status)."""
    if update == "sync":

        def step(t):
            gap, tol = dense_gap(t, Xi, degree)
            return sign_update(gap, t, tol)

        return sync_loop(s, step, lambda t: dense_energy(t, Xi, degree), max_iter)
    return async_loop(
        s, lambda t, order: dense_sweep(t, Xi, degree, order), max_iter, order_rng
    )


def modern_recall(
    x: np.ndarray, Xi: np.ndarray, beta: float, *, max_iter: int, tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Iterate x <- Xi^T softmax(beta Xi x) until no entry moves by more than tol.

    The update is the concave-convex procedure on E(x), so E never increases
    (Ramsauer et al. 2020, Theorem 1). The last update is not checked: a row that
    needed all ``max_iter`` updates has status MAX_ITER.

    Returns
    -------
    x : ndarray of shape (n, N)
    p : ndarray of shape (n, P)
        The softmax weights of the last update: x = p Xi.
    n_iter, status : as :func:`sync_loop`.
    """
    n = x.shape[0]
    n_iter = np.zeros(n, dtype=np.int64)
    status = np.full(n, MAX_ITER, dtype=np.int64)
    active, P = np.arange(n), None
    for it in range(max_iter):
        every = active.size == n
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
        done = np.abs(new - xa).max(axis=1) <= tol
        if every:
            x = new
        else:
            x[active] = new
        status[active[done]] = CONVERGED
        active = active[~done]
        if not active.size:
            break
    return x, P, n_iter, status


def spin_dtype(n_units: int, like: np.ndarray) -> type | None:
    """dtype of spin states whose overlaps Xi s with spin memories are exact and
    fastest: float32 (integer sums of +-1 terms, exact for N < 2**24), else None (the
    estimator's dtype). ``like`` is an array on the target device (unused here)."""
    return np.float32 if n_units < 2**24 else None


def overlap_dtype(n_units: int, like: np.ndarray) -> type | None:
    """dtype of binary probes for modern recall's first overlaps: :func:`spin_dtype`
    (a backend may choose a faster exact one)."""
    return spin_dtype(n_units, like)


def spin_overlaps(s: np.ndarray, Xi: np.ndarray) -> np.ndarray:
    """Xi s for spin states ``s`` of :func:`spin_dtype` (or the memories' dtype)."""
    return s @ Xi.astype(s.dtype, copy=False).T


def modern_recall_spins(
    s: np.ndarray, Xi: np.ndarray, beta: float, *, max_iter: int, tol: float, tie: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Binary recall: :func:`modern_recall` then :func:`modern_spins`, without the
    products whose outcome is already known. Same states, weights, counts, statuses.

    Where the largest weight p_m of p = softmax(beta Xi x) exceeds (1 + tie) / 2, the
    state p Xi is within 2 (1 - p_m) of Xi[m] in every entry, so its signs are those of
    Xi[m]. Such a row needs p Xi only to go on: on the last update, or when
    max|Xi[m] - x| + 2 (1 - p_m) plus a rounding margin is within ``tol`` (it
    certainly converges), its state is Xi[m] and the product is skipped.

    ``s`` holds the probes in {-1, +1} in the dtype of ``Xi`` or in that of
    :func:`spin_dtype`: the first overlaps Xi s then come from
    :func:`spin_overlaps`, exact (integer sums of +-1 terms). Returns the states in
    the dtype of ``Xi``.
    """
    n, dtype = s.shape[0], Xi.dtype
    n_iter = np.zeros(n, dtype=np.int64)
    status = np.full(n, MAX_ITER, dtype=np.int64)
    out = None  # allocated once the first rows are known
    # rounding of p Xi and of 1 - p_m, far above the worst case
    slack = 4.0 * (Xi.shape[0] + 1) * float(np.finfo(dtype).eps)
    known_above = 0.5 * (1.0 + tie) + slack
    x, active = s, np.arange(n)  # x: the states of the rows still running
    for it in range(max_iter):
        a = spin_overlaps(x, Xi) if x.dtype != dtype else x @ Xi.T
        a = a.astype(dtype, copy=False)
        rows = np.arange(a.shape[0])
        top = a.argmax(axis=1)
        a *= beta
        a -= a[rows, top][:, None]
        np.exp(a, out=a)
        a /= a.sum(axis=1, keepdims=True)
        p, p_top = a, a[rows, top]
        n_iter[active] += 1
        if it == 0:  # every row: the weights are this array
            P = p
        else:
            P[active] = p
        last = it == max_iter - 1
        known = p_top > known_above
        if not last and known.any():
            k = np.flatnonzero(known)
            dev = np.abs(Xi[top[k]] - x[k]).max(axis=1)
            known[k] = dev + 2.0 * (1.0 - p_top[k]) + slack <= tol
        k, u = np.flatnonzero(known), np.flatnonzero(~known)
        if k.size == n:  # this update settles every row (no earlier one settled any)
            out = Xi[top]
        else:
            if out is None:
                out = np.empty((n, Xi.shape[1]), dtype=dtype)
            out[active[k]] = Xi[top[k]]
        if not last:
            status[active[k]] = CONVERGED
        if not u.size:
            break
        new = p[u] @ Xi
        if last:
            done = np.ones(u.size, dtype=bool)
        else:
            done = np.abs(new - x[u]).max(axis=1) <= tol
            status[active[u[done]]] = CONVERGED
        d = u[done]
        if d.size:
            s0 = s[active[d]].astype(dtype, copy=False)
            out[active[d]] = modern_spins(new[done], p[d], s0, tie)
        active, x = active[u[~done]], new[~done]
        if not active.size:
            break
    return out, P, n_iter, status


def modern_spins(x: np.ndarray, p: np.ndarray, s: np.ndarray, tol: float) -> np.ndarray:
    """Binary states from recalled x = p Xi: sign(x), keeping s where |x_i| <= tol.

    |x_i| <= tol is a tie between memories (their weights cancel at unit i); it needs
    max p <= (1 + tol) / 2, since |x_i| >= 2 max p - 1 for binary memories, so only
    those rows are checked. Overwrites x.
    """
    rows = np.flatnonzero(p.max(axis=1) <= 0.5 * (1.0 + tol))
    tied = sign_update(x[rows], s[rows], tol) if rows.size else None
    out = to_spins(x, 0.0, out=x)
    if rows.size:
        out[rows] = tied
    return out


# -- sampling ----------------------------------------------------------------------------


def pairwise_glauber(
    s: np.ndarray,
    W: np.ndarray,
    tol: np.ndarray,
    temperature: float,
    n_steps: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``n_steps`` heat-bath sweeps, each in a random unit order, in place on s."""
    for _ in range(n_steps):
        pairwise_sweep(s, W, rng.permutation(s.shape[1]), tol, temperature, rng)
    return s


def dense_glauber(
    s: np.ndarray,
    Xi: np.ndarray,
    degree: int,
    temperature: float,
    n_steps: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``n_steps`` heat-bath sweeps of the dense rule, in place on s."""
    for _ in range(n_steps):
        dense_sweep(s, Xi, degree, rng.permutation(s.shape[1]), temperature, rng)
    return s


def categorical(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of p, drawn with probabilities p."""
    u = rng.random((p.shape[0], 1))
    return np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), p.shape[1] - 1)


def modern_base_sample(
    Xi: np.ndarray, beta: float, n_samples: int, rng: np.random.Generator
) -> np.ndarray:
    """Exact draws from p(x) = exp(-beta E(x)) / Z: a Gaussian mixture.

    -beta E(x) = log sum_mu exp(-beta |x - xi_mu|^2 / 2 + beta |xi_mu|^2 / 2) + const,
    so x = xi_mu + N(0, I / beta) with mu drawn with weights exp(beta |xi_mu|^2 / 2).
    """
    logw = 0.5 * beta * (Xi * Xi).sum(axis=1)
    w = np.exp(logw - logw.max())
    mu = categorical(np.broadcast_to(w / w.sum(), (n_samples, w.size)), rng)
    noise = rng.standard_normal((n_samples, Xi.shape[1])).astype(Xi.dtype)
    return Xi[mu] + noise / math.sqrt(beta)


def modern_gibbs(
    x: np.ndarray, Xi: np.ndarray, beta: float, n_steps: int, rng: np.random.Generator
) -> np.ndarray:
    """Block Gibbs on (x, mu) for p(x, mu) ~ exp(beta xi_mu.x - beta |x|^2 / 2).

    mu | x ~ softmax(beta Xi x) (the attention of the update rule) and
    x | mu ~ N(xi_mu, I / beta); the x-marginal is exp(-beta E(x)) / Z.
    """
    for _ in range(n_steps):
        mu = categorical(modern_softmax(x, Xi, beta), rng)
        noise = rng.standard_normal(x.shape).astype(x.dtype)
        x = Xi[mu] + noise / math.sqrt(beta)
    return x


# -- read-out ----------------------------------------------------------------------------


def nearest_memory(s: np.ndarray, Xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the closest memory to each row and the squared distance to it."""
    d2 = (s * s).sum(axis=1, keepdims=True) - 2.0 * (s @ Xi.T) + (Xi * Xi).sum(axis=1)
    idx = d2.argmin(axis=1)
    return idx, np.maximum(d2[np.arange(s.shape[0]), idx], 0.0)
