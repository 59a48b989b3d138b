"""Validation helpers shared by the estimators."""

import warnings

import numpy as np
import scipy.sparse as sp

#: the RBM's advice when it clips (its default)
_RBM_ADVICE = (
    "Bernoulli visible units read values as probabilities. Scale X first (e.g. "
    "MinMaxScaler) or use visible='gaussian' for real-valued data."
)


def clip_unit_interval(X, *, warn=False, advice=_RBM_ADVICE, stacklevel=4):
    """Clip X into [0, 1] (dense or sparse), copying only if a value lies outside.

    Bernoulli units read their inputs as probabilities of being on; anything outside
    [0, 1] is brought to the nearest probability rather than producing meaningless
    (or overflowing) energies. With ``warn``, a UserWarning gives the range found and
    ``advice``.
    """
    data = X.data if sp.issparse(X) else X
    if data.size == 0 or (data.min() >= 0.0 and data.max() <= 1.0):
        return X
    if warn:
        warnings.warn(
            f"X has values in [{data.min():.3g}, {data.max():.3g}], outside [0, 1]: "
            f"they are clipped to [0, 1]. {advice}",
            UserWarning,
            stacklevel=stacklevel,
        )
    X = X.copy()
    data = X.data if sp.issparse(X) else X
    np.clip(data, 0.0, 1.0, out=data)
    return X
