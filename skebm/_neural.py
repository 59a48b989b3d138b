"""The one training loop of the torch-only neural estimators.

:class:`NeuralFitMixin` is to ``LangevinEBMClassifier`` and ``VAETransformer`` what
:class:`skebm.base.IterativeFitMixin` is to the RBM: ``fit`` = reset + epochs of the
same per-batch step that ``partial_fit`` runs once (STYLE rule 4). It adds what
``MLPClassifier`` users expect: ``tol`` / ``n_iter_no_change`` convergence,
``early_stopping`` on a held-out ``validation_fraction``, ``warm_start``,
``loss_curve_``; and what energy models need: divergence detection with rollback,
and KeyboardInterrupt handling that leaves a usable model. Torch work runs within the
caller's thread budget (``core.thread_limit`` of the torch backend) and each epoch is
a scikit-learn callback task (:mod:`skebm.utils._callbacks`).

The torch module, its optimiser and generator live in private attributes while the
estimator is in memory; pickles (and skops files) hold their state as NumPy arrays
only, so a model fitted on a GPU loads on a machine without one. This module never
imports torch: it reaches it through :func:`require_torch`.
"""

import functools
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

from skebm._backends import get_backend
from skebm.base import _SEED_MAX, VersionedStateMixin
from skebm.utils._callbacks import CallbackSupport, EpochTasks

#: private attributes tied to torch (objects, their device): never pickled; the module
#: and optimiser travel as NumPy ``_net_state`` / ``_optim_state`` instead
_TORCH_ATTRS = ("_net", "_optim", "_net_device")

#: hidden-layer activations of the default networks (the keys of the torch backend's
#: ``nn.ACTIVATIONS`` registry; listed here so that validation needs no torch)
ACTIVATION_NAMES = (
    "identity",
    "logistic",
    "tanh",
    "relu",
    "elu",
    "softplus",
    "swish",
    "silu",
)


def require_torch(owner):
    """The torch backend package, or an ImportError that says how to install torch."""
    try:
        return get_backend("torch")
    except ImportError as exc:
        raise ImportError(
            f"{owner} needs PyTorch, which is not installed. Install it with "
            "`pip install torch` (or `pip install skebm[torch]`)."
        ) from exc


