"""
=======================================
The NumPy and PyTorch backends compared
=======================================

:class:`skebm.RBM` and :class:`skebm.HopfieldMemory` compute with NumPy by default
and with PyTorch when given ``backend="torch"`` (on a GPU when ``device`` names or
finds one). The two backends run the same algorithms, so a model's outputs do not
depend on the backend beyond floating-point rounding. Here we check that on one RBM,
then compare what the backends cost to fit it, in float64 and float32.
"""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skebm import RBM

X, _ = load_digits(return_X_y=True)
X = (X / 16.0 > 0.5).astype(np.float64)
X_train, X_test = train_test_split(X, test_size=0.25, random_state=0)

# %%
# **Same parameters, same outputs.** Fit once with NumPy, then switch the fitted
# model to torch with ``set_params``: its state is NumPy arrays, which the torch
# backend copies to its device for each call. Every output agrees to rounding.
rbm = RBM(n_components=16, n_iter=10, random_state=0).fit(X_train)
outputs = {}
for backend in ["numpy", "torch"]:
    rbm.set_params(backend=backend, device="cpu")
    outputs[backend] = {
        "transform": rbm.transform(X_test),
        "free_energy": rbm.free_energy(X_test),
        "score_samples (exact)": rbm.score_samples(X_test),
    }
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
for ax, name in zip(axes, outputs["numpy"], strict=True):
    a, b = outputs["numpy"][name].ravel(), outputs["torch"][name].ravel()
    ax.plot(a, b, ".", ms=3)
    ax.plot([a.min(), a.max()], [a.min(), a.max()], "k-", lw=0.5)
    ax.set(xlabel="numpy", ylabel="torch", title=name)
    print(f"{name:>22}: max |numpy - torch| = {np.max(np.abs(a - b)):.1e}")
fig.suptitle("one fitted RBM, evaluated by both backends")
fig.tight_layout()

# %%
# **Same seed, equivalent fits.** Fitting on each backend uses each backend's
# random generators, so the parameters differ, but the models are equally good:
# their held-out log-likelihoods differ by about as much as those of two seeds.
for backend in ["numpy", "torch"]:
    lls = [
        RBM(n_components=16, n_iter=10, backend=backend, device="cpu", random_state=s)
        .fit(X_train)
        .score(X_test)
        for s in range(3)
    ]
    print(
        f"{backend:>5}: held-out log-likelihood {np.mean(lls):.2f} +- {np.std(lls):.2f}"
    )

# %%
# **Fit time** of a 100-hidden-unit RBM for 20 epochs on the CPU (best of two), for small batches
# (10 rows, scikit-learn's default: many small products, where the per-call
# overhead of torch shows) and large ones (200 rows). The timings depend on the
# machine; on a GPU (``device="cuda"``) large batches and large models are where
# torch pays off.
configs = [(bs, dt) for bs in (10, 200) for dt in (np.float64, np.float32)]
times = {"numpy": [], "torch": []}
for backend in times:
    for batch_size, dtype in configs:
        model = RBM(
            n_components=100,
            batch_size=batch_size,
            n_iter=20,
            backend=backend,
            device="cpu",
            random_state=0,
        )
        runs = []
        for _ in range(2):
            tic = time.perf_counter()
            model.fit(X_train.astype(dtype))
            runs.append(time.perf_counter() - tic)
        times[backend].append(min(runs))

labels = [f"batch {bs}\n{np.dtype(dt).name}" for bs, dt in configs]
pos = np.arange(len(configs))
fig, ax = plt.subplots(figsize=(7, 4))
for i, (backend, t) in enumerate(times.items()):
    ax.bar(pos + (i - 0.5) * 0.38, t, width=0.38, label=backend)
ax.set(
    xticks=pos, xticklabels=labels, ylabel="fit time (s)", title="RBM(100), 20 epochs"
)
ax.legend()
plt.show()
