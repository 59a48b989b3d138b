"""Scores used by the demo and the benchmarks that scikit-learn does not ship."""

import numpy as np


def expected_calibration_error(y_true, proba, n_bins=15):
    """Expected calibration error of the top-class probability (Guo et al., 2017).

    The sum over ``n_bins`` equal-width confidence bins of the fraction of samples in
    the bin times |accuracy - mean confidence| in the bin.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Class indices (positions in the columns of ``proba``).
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities.
    n_bins : int, default=15
        Number of confidence bins on [0, 1].

    Returns
    -------
    ece : float
        In [0, 1]; 0 is perfectly calibrated.
    """
    proba = np.asarray(proba)
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            total += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(total)
