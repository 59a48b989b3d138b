"""The energy-model contract and the one training loop shared by iterative estimators.

* :class:`EnergyMixin` - every skebm estimator answers ``energy``, ``score_samples``
  and ``sample``; ``score`` is the mean of ``score_samples`` so that unsupervised
  model selection (``GridSearchCV`` without labels) works.
* :class:`BackendMixin` - resolves the ``backend`` / ``device`` parameters and moves
  fitted state between NumPy attributes and backend arrays.
* :class:`IterativeFitMixin` - ``fit`` = reset + epochs of the same per-batch step that
  ``partial_fit`` runs once (the template method of STYLE rule 4), with divergence
  detection, rollback, KeyboardInterrupt handling, one verbose line per epoch and
  one scikit-learn callback task per epoch (:mod:`skebm.utils._callbacks`).
* :class:`VersionedStateMixin` - pickles (and skops files) record the skebm and
  scikit-learn versions; loading under other versions warns, as scikit-learn does.
"""

import time
import warnings
from functools import partial

import numpy as np
import scipy.sparse as sp
from sklearn import __version__ as _sklearn_version
from sklearn.exceptions import ConvergenceWarning
from sklearn.exceptions import (
    InconsistentVersionWarning as _SklearnInconsistentVersionWarning,
)
from sklearn.utils import check_random_state

