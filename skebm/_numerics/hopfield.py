"""Hopfield network numerics, written once over an array namespace.

Notation: ``s`` binary states (n, N) with entries in {-1, +1}; ``x`` continuous
states (n, N) of the modern rule; ``Xi`` memories (P, N), one per row ({-1, +1} for
the binary rules); ``W`` (N, N) symmetric weights with zero diagonal.

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

Every function takes arrays of one namespace (NumPy arrays or torch tensors) and
returns arrays of it; ``xp`` is resolved from the arrays. Random draws, in-place
kernels and the spin dtypes of the fast overlaps come from the backend's primitives
(``_ops``). The unit orders of asynchronous recall come from the NumPy generator the
estimator passes in, so both backends visit the units in the same order and recall
identically.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from array_api_compat import device

from skebm._backends import primitives_for as _ops
from skebm._numerics import array_namespace

CONVERGED, CYCLE, MAX_ITER = 0, 1, 2


def _counters(n: int, xp, dev):
    """Per-row update counts (0) and statuses (MAX_ITER)."""
    n_iter = xp.zeros(n, dtype=xp.int64, device=dev)
    return n_iter, xp.full((n,), MAX_ITER, dtype=xp.int64, device=dev)


def _transposed(s, xp):
    """s.T, copied into a row-major array: the states of one unit in one run."""
    S = xp.empty((s.shape[1], s.shape[0]), dtype=s.dtype, device=device(s))
    S[...] = s.T
    return S


# -- encoding ----------------------------------------------------------------------------


def to_spins(X, threshold: float, out=None, dtype=None):
    """+1 where X > threshold, else -1, in ``dtype`` (default: that of X), or into
    ``out`` (may be X)."""
    mask = X > threshold
    if out is None:
        s = _ops(array_namespace(X)).from_mask(
            mask, X.dtype if dtype is None else dtype
        )
    else:
        s = out
        s[...] = mask
    s *= 2
    s -= 1
    return s


def random_spins(shape: tuple, like, rng):
    """Uniform draws from {-1, +1}^shape, in the dtype and on the device of ``like``."""
    return to_spins(_ops(array_namespace(like)).uniform(shape, like, rng), 0.5)


# -- storage -----------------------------------------------------------------------------


def hebbian_update(W, Xi):
    """W + Xi^T Xi / N with a zero diagonal: the Hebb rule, exact in any number of calls."""
    return _ops(array_namespace(W)).fill_diagonal(W + (Xi.T @ Xi) / W.shape[0], 0.0)


def storkey_block_size(n_units: int) -> int:
    """Patterns per block of :func:`storkey_store`: c^B = (1 + 2/N)^B stays below 1e4."""
    return max(1, min(64, int(math.log(1e4) / math.log1p(2.0 / n_units))))


def storkey_store(W, Xi):
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
    xp = array_namespace(W)
    n = W.shape[0]
    c = 1.0 + 2.0 / n
    W = xp.asarray(W, copy=True)
    size = storkey_block_size(n)
    kw = {"dtype": W.dtype, "device": device(W)}
    for start in range(0, Xi.shape[0], size):
        X = Xi[start : start + size]
        b = X.shape[0]
        F0 = X @ W
        gram = X @ X.T
        H, R = xp.empty_like(X), xp.empty_like(X)
        for j in range(b):
            h = c**j * F0[j]
            if j:
                w = c ** xp.arange(j - 1, -1, -1, **kw)
                a = gram[:j, j]
                h += ((w * (a - H[:j] @ X[j])) @ X[:j] - (w * a) @ H[:j]) / n
                h -= (w @ R[:j]) * X[j]
            H[j] = h
            R[j] = (1.0 - 2.0 * X[j] * h) / n
        d = c ** xp.arange(b - 1, -1, -1, **kw)
        XD = X.T * d
        K = XD @ H
        W *= c**b
        W += (XD @ X - K - K.T) / n
        _ops(xp).fill_diagonal(W, 0.0)
    return W


def projection_update(W, d, Xi):
    """Add the rows of Xi to the projection (pseudo-inverse) rule.

    With the full projector P = W + diag(d) onto the span of the stored patterns, the
    residuals R = Xi - Xi P are the parts of the new patterns outside that span. Their
    orthonormal row basis V (SVD, singular values above sqrt(eps) ||xi||) extends the
    span: P' = P + V^T V. A single pattern gives the rank-one (Greville) update
    P' = P + r r^T / r.r, and fit is this update from P = 0, P = Xi^+ Xi.

    Returns
    -------
    W : array of shape (N, N)
        P' with a zero diagonal.
    d : array of shape (N,)
        The diagonal of P'.
    """
    xp = array_namespace(W)
    i = xp.arange(W.shape[0], device=device(W))
    P = W + xp.where(i[:, None] == i, d, 0.0)
    R = Xi - Xi @ P
    _, sv, Vt = xp.linalg.svd(R, full_matrices=False)
    tol = math.sqrt(xp.finfo(W.dtype).eps) * math.sqrt(W.shape[0])
    V = Vt[sv > tol]
    P += V.T @ V
    d = xp.asarray(xp.linalg.diagonal(P), copy=True)
    return _ops(xp).fill_diagonal(P, 0.0), d


# -- energies and gaps -------------------------------------------------------------------


def tie_tolerance(scale, n_terms: int):
    """Gaps within 8 sqrt(n_terms) eps * scale of 0 are ties (rounding noise).

    ``scale`` bounds the sum of the absolute terms of a gap.
    """
    eps = array_namespace(scale).finfo(scale.dtype).eps
    return 8.0 * math.sqrt(n_terms) * eps * scale


def sign_update(gap, s, tol):
    """sign(gap), keeping s where |gap| <= tol."""
    xp = array_namespace(s)
    return xp.where(gap < -tol, -1.0, xp.where(gap > tol, 1.0, s))


def heat_bath(gap, temperature: float, u):
    """+1 with probability sigmoid(gap / T), else -1, from uniforms u."""
    xp = array_namespace(gap)
    up = u < _ops(xp).expit(gap / temperature)
    return xp.astype(xp.where(up, 1.0, -1.0), gap.dtype, copy=False)


def pairwise_energy(s, W):
    """E(s) = -1/2 s^T W s, shape (n,)."""
    return -0.5 * array_namespace(s).sum((s @ W) * s, axis=1)


def pairwise_gap(s, W):
    """gap = 2 W s, shape (n, N)."""
    g = s @ W
    g *= 2.0
    return g


def hebbian_factors(Xi):
    """(Xi, d) for :func:`hebbian_sync_step`, d the diagonal of Xi^T Xi, from spin patterns.

    With spin states and patterns every sum in the field is an integer of magnitude
    at most P N; below 2**24 float32 holds them exactly, so the factors are then
    float32, whose GEMMs run at twice the rate of float64's, with the same signs;
    above, they are float64 (exact up to 2**53), whatever the patterns' dtype.
    """
    xp = array_namespace(Xi)
    dtype = xp.float32 if Xi.shape[0] * Xi.shape[1] < 2**24 else xp.float64
    Xi = xp.astype(Xi, dtype, copy=False)
    return Xi, xp.sum(Xi * Xi, axis=0)


def hebbian_sync_step(s, Xi, shift, out):
    """One synchronous update for the Hebbian W = (Xi^T Xi - diag(d)) / N, into ``out``;
    ``shift`` = d - 1/2 (an array, or one float when d is uniform, as it is for spin
    patterns: d = P).

    N W s = Xi^T (Xi s) - d s: two GEMMs of 2 n N P flops instead of one of 2 n N^2,
    the cheaper form while 2 P < N. For spins the sums are integers, exact in
    floating point (see :func:`hebbian_factors`), so a tie is an exact 0; it keeps
    s_i, as :func:`sign_update` does: the new state is the sign of
    N W s + s / 2 = Xi^T (Xi s) - (d - 1/2) s, which is never 0.
    """
    ops = _ops(array_namespace(s))
    g = ops.matmul_into(s @ Xi.T, Xi, out[: s.shape[0]])
    g -= s * shift
    return ops.sign_inplace(g)


def hebbian_energy(s, Xi, d):
    """E(s) = -1/2 s^T W s = -(||Xi s||^2 - sum(d)) / (2 N) for the Hebbian W.

    The overlaps Xi s are exact integers in the factors' dtype; their squares are
    summed in float64, so equal energies compare equal.
    """
    xp = array_namespace(s)
    m = xp.astype(s @ Xi.T, xp.float64)
    return -0.5 * (xp.sum(m * m, axis=1) - float(xp.sum(d))) / s.shape[1]


def pairwise_tolerance(W):
    """Tie tolerance of each unit's gap, shape (N,)."""
    xp = array_namespace(W)
    return tie_tolerance(2.0 * xp.sum(xp.abs(W), axis=0), W.shape[0])


