"""Restricted Boltzmann machine numerics, NumPy backend.

Notation (shared with ``skebm/_backends/torch/rbm.py``, which mirrors this file):
``v`` visible states (n, V), ``h`` hidden states (n, H), ``W`` weights (H, V)
(``components_``), ``b`` visible biases (V,), ``c`` hidden biases (H,).

    E(v, h) = E_vis(v; b) - c.h - h^T W v
    Bernoulli visible units: E_vis(v; b) = -b.v,             v in {0, 1}^V
    Gaussian visible units:  E_vis(v; b) = ||v - b||^2 / 2,  v in R^V, unit variance

The free energy sums the hidden units out:
    F(v) = E_vis(v; b) - sum_j softplus(c_j + (W v)_j).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

# -- elementwise helpers ---------------------------------------------------------------


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), computed in place on ``x`` (a fresh array from the caller).

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


def sample_bernoulli(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Independent Bernoulli draws with success probabilities ``p``.

    float32 uniforms (24 random bits) are ample for a threshold and faster to draw.
    """
    out = np.empty_like(p)
    return np.less(rng.random(p.shape, dtype=np.float32), p, out=out)


# -- visible unit types (registry, CONTRIBUTING.md, convention 7) ------------------------


class BernoulliUnits:
    """Binary visible units: p(v_i = 1 | h) = sigmoid(b_i + (h W)_i)."""

    @staticmethod
    def mean(field):
        return sigmoid(field)

    @staticmethod
    def sample(mean, rng):
        return sample_bernoulli(mean, rng)

    @staticmethod
    def energy(v, b):
        """E_vis(v; b) = -b.v"""
        return -(v @ b)

    @staticmethod
    def log_normalizer(field, b):
        """log sum_v exp(-E_vis(v; b) + v.(h W)) for field = b + h W: sum softplus(field)."""
        return softplus(field).sum(axis=1)


class GaussianUnits:
    """Real visible units of unit variance: v | h ~ N(b + h W, I)."""

    @staticmethod
    def mean(field):
        return field

    @staticmethod
    def sample(mean, rng):
        return mean + rng.standard_normal(mean.shape, dtype=mean.dtype)

    @staticmethod
    def energy(v, b):
        """E_vis(v; b) = ||v - b||^2 / 2"""
        return 0.5 * np.square(v - b).sum(axis=1)

    @staticmethod
    def log_normalizer(field, b):
        """log int exp(-||v - b||^2 / 2 + v.(h W)) dv = V/2 log 2pi + (|f|^2 - |b|^2) / 2."""
        half_log_2pi = 0.5 * math.log(2.0 * math.pi) * field.shape[1]
        return half_log_2pi + 0.5 * (np.square(field).sum(axis=1) - b @ b)


VISIBLE_UNITS = {"bernoulli": BernoulliUnits, "gaussian": GaussianUnits}


# -- conditionals ----------------------------------------------------------------------


def mean_hiddens(v: np.ndarray, W: np.ndarray, c: np.ndarray) -> np.ndarray:
    """P(h = 1 | v) = sigmoid(c + v W^T)."""
    x = v @ W.T
    x += c
    return sigmoid(x)


def mean_visibles(
    h: np.ndarray, W: np.ndarray, b: np.ndarray, visible: str
) -> np.ndarray:
    """E[v | h]."""
    return VISIBLE_UNITS[visible].mean(h @ W + b)


def sample_visibles(h, W, b, visible: str, rng) -> np.ndarray:
    """v ~ p(v | h)."""
    units = VISIBLE_UNITS[visible]
    return units.sample(units.mean(h @ W + b), rng)


def free_energy(v, W, b, c, visible: str) -> np.ndarray:
    """F(v) = E_vis(v; b) - sum_j softplus(c_j + (W v)_j), shape (n,)."""
    return VISIBLE_UNITS[visible].energy(v, b) - softplus(v @ W.T + c).sum(axis=1)


