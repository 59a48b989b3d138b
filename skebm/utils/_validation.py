"""Validation helpers shared by the estimators."""

import warnings

import numpy as np
import scipy.sparse as sp


def clip_unit_interval(X, *, warn=False):
    """Clip X into [0, 1] (dense or sparse), copying only if a value lies outside.

    Bernoulli units read their inputs as probabilities of being on; anything outside
    [0, 1] is brought to the nearest probability rather than producing meaningless
    (or overflowing) energies.
    """
    data = X.data if sp.issparse(X) else X
    if data.size == 0 or (data.min() >= 0.0 and data.max() <= 1.0):
        return X
    if warn:
        warnings.warn(
            "X has values outside [0, 1]. Bernoulli visible units read values as "
            "probabilities, so they are clipped to [0, 1]. Scale X first (e.g. "
            "MinMaxScaler) or use visible='gaussian' for real-valued data.",
            UserWarning,
            stacklevel=4,
        )
    X = X.copy()
    data = X.data if sp.issparse(X) else X
    np.clip(data, 0.0, 1.0, out=data)
    return X
