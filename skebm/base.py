"""The energy-model contract and the mixins shared by the estimators.

* :class:`EnergyMixin` - every skebm estimator answers ``energy``, ``score_samples``
  and ``sample``; ``score`` is the mean of ``score_samples`` so that unsupervised
  model selection (``GridSearchCV`` without labels) works.
* :class:`BackendMixin` - resolves the ``backend`` / ``device`` parameters and moves
  fitted state between NumPy attributes and backend arrays.
* :class:`IterativeFitMixin` - ``fit`` / ``partial_fit`` over backend state arrays,
  driven by the one training engine (:mod:`skebm._engine`).
* :class:`VersionedStateMixin` - pickles (and skops files) record the skebm and
  scikit-learn versions; loading under other versions warns, as scikit-learn does.
"""

import warnings

import numpy as np
import scipy.sparse as sp
from array_api_compat import array_namespace
from sklearn import __version__ as _sklearn_version
from sklearn.exceptions import (
    InconsistentVersionWarning as _SklearnInconsistentVersionWarning,
)
from sklearn.utils import check_random_state

from skebm import _version
from skebm._backends import get_backend
from skebm._engine import Trainer, run_epochs
from skebm.utils._array_api import array_api_boundary, numpy_state
from skebm.utils._callbacks import CallbackSupport, EpochTasks

_SEED_MAX = np.iinfo(np.int32).max


class InconsistentVersionWarning(_SklearnInconsistentVersionWarning):
    """An estimator was unpickled under another skebm or scikit-learn version.

    A subclass of scikit-learn's warning of the same name, so one filter on
    ``sklearn.exceptions.InconsistentVersionWarning`` covers both libraries.

    Parameters
    ----------
    estimator_name : str
        Estimator name.
    library : str
        "skebm" or "scikit-learn".
    current_version : str
        Version of ``library`` in use.
    original_version : str
        Version of ``library`` the estimator was pickled with.
    """

    def __init__(self, *, estimator_name, library, current_version, original_version):
        super().__init__(
            estimator_name=estimator_name,
            current_sklearn_version=current_version,
            original_sklearn_version=original_version,
        )
        self.library = library

    def __str__(self):
        return (
            f"Trying to unpickle estimator {self.estimator_name} from {self.library} "
            f"version {self.original_sklearn_version} when using version "
            f"{self.current_sklearn_version}. This might lead to breaking code or "
            f"invalid results. Refit the model, or load it with {self.library}=="
            f"{self.original_sklearn_version}."
        )


class VersionedStateMixin:
    """Record the skebm and scikit-learn versions in the pickled state; warn on load.

    scikit-learn's ``BaseEstimator`` does this only for classes in ``sklearn.*``.
    ``__getstate__`` / ``__setstate__`` call ``super()``, so mixins that convert
    state (:class:`skebm._neural.NeuralFitMixin`) sit before this one in the MRO.
    """

    def __getstate__(self):
        # arrays of other namespaces (fits under array API dispatch) are saved as
        # NumPy: a pickle or skops file never holds a torch object
        state = numpy_state(super().__getstate__())
        state["_skebm_version"] = _version.__version__
        state["_sklearn_version"] = _sklearn_version
        return state

    def __setstate__(self, state):
        state = dict(state)
        for library, key, current in (
            ("skebm", "_skebm_version", _version.__version__),
            ("scikit-learn", "_sklearn_version", _sklearn_version),
        ):
            original = state.pop(key, "unknown")
            if original != current:
                warnings.warn(
                    InconsistentVersionWarning(
                        estimator_name=type(self).__name__,
                        library=library,
                        current_version=current,
                        original_version=original,
                    ),
                    stacklevel=2,
                )
        super().__setstate__(state)


class EnergyMixin:
    """Mixin for energy-based models: ``score`` is the mean ``score_samples``.

    Subclasses implement ``energy(X)`` (lower is more probable),
    ``score_samples(X)`` (log-density, up to a constant where stated) and
    ``sample(n_samples)``.
    """

    @array_api_boundary
    def score(self, X, y=None):
        """Mean of :meth:`score_samples` over the rows of X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.
        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float
            Mean log-likelihood (higher is better), usable by ``GridSearchCV``
            without labels.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import RBM
        >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
        >>> rbm = RBM(n_components=2, n_iter=20, random_state=0).fit(X)
        >>> bool(np.isclose(rbm.score(X), rbm.score_samples(X).mean()))
        True
        """
        scores = self.score_samples(X)  # a tensor from a torch-only estimator
        return float(array_namespace(scores).mean(scores))