def gibbs_step(v, W, b, c, visible: str, rng) -> np.ndarray:
    """One Gibbs sweep v -> h ~ p(h|v) -> v' ~ p(v|h)."""
    h = sample_bernoulli(mean_hiddens(v, W, c), rng)
    return sample_visibles(h, W, b, visible, rng)


def gibbs_chain(v, W, b, c, visible: str, n_steps: int, rng):
    """``n_steps`` Gibbs sweeps from visible states ``v``.

    Returns the last visible sample and E[v | h] for the last hidden sample (a
    noise-free picture of where each chain is).
    """
    v_mean = v
    for _ in range(n_steps):
        h = sample_bernoulli(mean_hiddens(v, W, c), rng)
        v_mean = mean_visibles(h, W, b, visible)
        v = VISIBLE_UNITS[visible].sample(v_mean, rng)
    return v, v_mean


def base_sample(b, n_samples: int, visible: str, rng):
    """Exact draws from the model without weights (beta = 0 of AIS): v ~ p(v; b)."""
    units = VISIBLE_UNITS[visible]
    field = np.repeat(b[None, :], n_samples, axis=0)
    return units.sample(units.mean(field), rng)


# -- partition function ----------------------------------------------------------------


def binary_states(n_units: int, start: int, stop: int, dtype) -> np.ndarray:
    """Rows start..stop-1 of the 2**n_units binary configurations (bit j = unit j)."""
    codes = np.arange(start, stop, dtype=np.int64)[:, None]
    return ((codes >> np.arange(n_units, dtype=np.int64)) & 1).astype(dtype)


