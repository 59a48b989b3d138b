"""Counter-based random numbers that depend on the data row, not on the call.

``VAETransformer.score_samples`` draws its importance samples from these so that a
row's score is the same whatever batch, order or subset it comes in.
"""

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x):
    """The SplitMix64 finaliser: a bijective mix of 64-bit integers (vectorised)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def row_normal_draws(X, seed, k, d):
    """Standard-normal draws of shape (k, n_rows, d), a function of each row only.

    Each row is hashed (its float64 bits, with ``seed``) and the hash seeds a
    counter-based SplitMix64 stream turned into normals by Box-Muller. A row's draws
    depend neither on the other rows nor on their order (batch-independent scores),
    different rows get independent draws (so a mean over rows averages the Monte
    Carlo error out), and the first k draws of a row are the same for every k.
    """
    bits = np.ascontiguousarray(X, dtype=np.float64).view(np.uint64)
    with np.errstate(over="ignore"):
        h = np.full(bits.shape[0], np.uint64(seed), dtype=np.uint64)
        for j in range(bits.shape[1]):
            h = _splitmix64(h ^ bits[:, j] + _GOLDEN)
        m = np.arange(k * d, dtype=np.uint64)
        pair = m // np.uint64(2)
        stream = h[:, None] + _GOLDEN * (np.uint64(2) * pair + np.uint64(1))[None, :]
        u1 = (_splitmix64(stream) >> np.uint64(11)).astype(np.float64) * 2.0**-53
        u2 = (_splitmix64(stream + _GOLDEN) >> np.uint64(11)).astype(np.float64)
        u2 *= 2.0**-53
    radius = np.sqrt(-2.0 * np.log1p(-u1))  # 1 - u1 in (0, 1]
    angle = 2.0 * np.pi * u2 + np.where(m % 2 == 1, -0.5 * np.pi, 0.0)
    eps = radius * np.cos(angle)  # cos for even m, sin for odd m of the same pair
    return eps.reshape(bits.shape[0], k, d).transpose(1, 0, 2)
