"""
=================================================================
LangevinEBMClassifier: energy landscapes and samples on 2-D toys
=================================================================

A :class:`skebm.LangevinEBMClassifier` is an ordinary classifier whose logits f(x)
also define an energy E(x) = -logsumexp_y f(x)[y]. Trained on two moons, two
circles and three blobs, it learns where the data are (low energy) as well as the
class boundaries. We draw the energy landscape, the decision boundary and samples
from fresh SGLD chains, conditioned on each class.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_blobs, make_circles, make_moons

from skebm import LangevinEBMClassifier

rng = np.random.RandomState(0)
datasets = {
    "moons": make_moons(400, noise=0.08, random_state=0),
    "circles": make_circles(400, noise=0.05, factor=0.5, random_state=0),
    "blobs": make_blobs(400, centers=3, cluster_std=0.6, random_state=0),
}

# %%
# Fit one model per toy. The defaults (JEM's step 1 and noise 0.01) suit images
# and the 64-pixel digits; in two dimensions such a step crosses the whole plane,
# so we take small steps with the noise of true Langevin dynamics
# (sqrt(2 * step) = 0.14): samples then spread over each class instead of
# collapsing on its most probable point.
models = {}
for name, (X, y) in datasets.items():
    models[name] = LangevinEBMClassifier(
        hidden_layer_sizes=(64, 64),
        max_iter=150,
        learning_rate_init=5e-3,
        sgld_step_size=0.01,
        sgld_noise=0.1,
        energy_l2=0.01,
        buffer_size=2000,
        random_state=0,
    ).fit(X, y)
    print(f"{name}: training accuracy {models[name].score(X, y):.3f}")

# %%
# Energy landscape (colour, low = probable), decision boundary (black lines), the
# data (small dots) and 30 class-conditional samples per class (crosses).
fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
for ax, (name, (X, y)) in zip(axes, datasets.items(), strict=True):
    model = models[name]
    lo, hi = X.min(0) - 0.3, X.max(0) + 0.3
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 150), np.linspace(lo[1], hi[1], 150))
    grid = np.c_[gx.ravel(), gy.ravel()]
    energy = model.energy(grid).reshape(gx.shape)
    ax.contourf(gx, gy, energy, levels=30, cmap="viridis")
    ax.contour(
        gx, gy, model.predict(grid).reshape(gx.shape), colors="k", linewidths=0.5
    )
    ax.scatter(X[:, 0], X[:, 1], c=y, s=4, cmap="tab10", vmin=0, vmax=9, alpha=0.5)
    for label in model.classes_:
        s = model.sample(30, y=label, random_state=0)
        ax.scatter(s[:, 0], s[:, 1], marker="x", s=25, color=plt.cm.tab10(label))
    ax.set_title(f"{name}: energy, boundary, samples")
fig.tight_layout()
plt.show()

# %%
# The energy is also an out-of-distribution score: points far from the data have a
# high energy, whatever class the boundary would give them.
X, y = datasets["moons"]
far = rng.uniform(-3, 4, size=(400, 2))
print("mean energy, data:", models["moons"].energy(X).mean().round(2))
print(
    "mean energy, uniform points on a wider box:",
    models["moons"].energy(far).mean().round(2),
)
