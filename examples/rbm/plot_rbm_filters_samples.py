"""
===================================================
RBM: filters, Gibbs samples and free-energy scores
===================================================

An :class:`skebm.RBM` with 100 hidden units trained on the binarised 8x8 digits.
We look at what it learnt (the weights of each hidden unit, drawn as images), at
what it generates (block Gibbs chains started from noise, and how they evolve), and
at its free energy F(v), which is -log p(v) up to a constant: low on digits, high
on everything else.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skebm import RBM

X, y = load_digits(return_X_y=True)
X = (X / 16.0 > 0.5).astype(np.float32)  # binary pixels, float32 model
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

rbm = RBM(
    n_components=100,
    learning_rate=0.05,
    n_iter=20,
    centered=True,
    n_chains=100,
    momentum=0.5,
    random_state=0,
).fit(X_train)
print(f"held-out pseudo-likelihood: {rbm.pseudo_likelihood(X_test).mean():.2f}")

# %%
# Filters: row j of ``components_`` holds the weights from hidden unit j to the 64
# pixels. Red pixels switch the unit on, blue ones off; most units respond to a
# stroke or to a part of a digit.
W = rbm.components_
lim = np.abs(W).max()
fig, axes = plt.subplots(10, 10, figsize=(6, 6))
for w, ax in zip(W, axes.ravel(), strict=True):
    ax.imshow(w.reshape(8, 8), cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_axis_off()
fig.suptitle("filters of the 100 hidden units")

# %%
# Samples: ten chains start from uniform noise; each row shows the chains after
# a number of block Gibbs sweeps (we draw the mean-field image P(v = 1 | h) of the
# last sweep, which is less noisy than a binary sample). ``sample`` continues from
# an array, so the chains are run once and shown along the way.
steps = [0, 1, 5, 20, 100, 500]
rng = np.random.default_rng(0)
v = (rng.random((10, 64)) < X_train.mean()).astype(np.float32)
fig, axes = plt.subplots(len(steps), 10, figsize=(7, 4.6))
done = 0
for row, n in enumerate(steps):
    if n > done:
        means = rbm.sample(
            10, n_steps=n - done, init=v, return_mean=True, random_state=n
        )
        v = (rng.random(means.shape) < means).astype(np.float32)
        done = n
    else:
        means = v
    for img, ax in zip(means, axes[row], strict=True):
        ax.imshow(img.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[row, 0].set_ylabel(f"{n}", rotation=0, labelpad=14)
fig.suptitle("Gibbs chains from noise (rows: sweeps)")

# %%
# Free energy as a score: training digits, held-out digits, random images with the
# same fraction of ink, digits with their pixels shuffled (same ink, no strokes),
# and digits with a quarter of their pixels flipped. The held-out digits sit with
# the training digits; every corruption costs energy.
perm = rng.permutation(64)
flipped = X_test.copy()
mask = rng.random(flipped.shape) < 0.25
flipped[mask] = 1 - flipped[mask]
sets = {
    "training digits": X_train,
    "held-out digits": X_test,
    "25% pixels flipped": flipped,
    "pixels shuffled": X_test[:, perm],
    "random ink": (rng.random(X_test.shape) < X_train.mean()).astype(np.float32),
}
fig, ax = plt.subplots(figsize=(7, 4))
bins = np.linspace(
    min(rbm.free_energy(S).min() for S in sets.values()),
    max(rbm.free_energy(S).max() for S in sets.values()),
    60,
)
for name, S in sets.items():
    F = rbm.free_energy(S)
    ax.hist(F, bins=bins, alpha=0.55, density=True, label=name)
    print(f"{name:>20}: median free energy {np.median(F):7.2f}")
ax.set(xlabel="free energy F(v) (low = probable)", ylabel="density")
ax.legend()
plt.show()
