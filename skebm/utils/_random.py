"""Counter-based random numbers that depend on the data row, not on the call.

``VAETransformer.score_samples`` draws its importance samples from these so that a
row's score is the same whatever batch, order or subset it comes in. Written once over
an array namespace: NumPy rows draw in NumPy, tensor rows on their device.
"""

import math

from skebm._backends import primitives_for
from skebm._numerics import array_namespace


def _int64(value):
    """A 64-bit pattern as the signed integer an int64 array holds."""
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN = _int64(0x9E3779B97F4A7C15)
_MIX1 = _int64(0xBF58476D1CE4E5B9)
_MIX2 = _int64(0x94D049BB133111EB)


def _shift_right(x, bits):
    """The logical (unsigned) right shift of int64 bit patterns."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def _splitmix64(x):
    """The SplitMix64 finaliser: a bijective mix of 64-bit patterns held as int64
    (products wrap modulo 2**64)."""
    x = x ^ _shift_right(x, 30)
    x = x * _MIX1
    x = x ^ _shift_right(x, 27)
    x = x * _MIX2
    return x ^ _shift_right(x, 31)


def row_normal_draws(X, seed, k, d):
    """Standard-normal draws of shape (k, n_rows, d), float64, a function of each
    row only, in the namespace and on the device of X.

    Each row is hashed (its float64 bits, with ``seed``) and the hash seeds a
    counter-based SplitMix64 stream turned into normals by Box-Muller. A row's draws
    depend neither on the other rows nor on their order (batch-independent scores),
    different rows get independent draws (so a mean over rows averages the Monte
    Carlo error out), and the first k draws of a row are the same for every k.
    Libraries agree bit for bit up to the last ulp of their cosines.
    """
    bits = primitives_for(array_namespace(X)).float64_bits(X)
    xp, device = array_namespace(bits), bits.device
    h = xp.full((bits.shape[0],), _int64(int(seed)), dtype=xp.int64, device=device)
    for j in range(bits.shape[1]):
        h = _splitmix64(h ^ (bits[:, j] + _GOLDEN))
    m = xp.arange(k * d, dtype=xp.int64, device=device)
    stream = h[:, None] + _GOLDEN * (2 * (m // 2) + 1)[None, :]
    u1 = xp.astype(_shift_right(_splitmix64(stream), 11), xp.float64) * 2.0**-53
    u2 = xp.astype(_shift_right(_splitmix64(stream + _GOLDEN), 11), xp.float64)
    u2 = u2 * 2.0**-53
    radius = xp.sqrt(-2.0 * xp.log1p(-u1))  # 1 - u1 in (0, 1]
    # cos for even m, sin (cos shifted by pi / 2) for odd m of the same pair
    angle = 2.0 * math.pi * u2 - 0.5 * math.pi * xp.astype(m % 2, xp.float64)
    eps = radius * xp.cos(angle)
    return xp.permute_dims(xp.reshape(eps, (bits.shape[0], k, d)), (1, 0, 2))
