"""The one training engine: transactions, epochs, rollback, interrupts, progress.

Every estimator's public methods that change it run inside :func:`transaction`: they
complete, or the estimator's ``__dict__`` is put back as it was before the call, in
one assignment. The iterative fits run :func:`run_epochs` over a small
:class:`Trainer` the estimator provides. This module knows no concrete estimator and
never imports torch.
"""

import contextlib
import copy
import functools
import os
import sys
import threading
import time
import warnings
import weakref

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning

#: folders (and contextlib, whose frames run ``with`` blocks) whose frames a warning
#: skips, to point at the user's line
_LIBRARY_DIRS = (
    *(
        os.path.dirname(os.path.abspath(p)) + os.sep
        for p in (__file__, sklearn.__file__)
    ),
    contextlib.__file__,
)


def user_stacklevel():
    """``stacklevel`` that makes a warning issued by the caller of this function
    point at the first frame outside skebm and scikit-learn (the user's line,
    whatever the wrappers and helpers in between)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
        frame, level = frame.f_back, level + 1
    return level


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
    """A copy of ``vars(estimator)`` that :func:`transaction` puts back on failure."""
    return {key: _copy_value(value) for key, value in vars(estimator).items()}


def transaction(method):
    """Run ``method`` as a transaction: on any exception (KeyboardInterrupt
    included) the estimator is left exactly as it was, then the exception
    propagates."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        snap = snapshot(self)  # an interrupt in here has changed nothing yet
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            # one store, no call: CPython checks for pending signals on calls and
            # backward jumps, so a second Ctrl-C cannot land before the restore
            self.__dict__ = snap
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


# -- the training loop -----------------------------------------------------------------


class Trainer:
    """The training state of one fit call, and one epoch over it.

    Each training loop builds one (``skebm.base._StateTrainer``,
    ``skebm._neural._NeuralTrainer``); :func:`run_epochs` drives it through:

    * ``snapshot()`` - copies of everything an epoch changes, which later training
      never changes;
    * ``restore(snap)`` - copy ``snap`` back into the training state (so one
      snapshot can be restored twice);
    * ``run_epoch(order, learning_rate)`` - one pass over the rows in ``order``
      (None: as given); the mean objective;
    * ``divergence(objective)`` - a reason (str) when the epoch blew up, else None;
    * ``end_epoch(objective)`` - after a completed epoch: True to stop (convergence,
      early stopping); never, unless overridden;
    * ``monitor()`` - ``(name, value)`` for the progress line, or None;
    * ``model_state(snap, n_epochs)`` - the fitted attributes of ``snap``,
      ``n_epochs`` epochs into the call (callbacks build a model from them);
    * ``commit(snap, n_epochs, objectives)`` - write ``snap``, the state after the
      last completed epoch, into the estimator, with the number of epochs it took
      and their objectives.
    """

    def end_epoch(self, objective):
        """After a completed epoch: True to stop (convergence, early stopping)."""
        return False


#: while set (thread-local), an interrupt always propagates: for fits run inside
#: another fit (cross-fitted calibration), whose caller decides what to keep
_NESTED = threading.local()


class nested_fit:
    """Context manager: fits inside it let KeyboardInterrupt propagate."""

    def __enter__(self):
        self._previous = getattr(_NESTED, "active", False)
        _NESTED.active = True

    def __exit__(self, *exc):
        _NESTED.active = self._previous


