"""Restricted Boltzmann machine numerics, written once over an array namespace.

Notation: ``v`` visible states (n, V), ``h`` hidden states (n, H), ``W`` weights
(H, V) (``components_``), ``b`` visible biases (V,), ``c`` hidden biases (H,).

    E(v, h) = E_vis(v; b) - c.h - h^T W v
    Bernoulli visible units: E_vis(v; b) = -b.v,             v in {0, 1}^V
    Gaussian visible units:  E_vis(v; b) = ||v - b||^2 / 2,  v in R^V, unit variance

The free energy sums the hidden units out:
    F(v) = E_vis(v; b) - sum_j softplus(c_j + (W v)_j).

Every function takes arrays of one namespace (NumPy arrays or torch tensors) and
returns arrays of it. ``xp`` is resolved from the arrays when not given; the
entry points resolve it once and pass it down, which matters at small batches.
Random draws and special functions come from the backend's primitives (``_ops``).
"""

from __future__ import annotations

import math

from array_api_compat import device

from skebm._backends import primitives_for as _ops
from skebm._numerics import array_namespace

# -- visible unit types (registry, CONTRIBUTING.md, convention 7) ------------------------


class BernoulliUnits:
    """Binary visible units: p(v_i = 1 | h) = sigmoid(b_i + (h W)_i)."""

    @staticmethod
    def mean(field, xp):
        return _ops(xp).sigmoid(field)

    @staticmethod
    def sample(mean, rng, xp):
        return _ops(xp).bernoulli(mean, rng)

    @staticmethod
    def energy(v, b, xp):
        """E_vis(v; b) = -b.v"""
        return -(v @ b)

    @staticmethod
    def log_normalizer(field, b, xp):
        """log sum_v exp(-E_vis(v; b) + v.(h W)) for field = b + h W: sum softplus(field)."""
        return xp.sum(_ops(xp).softplus(field), axis=1)


class GaussianUnits:
    """Real visible units of unit variance: v | h ~ N(b + h W, I)."""

    @staticmethod
    def mean(field, xp):
        return field

    @staticmethod
    def sample(mean, rng, xp):
        return mean + _ops(xp).standard_normal(mean, rng)

    @staticmethod
    def energy(v, b, xp):
        """E_vis(v; b) = ||v - b||^2 / 2"""
        return 0.5 * xp.sum(xp.square(v - b), axis=1)

    @staticmethod
    def log_normalizer(field, b, xp):
        """log int exp(-||v - b||^2 / 2 + v.(h W)) dv = V/2 log 2pi + (|f|^2 - |b|^2) / 2."""
        half_log_2pi = 0.5 * math.log(2.0 * math.pi) * field.shape[1]
        return half_log_2pi + 0.5 * (xp.sum(xp.square(field), axis=1) - b @ b)


VISIBLE_UNITS = {"bernoulli": BernoulliUnits, "gaussian": GaussianUnits}


# -- conditionals ----------------------------------------------------------------------


def mean_hiddens(v, W, c, xp=None):
    """P(h = 1 | v) = sigmoid(c + v W^T)."""
    x = v @ W.T
    x += c
    return _ops(xp or array_namespace(v)).sigmoid(x)


def mean_visibles(h, W, b, visible: str, xp=None):
    """E[v | h]."""
    return VISIBLE_UNITS[visible].mean(h @ W + b, xp or array_namespace(h))


def sample_visibles(h, W, b, visible: str, rng, xp=None):
    """v ~ p(v | h)."""
    xp = xp or array_namespace(h)
    units = VISIBLE_UNITS[visible]
    return units.sample(units.mean(h @ W + b, xp), rng, xp)


def free_energy(v, W, b, c, visible: str, xp=None):
    """F(v) = E_vis(v; b) - sum_j softplus(c_j + (W v)_j), shape (n,)."""
    xp = xp or array_namespace(v)
    hidden_term = xp.sum(_ops(xp).softplus(v @ W.T + c), axis=1)
    return VISIBLE_UNITS[visible].energy(v, b, xp) - hidden_term


def gibbs_step(v, W, b, c, visible: str, rng, xp=None):
    """One Gibbs sweep v -> h ~ p(h|v) -> v' ~ p(v|h)."""
    return gibbs_chain(v, W, b, c, visible, 1, rng, xp)[0]


def gibbs_chain(v, W, b, c, visible: str, n_steps: int, rng, xp=None):
    """``n_steps`` Gibbs sweeps from visible states ``v``.

    Returns the last visible sample and E[v | h] for the last hidden sample (a
    noise-free picture of where each chain is).
    """
    xp = xp or array_namespace(v)
    units = VISIBLE_UNITS[visible]
    v_mean = v
    for _ in range(n_steps):
        h = _ops(xp).bernoulli(mean_hiddens(v, W, c, xp), rng)
        v_mean = mean_visibles(h, W, b, visible, xp)
        v = units.sample(v_mean, rng, xp)
    return v, v_mean


