"""Restricted Boltzmann machine: a drop-in superset of sklearn's BernoulliRBM."""

import hashlib
import threading
import time
import warnings
import weakref
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.special import logit
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted, validate_data

from skebm._backends import BACKENDS
from skebm._engine import transaction, user_stacklevel
from skebm.base import (
    _SEED_MAX,
    BackendMixin,
    EnergyMixin,
    IterativeFitMixin,
    block_rows,
)
from skebm.utils._array_api import ARRAY_API_SUPPORT, array_api_boundary, origin
from skebm.utils._docstring import substitute_docstring
from skebm.utils._validation import clip_unit_interval

#: ``score_samples`` enumerates the smaller layer exactly up to this many units
#: (2**20 states, about a second for 784 visible units); above it, AIS estimates log Z.
EXACT_MAX_UNITS = 20

#: parameters beyond this size mean training has diverged (NaN compares False too)
_MAX_WEIGHT = 1e6

#: an epoch whose pseudo-log-likelihood per feature falls below this many times
#: the uniform model's (log 1/2) has overshot: the RBM is worse than no model
_PL_LIMIT = 1.2 * np.log(0.5)

#: the pseudo-likelihood judges divergence on this many rows, and only on calls that
#: see as many (on fewer, one random flip per row is too noisy)
_PL_MIN_ROWS = 100

#: sliding-average rate of the centring offsets (Melchior et al. 2016 use 0.01)
_OFFSET_RATE = 0.01

#: ``log_partition(method="exact")`` refuses to enumerate more states than this
#: unless called with a larger ``max_states`` (the cost grows as 2**units times the
#: width of the other layer).
EXACT_MAX_STATES = 1 << 24

#: bytes of temporaries per row block of inference and per chunk of enumerated states
_BLOCK_BYTES = 1 << 25

#: Gaussian visible units have unit variance: feature standard deviations outside
#: this range at fit, or data farther than its upper end (root mean square) from the
#: visible means at inference, are far from it
_GAUSSIAN_STD_RANGE = (0.25, 4.0)

_GAUSSIAN_ADVICE = (
    "Gaussian visible units have unit variance: standardise X first (e.g. "
    "StandardScaler) and use a learning_rate of about 0.001 to 0.01."
)


