"""What the array API standard lacks, torch backend.

The same names and signatures as ``skebm/_backends/numpy/primitives.py``, where
they are documented.
"""

from __future__ import annotations

import torch


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """1 / (1 + exp(-x))."""
    return torch.sigmoid(x)


def softplus(x: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(x)) without overflow (exact, no linear threshold)."""
    return torch.clamp_min(x, 0) + torch.log1p(torch.exp(-torch.abs(x)))


def logsumexp(x: torch.Tensor) -> float:
    """log sum exp(x) over every entry, without overflow."""
    return float(torch.logsumexp(x.reshape(-1), dim=0))


def bernoulli(p: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Independent Bernoulli draws with success probabilities ``p``, as p's dtype."""
    u = torch.rand(p.shape, generator=rng, dtype=p.dtype, device=p.device)
    return (u < p).to(p.dtype)


def standard_normal(like: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """N(0, 1) draws of the shape, dtype and device of ``like``."""
    return torch.randn(like.shape, generator=rng, dtype=like.dtype, device=like.device)