@contextlib.contextmanager
def skip_on_interrupt(estimator, step, keeps):
    """Context manager for an optional last step of a fit (a calibration): Ctrl-C
    inside it ends the step with a warning and keeps what the step would replace,
    and the fit returns normally with the model trained so far."""
    try:
        yield
    except KeyboardInterrupt:
        warnings.warn(
            f"{type(estimator).__name__}: {step} interrupted by the user; "
            f"the model is trained and keeps {keeps}.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def _print_progress(name, start, done, n_epochs, n_before, monitor):
    """The verbose line: ``[Name] epoch i/N (total n_before + i), objective, elapsed,
    time left``; ``monitor`` is ``(name, value)`` or None."""
    elapsed = time.perf_counter() - start
    left = elapsed / done * (n_epochs - done)
    value = "" if monitor is None else f", {monitor[0]} = {monitor[1]:.4f}"
    print(
        f"[{name}] epoch {done}/{n_epochs} (total {n_before + done})"
        f"{value}, elapsed {elapsed:.1f}s, left ~{left:.1f}s",
        flush=True,
    )


def run_epochs(
    estimator,
    trainer,
    *,
    n_epochs,
    n_rows,
    shuffle,
    seed,
    learning_rate,
    tasks,
    advice,
    max_rollbacks=3,
    label=None,
):
    """Train for up to ``n_epochs`` epochs, then ``trainer.commit`` the result.

    * An epoch that diverges is rolled back; the learning rate of this call is
      halved, with a :class:`ConvergenceWarning`; after ``max_rollbacks`` rollbacks
      a :class:`FloatingPointError` names the cause and ``advice``.
    * KeyboardInterrupt after at least one completed epoch stops the training
      with a warning and keeps the state after the last completed epoch;
      before that (and always inside :class:`nested_fit`) it propagates, and the
      caller's :func:`transaction` leaves the estimator as it was.

    Returns ``(learning_rate, stopped, interrupted)``: the rate the last epoch ran
    at; whether training stopped before ``n_epochs`` (convergence, a callback or an
    interrupt); whether an interrupt stopped it.
    """
    order_rng = np.random.default_rng(seed)
    label = label or getattr(estimator, "_progress_label", None)
    name = type(estimator).__name__ + (f" {label}" if label else "")
    start = time.perf_counter()
    n_before = getattr(estimator, "n_iter_", 0)
    # (state after the last completed epoch, epochs completed, their objectives):
    # replaced in one assignment, so an interrupt never sees half of it
    good = (trainer.snapshot(), 0, ())
    rollbacks = 0
    stop = interrupted = False
    try:
        while good[1] < n_epochs and not stop:
            tasks.begin_epoch(functools.partial(trainer.model_state, *good[:2]))
            order = order_rng.permutation(n_rows) if shuffle else None
            with np.errstate(over="ignore", invalid="ignore"):
                objective = float(trainer.run_epoch(order, learning_rate))
            reason = trainer.divergence(objective)
            if reason is not None:
                rollbacks += 1
                trainer.restore(good[0])
                if rollbacks > max_rollbacks:
                    raise FloatingPointError(
                        f"{type(estimator).__name__} diverged {rollbacks} times "
                        f"({reason}) even after lowering the learning rate to "
                        f"{learning_rate:.3g}. {advice}"
                    )
                learning_rate *= 0.5
                warnings.warn(
                    f"{type(estimator).__name__} diverged in epoch "
                    f"{n_before + good[1] + 1} ({reason}); rolled back to the start "
                    f"of the epoch and halved the learning rate to "
                    f"{learning_rate:.3g}.",
                    ConvergenceWarning,
                    stacklevel=user_stacklevel(),
                )
                continue
            stop = trainer.end_epoch(objective)
            good = (trainer.snapshot(), good[1] + 1, good[2] + (objective,))
            if estimator.verbose:
                _print_progress(
                    name, start, good[1], n_epochs, n_before, trainer.monitor()
                )
            if tasks.end_epoch(functools.partial(trainer.model_state, *good[:2])):
                stop = True  # a callback asked to stop
    except KeyboardInterrupt:
        tasks.abort_epoch()
        if good[1] == 0 or getattr(_NESTED, "active", False):
            raise
        interrupted = True
        warnings.warn(
            f"{type(estimator).__name__}: training interrupted by the user after "
            f"{good[1]} epoch(s) of this call; the model keeps the state after the "
            "last completed epoch.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    trainer.commit(good[0], good[1], list(good[2]))
    return learning_rate, stop or interrupted, interrupted