def pairwise_energy_tolerance(tol) -> float:
    """Tie tolerance of -1/2 s^T W s from the gaps' (:func:`pairwise_tolerance`).

    That is tie_tolerance(sum|W| / 2, N^2); tie_tolerance is linear in its scale, and
    the gaps' scales 2 sum_j |W_ij| add up to 2 sum|W|: O(N), not a pass over W.
    """
    return 0.25 * math.sqrt(tol.shape[0]) * float(array_namespace(tol).sum(tol))


def dense_interaction(a, degree: int, n_units: int):
    """F(a) = N (a / N)^n."""
    return n_units * (a / n_units) ** degree


def dense_energy(s, Xi, degree: int):
    """E(s) = -sum_mu F(xi_mu . s), shape (n,)."""
    xp = array_namespace(s)
    return -xp.sum(dense_interaction(s @ Xi.T, degree, s.shape[1]), axis=1)


def dense_gap(s, Xi, degree: int):
    """gap_i = sum_mu xi_mu,i [F(a + 1) - F(a - 1)] at a = m_mu - xi_mu,i s_i.

    With m = Xi s and a in {m - 1, m + 1} this is, for all units at once,
    gap = A Xi + s sum_mu B_mu with A = (F(m + 2) - F(m - 2)) / 2 and
    B = (2 F(m) - F(m - 2) - F(m + 2)) / 2: two GEMMs.

    Returns
    -------
    gap : array of shape (n, N)
    tol : array of shape (n, 1)
        Tie tolerance of each row.
    """
    xp = array_namespace(s)
    n, deg = s.shape[1], degree
    m = s @ Xi.T
    f_lo, f_mid = dense_interaction(m - 2, deg, n), dense_interaction(m, deg, n)
    f_hi = dense_interaction(m + 2, deg, n)
    A = 0.5 * (f_hi - f_lo)
    B = f_mid - 0.5 * (f_lo + f_hi)
    gap = A @ Xi
    gap += s * xp.sum(B, axis=1, keepdims=True)
    scale = xp.sum(xp.abs(A), axis=1, keepdims=True)
    scale += xp.sum(xp.abs(B), axis=1, keepdims=True)
    return gap, tie_tolerance(scale, Xi.shape[0])


