"""The digits bundled with scikit-learn, scaled to [0, 1], and the shifted copies."""

import numpy as np
from sklearn.datasets import load_digits


def digits(nudge=False):
    """(X, y) with X in [0, 1]; ``nudge`` adds the four one-pixel shifts (x5 rows)."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    if not nudge:
        return X, y
    images = X.reshape(-1, 8, 8)
    shifted = [images]
    for axis, step in ((1, 1), (1, -1), (2, 1), (2, -1)):
        moved = np.roll(images, step, axis=axis)
        edge = 0 if step == 1 else -1
        index = [slice(None)] * 3
        index[axis] = edge
        moved[tuple(index)] = 0.0  # zero padding instead of wrapping around
        shifted.append(moved)
    return np.concatenate(shifted).reshape(-1, 64), np.tile(y, 5)