class BackendMixin(VersionedStateMixin):
    """Backend and device resolution, and the NumPy <-> backend state transfer.

    Fitted state lives in NumPy attributes only, so pickles hold no backend arrays
    and carry the library versions (:class:`VersionedStateMixin`).
    """

    def _get_backend(self):
        backend = get_backend(self.backend)
        return backend, backend.core.resolve_device(self.device)

    def _load_state(self, backend, device, names, dtype):
        """Backend arrays from the NumPy attributes ``names`` (zero-copy on the CPU)."""
        return {
            key: backend.core.asarray(getattr(self, attr), dtype, device)
            for key, attr in names.items()
        }

    def _store_state(self, backend, state, names):
        for key, attr in names.items():
            setattr(self, attr, backend.core.to_numpy(state[key]))

    @staticmethod
    def _map_rows(backend, device, X, fn, dtype, *row_args, batch_rows=4096):
        """Apply ``fn(block, *row_arg_blocks)`` to X in row blocks; NumPy out.

        ``fn`` takes a backend block of at most ``batch_rows`` rows of X and the
        matching rows of ``row_args`` (NumPy arrays with one entry per row of X).
        The output is allocated once, from the first block, and filled in place,
        so nothing but the output and one block's temporaries is ever held; with
        no rows, ``fn`` runs once on an empty block, which gives the output's
        shape. Runs within the caller's thread budget.
        """
        n = X.shape[0]
        out = None
        with backend.core.thread_limit():
            for start in range(0, max(n, 1), batch_rows):
                rows = slice(start, min(start + batch_rows, n))
                block = backend.core.to_numpy(
                    fn(
                        backend.core.asarray(X[rows], dtype, device),
                        *(a[rows] for a in row_args),
                    )
                )
                if out is None:
                    out = np.empty((n, *block.shape[1:]), dtype=block.dtype)
                out[rows] = block
        return out