def base_sample(b, n_samples: int, visible: str, rng, xp=None):
    """Exact draws from the model without weights (beta = 0 of AIS): v ~ p(v; b)."""
    xp = xp or array_namespace(b)
    units = VISIBLE_UNITS[visible]
    field = xp.zeros((n_samples, b.shape[0]), dtype=b.dtype, device=device(b)) + b
    return units.sample(units.mean(field, xp), rng, xp)


# -- partition function ----------------------------------------------------------------


def log_partition_exact(W, b, c, visible: str, chunk_bytes: int = 1 << 24) -> float:
    """log Z by summing over the smaller binary layer (hidden only for Gaussian units).

    Summing over h: log Z = logsumexp_h [c.h + log_normalizer(b + h W)].
    Summing over binary v: log Z = logsumexp_v [-F(v)].
    The states are enumerated in chunks of about ``chunk_bytes`` of temporaries.
    """
    xp = array_namespace(W)
    n_hidden, n_visible = W.shape
    over_visible = visible == "bernoulli" and n_visible < n_hidden
    n_units = n_visible if over_visible else n_hidden
    n_other = n_hidden + n_visible - n_units
    # states per chunk: its temporaries (the states, their int64 codes, the field
    # over the other layer and its softplus) stay within about chunk_bytes whatever
    # the width of either layer
    itemsize = xp.finfo(W.dtype).bits // 8
    row_bytes = 8 * 3 * n_units + itemsize * (n_units + 3 * n_other)
    step = max(1, min(chunk_bytes // row_bytes, 1 << n_units))
    bits = xp.arange(n_units, dtype=xp.int64, device=device(W))
    parts = []
    for start in range(0, 1 << n_units, step):
        stop = min(start + step, 1 << n_units)
        # the binary states with codes start..stop-1 (bit j = unit j)
        codes = xp.arange(start, stop, dtype=xp.int64, device=device(W))[:, None]
        s = xp.astype((codes >> bits) & 1, W.dtype)
        if over_visible:
            terms = -free_energy(s, W, b, c, visible, xp)
        else:
            field = s @ W + b
            terms = s @ c + VISIBLE_UNITS[visible].log_normalizer(field, b, xp)
        parts.append(_ops(xp).logsumexp(xp.astype(terms, xp.float64)))
    return _ops(xp).logsumexp(xp.asarray(parts, dtype=xp.float64, device=device(W)))


def ais_log_partition(W, b, c, visible: str, betas, n_chains: int, rng):
    """log Z by annealed importance sampling along p_beta(v, h) with weights beta W.

    The base (beta = 0) is the model without interactions, whose log Z_0 is exact and
    which is sampled exactly. Each temperature adds the log-ratio of the unnormalised
    marginals, sum_j softplus(c_j + beta (W v)_j), then moves every chain by one Gibbs
    sweep at that temperature (Neal 2001; Salakhutdinov & Murray 2008).

    Returns
    -------
    log_z : float
    log_weights : array of shape (n_chains,), float64, in W's namespace
    """
    xp = array_namespace(W)
    ops, units = _ops(xp), VISIBLE_UNITS[visible]
    v = base_sample(b, n_chains, visible, rng, xp)
    log_z0 = float(units.log_normalizer(b[None, :], b, xp)[0])
    log_z0 += float(xp.sum(ops.softplus(c)))
    log_w = xp.zeros(n_chains, dtype=xp.float64, device=device(W))
    for beta_prev, beta in zip(betas[:-1], betas[1:], strict=True):
        beta_prev, beta = float(beta_prev), float(beta)
        x = v @ W.T
        gain = xp.sum(ops.softplus(beta * x + c), axis=1)
        gain -= xp.sum(ops.softplus(beta_prev * x + c), axis=1)
        log_w += xp.astype(gain, xp.float64)
        h = ops.bernoulli(ops.sigmoid(beta * x + c), rng)
        v = units.sample(units.mean(beta * (h @ W) + b, xp), rng, xp)
    log_z = log_z0 + ops.logsumexp(log_w) - math.log(n_chains)
    return log_z, log_w


# -- learning --------------------------------------------------------------------------


def gradients(v, h, n_pos: int, mu=None, lam=None, xp=None):
    """Log-likelihood gradient estimate from data rows stacked on model rows.

    ``v`` and ``h`` hold the batch (its first ``n_pos`` rows, with h = P(h = 1 | v))
    followed by the negative-phase rows. Each phase is averaged over its own rows, so
    the model term is normalised by the number of chains. With offsets ``mu``,
    ``lam`` this is the centred gradient of Melchior, Fischer & Wiskott (2016):

        dW = <(h - lam)(v - mu)^T>_data - <(h - lam)(v - mu)^T>_model
        db = <v>_data - <v>_model,  dc = <h>_data - <h>_model

    and mu = lam = None gives plain CD / PCD. One GEMM serves both phases.
    """
    xp = xp or array_namespace(v)
    n_neg = v.shape[0] - n_pos
    w = xp.empty(v.shape[0], dtype=v.dtype, device=device(v))
    w[:n_pos], w[n_pos:] = 1.0 / n_pos, -1.0 / n_neg
    vw = ((v - mu) if mu is not None else v) * w[:, None]
    # (vw^T h)^T rather than h^T vw: the same sums, laid out as the training state's
    # column-major W (see _StateTrainer), so the update is a contiguous add
    dW = (vw.T @ ((h - lam) if lam is not None else h)).T
    # sum(w) = 0, so the offsets drop out of the bias gradients
    return dW, w @ v, w @ h


def apply_update(
    params: dict, grads, lr: float, momentum: float, weight_decay: float, centered: bool
) -> None:
    """Momentum step on the (centred) parameters, written back to the plain ones.

    With offsets mu, lam the plain biases are b = b_c - W^T lam and c = c_c - W mu, so
    a step (dW, db_c, dc_c) moves them by db_c - dW^T lam and dc_c - dW mu.
    """
    W = params["W"]
    for name, g in zip(("vW", "vb", "vc"), grads, strict=True):
        if name == "vW" and weight_decay:
            g -= weight_decay * W
        g *= lr
        if momentum:
            g += momentum * params[name]
        params[name] = g
    W += params["vW"]
    params["b"] += params["vb"]
    params["c"] += params["vc"]
    if centered:
        params["b"] -= params["lam"] @ params["vW"]
        params["c"] -= params["vW"] @ params["mu"]


def update_offsets(params: dict, v_pos, h_pos, rate: float, xp=None) -> None:
    """Sliding averages of the data means of v and h: the centring offsets."""
    xp = xp or array_namespace(v_pos)
    params["mu"] += rate * (xp.mean(v_pos, axis=0) - params["mu"])
    params["lam"] += rate * (xp.mean(h_pos, axis=0) - params["lam"])


def negative_phase(h, W, b, c, visible: str, k: int, rng, xp=None):
    """k Gibbs half-sweeps ending on the visible layer: h -> v (-> h -> v) ...

    Returns the visible sample after k sweeps from hidden states ``h``.
    """
    xp = xp or array_namespace(h)
    v = sample_visibles(h, W, b, visible, rng, xp)
    for _ in range(k - 1):
        h = _ops(xp).bernoulli(mean_hiddens(v, W, c, xp), rng)
        v = sample_visibles(h, W, b, visible, rng, xp)
    return v


def train_step(
    params: dict,
    v_pos,
    *,
    visible,
    k,
    persistent,
    lr,
    momentum,
    weight_decay,
    offset_rate,
    rng,
) -> None:
    """One CD-k / PCD-k update on the batch ``v_pos``, in place on ``params``.

    ``params`` holds W, b, c, the velocities vW, vb, vc, the offsets mu, lam and the
    persistent hidden chains ``chains``. PCD: the chains advance k sweeps and the
    hidden probabilities of data and chains come from one stacked GEMM. CD: the
    chains start from a hidden sample of the batch.
    """
    xp = array_namespace(v_pos)
    bernoulli = _ops(xp).bernoulli
    W, b, c = params["W"], params["b"], params["c"]
    n_pos = v_pos.shape[0]
    if persistent:
        v_neg = negative_phase(params["chains"], W, b, c, visible, k, rng, xp)
        v = xp.concat([v_pos, v_neg])
        h = mean_hiddens(v, W, c, xp)
        params["chains"] = bernoulli(h[n_pos:, :], rng)
    else:
        h_pos = mean_hiddens(v_pos, W, c, xp)
        v_neg = negative_phase(bernoulli(h_pos, rng), W, b, c, visible, k, rng, xp)
        v = xp.concat([v_pos, v_neg])
        h = xp.concat([h_pos, mean_hiddens(v_neg, W, c, xp)])
    centered = offset_rate > 0
    if centered:
        update_offsets(params, v_pos, h[:n_pos, :], offset_rate, xp)
        grads = gradients(v, h, n_pos, params["mu"], params["lam"], xp)
    else:
        grads = gradients(v, h, n_pos, xp=xp)
    apply_update(params, grads, lr, momentum, weight_decay, centered)


def pseudo_likelihood(v, cols, W, b, c, visible: str, xp=None):
    """BernoulliRBM's pseudo-log-likelihood: unit ``cols[i]`` of row i flipped,
    n_features * log sigmoid(F(v_flipped) - F(v))."""
    xp = xp or array_namespace(v)
    cols = xp.asarray(cols, device=device(v))
    flip = xp.arange(v.shape[1], device=device(v))[None, :] == cols[:, None]
    v_flip = xp.where(flip, 1.0 - v, v)
    gap = free_energy(v_flip, W, b, c, visible, xp)
    gap -= free_energy(v, W, b, c, visible, xp)
    return -v.shape[1] * _ops(xp).softplus(-gap)