def exact_chunk_rows(
    n_units: int, n_other: int, itemsize: int, chunk_bytes: int
) -> int:
    """States per chunk of an exact enumeration, so that its temporaries (the states,
    their int64 codes, the field over the other layer and its softplus) stay within
    about ``chunk_bytes`` whatever the width of either layer."""
    row_bytes = 8 * 3 * n_units + itemsize * (n_units + 3 * n_other)
    return max(1, min(chunk_bytes // row_bytes, 1 << n_units))


def log_partition_exact(W, b, c, visible: str, chunk_bytes: int = 1 << 24) -> float:
    """log Z by summing over the smaller binary layer (hidden only for Gaussian units).

    Summing over h: log Z = logsumexp_h [c.h + log_normalizer(b + h W)].
    Summing over binary v: log Z = logsumexp_v [-F(v)].
    The states are enumerated in chunks of about ``chunk_bytes`` of temporaries.
    """
    n_hidden, n_visible = W.shape
    over_visible = visible == "bernoulli" and n_visible < n_hidden
    n_units = n_visible if over_visible else n_hidden
    n_other = n_hidden + n_visible - n_units
    step = exact_chunk_rows(n_units, n_other, W.dtype.itemsize, chunk_bytes)
    parts = []
    for start in range(0, 1 << n_units, step):
        stop = min(start + step, 1 << n_units)
        s = binary_states(n_units, start, stop, W.dtype)
        if over_visible:
            terms = -free_energy(s, W, b, c, visible)
        else:
            terms = s @ c + VISIBLE_UNITS[visible].log_normalizer(s @ W + b, b)
        parts.append(logsumexp(terms.astype(np.float64)))
    return float(logsumexp(parts))


def ais_log_partition(W, b, c, visible: str, betas: np.ndarray, n_chains: int, rng):
    """log Z by annealed importance sampling along p_beta(v, h) with weights beta W.

    The base (beta = 0) is the model without interactions, whose log Z_0 is exact and
    which is sampled exactly. Each temperature adds the log-ratio of the unnormalised
    marginals, sum_j softplus(c_j + beta (W v)_j), then moves every chain by one Gibbs
    sweep at that temperature (Neal 2001; Salakhutdinov & Murray 2008).

    Returns
    -------
    log_z : float
    log_weights : ndarray of shape (n_chains,)
    """
    units = VISIBLE_UNITS[visible]
    v = base_sample(b, n_chains, visible, rng)
    log_z0 = units.log_normalizer(b[None, :].copy(), b)[0] + softplus(c).sum()
    log_w = np.zeros(n_chains, dtype=np.float64)
    for beta_prev, beta in zip(betas[:-1], betas[1:], strict=True):
        x = v @ W.T
        log_w += softplus(beta * x + c).sum(axis=1) - softplus(beta_prev * x + c).sum(
            axis=1
        )
        h = sample_bernoulli(sigmoid(beta * x + c), rng)
        v = units.sample(units.mean(beta * (h @ W) + b), rng)
    log_z = float(log_z0) + float(logsumexp(log_w)) - math.log(n_chains)
    return log_z, log_w


# -- learning --------------------------------------------------------------------------


def gradients(v, h, n_pos: int, mu=None, lam=None):
    """Log-likelihood gradient estimate from data rows stacked on model rows.

    ``v`` and ``h`` hold the batch (its first ``n_pos`` rows, with h = P(h = 1 | v))
    followed by the negative-phase rows. Each phase is averaged over its own rows, so
    the model term is normalised by the number of chains. With offsets ``mu``,
    ``lam`` this is the centred gradient of Melchior, Fischer & Wiskott (2016):

        dW = <(h - lam)(v - mu)^T>_data - <(h - lam)(v - mu)^T>_model
        db = <v>_data - <v>_model,  dc = <h>_data - <h>_model

    and mu = lam = None gives plain CD / PCD. One GEMM serves both phases.
    """
    n_neg = v.shape[0] - n_pos
    w = np.empty(v.shape[0], dtype=v.dtype)
    w[:n_pos], w[n_pos:] = 1.0 / n_pos, -1.0 / n_neg
    vw = ((v - mu) if mu is not None else v) * w[:, None]
    dW = ((h - lam) if lam is not None else h).T @ vw
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


def update_offsets(params: dict, v_pos, h_pos, rate: float) -> None:
    """Sliding averages of the data means of v and h: the centring offsets."""
    params["mu"] += rate * (v_pos.mean(axis=0) - params["mu"])
    params["lam"] += rate * (h_pos.mean(axis=0) - params["lam"])


def negative_phase(h, W, b, c, visible: str, k: int, rng):
    """k Gibbs half-sweeps ending on the visible layer: h -> v (-> h -> v) ...

    Returns the visible sample after k sweeps from hidden states ``h``.
    """
    v = sample_visibles(h, W, b, visible, rng)
    for _ in range(k - 1):
        h = sample_bernoulli(mean_hiddens(v, W, c), rng)
        v = sample_visibles(h, W, b, visible, rng)
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
    W, b, c = params["W"], params["b"], params["c"]
    n_pos = v_pos.shape[0]
    if persistent:
        v_neg = negative_phase(params["chains"], W, b, c, visible, k, rng)
        v = np.concatenate([v_pos, v_neg])
        h = mean_hiddens(v, W, c)
        params["chains"] = sample_bernoulli(h[n_pos:], rng)
    else:
        h_pos = mean_hiddens(v_pos, W, c)
        v_neg = negative_phase(sample_bernoulli(h_pos, rng), W, b, c, visible, k, rng)
        v = np.concatenate([v_pos, v_neg])
        h = np.concatenate([h_pos, mean_hiddens(v_neg, W, c)])
    centered = offset_rate > 0
    if centered:
        update_offsets(params, v_pos, h[:n_pos], offset_rate)
        grads = gradients(v, h, n_pos, params["mu"], params["lam"])
    else:
        grads = gradients(v, h, n_pos)
    apply_update(params, grads, lr, momentum, weight_decay, centered)


def pseudo_likelihood(v, cols, W, b, c, visible: str) -> np.ndarray:
    """BernoulliRBM's pseudo-log-likelihood: unit ``cols[i]`` of row i flipped,
    n_features * log sigmoid(F(v_flipped) - F(v))."""
    rows = np.arange(v.shape[0])
    v_flip = v.copy()
    v_flip[rows, cols] = 1.0 - v_flip[rows, cols]
    gap = free_energy(v_flip, W, b, c, visible) - free_energy(v, W, b, c, visible)
    return -v.shape[1] * softplus(-gap)
