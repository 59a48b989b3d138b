"""Variational autoencoder: the module and its equations, one function each.

The module knows nothing about scikit-learn (CONTRIBUTING.md, convention 6):
``VAETransformer`` builds it in ``fit`` from its parameters. Notation: ``x`` data
rows of ``n_features``, ``z`` latent rows of ``n_components``, ``y`` one-hot class
rows (conditional models only), ``eps`` standard-normal draws with
``z = mu + exp(logvar / 2) * eps``.

* encoder q(z | x) = N(mu(x), diag(exp(logvar(x)))), an MLP on x only, so that the
  latent code of a row never needs its label;
* decoder p(x | z, y): an MLP on [z, y] giving Bernoulli logits or Gaussian means;
  the Gaussian observation variance exp(``log_noise_var``) is one learned scalar
  shared by every feature (isotropic, as probabilistic PCA);
* prior p(z) = N(0, I); conditional models marginalise y with its class prior where
  no label is given.

Every log-density is returned per row; the bounds are accumulated in float64.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from skebm._backends.torch.nn import mlp

LOG_2PI = math.log(2.0 * math.pi)

#: floor of the Gaussian observation log-variance (variance 1e-6 of the scaled data):
#: keeps the likelihood bounded when the decoder reproduces a row exactly
MIN_LOG_NOISE_VAR = math.log(1e-6)

#: ceiling of the encoder's log-variance (standard deviation e^15, about 3e6): beyond
#: it exp() overflows and the decoder sees infinite codes (NaN log-likelihoods)
MAX_LOG_POSTERIOR_VAR = 30.0


class VAE(nn.Module):
    """Encoder q(z | x) and decoder p(x | z, y) of a (conditional) VAE.

    ``hidden_layer_sizes`` are the encoder's hidden widths; the decoder mirrors them.
    ``()`` gives linear maps both ways (probabilistic PCA for the Gaussian
    likelihood). ``n_classes > 0`` makes the decoder conditional on a one-hot y.
    """

    def __init__(
        self,
        n_features: int,
        n_components: int,
        hidden_layer_sizes: Iterable[int],
        activation: str,
        likelihood: str,
        n_classes: int = 0,
    ):
        super().__init__()
        hidden = tuple(hidden_layer_sizes)
        self.n_components = n_components
        self.n_classes = n_classes
        self.likelihood = likelihood
        self.encoder = mlp(n_features, hidden, 2 * n_components, activation)
        self.decoder = mlp(
            n_components + n_classes, hidden[::-1], n_features, activation
        )
        if likelihood == "gaussian":
            self.log_noise_var = nn.Parameter(torch.zeros(1))
        else:
            self.register_parameter("log_noise_var", None)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x)."""
        out = self.encoder(x)
        logvar = out[..., self.n_components :].clamp(max=MAX_LOG_POSTERIOR_VAR)
        return out[..., : self.n_components], logvar

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Bernoulli logits or Gaussian means of p(x | z, y)."""
        if self.n_classes:
            z = torch.cat([z, y.to(z.dtype).expand(*z.shape[:-1], -1)], dim=-1)
        return self.decoder(z)

    def noise_logvar(self) -> torch.Tensor | None:
        """The Gaussian observation log-variance, floored; None for Bernoulli."""
        if self.log_noise_var is None:
            return None
        # a soft floor: unlike clamp, its gradient never vanishes, so a parameter
        # pushed below the floor can come back (e.g. in a later partial_fit)
        return MIN_LOG_NOISE_VAR + F.softplus(self.log_noise_var - MIN_LOG_NOISE_VAR)


# -- one equation each -----------------------------------------------------------------


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """z = mu + sigma * eps: a draw of q(z | x) differentiable in (mu, logvar)."""
    return mu + torch.exp(0.5 * logvar) * eps


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per row, in closed form."""
    return 0.5 * (mu**2 + torch.exp(logvar) - 1.0 - logvar).sum(-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) per row."""
    return -0.5 * (z**2 + LOG_2PI).sum(-1)


def log_posterior(eps: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log q(z | x) at z = mu + sigma * eps, written with eps (no cancellation)."""
    return -0.5 * (eps**2 + LOG_2PI + logvar).sum(-1)


