"""JEM numerics: logits as an energy, SGLD from a replay buffer, the training loss.

A network f maps x (in the internal range [-1, 1]) to class logits f(x). Then
p(y | x) = softmax f(x), E(x) = -logsumexp_y f(x)[y] and, for class-conditional
sampling, E(x | y) = -f(x)[y] (Grathwohl et al., 2020).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from skebm._backends.torch.core import torch_dtype
from skebm._backends.torch.nn import inference

#: the internal sampling range: data are mapped to [LOW, HIGH] per feature
LOW, HIGH = -1.0, 1.0


def energy(logits: torch.Tensor) -> torch.Tensor:
    """E(x) = -logsumexp_y f(x)[y]."""
    return -torch.logsumexp(logits, dim=1)


def conditional_energy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """E(x | y) = -f(x)[y] (up to the class's log-normaliser)."""
    return -logits.gather(1, y[:, None])[:, 0]


def to_internal(
    x: torch.Tensor, center: torch.Tensor, scale: torch.Tensor, dtype
) -> torch.Tensor:
    """The input scale -> the internal one, (x - center) * scale, in ``dtype``."""
    return ((x - center) * scale).to(torch_dtype(dtype))


def from_internal(
    z: torch.Tensor, center: torch.Tensor, scale: torch.Tensor, dtype
) -> torch.Tensor:
    """The internal scale -> the input one; features of scale 0 map to ``center``."""
    kept = scale > 0
    span = torch.where(kept, scale, torch.ones_like(scale))
    return torch.where(kept, z / span + center, center).to(torch_dtype(dtype))


def bounded_log_density(
    net: nn.Module, x: torch.Tensor, center: torch.Tensor, scale: torch.Tensor, dtype
) -> torch.Tensor:
    """-E(x) evaluated in the box [LOW, HIGH]^d, float64 per row.

    The network sees the nearest point c(z) of the box to the internal coordinates
    z of x, and half the squared distance to it is subtracted:
    logsumexp_y f(c(z))[y] - ||z - c(z)||^2 / 2.
    """
    z = to_internal(x, center, scale, np.float64)
    inside = z.clamp(LOW, HIGH)
    gap = z - inside
    penalty = 0.5 * (gap * gap).sum(dim=1)
    logits = net(inside.to(torch_dtype(dtype)))
    return torch.logsumexp(logits, dim=1) - penalty


def check_logits_shape(net: nn.Module, n_features: int, n_classes: int) -> None:
    """A ValueError unless ``net`` maps a (2, n_features) batch to (2, n_classes)
    logits. Runs in evaluation mode without gradients and draws no random numbers."""
    param = next(net.parameters(), None)
    dtype, device = (None, None) if param is None else (param.dtype, param.device)
    x = torch.zeros((2, n_features), dtype=dtype, device=device)
    was_training = net.training
    try:
        with inference(net):
            out = net(x)
        # a tuple (logits, features), say, is named by its type
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
    except RuntimeError as exc:
        shape = f"an error ({exc})"
    finally:
        net.train(was_training)
    if shape != (2, n_classes):
        raise ValueError(
            f"The network built by `module` must map a batch of shape "
            f"(2, {n_features}) to logits of shape (2, {n_classes}), one per class; "
            f"it gave {shape}."
        )


def uniform(shape, dtype, device, generator: torch.Generator) -> torch.Tensor:
    """Uniform noise on [LOW, HIGH] of ``dtype`` (NumPy's or torch's) on ``device``:
    the sampler's initial and re-initial state."""
    dtype = torch_dtype(dtype)
    u = torch.rand(shape, generator=generator, device=device, dtype=dtype)
    return LOW + (HIGH - LOW) * u


def sgld(
    net: nn.Module,
    x: torch.Tensor,
    n_steps: int,
    step_size: float,
    noise: float,
    generator: torch.Generator,
    y: torch.Tensor | None = None,
) -> torch.Tensor:
    """``n_steps`` of x <- clamp(x - step_size * grad E(x) + noise * N(0, I)).

    With ``y`` the energy is the class-conditional -f(x)[y]. Gradients are taken
    with respect to x only: the parameters' ``.grad`` are left untouched.
    """
    x = x.detach()
    was_training = net.training
    net.eval()
    with torch.enable_grad():
        for _ in range(n_steps):
            x.requires_grad_(True)
            logits = net(x)
            e = energy(logits) if y is None else conditional_energy(logits, y)
            (grad,) = torch.autograd.grad(e.sum(), x)
            eps = torch.randn(
                x.shape, generator=generator, device=x.device, dtype=x.dtype
            )
            x = (x.detach() - step_size * grad + noise * eps).clamp_(LOW, HIGH)
    net.train(was_training)
    return x.detach()


def sample_buffer(
    buffer: torch.Tensor,
    n: int,
    reinit_freq: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw n chain starts from the replay buffer, a fraction re-initialised to noise.

    Returns the starts and their buffer indices (to write the new states back).
    The first ``min(n, len(buffer))`` indices are distinct (a random permutation,
    repeated when n exceeds the buffer): only those are written back, because a
    write to a repeated index would go to whichever thread writes last and
    training would not be reproducible.
    """
    size = buffer.shape[0]
    perm = torch.randperm(size, generator=generator, device=buffer.device)
    idx = perm.repeat(-(-n // size))[:n]
    starts = buffer[idx]
    fresh = torch.rand(n, generator=generator, device=buffer.device) < reinit_freq
    noise = uniform(starts.shape, starts.dtype, starts.device, generator)
    return torch.where(fresh[:, None], noise, starts), idx


def jem_loss(
    logits_data: torch.Tensor,
    y: torch.Tensor,
    logits_samples: torch.Tensor,
    energy_weight: float,
    energy_l2: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cross-entropy + energy_weight * (E(data) - E(samples)) + L2 on both energies.

    The middle term is the contrastive-divergence estimate of -log p(x) up to
    log Z; its gradient is -grad log p(x). Returns (loss, cross-entropy, largest
    absolute energy), the last two for monitoring and divergence detection.
    """
    ce = F.cross_entropy(logits_data, y)
    e_data, e_samples = energy(logits_data), energy(logits_samples)
    cd = e_data.mean() - e_samples.mean()
    reg = (e_data**2).mean() + (e_samples**2).mean()
    loss = ce + energy_weight * cd + energy_l2 * reg
    peak = torch.maximum(e_data.abs().max(), e_samples.abs().max()).detach()
    return loss, ce.detach(), peak


def make_train_loss(
    net: nn.Module,
    buffer: torch.Tensor,
    *,
    sgld_steps: int,
    sgld_step_size: float,
    sgld_noise: float,
    reinit_freq: float,
    energy_weight: float,
    energy_l2: float,
    generator: torch.Generator,
    peak: list,
) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The per-batch JEM loss; runs SGLD from (and writes back to) ``buffer``.

    ``peak`` is a one-element list that accumulates the largest absolute energy seen
    in the epoch (read by the estimator's divergence check).
    """

    def loss_fn(xb: torch.Tensor, yb: torch.Tensor):
        if energy_weight == 0:
            ce = F.cross_entropy(net(xb), yb)
            return ce, ce.detach()
        starts, idx = sample_buffer(buffer, xb.shape[0], reinit_freq, generator)
        samples = sgld(net, starts, sgld_steps, sgld_step_size, sgld_noise, generator)
        distinct = min(len(idx), buffer.shape[0])
        buffer[idx[:distinct]] = samples[:distinct]
        logits = net(torch.cat([xb, samples]))
        loss, ce, e_peak = jem_loss(
            logits[: xb.shape[0]], yb, logits[xb.shape[0] :], energy_weight, energy_l2
        )
        peak[0] = e_peak if peak[0] is None else torch.maximum(peak[0], e_peak)
        return loss, ce

    return loss_fn


def fit_temperature(logits_val: torch.Tensor, y_val: torch.Tensor) -> float:
    """The temperature T minimising the NLL of softmax(logits / T) (Guo et al. 2017).

    One convex parameter (log T): a bounded golden-section search is exact enough.
    """
    logits_val = logits_val.double()

    def nll(log_t: float) -> float:
        return float(
            F.cross_entropy(logits_val / float(torch.exp(torch.tensor(log_t))), y_val)
        )

    lo, hi = -3.0, 3.0
    ratio = (5**0.5 - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return float(torch.exp(torch.tensor((lo + hi) / 2)))
