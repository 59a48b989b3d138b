"""The one training engine: transactions, epochs, rollback, interrupts, progress.

Every estimator's public methods that change it run inside :func:`transaction`: they
complete, or the estimator's ``__dict__`` is put back as it was before the call, in
one assignment. The iterative fits run :func:`run_epochs` over a small
:class:`Trainer` the estimator provides. This module knows no concrete estimator and
never imports torch.
"""

import copy
import functools
import threading
import time
import warnings
import weakref

import numpy as np
from sklearn.exceptions import ConvergenceWarning

#: values of an estimator's ``__dict__`` that a call may change in place; a snapshot
#: copies them (one level for containers), every other value is kept by reference.
#: Fitted arrays are never written in place: training works on copies.
_MUTABLE = (list, dict, set, np.random.RandomState, np.random.Generator)


def _copy_value(value):
    if isinstance(value, (np.random.RandomState, np.random.Generator)):
        return copy.deepcopy(value)
    if isinstance(value, _MUTABLE):
        return copy.copy(value)
    return value


def snapshot(estimator):
    """A copy of ``vars(estimator)`` that :func:`restore` can put back."""
    return {key: _copy_value(value) for key, value in vars(estimator).items()}


def restore(estimator, snap):
    """Put a :func:`snapshot` back, in one assignment."""
    estimator.__dict__ = snap


def transaction(method):
    """Run ``method`` as a transaction: on any exception (KeyboardInterrupt
    included) the estimator is left exactly as it was, then the exception
    propagates."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        snap = snapshot(self)
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            restore(self, snap)
            raise

    return wrapper


# -- lazily built objects (torch modules) kept outside the estimator ------------------

_LAZY_LOCK = threading.RLock()
_LAZY = weakref.WeakKeyDictionary()


def lazy(estimator, key, build):
    """``build()``, built once per ``key`` under a lock and kept outside ``__dict__``.

    Pickles, ``clone`` and ``copy.deepcopy`` never see what is kept here, and a
    transaction never has to undo it: ``key`` names the state it was built from
    (a rolled-back call restores the old key, which then misses and rebuilds).
    """
    with _LAZY_LOCK:
        slot = _LAZY.get(estimator)
        if slot is None or slot[0] != key:
            slot = (key, build())
            _LAZY[estimator] = slot
        return slot[1]


def keep(estimator, key, value):
    """Store ``value`` as what :func:`lazy` returns for ``key`` (after a fit)."""
    with _LAZY_LOCK:
        _LAZY[estimator] = (key, value)
