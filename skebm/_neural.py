"""The torch-only neural estimators' side of the training engine.

:class:`NeuralFitMixin` gives ``LangevinEBMClassifier`` and ``VAETransformer``
``fit`` = reset + epochs of the same per-batch step that ``partial_fit`` runs once
(CONTRIBUTING, convention 4), driven by :func:`skebm._engine.run_epochs`. It adds
what ``MLPClassifier`` users expect: ``tol`` / ``n_iter_no_change`` convergence,
``early_stopping`` on a held-out ``validation_fraction``, ``warm_start``,
``loss_curve_``. Torch work runs within the caller's thread budget
(``core.thread_limit`` of the torch backend).

The estimator's ``__dict__`` never holds a torch module: the trained module and its
optimiser live there as NumPy ``_net_state`` / ``_optim_state``, and the module that
predictions run on is built from them once, under a lock, and kept outside the
estimator (:func:`skebm._engine.lazy`, under the estimator that an array API
per-call copy was made from). Under array API dispatch, tensors reach the numerics
as they are and the answers are tensors on their device (:meth:`_answer`); a fit on
tensors leaves tensor attributes, as scikit-learn's convention wants. So pickles and
skops files hold NumPy only, a model fitted on a GPU loads anywhere, and a
just-loaded model serves many threads.
This module never imports torch: it reaches it through ``NeuralFitMixin._torch``.
"""

import copy
import functools
import itertools
import warnings
from numbers import Integral, Real

import numpy as np
from array_api_compat import is_torch_array
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from skebm._backends import get_backend
from skebm._engine import Trainer, keep, lazy, run_epochs, user_stacklevel
from skebm.base import _SEED_MAX, VersionedStateMixin, block_rows
from skebm.utils._array_api import numpy_dtype, origin
from skebm.utils._callbacks import CallbackSupport, EpochTasks

#: names of fitted module states: the key under which the built module is kept
_STATE_IDS = itertools.count()

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


