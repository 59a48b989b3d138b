"""
==========================================================
RBM: exact log-likelihood, centring and sampling on digits
==========================================================

A 16-hidden-unit RBM is small enough for :meth:`skebm.RBM.score_samples` to return
the exact log-likelihood, so training settings can be compared on held-out data
without labels. We compare scikit-learn's settings (PCD with as many chains as the
batch, no momentum, the parameters of the last update), the same with the
parameters averaged over each epoch's updates (skebm's default), and centring, 100
chains and momentum, then draw samples and look at the free energy of digits versus
noise.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skebm import RBM

X, _ = load_digits(return_X_y=True)
X = (X / 16.0 > 0.5).astype(float)
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

# %%
# Held-out log-likelihood per epoch for three training recipes.
recipes = {
    "BernoulliRBM's settings": dict(average_epochs=0),
    "the same, averaged over each epoch": dict(),
    "centred, 100 chains, momentum": dict(
        centered=True, n_chains=100, momentum=0.5, learning_rate=0.05
    ),
}
curves = {}
for name, kwargs in recipes.items():
    rbm = RBM(n_components=16, random_state=0, **kwargs)
    curves[name] = [rbm.partial_fit(X_train).score(X_test) for _ in range(15)]
    print(f"{name}: {curves[name][-1]:.2f} nats after 15 epochs")

fig, ax = plt.subplots()
for name, curve in curves.items():
    ax.plot(range(1, 16), curve, label=name)
ax.set(xlabel="epoch", ylabel="test log-likelihood (nats)")
ax.legend()

# %%
# Samples from the centred model after 1000 Gibbs sweeps, and the free energy of
# test digits against uniform noise: lower energy means more probable.
samples = rbm.sample(20, n_steps=1000, return_mean=True, random_state=0)
fig, axes = plt.subplots(2, 10, figsize=(8, 2))
for img, ax in zip(samples, axes.ravel(), strict=False):
    ax.imshow(img.reshape(8, 8), cmap="gray_r")
    ax.set_axis_off()

noise = (np.random.default_rng(0).random(X_test.shape) < X_train.mean()).astype(float)
fig, ax = plt.subplots()
ax.hist(rbm.free_energy(X_test), bins=30, alpha=0.6, label="test digits")
ax.hist(rbm.free_energy(noise), bins=30, alpha=0.6, label="noise")
ax.set(xlabel="free energy F(v)", ylabel="count")
ax.legend()
plt.show()
