"""Validation helpers shared by the estimators."""

import math
import warnings

import numpy as np
import scipy.sparse as sp
from array_api_compat import array_namespace
from sklearn import get_config
from sklearn.utils import assert_all_finite

from skebm.utils._array_api import numpy_dtype, to_numpy

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
    ``advice``. X of another namespace (a tensor) is clipped in its namespace. A
    sparse X with duplicate entries, which stand for their sum, is clipped as the
    sums (on a canonical copy).
    """
    if sp.issparse(X) and not getattr(X, "has_canonical_format", True):
        X = X.copy()
        X.sum_duplicates()
    data = X.data if sp.issparse(X) else X
    xp = array_namespace(data)
    if math.prod(data.shape) == 0:
        return X
    low, high = float(xp.min(data)), float(xp.max(data))
    if low >= 0.0 and high <= 1.0:
        return X
    if warn:
        warnings.warn(
            f"X has values in [{low:.3g}, {high:.3g}], outside [0, 1]: "
            f"they are clipped to [0, 1]. {advice}",
            UserWarning,
            stacklevel=stacklevel,
        )
    if sp.issparse(X):
        X = X.copy()
        X.data = np.clip(X.data, 0.0, 1.0)
        return X
    return xp.clip(X, 0.0, 1.0)


def check_finite(X, backend, *, estimator_name=None):
    """scikit-learn's finiteness check of a dense floating X, summed by ``backend``.

    Use after ``validate_data(..., ensure_all_finite=False)``. A finite sum proves
    every entry finite, as in scikit-learn's own first pass; otherwise its
    element-wise check raises its usual error (or passes, where only the sum
    overflowed). The torch backend reduces several times faster than NumPy, which
    matters where recall costs little more than reading its input (HopfieldMemory).
    ``sklearn.set_config(assume_finite=True)`` skips the check, as in scikit-learn.
    """
    if get_config()["assume_finite"]:
        return
    with backend.core.thread_limit():
        if backend.core.sum_is_finite(X):
            return
    assert_all_finite(X, estimator_name=estimator_name, input_name="X")


def check_finite_output(out, estimator, method, X=None):
    """Return ``out`` if every entry is finite; else a ValueError naming the cause.

    Outputs are finite or the call fails: a non-finite value comes from inputs (or
    codes) too far from the training data for the model's floating dtype.
    """
    xp = array_namespace(out)
    if bool(xp.all(xp.isfinite(out))):
        return out
    finite = to_numpy(xp.isfinite(out))  # a failing call reads back its flags
    rows = np.flatnonzero(~finite.reshape(finite.shape[0], -1).all(axis=1))
    where = ""
    if X is not None and math.prod(X.shape):
        largest = float(np.max(np.abs(to_numpy(X[rows]))))
        where = f" (their largest |value| is {largest:.3g})"
    raise ValueError(
        f"{type(estimator).__name__}.{method} overflowed on {rows.size} row(s), "
        f"e.g. row {rows[0]}{where}: the input lies too far from the training data "
        f"for {numpy_dtype(out.dtype)} arithmetic. Scale or clip the input to the "
        "training range."
    )


def check_same_classes(classes, classes_):
    """A ValueError, worded as scikit-learn's, when the ``classes`` given to a later
    ``partial_fit`` are not those of the first call (``classes_``)."""
    given = np.unique(to_numpy(classes))
    if given.shape != classes_.shape or not np.all(given == classes_):
        raise ValueError(
            f"`classes={classes!r}` is not the same as on last call to partial_fit, "
            f"was: {classes_!r}"
        )