def log_likelihood(
    x: torch.Tensor,
    out: torch.Tensor,
    likelihood: str,
    logvar: torch.Tensor | None = None,
) -> torch.Tensor:
    """log p(x | z) per row from the decoder output ``out`` (logits or means).

    Bernoulli: sum_j x_j log s(out_j) + (1 - x_j) log(1 - s(out_j)) with s the
    logistic function (from the logits, stable). Gaussian: isotropic with
    log-variance ``logvar``.
    """
    if likelihood == "bernoulli":
        return -F.binary_cross_entropy_with_logits(
            out, x.expand_as(out), reduction="none"
        ).sum(-1)
    return -0.5 * ((x - out) ** 2 * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


def decoder_mean(out: torch.Tensor, likelihood: str) -> torch.Tensor:
    """E[x | z, y]: probabilities (Bernoulli) or means (Gaussian)."""
    return torch.sigmoid(out) if likelihood == "bernoulli" else out


def elbo(
    module: VAE,
    x: torch.Tensor,
    eps: torch.Tensor,
    y: torch.Tensor | None = None,
    beta: float = 1.0,
) -> torch.Tensor:
    """E_q[log p(x | z, y)] - beta KL(q(z | x) || p(z)) per row (beta=1: the ELBO).

    One reparameterised draw per row (``eps`` of the shape of z) for the
    reconstruction term, the KL term in closed form: the training objective.
    """
    mu, logvar = module.encode(x)
    z = reparameterize(mu, logvar, eps)
    rec = log_likelihood(
        x, module.decode(z, y), module.likelihood, module.noise_logvar()
    )
    return rec - beta * kl_standard_normal(mu, logvar)


def conditional_log_likelihood(
    module: VAE,
    x: torch.Tensor,
    z: torch.Tensor,
    y: torch.Tensor | None = None,
    log_class_prior: torch.Tensor | None = None,
) -> torch.Tensor:
    """log p(x | z, y) in float64; with no y, log sum_c pi_c p(x | z, c).

    ``z`` is (..., n_rows, n_components); ``y`` one-hot rows; ``log_class_prior``
    the log class frequencies used to marginalise a conditional decoder.
    """
    dtype = next(module.parameters()).dtype
    logvar = module.noise_logvar()
    logvar = None if logvar is None else logvar.double()
    x64 = x.double()

    def ll(labels):
        out = module.decode(z.to(dtype), labels).double()
        return log_likelihood(x64, out, module.likelihood, logvar)

    if not module.n_classes or y is not None:
        return ll(y)
    eye = torch.eye(module.n_classes, dtype=dtype, device=x.device)
    per_class = torch.stack([ll(eye[c]) for c in range(module.n_classes)])
    return torch.logsumexp(per_class + log_class_prior.double()[:, None, None], 0)


def iwae_bound(
    module: VAE,
    x: torch.Tensor,
    eps: torch.Tensor,
    y: torch.Tensor | None = None,
    log_class_prior: torch.Tensor | None = None,
    chunk: int = 16,
) -> torch.Tensor:
    """The importance-weighted bound L_k = log (1/k) sum_i p(x, z_i) / q(z_i | x).

    ``eps`` are the k standard-normal draws: (k, n_components) shared by every row
    (common random numbers), or (k, n_rows, n_components), one set per row. The
    weights are accumulated in float64 by a running logsumexp over chunks of
    ``chunk`` draws, so memory does not grow with k. L_1 is the ELBO (with a sampled
    KL); L_k increases to log p(x) as k grows (Burda et al., 2016).
    """
    mu, logvar = (t.double() for t in module.encode(x))
    eps = eps.double()
    total = torch.full((x.shape[0],), -math.inf, dtype=torch.float64, device=x.device)
    for start in range(0, eps.shape[0], chunk):
        e = eps[start : start + chunk]
        e = e[:, None, :] if e.ndim == 2 else e  # (c, 1 or n, d)
        z = reparameterize(mu, logvar, e)  # (c, n, d)
        log_w = (
            conditional_log_likelihood(module, x, z, y, log_class_prior)
            + log_standard_normal(z)
            - log_posterior(e, logvar)
        )
        total = torch.logaddexp(total, torch.logsumexp(log_w, 0))
    return total - math.log(eps.shape[0])


def make_train_loss(module: VAE, beta: float, generator: torch.Generator, shift: float):
    """The per-batch training loss: minus the mean beta-weighted ELBO of the batch,
    with one draw ``eps`` per row; it reports that loss plus ``shift``."""

    def loss_fn(xb: torch.Tensor, yb: torch.Tensor | None):
        eps = torch.randn(
            (xb.shape[0], module.n_components),
            generator=generator,
            dtype=xb.dtype,
            device=xb.device,
        )
        y = None if yb is None else F.one_hot(yb, module.n_classes).to(xb.dtype)
        loss = -elbo(module, xb, eps, y, beta).mean()
        return loss, loss.detach() + shift

    return loss_fn


def generate(
    module: VAE,
    z: torch.Tensor,
    y: torch.Tensor | None,
    return_mean: bool,
    generator: torch.Generator,
    class_prior: torch.Tensor | None = None,
) -> torch.Tensor:
    """x ~ p(x | z, y), or E[x | z, y] with ``return_mean``.

    A conditional decoder without y gives the mean sum_c pi_c E[x | z, c] over the
    ``class_prior`` pi (a draw needs labels).
    """
    if module.n_classes and y is None:
        eye = torch.eye(module.n_classes, dtype=z.dtype, device=z.device)
        return sum(
            class_prior[c] * decoder_mean(module.decode(z, eye[c]), module.likelihood)
            for c in range(module.n_classes)
        )
    out = module.decode(z, y)
    if return_mean:
        return decoder_mean(out, module.likelihood)
    if module.likelihood == "bernoulli":
        return torch.bernoulli(torch.sigmoid(out), generator=generator)
    noise = torch.randn(
        out.shape, generator=generator, dtype=out.dtype, device=out.device
    )
    return out + torch.exp(0.5 * module.noise_logvar()) * noise