def _ais_betas(n_betas):
    """Inverse temperatures 0 -> 1, denser near 1 where the distributions change most
    (the 10% / 40% / 50% split of Salakhutdinov & Murray 2008 over [0, .5, .9, 1])."""
    n1, n2 = max(n_betas // 10, 1), max(4 * n_betas // 10, 1)
    n3 = max(n_betas - n1 - n2, 2)
    return np.concatenate(
        [
            np.linspace(0.0, 0.5, n1, endpoint=False),
            np.linspace(0.5, 0.9, n2, endpoint=False),
            np.linspace(0.9, 1.0, n3),
        ]
    )


def _warn_gaussian(message):
    """Warn, at the user's line, that X is far from the unit scale of Gaussian
    visible units: ``message`` says how, the advice follows."""
    warnings.warn(message + _GAUSSIAN_ADVICE, UserWarning, stacklevel=user_stacklevel())


def _rescaled(X):
    """X divided by its largest magnitude m when squares of its entries could
    overflow (CSR stays CSR), and the divisor (1 otherwise, without a copy)."""
    data = X.data if sp.issparse(X) else X
    m = max(float(data.max(initial=0.0)), -float(data.min(initial=0.0)))
    if m > np.sqrt(np.finfo(data.dtype).max) * 1e-4:
        return X / m, m
    return X, 1.0


def _check_gaussian_scale(X):
    """Warn when the features of X have standard deviations far from 1.

    Gaussian visible units model each feature with unit variance: much wider data
    give huge energies and gradients (training at the usual rates diverges), much
    narrower data a poor density. Constant features are left aside. Call it on the
    training data of ``visible="gaussian"``; it needs at least two rows.
    """
    if X.shape[0] < 2:
        return
    Xs, m = _rescaled(X)
    if sp.issparse(Xs):
        mean = np.asarray(Xs.mean(axis=0)).ravel()
        var = np.asarray(Xs.multiply(Xs).mean(axis=0)).ravel() - mean**2
    else:
        var = Xs.var(axis=0, dtype=np.float64)
    std = m * np.sqrt(np.clip(var, 0.0, None))
    std = std[std > 1e-12 * max(m, 1.0)]
    low, high = _GAUSSIAN_STD_RANGE
    if std.size and (std.min() < low or std.max() > high):
        _warn_gaussian(
            f"X has feature standard deviations in [{std.min():.3g}, "
            f"{std.max():.3g}] (constant features aside), far from 1. "
        )


def _check_gaussian_distance(X, means):
    """Warn when X lies far from the visible means, in root mean square over all its
    entries (the inference-time counterpart of :func:`_check_gaussian_scale`, which
    needs no second row)."""
    if X.shape[0] == 0:
        return
    Xs, m = _rescaled(X)
    means = np.asarray(means, dtype=np.float64) / m
    # sum (x - mu)^2 = sum x^2 - 2 mu.colsum(x) + n mu.mu: no temporary of X's size
    squares = Xs.data @ Xs.data if sp.issparse(Xs) else np.einsum("ij,ij->", Xs, Xs)
    colsum = np.asarray(Xs.sum(axis=0), dtype=np.float64).ravel()
    total = float(squares) - 2.0 * float(colsum @ means)
    total += Xs.shape[0] * float(means @ means)
    rms = m * np.sqrt(max(total, 0.0) / (X.shape[0] * X.shape[1]))
    if rms > _GAUSSIAN_STD_RANGE[1]:
        _warn_gaussian(
            f"X lies at a root mean square distance of {rms:.3g} from the visible "
            f"means (intercept_visible_), far from the unit scale of the model. "
        )


def _ais_standard_error(log_w):
    """Standard error of the AIS estimate log Z = log Z_0 + log mean(w), from the
    importance weights w by the delta method: sd(w) / (sqrt(n) mean(w)).

    inf for a single chain, whose spread is unknown.
    """
    n = log_w.size
    if n < 2:
        return float("inf")
    w = np.exp(log_w - log_w.max())
    return float(w.std(ddof=1) / (np.sqrt(n) * w.mean()))


#: one lock per RBM, kept outside its ``__dict__`` (pickles, clones and the
#: transactions of fit never see it), under which it computes and caches log Z
_LOG_Z_LOCKS = weakref.WeakKeyDictionary()
_LOG_Z_LOCKS_GUARD = threading.Lock()


def _log_z_lock(rbm):
    with _LOG_Z_LOCKS_GUARD:
        return _LOG_Z_LOCKS.setdefault(rbm, threading.Lock())


@substitute_docstring
class RBM(
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    EnergyMixin,
    IterativeFitMixin,
    BackendMixin,
    BaseEstimator,
):
    """Restricted Boltzmann machine with binary hidden units.

    A drop-in superset of :class:`sklearn.neural_network.BernoulliRBM`: the same
    parameters, defaults, attributes and methods, plus Gaussian visible units, CD-k or
    persistent CD with any number of chains, momentum, weight decay, centring, a true
    log-likelihood (:meth:`score_samples`), sampling and a torch backend.

    The model is the joint distribution p(v, h) = exp(-E(v, h)) / Z with

        E(v, h) = E_vis(v) - c.h - h^T W v,

    E_vis(v) = -b.v for Bernoulli visible units and ||v - b||^2 / 2 for Gaussian
    visible units of unit variance. ``W`` is ``components_``, ``b``
    ``intercept_visible_`` and ``c`` ``intercept_hidden_``.

    Read more in the :ref:`User Guide <rbm>`.

    Parameters
    ----------
    n_components : int, default=256
        Number of binary hidden units.

    learning_rate : float, default=0.1
        Step size of the parameter updates. Gaussian visible units usually need a
        smaller one (about 0.001 to 0.01) on standardised data.

    batch_size : int, default=10
        Number of examples per minibatch.

    n_iter : int, default=10
        Number of passes (epochs) over the training data in :meth:`fit`.

    {verbose}

    {random_state}

    visible : {"bernoulli", "gaussian"}, default="bernoulli"
        Type of the visible units. "bernoulli" reads inputs as probabilities of
        being on: values outside [0, 1] are clipped to it (with a warning in fit).
        "gaussian" models real values with unit variance: standardise the data first.

    k : int, default=1
        Gibbs sweeps per update (CD-k / PCD-k).

    persistent : bool, default=True
        True: persistent contrastive divergence (PCD, as BernoulliRBM), the negative
        phase continues ``n_chains`` Markov chains across updates. False: CD-k, the
        chains start at the data of each batch.

    n_chains : int, default=None
        Number of persistent chains; None uses ``batch_size``. The negative phase
        is averaged over the chains (BernoulliRBM divides it by the batch size).

    momentum : float, default=0.0
        Momentum of the parameter updates, in [0, 1).

    weight_decay : float, default=0.0
        L2 penalty on the weights (added to the negative gradient as
        ``weight_decay * W``).

    centered : bool, default=False
        Centre the energy on offsets (the data mean of the visible units and a
        sliding mean of the hidden units), which conditions the gradient better
        (Melchior, Fischer and Wiskott, 2016). The model family is unchanged: the
        fitted attributes are the usual, uncentred parameters.

    average_epochs : int, default=1
        Polyak-Ruppert tail averaging: ``components_`` and the intercepts are the
        mean of the parameters after each update of the last ``average_epochs``
        epochs of :meth:`fit` (every epoch if it exceeds ``n_iter``), or of the one
        pass of :meth:`partial_fit`. Training itself is unchanged: the next call
        resumes from the last update, kept aside as ``SGDClassifier(average=True)``
        keeps its plain weights, and the persistent chains, velocities and centring
        offsets keep their last values. Averaging removes most of the parameter
        noise of (P)CD at a fixed learning rate: on the binarised digits, 16 hidden
        units, 10 epochs at BernoulliRBM's defaults, the exact test log-likelihood
        was 3.1 nats higher than with the last update (30 seeds), and RBM-features +
        LogisticRegression accuracy was unchanged. 0 keeps the parameters of the
        last update, as BernoulliRBM does.

    ais_n_chains : int, default=100
        Number of annealed importance sampling runs used to estimate log Z when
        the model is too large to enumerate.

    ais_n_betas : int, default=1000
        Number of inverse temperatures of AIS between the bias-only model (0) and
        the model (1).

    {backend}

    {device}

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Weight matrix ``W``.

    intercept_hidden_ : ndarray of shape (n_components,)
        Biases of the hidden units.

    intercept_visible_ : ndarray of shape (n_features,)
        Biases of the visible units (the means for Gaussian units).

    h_samples_ : ndarray of shape (n_chains, n_components)
        Hidden states of the persistent chains.

    n_iter_ : int
        Number of epochs run (summed over ``partial_fit`` calls).

    learning_rate_ : float
        Learning rate in use: ``learning_rate``, halved after each divergence that
        training recovered from.

    random_state_ : RandomState
        Random number generator from which every fit, sampling and Gibbs call draws
        its seed.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    sklearn.neural_network.BernoulliRBM : The RBM this estimator extends.
    sklearn.decomposition.PCA : A linear, deterministic feature extractor.

    Notes
    -----
    **Training.** Each minibatch update follows the log-likelihood gradient
    estimated by CD-k or PCD-k. The positive phase uses P(h | v) of the batch, the
    negative phase the last visible sample of the chains and P(h | v) there, each
    averaged over its own rows. Batches are shuffled every epoch with the seeded
    generator. The fitted parameters are the mean of the parameters over the
    updates of the last ``average_epochs`` epochs (BernoulliRBM keeps the last
    update, which ``average_epochs=0`` gives). A callback that stops training keeps
    the mean over the averaging epochs completed so far (the last update if none),
    which is what the callback was shown. Every call starts at the current
    ``learning_rate``, so a rate lowered with ``set_params`` between
    :meth:`partial_fit` calls is used, as in BernoulliRBM; the shape-setting
    parameters (``n_components``, ``visible``, ``n_chains``) are fixed by the first
    fit. Divergence (non-finite parameters, weights beyond 1e6 in absolute value,
    or, on calls of at least 100 rows with Bernoulli visible units, a
    pseudo-log-likelihood per feature 20% below the uniform model's) rolls the
    epoch back, halves the learning rate of the call and warns; after three
    rollbacks the call raises an error that says what to change.

    **Failures and interrupts.** :meth:`fit` and :meth:`partial_fit` complete or
    leave the model exactly as it was (a failed first fit leaves it unfitted).
    Ctrl-C after at least one completed epoch of the call stops training with a
    warning and keeps the state after the last completed epoch; earlier, the
    KeyboardInterrupt propagates and the model is as before the call.

    **Log-likelihood.** :meth:`score_samples` returns log p(v) = -F(v) - log Z.
    log Z is exact, by summing over every state of the smaller binary layer, when
    that layer has at most 20 units (the hidden layer for Gaussian visible units);
    otherwise it is estimated by annealed importance sampling from the bias-only
    model through ``ais_n_betas`` temperatures with ``ais_n_chains`` chains, seeded
    from ``random_state`` at fit time. Either way log Z is computed once per fitted
    state and cached. For Bernoulli units and values strictly inside (0, 1),
    -F(v) - log Z is the mean-field extension, not a probability.

    **Initialisation.** ``W`` is drawn from N(0, 0.01^2) as in BernoulliRBM; the
    hidden biases start at 0 and the persistent chains at h = 0. Bernoulli visible
    biases start at 0 as in BernoulliRBM, or, with ``centered=True``, at logit of
    the data means, as the centring method prescribes (Melchior et al., 2016);
    Gaussian ones at the data means. On the nudged digits, starting plain RBMs at
    logit of the means (Hinton, 2012) cost 0.5 points of RBM-features +
    LogisticRegression accuracy (10 seeds) for no significant gain in
    log-likelihood.

    References
    ----------
    G. Hinton, "A Practical Guide to Training Restricted Boltzmann Machines",
    in Neural Networks: Tricks of the Trade, 2012.

    T. Tieleman, "Training Restricted Boltzmann Machines using Approximations to
    the Likelihood Gradient", ICML 2008.

    J. Melchior, A. Fischer and L. Wiskott, "How to Center Deep Boltzmann
    Machines", JMLR 17, 2016.

    R. Salakhutdinov and I. Murray, "On the Quantitative Analysis of Deep Belief
    Networks", ICML 2008.

    Examples
    --------
    >>> import numpy as np
    >>> from skebm import RBM
    >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
    >>> rbm = RBM(n_components=2, n_iter=20, random_state=0).fit(X)
    >>> rbm.transform(X).shape
    (4, 2)
    >>> bool(rbm.score(X) < 0)
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "n_iter": [Interval(Integral, 0, None, closed="left")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "visible": [StrOptions({"bernoulli", "gaussian"})],
        "k": [Interval(Integral, 1, None, closed="left")],
        "persistent": ["boolean"],
        "n_chains": [Interval(Integral, 1, None, closed="left"), None],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "centered": ["boolean"],
        "average_epochs": [Interval(Integral, 0, None, closed="left")],
        "ais_n_chains": [Interval(Integral, 1, None, closed="left")],
        "ais_n_betas": [Interval(Integral, 2, None, closed="left")],
        "backend": [StrOptions(set(BACKENDS))],
        "device": [str],
    }

    _param_names = {
        "W": "components_",
        "b": "intercept_visible_",
        "c": "intercept_hidden_",
    }
    _state_names = {
        **_param_names,
        "chains": "h_samples_",
        "vW": "_velocity_W",
        "vb": "_velocity_b",
        "vc": "_velocity_c",
        "mu": "_offset_visible",
        "lam": "_offset_hidden",
    }

    def __init__(
        self,
        n_components=256,
        *,
        learning_rate=0.1,
        batch_size=10,
        n_iter=10,
        verbose=0,
        random_state=None,
        visible="bernoulli",
        k=1,
        persistent=True,
        n_chains=None,
        momentum=0.0,
        weight_decay=0.0,
        centered=False,
        average_epochs=1,
        ais_n_chains=100,
        ais_n_betas=1000,
        backend="numpy",
        device="auto",
    ):
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.visible = visible
        self.k = k
        self.persistent = persistent
        self.n_chains = n_chains
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.centered = centered
        self.average_epochs = average_epochs
        self.ais_n_chains = ais_n_chains
        self.ais_n_betas = ais_n_betas
        self.backend = backend
        self.device = device

    # -- fitting ---------------------------------------------------------------------

    @array_api_boundary(fits=True)
    @transaction
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model to X by ``n_iter`` epochs of CD-k / PCD-k.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored.

        Returns
        -------
        self : RBM
            The fitted model.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import RBM
        >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
        >>> rbm = RBM(n_components=2, n_iter=20, random_state=0).fit(X)
        >>> rbm.components_.shape
        (2, 3)
        """
        return self._fit(X, reset=True)

    @array_api_boundary(fits=True)
    @transaction
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Run one pass over X, in order, in minibatches of ``batch_size``.

        The first call initialises the model as :meth:`fit` does.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored.

        Returns
        -------
        self : RBM
            The updated model.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import RBM
        >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
        >>> rbm = RBM(n_components=2, n_iter=20, random_state=0).fit(X)
        >>> online = RBM(n_components=2, random_state=0)
        >>> for _ in range(3):
        ...     online = online.partial_fit(X)
        >>> online.components_.shape
        (2, 3)
        """
        return self._fit(X, reset=False)

    def _validate_fit_input(self, X, reset):
        fitted = getattr(self, "_fitted_visible", self.visible)
        if not reset and self.visible != fitted:
            raise ValueError(
                f"visible changed from {fitted!r} to {self.visible!r} since the first "
                "fit; call fit to train a model of the new kind."
            )
        dtype = (np.float64, np.float32) if reset else self._dtype
        X = validate_data(self, X, accept_sparse="csr", dtype=dtype, reset=reset)
        if self.visible == "bernoulli":
            X = clip_unit_interval(X, warn=True)
        else:
            _check_gaussian_scale(X)
        return X

    @property
    def _dtype(self):
        return self.components_.dtype

    def _initialize(self, X):
        n_features, dtype, rs = X.shape[1], X.dtype, self.random_state_
        n_chains = self.n_chains or self.batch_size
        mean = np.asarray(X.mean(axis=0), dtype=np.float64).ravel()
        self.components_ = rs.normal(0, 0.01, (self.n_components, n_features))
        if self.visible == "gaussian":
            self.intercept_visible_ = mean.copy()
        elif self.centered:
            self.intercept_visible_ = logit(np.clip(mean, 1e-3, 1 - 1e-3))
        else:
            self.intercept_visible_ = np.zeros(n_features)
        self.intercept_hidden_ = np.zeros(self.n_components)
        self.h_samples_ = np.zeros((n_chains, self.n_components))
        self._velocity_W = np.zeros_like(self.components_)
        self._velocity_b = np.zeros(n_features)
        self._velocity_c = np.zeros(self.n_components)
        self._offset_visible = mean if self.centered else np.zeros(n_features)
        self._offset_hidden = np.full(self.n_components, 0.5 if self.centered else 0.0)
        for attr in self._state_names.values():
            setattr(self, attr, getattr(self, attr).astype(dtype, copy=False))
        self._ais_seed = rs.randint(_SEED_MAX)
        self._fitted_visible = self.visible
        self._log_z_cache = {}

    def _n_epochs(self):
        return self.n_iter

    def __setstate__(self, state):
        # pickled before average_epochs existed: they stored the last update
        super().__setstate__({"average_epochs": 0, **state})

    _averaged_names = ("W", "b", "c")

    def _n_average_epochs(self):
        return self.average_epochs

    def _train_batch(self, backend, state, batch, rng, learning_rate):
        backend.rbm.train_step(
            state,
            batch,
            visible=self.visible,
            k=self.k,
            persistent=self.persistent,
            lr=learning_rate,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            offset_rate=_OFFSET_RATE if self.centered else 0.0,
            rng=rng,
        )

    _divergence_advice = (
        "Lower `learning_rate`, scale the data (StandardScaler for "
        "visible='gaussian', MinMaxScaler for 'bernoulli'), or add `weight_decay`."
    )

    def _step_work(self, X):
        """One minibatch's product with W (a step does a handful of them)."""
        return float(self.batch_size) * X.shape[1] * self.n_components

    def _learning_rate(self):
        return self.learning_rate

    def _objective(self, backend, state, X):
        """Minus the mean pseudo-log-likelihood per feature of the first 100 rows
        (Bernoulli visible units; NaN for Gaussian ones), with one flipped unit
        per row drawn from a fixed seed."""
        if self.visible != "bernoulli" or X.shape[0] < _PL_MIN_ROWS:
            return float("nan")
        v = backend.core.asarray(X[:_PL_MIN_ROWS], self._dtype, state["W"].device)
        cols = np.random.default_rng(0).integers(0, X.shape[1], v.shape[0])
        pl = backend.rbm.pseudo_likelihood(
            v, cols, state["W"], state["b"], state["c"], self.visible
        )
        return -backend.core.to_float(pl.mean()) / X.shape[1]

    def _divergence(self, backend, state, objective):
        """Why the epoch diverged, or None: non-finite or exploded parameters
        (|W| > 1e6 saturates every unit), or, for Bernoulli visible units, a
        pseudo-log-likelihood per feature 20% below the uniform model's: the
        updates overshot (a learning rate far too large)."""
        limits = {"W": _MAX_WEIGHT, "b": _MAX_WEIGHT * 1e3, "c": _MAX_WEIGHT * 1e3}
        if not all(
            backend.core.max_abs(state[name]) <= limit for name, limit in limits.items()
        ):
            return "non-finite or exploding parameters"
        if objective > -_PL_LIMIT:  # NaN (not judged) compares False
            return (
                f"pseudo-log-likelihood per feature {-objective:.3g}, below the "
                f"uniform model's {np.log(0.5):.3g}"
            )
        return None

    def _monitor(self, backend, state, X):
        v = backend.core.asarray(X[:1000], self._dtype, state["W"].device)
        h = backend.rbm.mean_hiddens(v, state["W"], state["c"])
        v_rec = backend.rbm.mean_visibles(h, state["W"], state["b"], self.visible)
        return "reconstruction error", backend.core.to_float(((v - v_rec) ** 2).mean())

    # -- inference -------------------------------------------------------------------

    def _check_X(self, X):
        """Validate X for inference, warning (once, at the public method's caller)
        about data the visible units do not model: Bernoulli inputs outside [0, 1]
        are clipped, Gaussian ones far from unit scale are kept."""
        check_is_fitted(self)
        X = validate_data(
            self, X, accept_sparse="csr", dtype=(np.float64, np.float32), reset=False
        )
        if self.visible == "bernoulli":
            return clip_unit_interval(X, warn=True, stacklevel=user_stacklevel() + 1)
        _check_gaussian_distance(X, self.intercept_visible_)
        return X

    def _params(self):
        """The backend, the device and the model as keyword arguments of the
        numerics (``W``, ``b``, ``c`` as backend arrays, and ``visible``)."""
        backend, device = self._get_backend()
        params = self._load_state(backend, device, self._param_names, self._dtype)
        return backend, device, dict(params, visible=self.visible)

    def _map(self, X, fn, method, *row_args):
        """Apply fn(backend.rbm, params, block, *row_arg_blocks) to X in row blocks
        of about ``_BLOCK_BYTES`` of temporaries; NumPy out, finite or a ValueError
        naming the cause."""
        backend, device, p = self._params()
        width = 3 * sum(self.components_.shape)
        rows = block_rows(width, self._dtype.itemsize, _BLOCK_BYTES)
        with np.errstate(over="ignore", invalid="ignore"):
            out = self._map_rows(
                backend,
                device,
                X,
                lambda block, *args: fn(backend.rbm, p, block, *args),
                self._dtype,
                *row_args,
                batch_rows=rows,
            )
        return self._finite(out, X, method)

    def _finite(self, out, X, method):
        """``out``, or a ValueError that says why some of it overflowed."""
        if np.isfinite(out).all():
            return out
        data = X.data if sp.issparse(X) else X
        peak = float(np.abs(data).max(initial=0.0))
        w_max = float(np.abs(self.components_).max(initial=0.0))
        advice = (
            "Standardise X as the training data (e.g. StandardScaler)."
            if self.visible == "gaussian"
            else "The parameters are too large: refit with a lower learning_rate."
        )
        raise ValueError(
            f"{type(self).__name__}.{method} overflows {self._dtype.name} "
            f"arithmetic: X has values up to {peak:.3g} in magnitude and "
            f"components_ up to {w_max:.3g}. {advice}"
        )

    @array_api_boundary
    def transform(self, X):
        """Compute the hidden activation probabilities P(h = 1 | v).

        For Bernoulli visible units, values outside [0, 1] are clipped to it with a
        warning, as in :meth:`fit` and every other method that takes visible data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        h : ndarray of shape (n_samples, n_components)
            P(h_j = 1 | v) for each row.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import RBM
        >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
        >>> rbm = RBM(n_components=2, n_iter=20, random_state=0).fit(X)
        >>> rbm.transform(X).shape
        (4, 2)
        """
        X = self._check_X(X)
        return self._map(
            X, lambda ops, p, v: ops.mean_hiddens(v, p["W"], p["c"]), "transform"
        )

    @array_api_boundary
    def inverse_transform(self, X):
        """Compute the visible means E[v | h] of hidden states or probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Hidden states (or P(h = 1 | v), as :meth:`transform` returns).

        Returns
        -------
        v : ndarray of shape (n_samples, n_features)
            E[v | h] for each row.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import RBM
        >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
        >>> rbm = RBM(n_components=2, n_iter=20, random_state=0).fit(X)
        >>> rbm.inverse_transform(rbm.transform(X)).shape
        (4, 3)
        """
        check_is_fitted(self)
        H = check_array(X, dtype=(np.float64, np.float32))
        if H.shape[1] != self.n_components:
            raise ValueError(
                f"X has {H.shape[1]} features, but inverse_transform expects "
                f"{self.n_components} (n_components)."
            )
        return self._map(
            H,
            lambda ops, p, h: ops.mean_visibles(h, p["W"], p["b"], self.visible),
            "inverse_transform",
        )

    @array_api_boundary
    def free_energy(self, X):
        """Compute the free energy F(v) = -log sum_h exp(-E(v, h)).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        free_energy : ndarray of shape (n_samples,)
            F(v); log p(v) = -F(v) - log Z.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import RBM
        >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
        >>> rbm = RBM(n_components=2, n_iter=20, random_state=0).fit(X)
        >>> rbm.free_energy(X).shape
        (4,)
        """
        return self._free_energy(self._check_X(X), "free_energy")

    def _free_energy(self, X, method):
        return self._map(X, lambda ops, p, v: ops.free_energy(v, **p), method)

    @array_api_boundary
    def energy(self, X):
        """Compute the energy of visible vectors: the free energy F(v).

        Lower is more probable; equals ``-score_samples(X) - log_partition()``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        energy : ndarray of shape (n_samples,)
            F(v) for each row.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import RBM
        >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
        >>> rbm = RBM(n_components=2, n_iter=20, random_state=0).fit(X)
        >>> bool(np.allclose(rbm.energy(X), rbm.free_energy(X)))
        True
        """
        return self.free_energy(X)

    @array_api_boundary
    def log_partition(self, method="auto", *, return_std=False, max_states=None):
        """Compute the log partition function log Z of the fitted model.

        Parameters
        ----------
        method : {"auto", "exact", "ais"}, default="auto"
            "exact" sums over every state of the smaller binary layer (the hidden
            layer for Gaussian visible units); "ais" uses annealed importance
            sampling with ``ais_n_chains`` chains and ``ais_n_betas`` temperatures,
            seeded from ``random_state``; "auto" is exact up to 20 units
            (``skebm._rbm.EXACT_MAX_UNITS``), AIS above.
        return_std : bool, default=False
            Also return the standard error of log Z: 0.0 when exact; for AIS, the
            spread of its importance weights w over the chains, sd(w) / (sqrt(n)
            mean(w)) (inf with a single chain). It understates the error when the
            chains miss a mode of the model: more ``ais_n_betas`` or
            ``ais_n_chains`` are the remedy.
        max_states : int, default=None
            Largest number of states that ``method="exact"`` enumerates; above it
            the call raises a ValueError suggesting ``method="ais"``. None uses
            ``skebm._rbm.EXACT_MAX_STATES`` (2**24); pass a larger number to
            enumerate more (its time grows as the number of states times the
            width of the other layer; the memory stays bounded).

        Returns
        -------
        log_z : float
            The log partition function, cached for the current parameters and settings.
        std : float
            Its standard error; returned only when ``return_std`` is True.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import RBM
        >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
        >>> rbm = RBM(n_components=2, n_iter=20, random_state=0).fit(X)
        >>> log_z = rbm.log_partition()
        >>> bool(np.allclose(rbm.score_samples(X), -rbm.free_energy(X) - log_z))
        True
        >>> log_z, std = rbm.log_partition(method="ais", return_std=True)
        >>> bool(std < 0.1)
        True
        """
        check_is_fitted(self)
        if method not in ("auto", "exact", "ais"):
            raise ValueError(
                f"method must be 'auto', 'exact' or 'ais', got {method!r}."
            )
        if max_states is not None and not (
            isinstance(max_states, Integral)
            and not isinstance(max_states, (bool, np.bool_))
            and max_states >= 1
        ):
            raise ValueError(f"max_states must be an int >= 1, got {max_states!r}.")
        if not isinstance(return_std, (bool, np.bool_)):
            raise ValueError(f"return_std must be True or False, got {return_std!r}.")
        # exact log Z sums over the smaller binary layer (the hidden one for
        # Gaussian visible units)
        n_units, layer = self.n_components, "hidden"
        if self.visible == "bernoulli" and self.n_features_in_ < self.n_components:
            n_units, layer = self.n_features_in_, "visible"
        if method == "auto":
            method = "exact" if n_units <= EXACT_MAX_UNITS else "ais"
        limit = EXACT_MAX_STATES if max_states is None else max_states
        if method == "exact" and 2**n_units > limit:
            count = f"2**{n_units}" + (f" = {2**n_units:,}" if n_units <= 40 else "")
            raise ValueError(
                f"log_partition(method='exact') would enumerate {count} states of "
                f"the {layer} layer, more than max_states={limit:,}. Use "
                "method='ais' for an estimate with a standard error, or pass a "
                "larger max_states to enumerate anyway."
            )
        digest = hashlib.blake2b(digest_size=16)
        for name in self._param_names.values():
            digest.update(np.ascontiguousarray(getattr(self, name)).tobytes())
        # a str key (skops files, JSON schemas, take no tuple keys); the value is
        # [log_z, standard error]
        state = digest.hexdigest()
        key = f"log_z,std|{method}|{self.visible}|{self.backend}"
        key += f"|{self.ais_n_chains}|{self.ais_n_betas}|{state}"
        # computed once per fitted state and settings, however many threads ask;
        # the cache is read and updated under the lock, and in place (a fitted
        # estimator's __dict__ keeps its objects), keeping the current state only;
        # a per-call copy made under array API dispatch uses its estimator's
        owner = origin(self)
        with _log_z_lock(owner):
            cache = vars(owner).setdefault("_log_z_cache", {})
            if key not in cache:
                value = self._compute_log_partition(method, n_units, layer)
                for old in [k for k in cache if not k.endswith(state)]:
                    del cache[old]
                cache[key] = value
            log_z, std = cache[key]
        return (log_z, std) if return_std else log_z

    def _compute_log_partition(self, method, n_units, layer):
        """[log Z, standard error], finite or a ValueError; verbose lines say what
        runs and what it found."""
        backend, device, p = self._params()
        exact = method == "exact"
        how = (
            f"exact sum over 2**{n_units} states of the {layer} layer"
            if exact
            else f"AIS, {self.ais_n_chains} chains x {self.ais_n_betas} temperatures"
        )
        self._say(f"log Z: {how} ...")
        start = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore"), backend.core.thread_limit():
            if exact:
                log_z = backend.rbm.log_partition_exact(**p, chunk_bytes=_BLOCK_BYTES)
                std = 0.0
            else:
                rng = backend.core.make_rng(self._ais_seed, device)
                betas = _ais_betas(self.ais_n_betas)
                log_z, log_w = backend.rbm.ais_log_partition(
                    **p, betas=betas, n_chains=self.ais_n_chains, rng=rng
                )
                std = _ais_standard_error(backend.core.to_numpy(log_w))
        if not np.isfinite(log_z):
            raise ValueError(
                f"log Z ({method}) is not finite: the parameters overflow "
                f"{self._dtype.name} arithmetic (components_ up to "
                f"{float(np.abs(self.components_).max()):.3g}). Refit with a lower "
                "learning_rate."
            )
        error = "" if exact else f" +- {std:.4f} (standard error)"
        elapsed = time.perf_counter() - start
        self._say(f"log Z = {log_z:.4f}{error} ({method}, {elapsed:.1f}s)")
        return [float(log_z), float(std)]

    def _say(self, line):
        if self.verbose:
            print(f"[{type(self).__name__}] {line}", flush=True)

    @array_api_boundary
    def score_samples(self, X):
        """Compute the log-likelihood log p(v) = -F(v) - log Z of each row.

        log Z is exact for small models and estimated by AIS otherwise (see
        :meth:`log_partition`); it is deterministic given ``random_state``. For
        BernoulliRBM's pseudo-likelihood, see :meth:`pseudo_likelihood`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
            The log-likelihood in nats (a log-density for Gaussian visible units).

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import RBM
        >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
        >>> rbm = RBM(n_components=2, n_iter=20, random_state=0).fit(X)
        >>> log_p = rbm.score_samples(X)
        >>> log_p.shape
        (4,)
        >>> bool((log_p < 0).all())
        True
        """
        X = self._check_X(X)
        log_z = self.log_partition()
        return self._finite(
            -self._free_energy(X, "score_samples") - log_z, X, "score_samples"
        )

    @array_api_boundary
    def pseudo_likelihood(self, X):
        """Compute BernoulliRBM's ``score_samples``: a pseudo-log-likelihood.

        One randomly chosen unit of each row is flipped and the score is
        ``n_features * log sigmoid(F(v_flipped) - F(v))``. The flipped units are
        drawn from ``random_state``, so an int seed gives the same score each call.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Binary data.

        Returns
        -------
        pseudo_likelihood : ndarray of shape (n_samples,)
            Pseudo-log-likelihood of each row.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import RBM
        >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
        >>> rbm = RBM(n_components=2, n_iter=20, random_state=0).fit(X)
        >>> rbm.pseudo_likelihood(X).shape
        (4,)
        """
        if self.visible != "bernoulli":
            raise ValueError(
                "pseudo_likelihood is defined for visible='bernoulli' only; use "
                "score_samples for the log-likelihood."
            )
        X = self._check_X(X)
        rng = check_random_state(self.random_state)
        cols = rng.randint(0, X.shape[1], X.shape[0])
        return self._map(
            X,
            lambda ops, p, v, flip: ops.pseudo_likelihood(v, flip, **p),
            "pseudo_likelihood",
            cols,
        )

    # -- sampling --------------------------------------------------------------------

    def _rng(self, backend, device, random_state=None):
        """A backend generator seeded from ``random_state`` (None: ``random_state_``)."""
        rs = check_random_state(
            self.random_state_ if random_state is None else random_state
        )
        return backend.core.make_rng(rs.randint(_SEED_MAX), device)

    @array_api_boundary
    def gibbs(self, v):
        """Perform one Gibbs sampling step, v -> h -> v', as BernoulliRBM.gibbs.

        Parameters
        ----------
        v : ndarray of shape (n_samples, n_features)
            Values of the visible layer to start from.

        Returns
        -------
        v_new : ndarray of shape (n_samples, n_features)
            Values of the visible layer after one Gibbs step.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import RBM
        >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
        >>> rbm = RBM(n_components=2, n_iter=20, random_state=0).fit(X)
        >>> rbm.gibbs(X).shape
        (4, 3)
        """
        v = self._check_X(v)
        rng = self._rng(*self._get_backend())
        return self._map(
            v, lambda ops, p, block: ops.gibbs_step(block, **p, rng=rng), "gibbs"
        )

    @array_api_boundary
    @validate_params(
        {
            "n_samples": [Interval(Integral, 1, None, closed="left")],
            "n_steps": [Interval(Integral, 0, None, closed="left")],
            "init": [StrOptions({"random", "persistent"}), "array-like"],
            "return_mean": ["boolean"],
            "random_state": ["random_state"],
        },
        prefer_skip_nested_validation=True,
    )
    def sample(
        self,
        n_samples=1,
        *,
        n_steps=1000,
        init="random",
        return_mean=False,
        random_state=None,
    ):
        """Draw visible vectors from the model by block Gibbs sampling.

        Each of ``n_samples`` independent chains starts from ``init`` and runs
        ``n_steps`` sweeps v -> h -> v (the burn-in); the last state is returned.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples (independent chains).
        n_steps : int, default=1000
            Gibbs sweeps per chain before its state is returned.
        init : {"random", "persistent"} or array-like of shape (n_samples, n_features), \
default="random"
            Where the chains start: "random" draws exactly from the bias-only model
            (the weights set to zero); "persistent" starts from the training chains
            (``h_samples_``, reused cyclically); an array gives the visible states.
        return_mean : bool, default=False
            Return E[v | h] of the last sweep instead of the sample v itself
            (noise-free pictures; probabilities for Bernoulli units).
        random_state : int, RandomState instance or None, default=None
            Seed of the chains; None draws one from the fitted ``random_state_``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Samples (or their conditional means), in the dtype of the model.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import RBM
        >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
        >>> rbm = RBM(n_components=2, n_iter=20, random_state=0).fit(X)
        >>> rbm.sample(5, n_steps=100, random_state=0).shape
        (5, 3)
        """
        check_is_fitted(self)
        v0 = None
        if not isinstance(init, str):
            v0 = self._check_X(init)
            if v0.shape[0] != n_samples:
                raise ValueError(
                    f"init has {v0.shape[0]} rows but n_samples={n_samples}."
                )
        backend, device, p = self._params()
        rng = self._rng(backend, device, random_state)
        with np.errstate(over="ignore", invalid="ignore"), backend.core.thread_limit():
            if v0 is not None:
                v = backend.core.asarray(v0, self._dtype, device)
            elif init == "random":
                v = backend.rbm.base_sample(p["b"], n_samples, self.visible, rng)
            else:
                idx = np.arange(n_samples) % self.h_samples_.shape[0]
                h = backend.core.asarray(self.h_samples_[idx], self._dtype, device)
                v = backend.rbm.sample_visibles(h, p["W"], p["b"], self.visible, rng)
            v, v_mean = backend.rbm.gibbs_chain(v, **p, n_steps=n_steps, rng=rng)
            out = backend.core.to_numpy(v_mean if return_mean else v)
        return self._finite(out, out if v0 is None else v0, "sample")

    # -- scikit-learn plumbing -------------------------------------------------------

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.array_api_support = ARRAY_API_SUPPORT
        return tags