from skebm._backends import get_backend
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
        import skebm  # here: skebm/__init__ imports this module

        state = dict(super().__getstate__())
        state["_skebm_version"] = skebm.__version__
        state["_sklearn_version"] = _sklearn_version
        return state

    def __setstate__(self, state):
        import skebm

        state = dict(state)
        current = {"skebm": skebm.__version__, "scikit-learn": _sklearn_version}
        for library, key in (
            ("skebm", "_skebm_version"),
            ("scikit-learn", "_sklearn_version"),
        ):
            original = state.pop(key, "unknown")
            if original != current[library]:
                warnings.warn(
                    InconsistentVersionWarning(
                        estimator_name=type(self).__name__,
                        library=library,
                        current_version=current[library],
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
        return float(np.mean(self.score_samples(X)))


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

        Bounds the memory of inference to ``batch_rows`` rows of intermediate
        results and densifies sparse input block by block. ``row_args`` are NumPy
        arrays with one entry per row of X, sliced alongside it. Runs within the
        caller's thread budget (``backend.core.thread_limit``).
        """
        with backend.core.thread_limit():
            out = [
                backend.core.to_numpy(
                    fn(
                        backend.core.asarray(
                            X[start : start + batch_rows], dtype, device
                        ),
                        *(a[start : start + batch_rows] for a in row_args),
                    )
                )
                for start in range(0, X.shape[0], batch_rows)
            ]
        return np.concatenate(out, axis=0)


class IterativeFitMixin(CallbackSupport):
    """The shared ``fit`` / ``partial_fit`` template.

    Subclasses provide:

    * ``_validate_fit_input(X, reset)`` -> validated X,
    * ``_initialize(X)`` -> set fresh parameters (the reset),
    * ``_state_names`` -> {backend key: attribute name} of the trained state,
    * ``_n_epochs()`` -> epochs that ``fit`` runs,
    * ``_dtype`` -> the floating dtype of the trained state,
    * ``_train_batch(backend, state, batch, rng, learning_rate)`` -> one update,
    * ``_diverged(backend, state)`` -> bool,
    * ``_monitor(backend, state, X)`` -> (name, value) for the verbose line,

    and may provide ``_averaged_names`` (state keys) with ``_n_average_epochs()``:
    the stored values of those keys are then the mean of the state after each
    update of the last epochs of the call (Polyak-Ruppert tail averaging), and
    their last values go to ``_last_update``, from which the next call resumes (as
    ``SGDClassifier(average=True)`` keeps its plain weights); the other keys
    (chains, velocities, offsets) keep their last values.
    """

    #: state keys whose stored values are averaged over the last epochs
    _averaged_names: tuple = ()

    #: rollbacks allowed in one fit before it gives up with an error
    _max_rollbacks = 3

    def _fit(self, X, *, reset):
        first = reset or not hasattr(self, "n_iter_")
        X = self._validate_fit_input(X, reset=first)
        if first:
            self.random_state_ = check_random_state(self.random_state)
            self._initialize(X)
            self._last_update = None
            self.n_iter_ = 0
        n_epochs = self._n_epochs() if reset else 1
        tasks = EpochTasks(self, n_epochs, X)
        with get_backend(self.backend).core.thread_limit():
            self._run_epochs(X, n_epochs=n_epochs, shuffle=reset, tasks=tasks)
        tasks.end_fit()
        return self

    def _n_average_epochs(self):
        """Number of final epochs of a call whose updates are averaged (0: none)."""
        return 0

    def _fitted_state(self, backend, state):
        """The trained state as NumPy copies, keyed by attribute name."""
        return {
            attr: backend.core.to_numpy(backend.core.copy(state[key]))
            for key, attr in self._state_names.items()
        }

    def _batches(self, X, backend, device, dtype, order):
        """Backend batches of ``batch_size`` rows of X, in the given row order."""
        n, size = X.shape[0], self.batch_size
        if sp.issparse(X):
            for start in range(0, n, size):
                yield backend.core.asarray(
                    X[order[start : start + size]], dtype, device
                )
            return
        Xb = backend.core.asarray(X[order] if order is not None else X, dtype, device)
        for start in range(0, n, size):
            yield Xb[start : start + size]

    def _run_epochs(self, X, *, n_epochs, shuffle, tasks):
        backend, device = self._get_backend()
        dtype = self._dtype
        seed = self.random_state_.randint(_SEED_MAX)
        order_rng = np.random.default_rng(seed)
        rng = backend.core.make_rng(seed, device)
        state = self._load_state(backend, device, self._state_names, dtype)
        # training resumes from the last update, not from the stored average
        for k, v in (getattr(self, "_last_update", None) or {}).items():
            state[k] = backend.core.asarray(v, dtype, device)
        n_average = min(self._n_average_epochs(), n_epochs)
        # running means of the averaged state over the completed averaging epochs
        mean = {k: backend.core.zeros_like(state[k]) for k in self._averaged_names}
        n_mean = 0
        rollbacks = 0
        epoch = 0
        try:
            while epoch < n_epochs:
                tic = time.perf_counter()
                tasks.begin_epoch(
                    partial(self._model_state, backend, state, mean, n_mean)
                )
                snapshot = {k: backend.core.copy(v) for k, v in state.items()}
                averaging = epoch >= n_epochs - n_average
                if averaging:  # this epoch's means; kept only if it does not diverge
                    running = {k: backend.core.copy(v) for k, v in mean.items()}
                    n_running = n_mean
                order = (
                    order_rng.permutation(X.shape[0])
                    if shuffle
                    else np.arange(X.shape[0])
                )
                with np.errstate(over="ignore", invalid="ignore"):
                    for batch in self._batches(X, backend, device, dtype, order):
                        self._train_batch(
                            backend, state, batch, rng, self.learning_rate_
                        )
                        if averaging:
                            n_running += 1
                            for k, m in running.items():
                                m += (state[k] - m) / n_running
                if self._diverged(backend, state):
                    rollbacks += 1
                    state = snapshot
                    self._on_divergence(rollbacks)
                    continue
                if averaging:
                    mean, n_mean = running, n_running
                epoch += 1
                self.n_iter_ += 1
                if self.verbose:
                    averaged = self._averaged(state, mean, n_mean)
                    name, value = self._monitor(backend, averaged, X)
                    print(
                        f"[{type(self).__name__}] epoch {self.n_iter_}, "
                        f"{name} = {value:.4f}, time = {time.perf_counter() - tic:.2f}s"
                    )
                if tasks.end_epoch(
                    partial(self._model_state, backend, state, mean, n_mean)
                ):
                    break  # a callback asked to stop
        except KeyboardInterrupt:
            tasks.abort_epoch()
            warnings.warn(
                f"Training interrupted by the user after {self.n_iter_} epochs; the "
                "model keeps the parameters of the last completed batch (averaged "
                "over the completed averaging epochs, if any).",
                UserWarning,
                stacklevel=3,
            )
            if self._diverged(backend, state):
                state = snapshot
        # tail averaging: the mean over the completed averaging epochs is stored;
        # the last update is kept aside as the point the next call resumes from
        self._last_update = (
            {k: backend.core.to_numpy(backend.core.copy(state[k])) for k in mean}
            if n_mean
            else None
        )
        self._store_state(
            backend, self._averaged(state, mean, n_mean), self._state_names
        )

    @staticmethod
    def _averaged(state, mean, n_mean):
        """The state with the averaged keys replaced by their means, if any."""
        return {**state, **mean} if n_mean else state

    def _model_state(self, backend, state, mean, n_mean):
        """What fit would store if it stopped now, as NumPy copies (callbacks)."""
        return self._fitted_state(backend, self._averaged(state, mean, n_mean))

    def _on_divergence(self, rollbacks):
        """Halve the learning rate and warn, or raise after ``_max_rollbacks``."""
        if rollbacks > self._max_rollbacks:
            raise FloatingPointError(
                f"{type(self).__name__} diverged {rollbacks} times (non-finite or "
                "exploding parameters) even after lowering the learning rate to "
                f"{self.learning_rate_:.3g}. Lower `learning_rate`, scale the data "
                "(StandardScaler for visible='gaussian', MinMaxScaler for "
                "'bernoulli'), or add `weight_decay`."
            )
        self.learning_rate_ *= 0.5
        warnings.warn(
            f"{type(self).__name__} diverged in epoch {self.n_iter_ + 1}; rolled back "
            f"to the start of the epoch and halved the learning rate to "
            f"{self.learning_rate_:.3g}.",
            ConvergenceWarning,
            stacklevel=4,
        )
