"""
=================================================
Hopfield: recalling digits from corrupted probes
=================================================

A :class:`skebm.HopfieldMemory` stores one image of each digit (10 patterns of
64 binary pixels) and recalls them from probes with flipped pixels. Digits are
strongly correlated patterns, which the classical Hebbian rule cannot separate even
far below its capacity for random patterns (0.138 N = 8.8 here); the pseudo-inverse
rule decorrelates them, and the dense (polynomial) and modern (softmax) rules
separate them with their sharper energies.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skebm import HopfieldMemory

X, y = load_digits(return_X_y=True)
B = (X / 16.0 > 0.4).astype(float)  # {0, 1} pixels: encoding "binary"
memories = np.array([B[np.flatnonzero(y == d)[0]] for d in range(10)])

rules = {
    "hebbian": dict(rule="hebbian"),
    "pseudoinverse": dict(rule="pseudoinverse"),
    "dense, degree 8": dict(rule="dense", degree=8),
    "modern": dict(rule="modern"),
}
models = {}
for name, params in rules.items():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Hebbian: 10 patterns exceed 0.138 N
        models[name] = HopfieldMemory(**params, random_state=0).fit(memories)


def corrupt(patterns, fraction, rng):
    """Flip ``fraction`` of the pixels of every pattern (distinct pixels)."""
    out = patterns.copy()
    for row in out:
        idx = rng.choice(row.size, int(round(fraction * row.size)), replace=False)
        row[idx] = 1 - row[idx]
    return out


# %%
# Probe, recall and original: each column is one digit with 15% of its pixels
# flipped. A recalled image framed in red is not the stored digit (a spurious state
# or another memory).
rng = np.random.default_rng(0)
probes = corrupt(memories, 0.15, rng)
rows = [("original", memories), ("probe", probes)]
rows += [(name, model.transform(probes)) for name, model in models.items()]
fig, axes = plt.subplots(len(rows), 10, figsize=(8, 5.2))
for r, (label, images) in enumerate(rows):
    for c, ax in enumerate(axes[r]):
        ax.imshow(images[c].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        if r >= 2 and not np.array_equal(images[c], memories[c]):
            for spine in ax.spines.values():
                spine.set(color="red", linewidth=2)
    axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center")
fig.suptitle("15% of the pixels flipped: recall by each rule")
fig.subplots_adjust(left=0.2)

# %%
# Recall rate against corruption: 20 probes per digit at each noise level; a probe
# counts as recalled when ``predict`` returns the index of its digit.
noise = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35]
target = np.tile(np.arange(10), 20)
fig, ax = plt.subplots(figsize=(6, 4))
for name, model in models.items():
    rates = [
        np.mean(model.predict(corrupt(memories[target], f, rng)) == target)
        for f in noise
    ]
    ax.plot(noise, rates, "o-", label=name)
ax.set(xlabel="fraction of pixels flipped", ylabel="fraction recalled", ylim=(0, 1.05))
ax.legend()

# %%
# Recall descends the energy: the energy of each probe and of the state it
# converged to, for the dense rule. Every recall ends lower than it started.
model = models["dense, degree 8"]
result = model.recall(probes)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(model.energy(probes), "o", label="probe")
ax.plot(model.energy(result.states), "s", label="recalled state")
ax.plot(model.energy(memories), "x", color="k", label="stored digit")
ax.set(xlabel="digit", ylabel="energy", xticks=range(10))
ax.legend()
print("converged:", result.converged.all(), "| sweeps per probe:", result.n_iter)
plt.show()
