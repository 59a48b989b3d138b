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
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))  # zeros come in at the edge
    shifted = [images]
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):  # down, up, right, left
        shifted.append(padded[:, 1 - dy : 9 - dy, 1 - dx : 9 - dx])
    return np.concatenate(shifted).reshape(-1, 64), np.tile(y, 5)
