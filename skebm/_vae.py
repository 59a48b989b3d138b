"""Variational autoencoder as a scikit-learn transformer and density model."""

import math
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from array_api_compat import array_namespace, is_torch_array
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from skebm._engine import transaction, user_stacklevel
from skebm._neural import NeuralFitMixin
from skebm.base import _SEED_MAX, EnergyMixin
from skebm.utils._array_api import (
    ARRAY_API_SUPPORT,
    array_api_boundary,
    float_dtypes,
    to_numpy,
)
from skebm.utils._docstring import substitute_docstring
from skebm.utils._random import row_normal_draws
from skebm.utils._validation import (
    check_finite_output,
    check_same_classes,
    clip_unit_interval,
)

#: score_samples evaluates about this many decoder outputs (row x importance sample x
#: feature, float64) per decoder call: 2**22 values, 32 MiB, whatever the width of X
_VALUES_PER_CALL = 2**22

#: what the clipping warning of score_samples suggests
_CLIP_ADVICE = (
    "The Bernoulli likelihood is defined there only. In a Pipeline, "
    "MinMaxScaler(clip=True) keeps new data in range."
)


@substitute_docstring
class VAETransformer(
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    EnergyMixin,
    NeuralFitMixin,
    BaseEstimator,
):
    """Variational autoencoder: a nonlinear latent-variable model of the rows of X.

    The model is p(x, z) = p(z) p(x | z) with a standard normal prior p(z) on
    ``n_components`` latent variables and a decoder network giving p(x | z):
    independent Bernoulli pixels (from logits) or an isotropic Gaussian around a
    decoded mean. An encoder network gives the approximate posterior
    q(z | x) = N(mu(x), diag(sigma^2(x))); both are trained together by maximising
    the evidence lower bound (ELBO) with Adam (Kingma and Welling, 2014).

    :meth:`transform` returns the posterior mean mu(x), :meth:`inverse_transform` the
    decoder mean, :meth:`sample` draws new rows and :meth:`score_samples` estimates
    log p(x) by importance sampling (the IWAE bound). With ``conditional=True`` the
    decoder is p(x | z, y) (a conditional VAE): ``fit`` needs labels and
    :meth:`sample` generates requested classes, while :meth:`transform` still needs
    X only.

    Needs PyTorch. Read more in the :ref:`User Guide <vae>`.

    Parameters
    ----------
    n_components : int, default=2
        Dimension of the latent space (of the output of :meth:`transform`).

    hidden_layer_sizes : array-like of shape (n_layers,), default=(256,)
        Widths of the encoder's hidden layers; the decoder mirrors them. ``()``
        gives linear encoder and decoder: with ``likelihood="gaussian"`` the model
        is probabilistic PCA.

    activation : {"relu", "tanh", "logistic", "identity", "elu", "softplus", \
"swish", "silu"}, default="relu"
        Activation of the hidden layers.

    likelihood : {"auto", "bernoulli", "gaussian"}, default="auto"
        The decoder's distribution p(x | z). "bernoulli" reads each feature as the
        probability of a binary pixel: data must lie in [0, 1] (values strictly
        inside give the cross-entropy, not a normalised density). "gaussian" is an
        isotropic normal with one learned variance shared by all features. "auto"
        picks "bernoulli" when the training data lie in [0, 1], "gaussian"
        otherwise; the choice is stored in ``likelihood_``.

    beta : float, default=1.0
        Weight of the KL term of the ELBO (the beta-VAE of Higgins et al., 2017).
        Values above 1 favour disentangled, smoother latent spaces, below 1 sharper
        reconstructions.

    conditional : bool, default=False
        Learn p(x | z, y) from the labels given to :meth:`fit`. The encoder
        q(z | x) does not see y, so :meth:`transform` needs X only.

    n_importance_samples : int, default=100
        Default number k of importance samples of :meth:`score_samples`.

    max_iter : int, default=200
        Maximum number of epochs of :meth:`fit`.

    batch_size : int or "auto", default="auto"
        Rows per minibatch; "auto" uses ``min(200, n_samples)``.

    learning_rate_init : float, default=1e-3
        Step size of Adam.

    alpha : float, default=0.0
        Strength of the L2 penalty on the weight matrices (as in MLPClassifier:
        ``alpha * 0.5 * ||W||^2 / batch_size`` is added to each batch loss).

    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training rows, stop when their
        ELBO stops improving and keep the best weights.

    validation_fraction : float, default=0.1
        Fraction of the rows held out for early stopping (stratified by y for
        conditional models).

    n_iter_no_change : int, default=10
        Epochs without an improvement of ``tol`` (of the training loss, or of the
        validation ELBO with early stopping) before training stops.

    tol : float, default=1e-4
        Improvement in nats per row that counts as progress.

    warm_start : bool, default=False
        Continue from the fitted weights in :meth:`fit` instead of starting anew.

    {random_state}

    {verbose}

    {device}

    Attributes
    ----------
    likelihood_ : {"bernoulli", "gaussian"}
        The decoder's distribution in use ("auto" resolved).

    classes_ : ndarray of shape (n_classes,)
        The labels of a conditional model (absent otherwise).

    class_prior_ : ndarray of shape (n_classes,)
        Frequencies of the labels in the first fit of a conditional model: the
        class prior used where :meth:`sample`, :meth:`inverse_transform` or
        :meth:`score_samples` get no label.

    n_iter_ : int
        Number of epochs run (summed over warm starts and ``partial_fit`` calls).

    loss_curve_ : list of float
        Training loss of each epoch: the negative beta-weighted ELBO per row, in
        nats, of the data in input units.

    best_loss_ : float
        Smallest value of ``loss_curve_``.

    validation_scores_ : list of float
        With early stopping, the validation ELBO per row after each epoch.

    best_validation_score_ : float
        With early stopping, the best of ``validation_scores_``.

    learning_rate_ : float
        Learning rate in use: ``learning_rate_init``, halved after each divergence
        that training recovered from.

    random_state_ : RandomState
        Random number generator from which fit and sampling draw their seeds.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    sklearn.decomposition.PCA : The linear, deterministic counterpart
        (``hidden_layer_sizes=()`` with a Gaussian likelihood is its
        probabilistic version).
    skebm.RBM : An undirected latent-variable model with binary hidden units.

    Notes
    -----
    **Training.** Each minibatch step maximises the ELBO
    E_q[log p(x | z, y)] - beta KL(q(z | x) || p(z)) averaged over the batch: one
    reparameterised draw z = mu + sigma * eps per row for the first term, the KL
    term in closed form. Divergence (a non-finite loss or parameters, or an epoch
    loss above ten times that of a flat model) rolls the epoch back, halves the
    learning rate of the call and warns; after three rollbacks the call raises an
    error that says what to change. Every call starts at the current
    ``learning_rate_init``.

    **Failures, interrupts, threads.** :meth:`fit` and :meth:`partial_fit` complete
    or leave the model exactly as it was (a failed first fit leaves it unfitted).
    Ctrl-C after at least one completed epoch stops training with a warning and
    keeps the state after the last completed epoch; earlier, it propagates and the
    model is as before. The network is built from the NumPy state once, under a
    lock, so a fitted or just-loaded model serves many threads.

    **Data scale.** With the Gaussian likelihood the data are centred per feature
    and divided by one global scale (the root mean feature variance) internally;
    the model, its outputs and :meth:`score_samples` are in input units (the
    log-density includes the Jacobian ``-n_features * log(scale)``). One scale
    keeps the noise isotropic in input units, so put a
    :class:`~sklearn.preprocessing.StandardScaler` first when features have very
    different scales. The noise variance is floored at 1e-6 times the squared
    scale.

    **Log-likelihood.** :meth:`score_samples` returns the importance-weighted bound
    L_k = log (1/k) sum_i p(x, z_i) / q(z_i | x) with z_i drawn from q(z | x)
    (Burda, Grosse and Salakhutdinov, 2016). L_1 is an ELBO, L_k grows with k
    (in expectation) and reaches log p(x) as k goes to infinity. The draws of a
    row are a deterministic function of the row's values and a seed drawn at fit
    time (a hash of the row seeds a counter-based generator): the score of a row
    does not depend on the other rows or their order, repeated calls agree, and
    different rows get independent draws, so the Monte Carlo error averages out
    in :meth:`score`. Weights are accumulated in float64 by a running logsumexp.
    Conditional models marginalise the label with ``class_prior_``. Bernoulli
    models clip rows outside [0, 1] into it, with a warning.

    References
    ----------
    D. P. Kingma and M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014.

    Y. Burda, R. Grosse and R. Salakhutdinov, "Importance Weighted Autoencoders",
    ICLR 2016.

    K. Sohn, H. Lee and X. Yan, "Learning Structured Output Representation using
    Deep Conditional Generative Models", NeurIPS 2015.

    I. Higgins et al., "beta-VAE: Learning Basic Visual Concepts with a
    Constrained Variational Framework", ICLR 2017.

    M. E. Tipping and C. M. Bishop, "Probabilistic Principal Component Analysis",
    JRSS B 61, 1999.

    Examples
    --------
    >>> import numpy as np
    >>> from skebm import VAETransformer
    >>> X = np.random.default_rng(0).random((60, 5))
    >>> vae = VAETransformer(n_components=2, hidden_layer_sizes=(16,), max_iter=20,
    ...                      random_state=0)
    >>> vae.fit(X).transform(X).shape
    (60, 2)
    >>> vae.likelihood_
    'bernoulli'
    >>> vae.sample(3, random_state=0).shape
    (3, 5)
    """

    _parameter_constraints: dict = {
        **NeuralFitMixin._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "likelihood": [StrOptions({"auto", "bernoulli", "gaussian"})],
        "beta": [Interval(Real, 0, None, closed="left")],
        "conditional": ["boolean"],
        "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
    }

    _network_params = (
        "n_components",
        "hidden_layer_sizes",
        "activation",
        "conditional",
    )

    _divergence_advice = (
        "Lower `learning_rate_init`, add `alpha`, or scale the data (MinMaxScaler "
        "for likelihood='bernoulli', StandardScaler for 'gaussian')."
    )

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes=(256,),
        activation="relu",
        likelihood="auto",
        beta=1.0,
        conditional=False,
        n_importance_samples=100,
        max_iter=200,
        batch_size="auto",
        learning_rate_init=1e-3,
        alpha=0.0,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        warm_start=False,
        random_state=None,
        verbose=0,
        device="auto",
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.likelihood = likelihood
        self.beta = beta
        self.conditional = conditional
        self.n_importance_samples = n_importance_samples
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.alpha = alpha
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        self.device = device

    # -- fitting ---------------------------------------------------------------------

    @array_api_boundary(fits=True)
    @transaction
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the encoder and decoder by maximising the ELBO for ``max_iter`` epochs.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data (densified).
        y : array-like of shape (n_samples,), default=None
            Class labels; required when ``conditional=True``, ignored otherwise.

        Returns
        -------
        self : VAETransformer
            The fitted model.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import VAETransformer
        >>> X = np.random.default_rng(0).random((40, 5))
        >>> vae = VAETransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=3,
        ...                      random_state=0).fit(X)
        >>> vae.likelihood_
        'bernoulli'
        """
        return self._fit(X, y, incremental=False)

    @array_api_boundary(fits=True)
    @transaction
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, classes=None):
        """Run one epoch over X, in order, in minibatches of ``batch_size``.

        The first call initialises the model as :meth:`fit` does.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,), default=None
            Class labels; required when ``conditional=True``, ignored otherwise.
        classes : array-like of shape (n_classes,), default=None
            All the labels of a conditional model, given on the first call; None
            uses the labels present in that call's y. A later call may pass the
            same labels again; other labels are a ValueError.

        Returns
        -------
        self : VAETransformer
            The updated model.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import VAETransformer
        >>> X = np.random.default_rng(0).random((40, 5))
        >>> vae = VAETransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=3,
        ...                      random_state=0).fit(X)
        >>> online = VAETransformer(n_components=2, hidden_layer_sizes=(8,), random_state=0)
        >>> online.partial_fit(X).n_iter_
        1
        """
        return self._fit(X, y, incremental=True, classes=classes)

    def _validate_fit_data(self, X, y, reset, classes):
        dtype = float_dtypes(X, (np.float64, np.float32) if reset else (self._dtype,))
        X = _dense(
            validate_data(self, X, accept_sparse="csr", dtype=dtype, reset=reset)
        )
        if reset:
            self._check_hidden_layer_sizes()
            self.likelihood_ = self._resolve_likelihood(X)
            self._fit_data_scale(X)
        self._check_unit_interval(X, "fit")
        if not reset:
            self._check_fitted()
            if self.likelihood not in ("auto", self.likelihood_):
                raise ValueError(
                    f"likelihood={self.likelihood!r} changed after fit: the network "
                    f"was fitted with likelihood_={self.likelihood_!r}, which "
                    "warm_start and partial_fit continue. Set it back, or fit anew "
                    "(warm_start=False)."
                )
        if not self.conditional:
            if reset:  # the labels of an earlier conditional fit are no more
                vars(self).pop("classes_", None)
                vars(self).pop("class_prior_", None)
            return self._scaled(X), None
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is "
                "None: conditional=True learns p(x | z, y) from class labels. Pass "
                "y to fit, or set conditional=False."
            )
        y = check_array(to_numpy(y), ensure_2d=False, dtype=None, input_name="y")
        # a column vector is taken with a DataConversionWarning, as by classifiers
        y = column_or_1d(y, warn=True)
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                f"y should be a 1d array with one label per row of X, got shape "
                f"{y.shape} for {X.shape[0]} rows."
            )
        check_classification_targets(y)
        if not reset and classes is not None:
            check_same_classes(classes, self.classes_)
        if reset:
            self.classes_ = np.unique(y if classes is None else classes)
            counts = np.array([np.sum(y == c) for c in self.classes_], dtype=float)
            self.class_prior_ = counts / counts.sum()
        return self._scaled(X), self._class_codes(y)

    def _resolve_likelihood(self, X):
        if self.likelihood != "auto":
            return self.likelihood
        in_range = _empty(X) or (float(X.min()) >= 0.0 and float(X.max()) <= 1.0)
        return "bernoulli" if in_range else "gaussian"

    def _fit_data_scale(self, X):
        """Per-feature centre and one global scale (Gaussian); identity (Bernoulli)."""
        xp = array_namespace(X)
        if self.likelihood_ == "bernoulli":
            self._x_offset = xp.zeros_like(X[0])
            self._x_scale = 1.0
            return
        self._x_offset = xp.mean(X, axis=0)
        scale = float(xp.sqrt(xp.mean(xp.var(xp.astype(X, xp.float64), axis=0))))
        self._x_scale = scale if scale > 0 and np.isfinite(scale) else 1.0

    def _check_unit_interval(self, X, where):
        if self.likelihood_ != "bernoulli" or _empty(X):
            return
        low, high = float(X.min()), float(X.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"X passed to {where} has values in [{low:.3g}, {high:.3g}], "
                "outside [0, 1]: the Bernoulli likelihood reads features as "
                "probabilities. Scale the data into [0, 1] (e.g. MinMaxScaler), or "
                "use likelihood='gaussian' (or 'auto', which picks it for such data)."
            )

    def _scaled(self, X, inverse=False):
        """Data in the model's units, (X - centre) / scale; with ``inverse``, rows
        in the model's units back in input units. In the namespace of X."""
        if self.likelihood_ == "bernoulli":
            return X
        xp = array_namespace(X)
        if is_torch_array(X):  # the fitted centre on the device of X
            offset = self._torch().core.asarray(self._x_offset, None, X.device)
        else:
            offset = to_numpy(self._x_offset)
        out = X * self._x_scale + offset if inverse else (X - offset) / self._x_scale
        return xp.astype(out, X.dtype, copy=False)

    @property
    def _log_jacobian(self):
        """log |d(scaled x) / dx| = -n_features * log(scale)."""
        return -self.n_features_in_ * math.log(self._x_scale)

    def _class_codes(self, y):
        """Labels -> indices into ``classes_``; a clear error for unknown labels."""
        y = np.asarray(y)
        known = np.isin(y, self.classes_)
        if not known.all():
            raise ValueError(
                f"y contains labels not seen in the first fit: "
                f"{np.unique(y[~known]).tolist()}; known labels are "
                f"{self.classes_.tolist()}."
            )
        return np.searchsorted(self.classes_, y)

    def _initialize(self, X, y):
        self._score_seed = self.random_state_.randint(_SEED_MAX)

    @property
    def _n_classes(self):
        return len(self.classes_) if self.conditional else 0

    def _module_factory(self, be):
        args = (
            self.n_features_in_,
            self.n_components,
            tuple(int(h) for h in np.atleast_1d(self.hidden_layer_sizes)),
            self.activation,
            self.likelihood_,
            self._n_classes,
        )
        return lambda: be.vae.VAE(*args)

    def _loss_fn(self, be, device, generator, net, ctx):
        # the loss is reported in input units
        return be.vae.make_train_loss(
            net, float(self.beta), generator, -self._log_jacobian
        )

    def _divergence_reason(self, ctx, loss):
        """An epoch loss above ten times that of a flat model (every feature a unit
        Gaussian in the model's units), in input units, overshot."""
        flat = 0.5 * np.log(2 * np.pi * np.e) * self.n_features_in_
        limit = 10 * flat - self._log_jacobian
        if loss > limit:
            return f"the training loss reached {loss:.3g}, above {limit:.3g}"
        return None

    def _validation_score(self, X, y):
        return float(self._bound(X, 1, y).mean()) + self._log_jacobian

    # -- inference -------------------------------------------------------------------

    def _check_fitted(self):
        """check_is_fitted, and a ValueError when ``conditional`` was switched on
        after a fit without labels."""
        check_is_fitted(self)
        if self.conditional and not hasattr(self, "classes_"):
            raise ValueError(
                f"{type(self).__name__} was fitted with conditional=False, without "
                "labels, but conditional is now True (changed after fit). Set "
                "conditional=False, or fit anew with y."
            )

    def _check_X(self, X):
        self._check_fitted()
        return _dense(
            validate_data(
                self, X, accept_sparse="csr", dtype=float_dtypes(X), reset=False
            )
        )

    def _labels(self, y, n_rows, where):
        """One-hot rows of the labels y (None stays None), checked against classes_."""
        if y is None:
            return None
        y = np.asarray(to_numpy(y))
        if y.ndim == 0:
            y = np.full(n_rows, y.item())
        if y.shape != (n_rows,):
            raise ValueError(
                f"y passed to {where} must be one label or one label per row "
                f"({n_rows}), got shape {y.shape}."
            )
        return np.eye(len(self.classes_), dtype=self._dtype)[self._class_codes(y)]

    def _bound(self, X_scaled, k, codes=None):
        """L_k per row of scaled data (no Jacobian, NumPy or a tensor): a float64
        tensor on the numerics' device.

        ``codes`` (class indices) give log p(x | y); None marginalises y. Each row
        gets its own k draws, a function of its values and the fit's seed only.
        """
        be, device = self._torch_device()
        log_prior = None
        if self.conditional:
            # classes absent from the first fit have prior 0: log 0 = -inf is meant
            prior = be.core.asarray(self.class_prior_, np.float64, device)
            log_prior = prior.log()
        if is_torch_array(X_scaled):  # the rows and their draws stay on the device
            X_model = be.core.asarray(X_scaled, self._dtype, device)
        else:
            X_model = np.asarray(X_scaled, dtype=self._dtype)
        labels = None
        if codes is not None:
            labels = np.eye(len(self.classes_), dtype=self._dtype)[codes]
        # bound the memory: rows x draws x classes pairs per decoder call
        n_classes = max(self._n_classes, 1)
        pairs = max(1, _VALUES_PER_CALL // max(X_model.shape[1], 1))
        rows = max(1, pairs // (k * n_classes))
        chunk = max(1, pairs // (rows * n_classes))
        out = []
        for start in range(0, X_model.shape[0], rows):
            block = X_model[start : start + rows]
            eps = row_normal_draws(block, self._score_seed, k, self.n_components)
            eps = be.core.asarray(eps, np.float64, device)
            y = None if labels is None else labels[start : start + rows]

            def fn(be, net, x, y, eps=eps):
                return be.vae.iwae_bound(net, x, eps, y, log_prior, chunk)

            out.append(self._predict_tensor((block, y), fn, batch_rows=rows))
        if not out:
            return be.core.asarray(np.zeros(0), np.float64, device)
        return be.core.concat_rows(out)

    @array_api_boundary
    def transform(self, X):
        """Encode X: the posterior mean E[z | x] under q(z | x).

        Deterministic, and each row's code depends on that row only.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Latent codes, in the dtype of X.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import VAETransformer
        >>> X = np.random.default_rng(0).random((40, 5))
        >>> vae = VAETransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=3,
        ...                      random_state=0).fit(X)
        >>> vae.transform(X).shape
        (40, 2)
        """
        X = self._check_X(X)
        be = self._torch()
        Z = self._predict_tensor(self._scaled(X), lambda be, net, x: net.encode(x)[0])
        Z = self._answer(be.core.asarray(Z, X.dtype, Z.device), X)
        return check_finite_output(Z, self, "transform", X)

    @array_api_boundary
    def inverse_transform(self, X, y=None):
        """Decode latent codes: the decoder mean E[x | z, y], in input units.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Latent codes (for instance from :meth:`transform`).
        y : array-like of shape (n_samples,) or a label, default=None
            Labels of a conditional model. None averages the decoder means of
            every class with the weights ``class_prior_`` (the class-marginal
            mean E[x | z]). Ignored by unconditional models.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Reconstructions (probabilities for the Bernoulli likelihood), in the
            dtype of the input codes.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import VAETransformer
        >>> X = np.random.default_rng(0).random((40, 5))
        >>> vae = VAETransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=3,
        ...                      random_state=0).fit(X)
        >>> vae.inverse_transform(np.zeros((3, 2))).shape
        (3, 5)
        """
        self._check_fitted()
        Z = check_array(X, dtype=float_dtypes(X))
        if Z.shape[1] != self.n_components:
            raise ValueError(
                f"X has {Z.shape[1]} features, but inverse_transform expects "
                f"{self.n_components} (n_components)."
            )
        out = self._decode(Z, y, return_mean=True, seed=0)
        out = self._answer(self._torch().core.asarray(out, Z.dtype, out.device), Z)
        return check_finite_output(out, self, "inverse_transform", Z)

    def _decode(self, Z, y, *, return_mean, seed):
        be, device = self._torch_device()
        labels = prior = None  # y is ignored by unconditional models
        if self.conditional:
            labels = self._labels(y, Z.shape[0], "inverse_transform or sample")
            prior = be.core.asarray(self.class_prior_, self._dtype, device)
        generator = be.core.make_rng(seed, device)

        def fn(be, net, z, y):
            return be.vae.generate(net, z, y, return_mean, generator, prior)

        return self._scaled(self._predict_tensor((Z, labels), fn), inverse=True)

    @array_api_boundary
    def score_samples(self, X, n_importance_samples=None):
        """Estimate the log-likelihood log p(x) of each row (the IWAE bound L_k).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data; the Bernoulli likelihood clips it into [0, 1] (with a warning).
        n_importance_samples : int, default=None
            Number k of importance samples; None uses ``n_importance_samples``
            of the estimator. k=1 gives an ELBO; larger k a tighter bound.

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
            L_k in nats (a log-density in input units for the Gaussian
            likelihood), float64. Deterministic: the draws of a row depend on its
            values and the fitted model only (see Notes).

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import VAETransformer
        >>> X = np.random.default_rng(0).random((40, 5))
        >>> vae = VAETransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=3,
        ...                      random_state=0).fit(X)
        >>> vae.score_samples(X[:3], n_importance_samples=10).shape
        (3,)
        """
        X = self._check_X(X)
        if self.likelihood_ == "bernoulli":
            X = clip_unit_interval(
                X, warn=True, advice=_CLIP_ADVICE, stacklevel=user_stacklevel() + 1
            )
        k = self.n_importance_samples
        if n_importance_samples is not None:
            if (
                not isinstance(n_importance_samples, Integral)
                or n_importance_samples < 1
            ):
                raise ValueError(
                    "n_importance_samples must be a positive integer, got "
                    f"{n_importance_samples!r}."
                )
            k = int(n_importance_samples)
        out = self._bound(self._scaled(X), k) + self._log_jacobian
        return check_finite_output(self._answer(out, X), self, "score_samples", X)

    @array_api_boundary
    def energy(self, X):
        """Compute the energy -log p(x), estimated as ``-score_samples(X)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data.

        Returns
        -------
        energy : ndarray of shape (n_samples,)
            Minus the IWAE estimate of log p(x); lower is more probable.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import VAETransformer
        >>> X = np.random.default_rng(0).random((40, 5))
        >>> vae = VAETransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=3,
        ...                      random_state=0).fit(X)
        >>> bool(np.allclose(vae.energy(X[:3]), -vae.score_samples(X[:3])))
        True
        """
        return -self.score_samples(X)

    @array_api_boundary
    @validate_params(
        {
            "n_samples": [Interval(Integral, 1, None, closed="left")],
            "y": "no_validation",
            "return_mean": ["boolean"],
            "random_state": ["random_state"],
        },
        prefer_skip_nested_validation=True,
    )
    def sample(self, n_samples=1, y=None, *, return_mean=False, random_state=None):
        """Generate rows: z ~ N(0, I), then x ~ p(x | z, y).

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to generate.
        y : array-like of shape (n_samples,) or a label, default=None
            Classes to generate with a conditional model (one label for all rows,
            or one per row). None draws the labels from ``class_prior_``.
            Ignored by unconditional models.
        return_mean : bool, default=False
            Return the decoder mean E[x | z, y] instead of a draw of x
            (noise-free pictures; probabilities for the Bernoulli likelihood).
        random_state : int, RandomState instance or None, default=None
            Seed of the draws; None draws one from the fitted ``random_state_``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Generated rows in input units, in the dtype of the model.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import VAETransformer
        >>> X = np.random.default_rng(0).random((40, 5))
        >>> vae = VAETransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=3,
        ...                      random_state=0).fit(X)
        >>> vae.sample(3, random_state=0).shape
        (3, 5)
        """
        self._check_fitted()
        rs = check_random_state(
            self.random_state_ if random_state is None else random_state
        )
        Z = rs.standard_normal((n_samples, self.n_components)).astype(self._dtype)
        if self.conditional and y is None:
            y = self.classes_[
                rs.choice(len(self.classes_), n_samples, p=self.class_prior_)
            ]
        if not self.conditional:
            y = None
        seed = rs.randint(_SEED_MAX)
        out = self._decode(Z, y, return_mean=return_mean, seed=seed)
        return self._answer(out, self._x_offset)

    # -- scikit-learn plumbing -------------------------------------------------------

    @property
    def _n_features_out(self):
        return self.n_components

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.target_tags.required = bool(self.conditional)
        tags.array_api_support = ARRAY_API_SUPPORT
        return tags


def _dense(X):
    return X.toarray() if sp.issparse(X) else X


def _empty(X):
    return math.prod(X.shape) == 0