def block_rows(width, itemsize, budget=1 << 24):
    """Rows per block so that ``width`` values per row take about ``budget`` bytes
    (by default 16 MiB, the temporaries of one inference block)."""
    return max(1, int(budget // (max(int(width), 1) * itemsize)))


class _StateTrainer(Trainer):
    """Training state held as a dict of backend arrays (the RBM's).

    Keys in ``estimator._averaged_names`` are averaged over the updates of the last
    ``estimator._n_average_epochs()`` epochs of the call (Polyak-Ruppert); their
    last values go to ``_last_update``, from which the next call resumes.
    """

    def __init__(self, estimator, X, n_epochs):
        self.est, self.X = estimator, X
        self.backend, self.device = estimator._get_backend()
        self.core = self.backend.core
        self.dtype = estimator._dtype
        seed = estimator.random_state_.randint(_SEED_MAX)
        self.rng = self.core.make_rng(seed, self.device)
        start = {k: getattr(estimator, a) for k, a in estimator._state_names.items()}
        # training resumes from the last update, not from the stored average
        start.update(getattr(estimator, "_last_update", None) or {})
        # training works on copies: the fitted NumPy attributes are never written.
        # Column-major copies: the hidden field v W^T of a (n, V) batch and a (H, V)
        # W is then a plain GEMM of two row-major operands, much faster than the
        # transposed one at small batches
        self.state = {
            k: self.core.asarray(np.array(v, order="F"), self.dtype, self.device)
            for k, v in start.items()
        }
        self.mean = {
            k: array_namespace(self.state[k]).zeros_like(self.state[k])
            for k in estimator._averaged_names
        }
        self.n_mean = 0
        self.n_epochs = n_epochs
        self.n_average = min(estimator._n_average_epochs(), n_epochs)
        self.epoch = 0

    def _copy(self, snap):
        """A copy of ``(state, mean, n_mean, epoch)`` that shares no array with it."""
        copy = self.core.copy
        return (
            {k: copy(v) for k, v in snap[0].items()},
            {k: copy(v) for k, v in snap[1].items()},
            *snap[2:],
        )

    def snapshot(self):
        return self._copy((self.state, self.mean, self.n_mean, self.epoch))

    def restore(self, snap):
        self.state, self.mean, self.n_mean, self.epoch = self._copy(snap)

    def run_epoch(self, order, learning_rate):
        est, X = self.est, self.X
        averaging = self.epoch >= self.n_epochs - self.n_average
        for batch in est._batches(X, self.backend, self.device, self.dtype, order):
            est._train_batch(self.backend, self.state, batch, self.rng, learning_rate)
            if averaging:
                self.n_mean += 1
                for k, m in self.mean.items():
                    m += (self.state[k] - m) / self.n_mean
        self.epoch += 1
        return est._objective(self.backend, self.state, X)

    def divergence(self, objective):
        return self.est._divergence(self.backend, self.state, objective)

    def _stored(self, snap):
        """The state of ``snap`` to store: the averages replace averaged keys."""
        return {**snap[0], **snap[1]} if snap[2] else snap[0]

    def monitor(self):
        return self.est._monitor(self.backend, self._stored(self.snapshot()), self.X)

    def model_state(self, snap, n_epochs):
        # row-major fitted attributes, whatever the training layout
        fitted = {
            attr: np.array(self.core.to_numpy(self._stored(snap)[key]), order="C")
            for key, attr in self.est._state_names.items()
        }
        return dict(fitted, n_iter_=getattr(self.est, "n_iter_", 0) + n_epochs)

    def commit(self, snap, n_epochs, objectives):
        to_numpy = self.core.to_numpy
        last = None
        if snap[2]:  # averaged: training resumes from the last update
            last = {k: np.array(to_numpy(snap[0][k]), order="C") for k in snap[1]}
        vars(self.est).update(self.model_state(snap, n_epochs), _last_update=last)


class IterativeFitMixin(CallbackSupport):
    """The shared ``fit`` / ``partial_fit`` template over backend state arrays.

    ``fit`` = reset + ``_n_epochs()`` epochs of the same per-batch step that
    ``partial_fit`` runs once (CONTRIBUTING, convention 4), driven by
    :func:`skebm._engine.run_epochs`. Every call starts from the current
    ``learning_rate`` (halved within the call if an epoch diverges). Subclasses
    provide:

    * ``_validate_fit_input(X, reset)`` -> validated X,
    * ``_initialize(X)`` -> set fresh parameters (the reset),
    * ``_state_names`` -> {backend key: attribute name} of the trained state,
    * ``_averaged_names`` -> the state keys whose stored values are averaged over
      the last ``_n_average_epochs()`` epochs of a call (see :class:`_StateTrainer`),
    * ``_n_epochs()`` -> epochs that ``fit`` runs,
    * ``_learning_rate()`` -> the learning rate each call starts from,
    * ``_dtype`` -> the floating dtype of the trained state,
    * ``_step_work(X)`` -> multiply-adds of one training step (sizes torch's thread
      pool) or None,
    * ``_train_batch(backend, state, batch, rng, learning_rate)`` -> one update,
    * ``_objective(backend, state, X)`` -> the epoch's objective (lower is better),
    * ``_divergence(backend, state, objective)`` -> a reason string or None,
    * ``_divergence_advice`` -> what to change when training keeps diverging,
    * ``_monitor(backend, state, X)`` -> (name, value) for the verbose line.

    Up to three diverging epochs of a call are rolled back; a fourth is an error
    (:func:`skebm._engine.run_epochs`).
    """

    def _fit(self, X, *, reset):
        first = reset or not hasattr(self, "n_iter_")
        X = self._validate_fit_input(X, reset=first)
        if first:
            vars(self).pop("n_iter_", None)
            self.random_state_ = check_random_state(self.random_state)
            self._initialize(X)
            self._last_update = None
        n_epochs = self._n_epochs() if reset else 1
        tasks = EpochTasks(self, n_epochs, X)
        with get_backend(self.backend).core.thread_limit(self._step_work(X)):
            trainer = _StateTrainer(self, X, n_epochs)
            self.learning_rate_, _, _ = run_epochs(
                self,
                trainer,
                n_epochs=n_epochs,
                n_rows=X.shape[0],
                shuffle=reset,
                seed=self.random_state_.randint(_SEED_MAX),
                learning_rate=float(self._learning_rate()),
                tasks=tasks,
                advice=self._divergence_advice,
            )
        tasks.end_fit()
        return self

    def _batches(self, X, backend, device, dtype, order):
        """Backend batches of ``batch_size`` rows of X, in the given row order."""
        n, size = X.shape[0], self.batch_size
        if sp.issparse(X):  # densified batch by batch
            for start in range(0, n, size):
                rows = slice(start, start + size)
                batch = X[rows] if order is None else X[order[rows]]
                yield backend.core.asarray(batch, dtype, device)
            return
        Xb = backend.core.asarray(X if order is None else X[order], dtype, device)
        for start in range(0, n, size):
            yield Xb[start : start + size]