class _NeuralTrainer(Trainer):
    """A torch module, its Adam optimiser and the estimator's extra training tensors
    (``ctx``), trained one epoch at a time."""

    def __init__(self, est, be, device, X, y, X_val, y_val, first, incremental):
        self.est, self.be, self.device = est, be, device
        self.X_val, self.y_val, self.incremental = X_val, y_val, incremental
        self.seed = est.random_state_.randint(_SEED_MAX)
        if first:
            factory = est._module_factory(be)
            self.net = be.nn.build(factory, self.seed, device, est._dtype)
        else:
            self.net = est._build_module(be, device, est._net_state)
        self.optim = be.nn.adam(self.net, est.learning_rate_init)
        if not first and est._optim_state is not None:
            be.nn.load_optimizer_state(self.optim, est._optim_state, device)
        self.ctx = est._train_context(be, device, X, y)
        generator = be.core.make_rng(self.seed, device)
        self.loss_fn = est._loss_fn(be, device, generator, self.net, self.ctx)
        self.Xt = est._network_input(be, device, X)
        self.yt = None if y is None else be.core.as_target(y, device)
        batch_size = 200 if est.batch_size == "auto" else est.batch_size
        self.batch_size = min(batch_size, X.shape[0])
        # convergence bookkeeping, committed with the model (partial_fit goes on
        # counting the epochs without improvement)
        best = np.inf if first else getattr(est, "best_loss_", np.inf)
        count = est._no_improvement_count if incremental and not first else 0
        self.book = {"best_loss_": best, "_no_improvement_count": count}
        if est.early_stopping and X_val is not None:
            self.book.update(validation_scores_=[], best_validation_score_=-np.inf)
        self.best_state = None

    def snapshot(self):
        return (
            self.be.nn.snapshot(self.net, self.optim),
            self.be.nn.clone_tree(self.ctx),
            copy.deepcopy(self.book),
            self.best_state,
        )

    def restore(self, snap):
        self.be.nn.restore(self.net, self.optim, snap[0])
        self.be.nn.copy_tree_(self.ctx, snap[1])
        self.book = copy.deepcopy(snap[2])
        self.best_state = snap[3]

    def run_epoch(self, order, learning_rate):
        be, est = self.be, self.est
        be.nn.set_learning_rate(self.optim, learning_rate)
        with be.nn.seeded(self.seed, self.device):  # dropout: reproducible
            self.seed = (self.seed + 1) % _SEED_MAX
            return be.nn.train_epoch(
                self.net,
                self.optim,
                be.nn.batches((self.Xt, self.yt), self.batch_size, order),
                self.loss_fn,
                alpha=est.alpha,
            )

    def divergence(self, loss):
        # the estimator's reason first: it resets its per-epoch statistics
        reason = self.est._divergence_reason(self.ctx, loss)
        if not np.isfinite(loss):
            return "the training loss became non-finite"
        if not self.be.nn.params_finite(self.net):
            return "the network's parameters became non-finite"
        return reason

    def end_epoch(self, loss):
        """MLPClassifier's rule: stop after ``n_iter_no_change`` epochs without a
        ``tol`` improvement of the validation score (or of the training loss)."""
        est, book = self.est, self.book
        if "validation_scores_" in book:
            # the validation score of this module, not of the fitted one
            previous, est._state_id = getattr(est, "_state_id", None), "training"
            try:
                keep(est, est._module_key(self.device), self.net)
                score = est._validation_score(self.X_val, self.y_val)
            finally:
                est._state_id = previous
            book["validation_scores_"].append(score)
            improved = not score < book["best_validation_score_"] + est.tol
            if score > book["best_validation_score_"]:
                book["best_validation_score_"] = score
                self.best_state = self.be.nn.to_numpy_tree(self.net.state_dict())
        else:
            improved = not loss > book["best_loss_"] - est.tol
            book["best_loss_"] = min(book["best_loss_"], loss)
        count = 0 if improved else book["_no_improvement_count"] + 1
        book["_no_improvement_count"] = count
        self.last_loss = loss
        return not self.incremental and count > est.n_iter_no_change

    def monitor(self):
        scores = self.book.get("validation_scores_")
        if scores:
            return "validation score", scores[-1]
        return "loss", self.last_loss

    def model_state(self, snap, n_epochs):
        return {
            "_net_state": self.be.nn.to_numpy_tree(snap[0][0]),
            "_state_id": next(_STATE_IDS),
            "n_iter_": getattr(self.est, "n_iter_", 0) + n_epochs,
        }

    def commit(self, snap, n_epochs, objectives):
        be, est = self.be, self.est
        self.restore(snap)
        if self.best_state is not None:
            be.nn.load_module_state(self.net, self.best_state)
        fitted = dict(
            self.book,
            _net_state=be.nn.to_numpy_tree(self.net.state_dict()),
            _optim_state=be.nn.to_numpy_tree(self.optim.state_dict()),
            _state_id=next(_STATE_IDS),
            n_iter_=getattr(est, "n_iter_", 0) + n_epochs,
            loss_curve_=list(getattr(est, "loss_curve_", [])) + objectives,
        )
        fitted.update(est._commit_context(be, self.ctx))
        vars(est).update(fitted)
        keep(est, est._module_key(self.device), self.net)