def modern_softmax(x, Xi, beta: float):
    """p = softmax(beta Xi x), shape (n, P)."""
    a = x @ Xi.T
    a *= beta
    return _ops(array_namespace(x)).softmax(a)


def modern_energy(x, Xi, beta: float):
    """E(x) = -lse(beta, Xi x) + x.x / 2 + log(P) / beta + M^2 / 2, shape (n,)."""
    xp = array_namespace(x)
    lse = _ops(xp).logsumexp(beta * (x @ Xi.T), axis=1) / beta
    norm2 = float(xp.max(xp.sum(Xi * Xi, axis=1)))
    const = math.log(Xi.shape[0]) / beta + 0.5 * norm2
    return -lse + 0.5 * xp.sum(x * x, axis=1) + const


# -- recall ------------------------------------------------------------------------------


def sync_loop(s, update: Callable, energy: Callable, max_iter: int, energy_tol=0.0):
    """Synchronous updates s <- update(s) of every row until it stops changing.

    ``update(s)`` returns the new states in an array that does not share memory
    with ``s``. A row whose update flips the same units as the previous one is
    back at the state of two updates earlier: a 2-cycle (the only cycles symmetric
    weights allow); it stops there at the lower-energy state of the two, the current
    one when the energies differ by at most ``energy_tol`` (rounding). Finished rows
    leave the batch. Works on ``s`` in place.

    Returns
    -------
    s : array of shape (n, N)
    n_iter : array of shape (n,)
        Updates computed per row.
    status : array of shape (n,)
        CONVERGED, CYCLE or MAX_ITER per row.
    """
    xp, dev = array_namespace(s), device(s)
    n_iter, status = _counters(s.shape[0], xp, dev)
    active, cur, last = xp.arange(s.shape[0], device=dev), s, None
    for _ in range(max_iter):
        new = update(cur)
        n_iter[active] += 1
        flip = new != cur
        moving = xp.any(flip, axis=1)
        if last is not None:
            cycle = moving & xp.all(flip == last, axis=1)
        else:
            cycle = xp.zeros_like(moving)
        if bool(xp.any(cycle)):
            lower = energy(new[cycle]) < energy(cur[cycle]) - energy_tol
            new[cycle] = xp.where(lower[:, None], new[cycle], cur[cycle])
        stop = ~moving | cycle
        status[active[~moving]] = CONVERGED
        status[active[cycle]] = CYCLE
        if bool(xp.any(stop)):
            s[active[stop]] = new[stop]
            keep = ~stop
            active, new, flip = active[keep], new[keep], flip[keep]
        cur, last = new, flip
        if not active.shape[0]:
            break
    s[active] = cur
    return s, n_iter, status


