"""
=====================================================
VAE: a 2-D latent space of the digits, and generation
=====================================================

:class:`skebm.VAETransformer` learns an encoder q(z | x) and a decoder p(x | z). With
two latent dimensions, :meth:`~skebm.VAETransformer.transform` maps every digit to a
point of the plane that we can look at; :meth:`~skebm.VAETransformer.inverse_transform`
decodes any point of the plane back to an image. A conditional model
(``conditional=True``) is told the class, and generates the digit we ask for.
Finally, :meth:`~skebm.VAETransformer.score_samples` estimates log p(x) by importance
sampling, a bound that tightens as the number of samples k grows.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skebm import VAETransformer

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)  # in [0, 1]: likelihood="auto" picks Bernoulli
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

vae = VAETransformer(n_components=2, random_state=0).fit(X_train)
print(f"{vae.likelihood_} likelihood, {vae.n_iter_} epochs")

# %%
# The latent codes (posterior means) of the test digits, coloured by their class,
# which the model never saw.
Z = vae.transform(X_test)
fig, ax = plt.subplots(figsize=(6, 5))
points = ax.scatter(Z[:, 0], Z[:, 1], c=y_test, cmap="tab10", s=12)
fig.colorbar(points, ax=ax, label="digit")
ax.set(xlabel="z1", ylabel="z2", title="test digits in the latent space")

# %%
# Decoding a grid of latent points: the quantiles of the N(0, I) prior, so that
# every tile is equally probable a priori.
n = 12
grid = norm.ppf(np.linspace(0.03, 0.97, n))
Z_grid = np.array([[a, b] for b in grid[::-1] for a in grid], dtype=np.float32)
images = vae.inverse_transform(Z_grid).reshape(n, n, 8, 8)
fig, axes = plt.subplots(n, n, figsize=(6, 6))
for img, ax in zip(images.reshape(-1, 8, 8), axes.ravel(), strict=True):
    ax.imshow(img, cmap="gray_r", vmin=0, vmax=1)
    ax.set_axis_off()
fig.suptitle("decoder means over the latent plane")

# %%
# Interpolations: encode two test digits, walk the straight line between their
# latent codes and decode every step; below them, draws from the model
# (``sample`` decodes z ~ N(0, I); ``return_mean=True`` shows the decoder means).
pairs = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
first = {d: X_test[y_test == d][0] for d in range(10)}
steps = np.linspace(0, 1, 10)[:, None]
rows = []
for a, b in pairs:
    za, zb = vae.transform(np.stack([first[a], first[b]]))
    rows.append(
        vae.inverse_transform(((1 - steps) * za + steps * zb).astype(np.float32))
    )
rows.append(vae.sample(10, return_mean=True, random_state=0))
rows.append(vae.sample(10, return_mean=True, random_state=1))
fig, axes = plt.subplots(len(rows), 10, figsize=(7, 5))
for r, row in enumerate(rows):
    for c in range(10):
        axes[r, c].imshow(row[c].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        axes[r, c].set_axis_off()
fig.suptitle("interpolations 0->1, 2->3, ..., 8->9; last two rows: samples")

# %%
# A conditional VAE generates the class it is asked for; the encoder still needs
# only X.
cvae = VAETransformer(n_components=2, conditional=True, random_state=0)
cvae.fit(X_train, y_train)
samples = cvae.sample(
    50, y=np.repeat(np.arange(10), 5), return_mean=True, random_state=0
)
fig, axes = plt.subplots(5, 10, figsize=(8, 4))
for i, ax in enumerate(axes.T.ravel()):
    ax.imshow(samples[i].reshape(8, 8), cmap="gray_r")
    ax.set_axis_off()
fig.suptitle("conditional samples: one column per requested digit")

# %%
# The importance-weighted bound L_k on the test log-likelihood: L_1 is an ELBO, and
# L_k grows towards log p(x) as k grows.
ks = [1, 3, 10, 30, 100, 300]
bounds = [vae.score_samples(X_test, k).mean() for k in ks]
for k, b in zip(ks, bounds, strict=True):
    print(f"k = {k:3d}: mean L_k = {b:.3f} nats")
fig, ax = plt.subplots()
ax.semilogx(ks, bounds, "o-")
ax.set(xlabel="importance samples k", ylabel="mean test L_k (nats)")
plt.show()
