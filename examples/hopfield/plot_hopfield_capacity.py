"""
==============================================
Hopfield: capacity of each rule against theory
==============================================

How many random patterns can N units store? We store P random {-1, +1} patterns
in a :class:`skebm.HopfieldMemory`, probe it with the patterns themselves and with
copies having 10% of their bits flipped, and compare with the theory: the
signal-to-noise argument for the Hebbian rule, and the capacity each rule reports
as ``capacity_`` (0.138 N for Hebbian, N / sqrt(2 ln N) for Storkey, N / 2 for the
pseudo-inverse, N^(n-1) / (2 (2n-3)!! ln N) for the dense rule of degree n).
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from scipy.special import erfc

from skebm import HopfieldMemory

N = 100
rng = np.random.default_rng(0)


def random_patterns(P):
    return rng.choice([-1.0, 1.0], size=(P, N))


def flip(patterns, fraction):
    out = patterns.copy()
    k = int(round(fraction * N))
    for row in out:
        row[rng.choice(N, k, replace=False)] *= -1
    return out


def fit(P, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # storing beyond the capacity warns
        return HopfieldMemory(**params, random_state=0).fit(random_patterns(P))


# %%
# **Hebbian rule, bit errors.** A stored bit receives its own pattern's field N
# plus crosstalk from the other P - 1 patterns, approximately Gaussian with
# variance N P; so one synchronous update from a stored pattern flips a fraction
# 0.5 erfc(sqrt(N / 2P)) of its bits. Recall then runs to a fixed point, where
# the errors stay small (about 1.5% at P / N = 0.138, Amit, Gutfreund and
# Sompolinsky 1985) below the capacity and jump beyond it.
loads = np.array([0.04, 0.06, 0.08, 0.10, 0.12, 0.14, 0.16, 0.20, 0.25, 0.30])
one_step, final = [], []
for load in loads:
    P = int(round(load * N))
    e1, e2 = [], []
    for _ in range(3):
        memory = fit(P, rule="hebbian")
        Xi = memory.memories_
        W = Xi.T @ Xi / N
        np.fill_diagonal(W, 0.0)
        e1.append(np.mean(np.sign(Xi @ W) != Xi))
        e2.append(np.mean(memory.transform(Xi) != Xi))
    one_step.append(np.mean(e1))
    final.append(np.mean(e2))

alpha = np.linspace(0.02, 0.32, 200)
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(alpha, 0.5 * erfc(np.sqrt(1 / (2 * alpha))), "k-", label="theory, one step")
ax.plot(loads, one_step, "o", label="measured, one step")
ax.plot(loads, final, "s-", label="measured, at the fixed point")
ax.axvline(0.138, color="gray", ls="--", label="capacity 0.138 N")
ax.set(xlabel="load P / N", ylabel="fraction of wrong bits", title=f"Hebbian, N = {N}")
ax.legend()

# %%
# **All rules, recall from noisy probes.** The fraction of probes (10% of bits
# flipped) that return exactly to their pattern, against the number of patterns;
# dashed lines mark each rule's ``capacity_``. The pseudo-inverse and Storkey rules
# hold several times more patterns than the Hebbian rule; the dense rule's capacity
# (about 360 patterns for degree 3) is off this chart.
Ps = [5, 10, 15, 20, 25, 30, 40, 50, 60, 80]
rules = {
    "hebbian": dict(rule="hebbian"),
    "storkey": dict(rule="storkey"),
    "pseudoinverse": dict(rule="pseudoinverse"),
    "dense, degree 3": dict(rule="dense", degree=3),
}
fig, ax = plt.subplots(figsize=(6.5, 4))
for i, (name, params) in enumerate(rules.items()):
    rates = []
    for P in Ps:
        memory = fit(P, **params)
        Xi = memory.memories_
        rates.append(np.mean(np.all(memory.transform(flip(Xi, 0.1)) == Xi, axis=1)))
    color = f"C{i}"
    ax.plot(Ps, rates, "o-", color=color, label=name)
    if memory.capacity_ <= max(Ps):
        ax.axvline(memory.capacity_, color=color, ls="--", lw=1)
    print(f"{name:>16}: capacity_ = {memory.capacity_:6.1f}")
ax.set(xlabel="patterns stored P", ylabel="exact recall rate", title=f"N = {N}")
ax.legend(loc="lower left")
plt.show()