def async_loop(s, sweep: Callable, max_iter: int, order_rng):
    """Asynchronous sweeps until a sweep changes nothing, per row.

    Each sweep visits the units in a fresh random order from ``order_rng`` (a NumPy
    generator, whatever the backend), the same order for every row, so a row's
    recall does not depend on the other rows. ``sweep(s, order)`` updates ``s`` in
    place and returns which rows changed.

    Returns
    -------
    s, n_iter, status : as :func:`sync_loop`.
    """
    xp, dev = array_namespace(s), device(s)
    n, n_units = s.shape
    n_iter, status = _counters(n, xp, dev)
    active = xp.arange(n, device=dev)
    for _ in range(max_iter):
        order = order_rng.permutation(n_units).tolist()
        sub = s[active]
        changed = sweep(sub, order)
        s[active] = sub
        n_iter[active] += 1
        status[active[~changed]] = CONVERGED
        active = active[changed]
        if not active.shape[0]:
            break
    return s, n_iter, status


def pairwise_sweep(s, W, order: Sequence[int], tol, temperature=0.0, rng=None):
    """One sweep over the units in ``order``, in place on s; returns the changed rows.

    At temperature 0 each unit takes sign(gap) (ties keep it); above 0 it is drawn by
    the heat-bath rule P(s_i = +1) = sigmoid(gap_i / T). Units are visited in blocks
    of 64: the gaps of a block come from one GEMM and every change corrects the gaps
    of the block's later units (W is symmetric), so the sweep is exactly sequential.
    """
    xp, dev = array_namespace(s), device(s)
    S = _transposed(s, xp)
    changed = xp.zeros(s.shape[0], dtype=xp.bool, device=dev)
    U = _ops(xp).uniform(S.shape, S, rng) if temperature > 0 else None
    for start in range(0, len(order), 64):
        units = order[start : start + 64]
        block = xp.asarray(units, device=dev)
        Wb = xp.take(W, block, axis=0)
        G = Wb @ S
        G *= 2.0
        Wbb = 2.0 * xp.take(Wb, block, axis=1)
        for j, u in enumerate(units):
            if U is None:
                new = sign_update(G[j], S[u], tol[u])
            else:
                new = heat_bath(G[j], temperature, U[u])
            delta = new - S[u]
            moved = delta != 0
            if bool(xp.any(moved)):
                G[j + 1 :] += Wbb[j + 1 :, j, None] * delta
                S[u] = new
                changed |= moved
    s[...] = S.T
    return changed


