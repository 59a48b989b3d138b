"""Restricted Boltzmann machine numerics, torch backend.

Mirrors ``skebm/_backends/numpy/rbm.py`` function for function; the equations and the
notation are documented there.
"""

from __future__ import annotations

import math

import torch

from skebm._backends.numpy.rbm import exact_chunk_rows  # integer arithmetic only

# -- elementwise helpers ---------------------------------------------------------------


def softplus(x: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(x)) without overflow (exact, no linear threshold)."""
    return torch.clamp_min(x, 0) + torch.log1p(torch.exp(-torch.abs(x)))


def sample_bernoulli(p: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    return (torch.rand(p.shape, generator=rng, dtype=p.dtype, device=p.device) < p).to(
        p.dtype
    )


# -- visible unit types ------------------------------------------------------------------


class BernoulliUnits:
    @staticmethod
    def mean(field):
        return torch.sigmoid(field)

    @staticmethod
    def sample(mean, rng):
        return sample_bernoulli(mean, rng)

    @staticmethod
    def energy(v, b):
        return -(v @ b)

    @staticmethod
    def log_normalizer(field, b):
        return softplus(field).sum(dim=1)


class GaussianUnits:
    @staticmethod
    def mean(field):
        return field

    @staticmethod
    def sample(mean, rng):
        noise = torch.randn(
            mean.shape, generator=rng, dtype=mean.dtype, device=mean.device
        )
        return mean + noise

    @staticmethod
    def energy(v, b):
        return 0.5 * torch.square(v - b).sum(dim=1)

    @staticmethod
    def log_normalizer(field, b):
        half_log_2pi = 0.5 * math.log(2.0 * math.pi) * field.shape[1]
        return half_log_2pi + 0.5 * (torch.square(field).sum(dim=1) - b @ b)


VISIBLE_UNITS = {"bernoulli": BernoulliUnits, "gaussian": GaussianUnits}


# -- conditionals ----------------------------------------------------------------------


def mean_hiddens(v, W, c):
    return torch.sigmoid(torch.addmm(c, v, W.T))


def mean_visibles(h, W, b, visible: str):
    return VISIBLE_UNITS[visible].mean(torch.addmm(b, h, W))


def sample_visibles(h, W, b, visible: str, rng):
    units = VISIBLE_UNITS[visible]
    return units.sample(units.mean(torch.addmm(b, h, W)), rng)


def free_energy(v, W, b, c, visible: str):
    return VISIBLE_UNITS[visible].energy(v, b) - softplus(torch.addmm(c, v, W.T)).sum(
        dim=1
    )


def gibbs_step(v, W, b, c, visible: str, rng):
    h = sample_bernoulli(mean_hiddens(v, W, c), rng)
    return sample_visibles(h, W, b, visible, rng)


def gibbs_chain(v, W, b, c, visible: str, n_steps: int, rng):
    v_mean = v
    for _ in range(n_steps):
        h = sample_bernoulli(mean_hiddens(v, W, c), rng)
        v_mean = mean_visibles(h, W, b, visible)
        v = VISIBLE_UNITS[visible].sample(v_mean, rng)
    return v, v_mean


def base_sample(b, n_samples: int, visible: str, rng):
    units = VISIBLE_UNITS[visible]
    return units.sample(units.mean(b.expand(n_samples, b.shape[0])), rng)


# -- partition function ----------------------------------------------------------------


def binary_states(n_units: int, start: int, stop: int, dtype, device="cpu"):
    codes = torch.arange(start, stop, dtype=torch.int64, device=device)[:, None]
    bits = torch.arange(n_units, dtype=torch.int64, device=device)
    return ((codes >> bits) & 1).to(dtype)


def log_partition_exact(W, b, c, visible: str, chunk_bytes: int = 1 << 24) -> float:
    n_hidden, n_visible = W.shape
    over_visible = visible == "bernoulli" and n_visible < n_hidden
    n_units = n_visible if over_visible else n_hidden
    n_other = n_hidden + n_visible - n_units
    step = exact_chunk_rows(n_units, n_other, W.element_size(), chunk_bytes)
    parts = []
    for start in range(0, 1 << n_units, step):
        stop = min(start + step, 1 << n_units)
        s = binary_states(n_units, start, stop, W.dtype, W.device)
        if over_visible:
            terms = -free_energy(s, W, b, c, visible)
        else:
            terms = s @ c + VISIBLE_UNITS[visible].log_normalizer(s @ W + b, b)
        parts.append(torch.logsumexp(terms.double(), dim=0))
    return float(torch.logsumexp(torch.stack(parts), dim=0))


def ais_log_partition(W, b, c, visible: str, betas, n_chains: int, rng):
    units = VISIBLE_UNITS[visible]
    v = base_sample(b, n_chains, visible, rng)
    log_z0 = units.log_normalizer(b[None, :], b)[0] + softplus(c).sum()
    log_w = torch.zeros(n_chains, dtype=torch.float64, device=W.device)
    for beta_prev, beta in zip(betas[:-1], betas[1:], strict=True):
        beta_prev, beta = float(beta_prev), float(beta)
        x = v @ W.T
        log_w += (
            softplus(beta * x + c).sum(dim=1) - softplus(beta_prev * x + c).sum(dim=1)
        ).double()
        h = sample_bernoulli(torch.sigmoid(beta * x + c), rng)
        v = units.sample(units.mean(beta * (h @ W) + b), rng)
    log_z = float(log_z0) + float(torch.logsumexp(log_w, dim=0)) - math.log(n_chains)
    return log_z, log_w.cpu().numpy()


# -- learning --------------------------------------------------------------------------


def gradients(v, h, n_pos: int, mu=None, lam=None):
    n_neg = v.shape[0] - n_pos
    w = torch.empty(v.shape[0], dtype=v.dtype, device=v.device)
    w[:n_pos], w[n_pos:] = 1.0 / n_pos, -1.0 / n_neg
    vw = ((v - mu) if mu is not None else v) * w[:, None]
    dW = ((h - lam) if lam is not None else h).T @ vw
    return dW, w @ v, w @ h


def apply_update(
    params: dict, grads, lr: float, momentum: float, weight_decay: float, centered: bool
) -> None:
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
    params["mu"] += rate * (v_pos.mean(dim=0) - params["mu"])
    params["lam"] += rate * (h_pos.mean(dim=0) - params["lam"])


def negative_phase(h, W, b, c, visible: str, k: int, rng):
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
    W, b, c = params["W"], params["b"], params["c"]
    n_pos = v_pos.shape[0]
    if persistent:
        v_neg = negative_phase(params["chains"], W, b, c, visible, k, rng)
        v = torch.cat([v_pos, v_neg])
        h = mean_hiddens(v, W, c)
        params["chains"] = sample_bernoulli(h[n_pos:], rng)
    else:
        h_pos = mean_hiddens(v_pos, W, c)
        v_neg = negative_phase(sample_bernoulli(h_pos, rng), W, b, c, visible, k, rng)
        v = torch.cat([v_pos, v_neg])
        h = torch.cat([h_pos, mean_hiddens(v_neg, W, c)])
    centered = offset_rate > 0
    if centered:
        update_offsets(params, v_pos, h[:n_pos], offset_rate)
        grads = gradients(v, h, n_pos, params["mu"], params["lam"])
    else:
        grads = gradients(v, h, n_pos)
    apply_update(params, grads, lr, momentum, weight_decay, centered)


def pseudo_likelihood(v, cols, W, b, c, visible: str):
    rows = torch.arange(v.shape[0], device=v.device)
    cols = torch.as_tensor(cols, device=v.device)
    v_flip = v.clone()
    v_flip[rows, cols] = 1.0 - v_flip[rows, cols]
    gap = free_energy(v_flip, W, b, c, visible) - free_energy(v, W, b, c, visible)
    return -v.shape[1] * softplus(-gap)
