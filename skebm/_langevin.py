"""JEM: a classifier whose logits define an energy, trained with SGLD negatives."""

import warnings
from numbers import Integral, Real

import numpy as np
from array_api_compat import array_namespace, is_torch_array
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from skebm._engine import nested_fit, skip_on_interrupt, transaction
from skebm._neural import NeuralFitMixin
from skebm.base import _SEED_MAX
from skebm.utils._array_api import (
    ARRAY_API_SUPPORT,
    array_api_boundary,
    float_dtypes,
    to_numpy,
)
from skebm.utils._docstring import substitute_docstring
from skebm.utils._validation import check_same_classes

#: an energy beyond this magnitude means training has exploded
_MAX_ENERGY = 1e4


def _affine_to_unit_box(low, high):
    """(center, scale) with (x - center) * scale mapping [low, high] to [-1, 1].

    Computed from the half-span high / 2 - low / 2, which cannot overflow; a
    feature whose scale 1 / half-span would not be finite (a constant feature, or
    a subnormal span such as {0, 1e-310}) gets scale 0 and maps to 0. Arrays of
    any namespace; the result is in the namespace, device and dtype of ``high``.
    """
    xp = array_namespace(low, high)
    half = high / 2 - low / 2
    positive = half > 0
    with np.errstate(divide="ignore", over="ignore"):
        scale = 1 / xp.where(positive, half, xp.ones_like(half))
    scale = xp.where(positive & xp.isfinite(scale), scale, xp.zeros_like(scale))
    return low / 2 + high / 2, scale


def _check_finite_output(values, X, low, high):
    """Raise a ValueError naming the first row whose output is not finite.

    ``values`` and X of any namespace: only a failing call reads rows back.
    """
    xp = array_namespace(values)
    finite = xp.all(xp.isfinite(values), axis=1)
    if bool(xp.all(finite)):
        return
    bad = ~to_numpy(finite)
    row = int(np.flatnonzero(bad)[0])
    row_values = to_numpy(X[row : row + 1])[0]
    low, high = to_numpy(low), to_numpy(high)
    with np.errstate(over="ignore", invalid="ignore"):
        distance = np.abs(row_values - np.clip(row_values, low, high))
    col = int(np.argmax(distance))
    raise ValueError(
        f"The network's output is not finite for {int(bad.sum())} row(s) of X: "
        f"row {row} has {row_values[col]:.3g} in feature {col}, whose training range is "
        f"[{low[col]:.3g}, {high[col]:.3g}]. Inputs this far outside the training "
        "range overflow the network; clip or rescale them."
    )


def _is_class(label, classes):
    """True when ``label`` equals one of ``classes`` exactly (0.5 is not 0)."""
    try:
        return bool(np.any(classes == label))
    except (TypeError, ValueError):
        return False