class NeuralFitMixin(CallbackSupport, VersionedStateMixin):
    """Shared ``fit`` / ``partial_fit`` for estimators built on a torch module.

    Every call starts from the current ``learning_rate_init`` (halved within the
    call if an epoch diverges). Subclasses provide:

    * ``_validate_fit_data(X, y, reset, classes)`` -> validated ``(X, y)``;
      ``y`` is ``None`` or an integer / float NumPy array aligned with X,
    * ``_initialize(X, y)`` -> fitted metadata (ranges, ``classes_`` ...),
    * ``_module_factory(be)`` -> a zero-argument callable building the module,
    * ``_loss_fn(be, device, generator, net, ctx)`` ->
      ``loss_fn(Xb, yb) -> (loss, monitor)``,
    * ``_validation_score(X, y)`` -> float, higher is better (early stopping),
    * ``_divergence_reason(ctx, loss)`` -> a string when the epoch's training
      exploded (beyond a non-finite loss or parameters), else None; it is called
      once per epoch,
    * ``_divergence_advice`` (str): what to change when training keeps diverging,
    * optionally ``_train_context(be, device, X, y)`` -> a dict of extra training
      tensors (rolled back with the module) and ``_commit_context(be, ctx)`` ->
      the attributes they leave; ``_network_input(be, device, X)``;
      ``_needs_validation()``; ``_end_fit(be, device, X_val, y_val)``.

    Validation splits are stratified by y when there is one.
    """

    #: the parameters both estimators share, as MLPClassifier's
    _parameter_constraints: dict = {
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions(set(ACTIVATION_NAMES))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [str],
    }

    #: the parameters that ``_module_factory`` builds the network from
    _network_params = ("hidden_layer_sizes", "activation")

    #: under array API dispatch, tensors reach the methods as they are (the
    #: numerics run on their device), other arrays as NumPy
    _takes_tensors = True

    # -- the module, built from NumPy state ------------------------------------------

    def _torch(self):
        """The torch backend package, or an ImportError that says how to install
        torch."""
        try:
            return get_backend("torch")
        except ImportError as exc:
            raise ImportError(
                f"{type(self).__name__} needs PyTorch, which is not installed. Install "
                "it with `pip install torch` (or `pip install skebm[torch]`)."
            ) from exc

    def _build_module(self, be, device, net_state):
        """The module of ``net_state`` in evaluation mode, as a fit leaves it (SGLD
        restores the mode it found, so a training mode would outlive a sample)."""
        net = be.nn.build(self._module_factory(be), 0, device, self._dtype)
        try:
            be.nn.load_module_state(net, net_state)
        except RuntimeError as exc:  # a parameter of the network's shape changed
            raise ValueError(
                f"The fitted network of {type(self).__name__} does not fit the network "
                "that its current parameters build: a parameter that shapes it "
                "(such as hidden_layer_sizes) changed after fit. Set it back, or fit "
                "anew (warm_start=False) to train a network of the new shape."
            ) from exc
        return net.eval()

    def _module_key(self, device):
        """What the built module is kept under: the fitted state, the device and
        the parameters that shape the network, so that after a ``set_params`` of
        one of them the module is built anew, as a loaded model would build it."""
        shaping = [getattr(self, name) for name in self._network_params]
        return self._state_id, device, repr(shaping)

    def _module(self, be, device):
        """The module of the fitted state on ``device``: built once, under a lock,
        and kept outside ``__dict__`` (never pickled, never copied)."""
        return lazy(
            origin(self),
            self._module_key(device),
            lambda: self._build_module(be, device, self._net_state),
        )

    @property
    def _net(self):
        """The fitted module on the estimator's device (for inspection)."""
        return self._module(*self._torch_device())

    def _torch_device(self):
        """The torch backend and the device the numerics run on (the input's, for
        tensors under dispatch)."""
        be = self._torch()
        return be, be.core.resolve_device(self.device)

    def _answer(self, out, like):
        """``out`` (a tensor) in the namespace of ``like``: the tensor itself when
        ``like`` is one (tensors under array API dispatch), else NumPy."""
        return out if is_torch_array(like) else self._torch().core.to_numpy(out)

    def __getstate__(self):
        state = dict(super().__getstate__())
        if "_dtype" in state:  # a name, not a numpy.dtype: skops trusts str
            state["_dtype"] = np.dtype(state["_dtype"]).name
        return state

    def __setstate__(self, state):
        state = dict(state)
        for attr in ("_net", "_optim", "_net_device"):  # pickles of 0.1.0.dev0
            state.pop(attr, None)
        state.setdefault("_state_id", next(_STATE_IDS))
        super().__setstate__(state)
        if hasattr(self, "_dtype"):
            self._dtype = np.dtype(self._dtype)

    def _predict_tensor(self, X, fn, dtype=None, batch_rows=None):
        """Apply ``fn(be, net, *blocks)`` (a tensor function) to the rows of X (NumPy
        or a tensor; or a tuple of such row-aligned arrays, None entries staying
        None) in blocks whose temporaries are bounded in bytes (the widest layer
        sets the row count); a tensor on the numerics' device.

        Blocks are cast to ``dtype`` (None: the model's). NumPy rows move to the
        device one block at a time; the rows of a tensor stay where they are.
        """
        be, device = self._torch_device()
        net = self._module(be, device)
        dtype = self._dtype if dtype is None else dtype
        arrays = X if isinstance(X, tuple) else (X,)
        if batch_rows is None:
            width = max(be.nn.widest_layer(net), arrays[0].shape[1])
            batch_rows = block_rows(4 * width, numpy_dtype(dtype).itemsize)
        n = arrays[0].shape[0]
        work = be.core.network_work(net, min(batch_rows, n))
        with be.core.thread_limit(work), be.nn.inference(net):
            out = []
            for start in range(0, max(n, 1), batch_rows):
                rows = slice(start, start + batch_rows)
                blocks = [
                    None if a is None else be.core.asarray(a[rows], dtype, device)
                    for a in arrays
                ]
                out.append(fn(be, net, *blocks))
            return be.core.concat_rows(out)

    # -- the loop ---------------------------------------------------------------------

    def _fit(self, X, y=None, *, incremental, classes=None):
        self._train(X, y, incremental=incremental, classes=classes)
        return self

    def _train(self, X, y=None, *, incremental, classes=None):
        """One fit or partial_fit; True when the user interrupted it."""
        be, device = self._torch_device()
        first = not hasattr(self, "n_iter_") or not (incremental or self.warm_start)
        data = X, y  # for the callbacks: the validated X is scaled, y encoded
        X, y = self._validate_fit_data(X, y, reset=first, classes=classes)
        if first:
            for attr in (
                "n_iter_",
                "loss_curve_",
                "best_loss_",
                "validation_scores_",
                "best_validation_score_",
            ):
                vars(self).pop(attr, None)
            self.random_state_ = check_random_state(self.random_state)
            self._dtype = numpy_dtype(X.dtype)
            self._initialize(X, y)
        X_val = y_val = None
        if not incremental and self._needs_validation():
            X, X_val, y, y_val = self._split(X, y)
        n_epochs = 1 if incremental else self.max_iter
        tasks = EpochTasks(self, n_epochs, *data)
        with be.core.thread_limit():  # torch within the caller's thread budget
            trainer = _NeuralTrainer(
                self, be, device, X, y, X_val, y_val, first, incremental
            )
        # and within one thread per share of work of a training step
        work = be.core.network_work(trainer.net, trainer.batch_size)
        with be.core.thread_limit(work):
            self.learning_rate_, stopped, interrupted = run_epochs(
                self,
                trainer,
                n_epochs=n_epochs,
                n_rows=X.shape[0],
                shuffle=not incremental,
                seed=self.random_state_.randint(_SEED_MAX),
                learning_rate=float(self.learning_rate_init),
                tasks=tasks,
                advice=self._divergence_advice,
            )
            self._end_fit(be, device, X_val, y_val)
        tasks.end_fit()
        if not incremental and not stopped:
            warnings.warn(
                f"{type(self).__name__}: maximum iterations ({self.max_iter}) reached "
                "and the optimisation has not converged yet.",
                ConvergenceWarning,
                stacklevel=user_stacklevel(),
            )
        return interrupted

    def _needs_validation(self):
        return self.early_stopping

    def _check_hidden_layer_sizes(self):
        """A ValueError, as MLPClassifier's, unless ``hidden_layer_sizes`` is a
        sequence (or one) of positive integers."""
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes))
        if sizes.size and (
            sizes.ndim != 1
            or not np.issubdtype(sizes.dtype, np.integer)
            or sizes.min() < 1
        ):
            raise ValueError(
                "hidden_layer_sizes must be a sequence of positive integers, got "
                f"{self.hidden_layer_sizes!r}."
            )

    def _split(self, X, y):
        """(X_train, X_val, y_train, y_val), stratified by the labels y (if any)
        when every class is large enough."""
        split = functools.partial(
            train_test_split,
            test_size=self.validation_fraction,
            random_state=self.random_state_.randint(_SEED_MAX),
        )
        if y is None:
            return (*split(X), None, None)
        try:
            return split(X, y, stratify=y)
        except ValueError:  # a class too small to stratify
            return split(X, y)

    # -- default hooks ----------------------------------------------------------------

    def _network_input(self, be, device, X):
        """Validated training rows (NumPy or a tensor) -> the tensor the network is
        trained on."""
        return be.core.asarray(X, self._dtype, device)

    def _train_context(self, be, device, X, y):
        return {}

    def _commit_context(self, be, ctx):
        return {}

    def _end_fit(self, be, device, X_val, y_val):
        pass