class NeuralFitMixin(CallbackSupport, VersionedStateMixin):
    """Shared ``fit`` / ``partial_fit`` loop for estimators built on a torch module.

    Subclasses provide:

    * ``_validate_fit_data(X, y, reset, classes)`` -> validated ``(X, y)``;
      ``y`` is ``None`` or an integer / float NumPy array aligned with X,
    * ``_initialize(X, y)`` -> fitted metadata (ranges, ``classes_`` ...),
    * ``_module_factory(be)`` -> a zero-argument callable building the module,
    * ``_loss_fn(be, device, generator)`` -> ``loss_fn(Xb, yb) -> (loss, monitor)``,
    * ``_validation_score(X, y)`` -> float, higher is better (early stopping),
    * optionally ``_stratify`` (bool), ``_begin_fit`` / ``_end_fit`` hooks,
      ``_divergence_reason()`` (a string when training exploded) and
      ``_on_divergence(rollbacks)``.
    """

    #: rollbacks allowed in one fit before it gives up with an error
    _max_rollbacks = 3
    #: split stratified by y (classifiers)
    _stratify = False

    # -- torch objects <-> NumPy state ----------------------------------------------

    def _torch(self):
        return require_torch(type(self).__name__)

    def _ensure_module(self, be, device):
        """The cached module on ``device``, rebuilt from NumPy state after unpickling."""
        net = getattr(self, "_net", None)
        if net is None:
            net = be.nn.build(self._module_factory(be), 0, device, self._dtype)
            be.nn.load_module_state(net, self._net_state)
            self._net = net
            self._optim = be.nn.adam(net, self.learning_rate_)
            if getattr(self, "_optim_state", None) is not None:
                be.nn.load_optimizer_state(self._optim, self._optim_state, device)
            self._net_state = self._optim_state = None
            self._net_device = device
        elif self._net_device != device:
            net.to(device)
            # optimiser moments follow their parameters
            state = be.nn.optimizer_state(self._optim)
            self._optim = be.nn.adam(net, self.learning_rate_)
            be.nn.load_optimizer_state(self._optim, state, device)
            self._net_device = device
        return net

    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        if state.get("_net") is not None:
            be = self._torch()
            state["_net_state"] = be.nn.module_state(state["_net"])
            state["_optim_state"] = be.nn.optimizer_state(state["_optim"])
        for attr in _TORCH_ATTRS:
            state.pop(attr, None)
        if "_dtype" in state:  # a name, not a numpy.dtype: skops trusts str
            state["_dtype"] = np.dtype(state["_dtype"]).name
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if hasattr(self, "_dtype"):
            self._dtype = np.dtype(self._dtype)
        self._net = self._optim = None

    def _predict_tensor(self, X, fn, dtype=None, batch_rows=4096):
        """Apply ``fn(be, net, block)`` (a tensor function) to X in row blocks."""
        be = self._torch()
        device = be.core.resolve_device(self.device)
        net = self._ensure_module(be, device)
        dtype = dtype or self._dtype
        with be.core.thread_limit():
            out = [
                be.core.to_numpy(
                    fn(be, net, be.core.asarray(X[i : i + batch_rows], dtype, device))
                )
                for i in range(0, X.shape[0], batch_rows)
            ]
        return np.concatenate(out, axis=0)

    # -- the loop ---------------------------------------------------------------------

    def _resolved_batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        return min(self.batch_size, n_samples)

    def _fit(self, X, y=None, *, incremental, classes=None):
        be = self._torch()
        device = be.core.resolve_device(self.device)
        first = not hasattr(self, "n_iter_") or not (incremental or self.warm_start)
        data = X, y  # for the callbacks: the validated X is scaled, y encoded
        self._interrupted = False
        X, y = self._validate_fit_data(X, y, reset=first, classes=classes)
        if first:
            self.random_state_ = check_random_state(self.random_state)
            self._dtype = X.dtype
            self._initialize(X, y)
            seed = self.random_state_.randint(_SEED_MAX)
            self._net = be.nn.build(self._module_factory(be), seed, device, X.dtype)
            self._net_device = device
            self.learning_rate_ = float(self.learning_rate_init)
            self._optim = be.nn.adam(self._net, self.learning_rate_)
            self.n_iter_ = 0
            self.loss_curve_ = []
            self.best_loss_ = np.inf
            self._no_improvement_count = 0
        else:
            self._ensure_module(be, device)
        X_val = y_val = None
        if not incremental and self._needs_validation():
            X, X_val, y, y_val = self._split(X, y)
        if not incremental and self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self._no_improvement_count = 0
        tasks = EpochTasks(self, 1 if incremental else self.max_iter, *data)
        with be.core.thread_limit():  # torch within the caller's thread budget
            self._begin_fit(be, device, X, y)
            self._run_epochs(
                be, device, X, y, X_val, y_val, incremental=incremental, tasks=tasks
            )
            self._end_fit(be, device, X, y, X_val, y_val)
        tasks.end_fit()
        return self

    def _needs_validation(self):
        return self.early_stopping

    def _split(self, X, y):
        """(X_train, X_val, y_train, y_val), stratified by y for classifiers when
        every class is large enough."""
        split = functools.partial(
            train_test_split,
            test_size=self.validation_fraction,
            random_state=self.random_state_.randint(_SEED_MAX),
        )
        if y is None:
            return (*split(X), None, None)
        if self._stratify:
            try:
                return split(X, y, stratify=y)
            except ValueError:  # a class too small to stratify
                pass
        return split(X, y)

    def _run_epochs(self, be, device, X, y, X_val, y_val, *, incremental, tasks):
        net, dtype = self._net, self._dtype
        seed = self.random_state_.randint(_SEED_MAX)
        order_rng = np.random.default_rng(seed)
        generator = be.core.make_rng(seed, device)
        loss_fn = self._loss_fn(be, device, generator)
        Xt = be.core.asarray(self._network_input(X), dtype, device)
        yt = None if y is None else be.core.as_target(y, device)
        batch_size = self._resolved_batch_size(X.shape[0])
        n_epochs = 1 if incremental else self.max_iter
        best_state = None
        rollbacks = epoch = 0
        snap = None
        stopped = False
        with be.nn.seeded(seed, device):  # dropout in user modules: reproducible
            try:
                while epoch < n_epochs:
                    tic = time.perf_counter()
                    tasks.begin_epoch({})  # a copy of self pickles the net's state
                    snap = be.nn.snapshot(net, self._optim), self._snapshot_extra()
                    order = None if incremental else order_rng.permutation(len(X))
                    loss, _ = be.nn.train_epoch(
                        net,
                        self._optim,
                        be.nn.batches((Xt, yt), batch_size, order),
                        loss_fn,
                        alpha=self.alpha,
                    )
                    reason = self._divergence(be, loss)
                    if reason is not None:
                        rollbacks += 1
                        be.nn.restore(net, self._optim, snap[0])
                        self._restore_extra(snap[1])
                        self._on_divergence(be, rollbacks, reason)
                        continue
                    epoch += 1
                    self.n_iter_ += 1
                    self.loss_curve_.append(loss)
                    if self.early_stopping and X_val is not None:
                        score = self._validation_score(X_val, y_val)
                        self.validation_scores_.append(score)
                        if score > self.best_validation_score_:
                            best_state = be.nn.module_state(net)
                    stop = self._update_no_improvement_count()
                    if self.verbose:
                        extra = (
                            f", validation score = {self.validation_scores_[-1]:.4f}"
                            if self.early_stopping and X_val is not None
                            else ""
                        )
                        print(
                            f"[{type(self).__name__}] epoch {self.n_iter_}, "
                            f"loss = {loss:.4f}{extra}, "
                            f"time = {time.perf_counter() - tic:.2f}s"
                        )
                    if tasks.end_epoch({}):
                        stopped = True  # a callback asked to stop
                        break
                    if stop and not incremental:
                        stopped = True
                        break
            except KeyboardInterrupt:
                self._interrupted = True
                tasks.abort_epoch()
                warnings.warn(
                    f"Training interrupted by the user after {self.n_iter_} epochs; "
                    "the model keeps the parameters of the last completed batch.",
                    UserWarning,
                    stacklevel=4,
                )
                stopped = True
                if snap is not None and not be.nn.params_finite(net):
                    be.nn.restore(net, self._optim, snap[0])
                    self._restore_extra(snap[1])
        if best_state is not None:
            self.best_validation_score_ = max(self.validation_scores_)
            be.nn.load_module_state(net, best_state)
        if not incremental and not stopped and self.max_iter > 0:
            warnings.warn(
                f"{type(self).__name__}: maximum iterations ({self.max_iter}) reached "
                "and the optimisation has not converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _update_no_improvement_count(self):
        """MLPClassifier's rule: stop after ``n_iter_no_change`` epochs without a
        ``tol`` improvement of the validation score (or of the training loss)."""
        if self.early_stopping and getattr(self, "validation_scores_", None):
            score = self.validation_scores_[-1]
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_validation_score_ = max(self.best_validation_score_, score)
        else:
            loss = self.loss_curve_[-1]
            if loss > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(self.best_loss_, loss)
        return self._no_improvement_count > self.n_iter_no_change

    def _divergence(self, be, loss):
        """A reason string if the epoch blew up, else None."""
        extra = self._divergence_reason()  # always called: it resets per-epoch stats
        if not np.isfinite(loss):
            return "the training loss became non-finite"
        if not be.nn.params_finite(self._net):
            return "the network's parameters became non-finite"
        return extra

    def _on_divergence(self, be, rollbacks, reason):
        """Halve the learning rate and warn, or raise after ``_max_rollbacks``."""
        if rollbacks > self._max_rollbacks:
            raise FloatingPointError(
                f"{type(self).__name__} diverged {rollbacks} times ({reason}) even "
                f"after lowering the learning rate to {self.learning_rate_:.3g}. "
                f"{self._divergence_advice}"
            )
        self.learning_rate_ *= 0.5
        be.nn.set_learning_rate(self._optim, self.learning_rate_)
        warnings.warn(
            f"{type(self).__name__} diverged in epoch {self.n_iter_ + 1} ({reason}); "
            "rolled back to the start of the epoch and halved the learning rate to "
            f"{self.learning_rate_:.3g}.",
            ConvergenceWarning,
            stacklevel=5,
        )

    _divergence_advice = "Lower `learning_rate_init` or scale the data."

    # -- default hooks ----------------------------------------------------------------

    def _divergence_reason(self):
        return None

    def _network_input(self, X):
        """Validated training rows -> what the network is trained on (NumPy)."""
        return X

    def _snapshot_extra(self):
        return None

    def _restore_extra(self, snap):
        pass

    def _begin_fit(self, be, device, X, y):
        pass

    def _end_fit(self, be, device, X, y, X_val, y_val):
        pass