@substitute_docstring
class LangevinEBMClassifier(ClassifierMixin, NeuralFitMixin, BaseEstimator):
    """Classifier whose logits define an energy-based model (JEM).

    A network f maps an input x to class logits f(x). It is a classifier,
    p(y | x) = softmax f(x), and at the same time an energy-based model of the
    inputs, E(x) = -logsumexp_y f(x)[y], so that log p(x) = -E(x) - log Z
    (Grathwohl et al., 2020). Training maximises log p(y | x) + log p(x): the
    cross-entropy, plus ``energy_weight`` times the contrastive-divergence estimate
    of -log p(x), whose negative samples come from stochastic gradient Langevin
    dynamics (SGLD) started from a replay buffer.

    The energy makes the classifier a density model: :meth:`score_samples` (the
    unnormalised log-density) detects out-of-distribution inputs, and
    :meth:`sample` draws (class-conditional) inputs. Needs PyTorch.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(128, 128)
        Sizes of the hidden layers of the default network (an MLP), as in
        :class:`~sklearn.neural_network.MLPClassifier`. Ignored when ``module``
        is given. The cost of a fit grows with the network; on the digits
        (256, 256) is no more accurate and costs about twice as much.
    activation : {"swish", "silu", "elu", "softplus", "tanh", "logistic", "relu", \
"identity"}, default="swish"
        Hidden-layer activation. Smooth ones ("swish" = "silu", "elu",
        "softplus") give the sampler smooth energy gradients; "relu" works but
        trains less stably as an energy.
    alpha : float, default=1e-4
        L2 penalty on the weights, scaled as in MLPClassifier
        (``alpha * 0.5 * ||W||^2 / batch_size``).
    batch_size : int or "auto", default=64
        Minibatch size; "auto" is ``min(200, n_samples)`` as in MLPClassifier.
        Each minibatch gets as many SGLD samples.
    learning_rate_init : float, default=2e-3
        Step size of the Adam optimiser. Twice MLPClassifier's: the epoch budget
        is smaller.
    max_iter : int, default=30
        Maximum number of epochs. Each epoch costs about ``sgld_steps + 2``
        MLPClassifier epochs, so the budget is smaller than MLPClassifier's (and
        the learning rate larger); a fit that uses it all ends with a
        ConvergenceWarning, as MLPClassifier's does.
    tol : float, default=1e-4
        Training stops when the training cross-entropy (or the validation accuracy
        with ``early_stopping``) has not improved by ``tol`` for
        ``n_iter_no_change`` consecutive epochs.
    n_iter_no_change : int, default=20
        See ``tol``. Twice MLPClassifier's default: the training cross-entropy
        typically rises for ten epochs or so once the replay buffer starts to
        hold good negatives, before it falls again.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified) and stop
        when the validation accuracy stops improving; the best epoch is kept.
    validation_fraction : float, default=0.2
        Fraction of the training data held out for early stopping, and for the
        calibration temperature when ``calibration_cv=None``. An accurate
        classifier makes few errors on a small hold-out, and a temperature fitted
        to them swings widely: on the digits 0.2 gives a steady temperature where
        0.1 does not (``benchmarks/results/langevin.md``).
    warm_start : bool, default=False
        Continue from the current network (and replay buffer) on ``fit``.
    sgld_steps : int, default=3
        SGLD steps per minibatch: x <- x - sgld_step_size * grad E(x) +
        sgld_noise * N(0, I), clamped to the internal range [-1, 1]. The chains
        persist in the replay buffer across minibatches, so a few steps per
        minibatch add up (short-run training as in JEM++); the cost of a fit is
        about proportional to ``sgld_steps + 2``. On the digits 3 steps keep the
        accuracy, calibration, out-of-distribution and sample figures of 20 at a
        fraction of the cost (``benchmarks/results/langevin.md``).
    sgld_step_size : float, default=0.1
        Gradient step of SGLD. With ``sgld_noise`` below the Langevin value
        sqrt(2 * step), the sampler is the usual short-run, low-temperature
        variant. JEM's image setting (step 1, noise 0.01) trains as well on the
        digits and gives cleaner class-conditional samples, but a density that
        separates unseen digit classes less well (held-out-class AUROC 0.84
        against 0.95 with the defaults; see ``benchmarks/results/langevin.md``).
    sgld_noise : float, default=0.05
        Standard deviation of the SGLD noise.
    buffer_size : int, default=10000
        Number of persistent chains in the replay buffer. The buffer lives in
        memory for ``warm_start`` and :meth:`partial_fit` but is not pickled: a
        loaded model that trains again starts new chains from uniform noise, as
        the first fit did.
    reinit_freq : float, default=0.05
        Fraction of chains restarted from uniform noise at each minibatch.
    energy_weight : float, default=1.0
        Weight of the log p(x) term; 0 gives a plain MLP classifier.
    energy_l2 : float, default=0.3
        L2 penalty on the energies of data and samples (keeps the energy's scale,
        and training, stable). On the digits 0.3 gives a density that separates
        unseen digit classes better than 0.1 (held-out-class AUROC 0.96 against
        0.92 over five seeds).
    calibrate : bool, default=True
        Fit a temperature T after training so that
        ``predict_proba = softmax(f(x) / T)`` is calibrated (temperature scaling,
        Guo et al., 2017): T minimises the log-loss of logits on rows the network
        did not train on (see ``calibration_cv``). The energy, ``predict`` and
        :meth:`score_samples` do not depend on T.
    calibration_cv : int or None, default=None
        Where the calibration logits come from. None: T fits the logits of a
        held-out ``validation_fraction`` of the rows (stratified), which the
        network does not train on; no extra training. An int k: cross-fitting, as
        :class:`~sklearn.calibration.CalibratedClassifierCV` with
        ``ensemble=False`` does: k copies of the model (same parameters, other
        seeds) train on k stratified folds of the data, each with one fold held
        out; T fits the out-of-fold logits of every row, and the returned network
        trains on all the rows. This costs k extra trainings on (k - 1) / k of the
        rows (for k = 2, about one more ``fit``), and the fold models, trained on
        fewer rows, are less confident than the returned one, so their temperature
        can fit it worse (on the digits the held-out slice calibrates as well or
        better; ``benchmarks/results/langevin.md``). Only :meth:`fit` calibrates;
        :meth:`partial_fit` keeps ``temperature_``.
    module : callable or None, default=None
        Factory of a custom network: ``module(n_features, n_classes)`` returns a
        ``torch.nn.Module`` that maps a float tensor of shape
        (batch, n_features), with values in [-1, 1], to logits of shape
        (batch, n_classes). It must be differentiable with respect to its input
        (the sampler needs grad_x) and have no batch-dependent layers in
        evaluation mode. None builds the MLP of ``hidden_layer_sizes``.
    {random_state}
    {verbose}
    {device}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_iter_ : int
        Number of epochs run.
    loss_curve_ : list of float
        Training cross-entropy after each epoch.
    best_loss_ : float
        Smallest value of ``loss_curve_``.
    validation_scores_ : list of float
        Validation accuracy after each epoch (only with ``early_stopping``).
    best_validation_score_ : float
        Best validation accuracy (only with ``early_stopping``).
    temperature_ : float
        Temperature of :meth:`predict_proba` (1.0 when not calibrated).
    data_min_ : ndarray of shape (n_features,)
        Per-feature minimum of the training data; with ``data_max_`` it maps the
        inputs to the internal range [-1, 1] in which the sampler runs.
    data_max_ : ndarray of shape (n_features,)
        Per-feature maximum of the training data.
    learning_rate_ : float
        Current learning rate (lowered when training diverged).
    random_state_ : RandomState
        Generator drawn from ``random_state`` at the first fit.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.neural_network.MLPClassifier : The same network, trained on the
        cross-entropy only.
    skebm.RBM : An energy-based model of binary or real data without labels.

    Notes
    -----
    **Input scale.** ``fit`` learns each feature's range and maps it linearly to
    [-1, 1] (constant features to 0); the network sees these values, SGLD runs
    and clamps in [-1, 1], and :meth:`sample` maps its samples back to the input
    scale. The classifier (:meth:`predict`, :meth:`predict_proba`) sees inputs
    outside the training range unclipped, as MLPClassifier would.

    **Density outside the training range.** The sampler, and so the learnt
    density, lives in the box [-1, 1]^d of the training ranges: beyond it the
    network's values are extrapolation that training never shaped (on the digits,
    one seed in ten rated inverted digits, far outside the box, above real ones).
    :meth:`score_samples` therefore evaluates the network at the nearest point of
    the box and subtracts half the squared distance to it in the internal scale,
    a Gaussian tail of unit width: -E(x) = logsumexp_y f(c(z))[y] - ||z - c(z)||^2 / 2
    with z the internal coordinates of x and c the clipping to [-1, 1]. Inside the
    box (every training row and every sample) this is logsumexp_y f(z)[y].

    **Robustness.** An epoch whose loss or parameters become non-finite, or whose
    energies exceed 1e4 in magnitude, is rolled back (network, optimiser and
    replay buffer) and the learning rate is halved, with a ConvergenceWarning;
    after three rollbacks in one fit a FloatingPointError says what to change.
    :meth:`fit` and :meth:`partial_fit` complete or leave the model exactly as it
    was (a failed first fit leaves it unfitted). Ctrl-C after at least one
    completed epoch stops training with a warning and keeps the state after the
    last completed epoch (an interrupted calibration keeps ``temperature_``);
    earlier, it propagates and the model is as before.

    **Cost.** Each minibatch runs ``sgld_steps`` forward and backward passes of the
    network for the sampler, plus one of the data and samples together: about
    ``sgld_steps + 2`` times an MLPClassifier epoch. The network computes in the
    precision of the training data: float32 data (``X.astype(np.float32)``)
    train faster than float64 with the same accuracy; small networks run on one
    torch thread (see :ref:`scaling_out`). The levers, each with its cost and its effect on
    accuracy, calibration, out-of-distribution detection and samples, are
    measured in ``benchmarks/results/langevin.md``.

    **Extreme inputs.** Inputs far enough outside the training range that the
    network's output overflows (for example 1e308 in a feature trained on [0, 1])
    raise a ValueError that names the row and feature, rather than returning NaN
    probabilities. A feature whose training range is too narrow to invert (a
    subnormal span) is treated as constant.

    References
    ----------
    .. [1] W. Grathwohl, K.-C. Wang, J.-H. Jacobsen, D. Duvenaud, M. Norouzi and
       K. Swersky, "Your classifier is secretly an energy based model and you should
       treat it like one", ICLR 2020.
    .. [2] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On calibration of modern
       neural networks", ICML 2017.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skebm import LangevinEBMClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = LangevinEBMClassifier(max_iter=2, random_state=0).fit(X[:500], y[:500])
    >>> clf.predict_proba(X[:2]).shape
    (2, 10)
    >>> clf.sample(3, y=[0, 1, 2], random_state=0).shape
    (3, 64)
    """

    _parameter_constraints: dict = {
        **NeuralFitMixin._parameter_constraints,
        "sgld_steps": [Interval(Integral, 0, None, closed="left")],
        "sgld_step_size": [Interval(Real, 0, None, closed="left")],
        "sgld_noise": [Interval(Real, 0, None, closed="left")],
        "buffer_size": [Interval(Integral, 1, None, closed="left")],
        "reinit_freq": [Interval(Real, 0, 1, closed="both")],
        "energy_weight": [Interval(Real, 0, None, closed="left")],
        "energy_l2": [Interval(Real, 0, None, closed="left")],
        "calibrate": ["boolean"],
        "calibration_cv": [Interval(Integral, 2, None, closed="left"), None],
        "module": [callable, None],
    }

    _network_params = ("hidden_layer_sizes", "activation", "module")

    _divergence_advice = (
        "Lower `learning_rate_init` or `sgld_step_size`, raise `energy_l2`, or lower "
        "`energy_weight`."
    )

    def __init__(
        self,
        hidden_layer_sizes=(128, 128),
        *,
        activation="swish",
        alpha=1e-4,
        batch_size=64,
        learning_rate_init=2e-3,
        max_iter=30,
        tol=1e-4,
        n_iter_no_change=20,
        early_stopping=False,
        validation_fraction=0.2,
        warm_start=False,
        sgld_steps=3,
        sgld_step_size=0.1,
        sgld_noise=0.05,
        buffer_size=10000,
        reinit_freq=0.05,
        energy_weight=1.0,
        energy_l2=0.3,
        calibrate=True,
        calibration_cv=None,
        module=None,
        random_state=None,
        verbose=0,
        device="auto",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.sgld_steps = sgld_steps
        self.sgld_step_size = sgld_step_size
        self.sgld_noise = sgld_noise
        self.buffer_size = buffer_size
        self.reinit_freq = reinit_freq
        self.energy_weight = energy_weight
        self.energy_l2 = energy_l2
        self.calibrate = calibrate
        self.calibration_cv = calibration_cv
        self.module = module
        self.random_state = random_state
        self.verbose = verbose
        self.device = device

    # -- fitting ---------------------------------------------------------------------

    @array_api_boundary(fits=True)
    @transaction
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the classifier and energy model to (X, y) for up to ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels (strings or integers; two or more classes).

        Returns
        -------
        self : LangevinEBMClassifier
            The fitted model.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import LangevinEBMClassifier
        >>> X = np.random.default_rng(0).normal(size=(60, 2))
        >>> y = (X[:, 0] > 0).astype(int)
        >>> clf = LangevinEBMClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0)
        >>> clf = clf.fit(X, y)
        >>> clf.classes_
        array([0, 1])
        """
        return self._fit(X, y, incremental=False)

    @array_api_boundary(fits=True)
    @transaction
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None):
        """Run one epoch over (X, y), in order.

        The first call initialises the model, including the per-feature input
        ranges, from this batch.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels.
        classes : array-like of shape (n_classes,), default=None
            All the classes; required on the first call. A later call may pass
            the same classes again; other classes are a ValueError.

        Returns
        -------
        self : LangevinEBMClassifier
            The updated model.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import LangevinEBMClassifier
        >>> X = np.random.default_rng(0).normal(size=(60, 2))
        >>> y = (X[:, 0] > 0).astype(int)
        >>> clf = LangevinEBMClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0)
        >>> clf = clf.fit(X, y)
        >>> online = LangevinEBMClassifier(hidden_layer_sizes=(16,), random_state=0)
        >>> online = online.partial_fit(X, y, classes=[0, 1])
        >>> online.n_iter_
        1
        """
        return self._fit(X, y, incremental=True, classes=classes)

    def _validate_fit_data(self, X, y, *, reset, classes=None):
        dtype = float_dtypes(X, (np.float64, np.float32) if reset else (self._dtype,))
        X, y = validate_data(self, X, to_numpy(y), dtype=dtype, reset=reset)
        check_classification_targets(y)
        if not reset and classes is not None:
            check_same_classes(classes, self.classes_)
        if reset and self.module is None:
            self._check_hidden_layer_sizes()
        if reset:
            labels = np.unique(y) if classes is None else np.unique(classes)
            if labels.shape[0] < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least two classes; "
                    f"got {labels.shape[0]} class."
                )
            self._encoder = LabelEncoder().fit(labels)
            self.classes_ = self._encoder.classes_
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(
                f"y contains labels not seen before: {unknown.tolist()}; known classes "
                f"are {self.classes_.tolist()}."
            )
        return X, self._encoder.transform(y)

    def _fit(self, X, y=None, *, incremental, classes=None):
        if incremental and classes is None and not hasattr(self, "classes_"):
            raise ValueError("classes must be passed on the first call to partial_fit.")
        interrupted = self._train(X, y, incremental=incremental, classes=classes)
        crossfit = self.calibrate and self.calibration_cv is not None
        if crossfit and not incremental and not interrupted:
            keeps = f"temperature_={self.temperature_:.3g}"
            with skip_on_interrupt(self, "calibration", keeps):
                self.temperature_ = self._crossfit_temperature(X, y)
        return self

    def _crossfit_temperature(self, X, y):
        """T minimising the log-loss of out-of-fold logits (``calibration_cv`` folds).

        Folds are stratified when every class has ``calibration_cv`` rows. A fold
        model that misses a class gives it no probability; rows of a class their
        fold model never saw are left out of the fit.
        """
        X, y = validate_data(
            self, X, to_numpy(y), dtype=float_dtypes(X, (self._dtype,)), reset=False
        )
        y = self._encoder.transform(y)
        k = self.calibration_cv
        seed = self.random_state_.randint(_SEED_MAX)
        stratify = np.bincount(y).min() >= k
        folds = (StratifiedKFold if stratify else KFold)(
            k, shuffle=True, random_state=seed
        )
        logits = np.full((len(y), len(self.classes_)), -np.inf)
        used = np.zeros(len(y), dtype=bool)
        for i, (train, test) in enumerate(folds.split(X, y)):
            if np.unique(y[train]).size < 2:
                continue
            model = clone(self).set_params(
                calibrate=False,
                warm_start=False,
                random_state=self.random_state_.randint(_SEED_MAX),
            )
            model._progress_label = f"calibration fold {i + 1}/{k}"
            # callbacks follow this fit's epochs; the internal fold fits stay silent
            vars(model).pop("_skl_callbacks", None)
            with warnings.catch_warnings(), nested_fit():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X[train], y[train])
            logits[np.ix_(test, model.classes_)] = to_numpy(model._logits(X[test]))
            used[test] = np.isin(y[test], model.classes_)
        if not used.any():
            return 1.0
        be = self._torch()
        return be.langevin.fit_temperature(
            be.core.asarray(logits[used], np.float64, "cpu"),
            be.core.as_target(y[used], "cpu"),
        )

    def _initialize(self, X, y):
        xp = array_namespace(X)
        self.data_min_ = xp.min(X, axis=0)
        self.data_max_ = xp.max(X, axis=0)
        self._center, self._scale = _affine_to_unit_box(self.data_min_, self.data_max_)
        self.temperature_ = 1.0
        self._buffer = None
        self._buffer_seed = self.random_state_.randint(_SEED_MAX)

    def _affine(self, be, device):
        """(center, scale) of the map to the internal scale, as tensors on device."""
        return (
            be.core.asarray(self._center, None, device),
            be.core.asarray(self._scale, None, device),
        )

    def _module_factory(self, be):
        n_features, n_classes = self.n_features_in_, len(self.classes_)
        if self.module is not None:
            return lambda: self.module(n_features, n_classes)
        hidden = self.hidden_layer_sizes
        hidden = (hidden,) if isinstance(hidden, Integral) else tuple(hidden)
        activation = self.activation
        return lambda: be.nn.mlp(n_features, hidden, n_classes, activation)

    def _needs_validation(self):
        return self.early_stopping or (self.calibrate and self.calibration_cv is None)

    def _train_context(self, be, device, X, y):
        """The replay buffer of SGLD starts, and the peak energy of the epoch."""
        if getattr(self, "_buffer", None) is None:  # a fresh fit, or a loaded model
            gen = be.core.make_rng(self._buffer_seed, device)
            shape = (self.buffer_size, X.shape[1])
            buffer = be.langevin.uniform(shape, self._dtype, device, gen)
        else:
            # a copy: training writes the chains in place
            buffer = be.core.copy(be.core.asarray(self._buffer, self._dtype, device))
        return {"buffer": buffer, "peak": [None], "tensors": is_torch_array(X)}

    def _commit_context(self, be, ctx):
        # the trainer is done with the chains; they stay a tensor for a fit on
        # tensors (array API dispatch)
        buffer = ctx["buffer"]
        return {"_buffer": buffer if ctx["tensors"] else be.core.to_numpy(buffer)}

    def _end_fit(self, be, device, X_val, y_val):
        if X_val is not None and self.calibrate and self.calibration_cv is None:
            keeps = f"temperature_={self.temperature_:.3g}"
            with skip_on_interrupt(self, "calibration", keeps):
                logits = be.core.asarray(self._logits(X_val), np.float64, device)
                target = be.core.as_target(y_val, device)
                self.temperature_ = be.langevin.fit_temperature(logits, target)

    def _loss_fn(self, be, device, generator, net, ctx):
        if self.module is not None:
            be.langevin.check_logits_shape(net, self.n_features_in_, len(self.classes_))
        return be.langevin.make_train_loss(
            net,
            ctx["buffer"],
            sgld_steps=self.sgld_steps,
            sgld_step_size=self.sgld_step_size,
            sgld_noise=self.sgld_noise,
            reinit_freq=self.reinit_freq,
            energy_weight=self.energy_weight,
            energy_l2=self.energy_l2,
            generator=generator,
            peak=ctx["peak"],
        )

    def _network_input(self, be, device, X):
        center, scale = self._affine(be, device)
        x = be.core.asarray(X, None, device)
        return be.langevin.to_internal(x, center, scale, self._dtype)

    def _divergence_reason(self, ctx, loss):
        peak, ctx["peak"][0] = ctx["peak"][0], None
        if peak is not None and not float(peak) <= _MAX_ENERGY:
            return f"energies reached {float(peak):.3g}"
        return None

    def _validation_score(self, X, y):
        codes = to_numpy(self._logits(X).argmax(1))
        return float(np.mean(codes == y))

    # -- inference -------------------------------------------------------------------

    def __getstate__(self):
        state = dict(super().__getstate__())
        # the replay buffer (buffer_size x n_features) would outweigh the network;
        # a loaded model that trains again starts new chains
        state.pop("_buffer", None)
        return state

    def _check_X(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=float_dtypes(X), reset=False)

    def _logits(self, X):
        """f(x) of validated rows (NumPy or a tensor) in the input scale, a tensor on
        the numerics' device; a ValueError naming the cause when the network's
        output overflows."""
        be, device = self._torch_device()
        center, scale = self._affine(be, device)

        def logits(be, net, x):
            return net(be.langevin.to_internal(x, center, scale, self._dtype))

        out = self._predict_tensor(X, logits, dtype=X.dtype)
        _check_finite_output(out, X, self.data_min_, self.data_max_)
        return out

    @array_api_boundary
    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            The log-probabilities log p(y | x) of the classes in ``classes_``.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import LangevinEBMClassifier
        >>> X = np.random.default_rng(0).normal(size=(60, 2))
        >>> y = (X[:, 0] > 0).astype(int)
        >>> clf = LangevinEBMClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0)
        >>> clf = clf.fit(X, y)
        >>> log_proba = clf.predict_log_proba(X[:3])
        >>> bool(np.allclose(np.exp(log_proba), clf.predict_proba(X[:3])))
        True
        """
        X = self._check_X(X)
        logits = self._logits(X) / self.temperature_
        return self._answer(logits.log_softmax(1), X)

    @array_api_boundary
    def predict_proba(self, X):
        """Class probabilities softmax(f(x) / ``temperature_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            The probabilities p(y | x) of the classes in ``classes_``.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import LangevinEBMClassifier
        >>> X = np.random.default_rng(0).normal(size=(60, 2))
        >>> y = (X[:, 0] > 0).astype(int)
        >>> clf = LangevinEBMClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0)
        >>> clf = clf.fit(X, y)
        >>> proba = clf.predict_proba(X[:3])
        >>> proba.shape
        (3, 2)
        >>> bool(np.allclose(proba.sum(axis=1), 1))
        True
        """
        X = self._check_X(X)
        logits = self._logits(X) / self.temperature_
        return self._answer(logits.log_softmax(1).exp(), X)

    @array_api_boundary
    def predict(self, X):
        """Most probable class of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels, from ``classes_``.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import LangevinEBMClassifier
        >>> X = np.random.default_rng(0).normal(size=(60, 2))
        >>> y = (X[:, 0] > 0).astype(int)
        >>> clf = LangevinEBMClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0)
        >>> clf = clf.fit(X, y)
        >>> clf.predict(X[:3]).shape
        (3,)
        """
        codes = self._logits(self._check_X(X)).argmax(1)
        return self.classes_[to_numpy(codes)]

    @array_api_boundary
    def score_samples(self, X):
        """Unnormalised log-density logsumexp_y f(x)[y] = -E(x).

        Higher means more in-distribution: use it for out-of-distribution
        detection. It equals log p(x) + log Z for an unknown constant log Z.
        Outside the training range the network is evaluated at the nearest
        in-range point and half the squared distance to it (in the internal
        scale) is subtracted; see the Notes of the class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            The value -E(x) of each row.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import LangevinEBMClassifier
        >>> X = np.random.default_rng(0).normal(size=(60, 2))
        >>> y = (X[:, 0] > 0).astype(int)
        >>> clf = LangevinEBMClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0)
        >>> clf = clf.fit(X, y)
        >>> clf.score_samples(X[:3]).shape
        (3,)
        """
        X = self._check_X(X)
        be, device = self._torch_device()
        center, scale = self._affine(be, device)

        def log_density(be, net, x):
            return be.langevin.bounded_log_density(net, x, center, scale, self._dtype)

        scores = self._predict_tensor(X, log_density, dtype=X.dtype)
        _check_finite_output(scores[:, None], X, self.data_min_, self.data_max_)
        return self._answer(scores, X)

    @array_api_boundary
    def energy(self, X):
        """Energy E(x) = -logsumexp_y f(x)[y] (lower = more probable).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        energy : ndarray of shape (n_samples,)
            The energy E(x) of each row.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import LangevinEBMClassifier
        >>> X = np.random.default_rng(0).normal(size=(60, 2))
        >>> y = (X[:, 0] > 0).astype(int)
        >>> clf = LangevinEBMClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0)
        >>> clf = clf.fit(X, y)
        >>> bool(np.allclose(clf.energy(X[:3]), -clf.score_samples(X[:3])))
        True
        """
        return -self.score_samples(X)

    @array_api_boundary
    @validate_params(
        {
            "n_samples": [Interval(Integral, 1, None, closed="left")],
            "y": "no_validation",  # a label of any type, checked against classes_
            "n_steps": [Interval(Integral, 0, None, closed="left"), None],
            "random_state": ["random_state"],
        },
        prefer_skip_nested_validation=True,
    )
    def sample(self, n_samples=1, y=None, n_steps=None, random_state=None):
        """Draw inputs from the model with fresh SGLD chains.

        Chains start from uniform noise on the training range and run ``n_steps``
        SGLD steps on E(x), or on E(x | y) = -f(x)[y] when ``y`` is given.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples (independent chains).
        y : label, array-like of shape (n_samples,) or None, default=None
            Class of each sample (one label for all), each one of ``classes_``
            (a ValueError otherwise); None samples p(x).
        n_steps : int, default=None
            SGLD steps; None uses ``max(100, 10 * sgld_steps)``: fresh chains
            need longer than the persistent ones of training (on the digits, 50
            steps from noise give samples an independent classifier reads as the
            requested class about 90% of the time, 100 steps all of them).
        random_state : int, RandomState instance or None, default=None
            Seed of the chains; None draws one from the fitted ``random_state_``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Samples in the input scale, inside the training range.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import LangevinEBMClassifier
        >>> X = np.random.default_rng(0).normal(size=(60, 2))
        >>> y = (X[:, 0] > 0).astype(int)
        >>> clf = LangevinEBMClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0)
        >>> clf = clf.fit(X, y)
        >>> clf.sample(4, y=[0, 0, 1, 1], random_state=0).shape
        (4, 2)
        """
        check_is_fitted(self)
        codes = None
        if y is not None:
            labels = np.asarray(to_numpy(y))
            if labels.ndim > 1:
                raise ValueError(f"y must be a label or 1-D; got shape {labels.shape}.")
            labels = labels.reshape(-1)
            if labels.shape[0] == 1:
                labels = np.repeat(labels, n_samples)
            if labels.shape[0] != n_samples:
                raise ValueError(
                    f"y has {labels.shape[0]} labels but n_samples={n_samples}."
                )
            known = np.array([_is_class(label, self.classes_) for label in labels])
            if not known.all():
                unknown = list(dict.fromkeys(labels[~known].tolist()))
                raise ValueError(
                    f"Unknown label(s) {unknown} in y; known classes are "
                    f"{self.classes_.tolist()}."
                )
            codes = self._encoder.transform(labels.astype(self.classes_.dtype))
        steps = max(100, 10 * self.sgld_steps) if n_steps is None else n_steps
        rs = check_random_state(
            self.random_state_ if random_state is None else random_state
        )
        seed = rs.randint(_SEED_MAX)
        be, device = self._torch_device()
        net = self._module(be, device)
        gen = be.core.make_rng(seed, device)
        shape = (n_samples, self.n_features_in_)
        x0 = be.langevin.uniform(shape, self._dtype, device, gen)
        target = None if codes is None else be.core.as_target(codes, device)
        x = be.langevin.sgld(
            net, x0, steps, self.sgld_step_size, self.sgld_noise, gen, y=target
        )
        center, scale = self._affine(be, device)
        x = be.langevin.from_internal(x, center, scale, self._dtype)
        return self._answer(x, self.data_min_)

    # -- scikit-learn plumbing -------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.array_api_support = ARRAY_API_SUPPORT
        return tags