def dense_sweep(s, Xi, degree: int, order: Sequence[int], temperature=0.0, rng=None):
    """One sweep of the dense rule over the units in ``order``, in place on s.

    Keeps the overlaps m = Xi s up to date: the gap of unit u is
    sum_mu xi_mu,u [F(a + 1) - F(a - 1)] at a = m - xi_u s_u. Returns the changed rows.
    """
    xp, dev = array_namespace(s), device(s)
    n, n_units = s.shape
    S, XiT = _transposed(s, xp), _transposed(Xi, xp)
    m = s @ Xi.T
    changed = xp.zeros(n, dtype=xp.bool, device=dev)
    U = _ops(xp).uniform(S.shape, S, rng) if temperature > 0 else None
    for u in order:
        xi = XiT[u]
        a = m - S[u, :, None] * xi
        G = dense_interaction(a + 1, degree, n_units)
        G -= dense_interaction(a - 1, degree, n_units)
        g = G @ xi
        if U is None:
            tol = tie_tolerance(xp.sum(xp.abs(G), axis=1), xi.shape[0])
            new = sign_update(g, S[u], tol)
        else:
            new = heat_bath(g, temperature, U[u])
        delta = new - S[u]
        moved = delta != 0
        if bool(xp.any(moved)):
            m += delta[:, None] * xi
            S[u] = new
            changed |= moved
    s[...] = S.T
    return changed


def sync_block_rows(n_units: int, like) -> int:
    """Rows per block of factored synchronous recall of the probes ``like``: on the
    CPU 2**20 states (4 MB in float32), so that a block's states, fields and flip
    masks stay in the cache from one update to the next (4000 probes at N = 1024
    took 60 ms in blocks of 1024 rows and 89 ms in one block); on a GPU (torch)
    every row, in one launch."""
    if str(device(like)) != "cpu":
        return like.shape[0]
    return max(64, (1 << 20) // n_units)


def pairwise_recall(s, W, tol, *, update: str, max_iter: int, order_rng, factors=None):
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
        xp, dev = array_namespace(s), device(s)
        Xi, d = factors
        rows = max(1, min(s.shape[0], sync_block_rows(s.shape[1], s)))
        shift = float(d[0]) - 0.5 if bool(xp.all(d == d[0])) else d - 0.5
        shape = (rows, s.shape[1])
        buffers = [xp.empty(shape, dtype=Xi.dtype, device=dev) for _ in range(2)]

        def step(u):  # u is the last step's output (or a copy): use the other buffer
            buffers.reverse()
            return hebbian_sync_step(u, Xi, shift, buffers[0])

        states = xp.empty(s.shape, dtype=W.dtype, device=dev)
        n_iter, status = _counters(s.shape[0], xp, dev)
        for start in range(0, s.shape[0], rows):
            block = slice(start, start + rows)
            states[block], n_iter[block], status[block] = sync_loop(
                xp.astype(s[block], Xi.dtype, copy=False),
                step,
                lambda u: hebbian_energy(u, Xi, d),
                max_iter,
            )
        return states, n_iter, status
    return async_loop(
        s, lambda t, order: pairwise_sweep(t, W, order, tol), max_iter, order_rng
    )


def dense_recall(s, Xi, degree: int, *, update: str, max_iter: int, order_rng):
    """Recall under the dense energy; returns (s, n_iter, status)."""
    if update == "sync":

        def step(t):
            gap, tol = dense_gap(t, Xi, degree)
            return sign_update(gap, t, tol)

        return sync_loop(s, step, lambda t: dense_energy(t, Xi, degree), max_iter)
    return async_loop(
        s, lambda t, order: dense_sweep(t, Xi, degree, order), max_iter, order_rng
    )


def spin_dtype(n_units: int, like):
    """The backend's dtype of spin states whose overlaps with spin memories are exact
    and fastest (float32), or None; ``like`` is an array on the target device."""
    return _ops(array_namespace(like)).spin_dtype(n_units, like)


def overlap_dtype(n_units: int, like):
    """The backend's dtype of binary probes for modern recall's first overlaps (int8
    on torch's x86 CPU, else :func:`spin_dtype`)."""
    return _ops(array_namespace(like)).overlap_dtype(n_units, like)


def modern_recall(s, Xi, beta: float, *, max_iter: int, tol: float, tie=None, out=None):
    """Iterate x <- Xi^T softmax(beta Xi x) until no entry moves by more than tol.

    The update is the concave-convex procedure on E(x), so E never increases
    (Ramsauer et al. 2020, Theorem 1). The last update is not checked: a row that
    needed all ``max_iter`` updates has status MAX_ITER. Rows leave the batch as
    they finish.

    ``tie`` not None: binary recall, :func:`modern_spins` of the result, without the
    products whose outcome is already known. Where the largest weight p_m of
    p = softmax(beta Xi x) exceeds (1 + tie) / 2, the state p Xi is within
    2 (1 - p_m) of Xi[m] in every entry, so its signs are those of Xi[m]. Such a row
    needs p Xi only to go on: on the last update, or when max|Xi[m] - x| + 2 (1 - p_m)
    plus a rounding margin is within ``tol`` (it certainly converges), its state is
    Xi[m] and the product is skipped. ``s`` then holds the probes in {-1, +1} in the
    dtype of ``Xi`` or in that of :func:`overlap_dtype`: the first overlaps Xi s
    then come from the backend's ``spin_overlaps``, exact (integer sums of +-1
    terms).

    Returns
    -------
    x : array of shape (n, N)
        The states, in the dtype of ``Xi``; in ``out`` when given (an array of their
        shape and dtype: the caller's output, which saves a copy).
    p : array of shape (n, P)
        The softmax weights of the last update: x = p Xi (before the signs).
    n_iter, status : as :func:`sync_loop`.
    """
    xp, dev = array_namespace(Xi), device(s)
    n, dtype, ops = s.shape[0], Xi.dtype, _ops(xp)
    n_iter, status = _counters(n, xp, dev)
    # rounding of p Xi and of 1 - p_m, far above the worst case
    slack = 4.0 * (Xi.shape[0] + 1) * float(xp.finfo(dtype).eps)
    known_above = math.inf if tie is None else 0.5 * (1.0 + tie) + slack
    x, active = s, xp.arange(n, device=dev)  # x: the states of the rows still running
    for it in range(max_iter):
        a = ops.spin_overlaps(x, Xi) if x.dtype != dtype else x @ Xi.T
        a = xp.astype(a, dtype, copy=False)
        a *= beta
        p = ops.softmax(a)
        p_top, top = xp.max(p, axis=1), xp.argmax(p, axis=1)
        n_iter[active] += 1
        if it == 0:  # every row: the weights are this array
            P = p
        else:
            P[active] = p
        last = it == max_iter - 1
        known = p_top > known_above
        if not last and bool(xp.any(known)):
            k = xp.nonzero(known)[0]
            moved = xp.max(xp.abs(xp.take(Xi, top[k], axis=0) - x[k]), axis=1)
            known[k] = moved + 2.0 * (1.0 - p_top[k]) + slack <= tol
        k, u = xp.nonzero(known)[0], xp.nonzero(~known)[0]
        if k.shape[0] == n:  # this update settles every row (none was settled)
            out = (
                xp.take(Xi, top, axis=0) if out is None else ops.take_into(Xi, top, out)
            )
        else:
            if out is None:
                out = xp.empty((n, Xi.shape[1]), dtype=dtype, device=dev)
            out[active[k]] = xp.take(Xi, top[k], axis=0)
        if not last:
            status[active[k]] = CONVERGED
        if not u.shape[0]:
            break
        new = p[u] @ Xi
        if last:
            done = xp.ones(u.shape[0], dtype=xp.bool, device=dev)
        else:
            done = xp.max(xp.abs(new - x[u]), axis=1) <= tol
            status[active[u[done]]] = CONVERGED
        d = u[done]
        if d.shape[0] and tie is None:
            out[active[d]] = new[done]
        elif d.shape[0]:
            s0 = xp.astype(s[active[d]], dtype, copy=False)
            out[active[d]] = modern_spins(new[done], p[d], s0, tie)
        active, x = active[u[~done]], new[~done]
        if not active.shape[0]:
            break
    return out, P, n_iter, status


def modern_spins(x, p, s, tol: float):
    """Binary states from recalled x = p Xi: sign(x), keeping s where |x_i| <= tol.

    |x_i| <= tol is a tie between memories (their weights cancel at unit i); it needs
    max p <= (1 + tol) / 2, since |x_i| >= 2 max p - 1 for binary memories, so only
    those rows are checked. Overwrites x.
    """
    xp = array_namespace(x)
    rows = xp.nonzero(xp.max(p, axis=1) <= 0.5 * (1.0 + tol))[0]
    tied = sign_update(x[rows], s[rows], tol) if rows.shape[0] else None
    out = to_spins(x, 0.0, out=x)
    if rows.shape[0]:
        out[rows] = tied
    return out


# -- sampling ----------------------------------------------------------------------------


def pairwise_glauber(s, W, tol, temperature: float, n_steps: int, rng):
    """``n_steps`` heat-bath sweeps, each in a random unit order, in place on s."""
    permutation = _ops(array_namespace(s)).permutation
    for _ in range(n_steps):
        pairwise_sweep(s, W, permutation(s.shape[1], rng), tol, temperature, rng)
    return s


def dense_glauber(s, Xi, degree: int, temperature: float, n_steps: int, rng):
    """``n_steps`` heat-bath sweeps of the dense rule, in place on s."""
    permutation = _ops(array_namespace(s)).permutation
    for _ in range(n_steps):
        dense_sweep(s, Xi, degree, permutation(s.shape[1], rng), temperature, rng)
    return s


def modern_base_sample(Xi, beta: float, n_samples: int, rng):
    """Exact draws from p(x) = exp(-beta E(x)) / Z: a Gaussian mixture.

    -beta E(x) = log sum_mu exp(-beta |x - xi_mu|^2 / 2 + beta |xi_mu|^2 / 2) + const,
    so x = xi_mu + N(0, I / beta) with mu drawn with weights exp(beta |xi_mu|^2 / 2).
    """
    xp = array_namespace(Xi)
    logw = 0.5 * beta * xp.sum(Xi * Xi, axis=1)
    mu = _ops(xp).choice(xp.exp(logw - xp.max(logw)), n_samples, rng)
    noise = _ops(xp).normal((n_samples, Xi.shape[1]), Xi, rng)
    return xp.take(Xi, mu, axis=0) + noise / math.sqrt(beta)


def modern_gibbs(x, Xi, beta: float, n_steps: int, rng):
    """Block Gibbs on (x, mu) for p(x, mu) ~ exp(beta xi_mu.x - beta |x|^2 / 2).

    mu | x ~ softmax(beta Xi x) (the attention of the update rule) and
    x | mu ~ N(xi_mu, I / beta); the x-marginal is exp(-beta E(x)) / Z.
    """
    xp = array_namespace(x)
    for _ in range(n_steps):
        mu = _ops(xp).categorical(modern_softmax(x, Xi, beta), rng)
        noise = _ops(xp).normal(x.shape, x, rng)
        x = xp.take(Xi, mu, axis=0) + noise / math.sqrt(beta)
    return x


# -- read-out ----------------------------------------------------------------------------


def nearest_memory(s, Xi):
    """Index of the closest memory to each row and the squared distance to it."""
    xp = array_namespace(s)
    d2 = xp.sum(s * s, axis=1, keepdims=True) - 2.0 * (s @ Xi.T)
    d2 += xp.sum(Xi * Xi, axis=1)
    idx = xp.argmin(d2, axis=1)
    d2 = xp.take_along_axis(d2, idx[:, None], axis=1)[:, 0]
    return idx, xp.where(d2 < 0.0, 0.0, d2)
