"""Hopfield associative memories: classical, dense and modern (continuous) rules."""

import contextlib
import functools
import math
import time
import warnings
from numbers import Integral, Real
from types import SimpleNamespace

import numpy as np
from sklearn.base import (
    BaseEstimator,
    OneToOneFeatureMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted, validate_data

from skebm._backends import BACKENDS
from skebm._engine import transaction
from skebm._hopfield_rules import RULES
from skebm.base import _SEED_MAX, BackendMixin, EnergyMixin
from skebm.utils._array_api import ARRAY_API_SUPPORT, array_api_boundary
from skebm.utils._docstring import substitute_docstring
from skebm.utils._validation import check_finite

#: every prediction path works on row blocks of at most this many bytes of states,
#: overlaps and weights, and at most _BATCH_ROWS rows (bounded memory)
_BLOCK_BYTES = 1 << 25
_BATCH_ROWS = 4096

#: default beta: a memory whose overlap with the state beats every other by one
#: flipped unit (2 * mean square entry) gets at least 1 - 1 / _BETA_ODDS of the weight
_BETA_ODDS = 1e4

#: a recalled state is memory mu if |state - xi_mu| <= _MATCH_RTOL * RMS memory norm
_MATCH_RTOL = 1e-3

#: inputs of the binary encodings are thresholded here (x > threshold -> +1)
_THRESHOLDS = {"binary": 0.5, "bipolar": 0.0}
_CODES = {"binary": "0 and 1", "bipolar": "-1 and +1"}


@substitute_docstring
class HopfieldMemory(
    OneToOneFeatureMixin, TransformerMixin, EnergyMixin, BackendMixin, BaseEstimator
):
    """Hopfield associative memory: store patterns, recall them from corrupted probes.

    :meth:`fit` stores the rows of X; :meth:`transform` runs the recall dynamics from
    every probe (a denoiser in a :class:`~sklearn.pipeline.Pipeline`) and
    :meth:`predict` says which stored pattern each probe ended in. Five storage rules
    span the classical network (Hebbian, Storkey, pseudo-inverse), the dense
    associative memory of Krotov & Hopfield and the continuous modern Hopfield
    network of Ramsauer et al.

    Read more in the :ref:`User Guide <hopfield>`.

    Parameters
    ----------
    rule : {"hebbian", "storkey", "pseudoinverse", "dense", "modern"}, \
default="modern"
        Storage rule; see Notes for the energies and capacities. "modern" (the
        default) stores correlated real patterns such as images, which the
        classical rules cannot (see the User Guide's table).

        - "hebbian": W = (1/N) sum_mu xi_mu xi_mu^T with a zero diagonal.
        - "storkey": Storkey's incremental local rule (1997), in its local-field
          form: W'_ij = W_ij + (xi_i xi_j - xi_i h_ji - h_ij xi_j) / N with
          h_ij = sum_{k != i, j} W_ik xi_k, zero diagonal, one pattern at a time in
          the order of the rows.
        - "pseudoinverse": the projection rule W = Xi^+ Xi, zero diagonal.
        - "dense": dense associative memory with the polynomial interaction
          F(x) = N (x / N)^degree.
        - "modern": continuous modern Hopfield network,
          x <- Xi^T softmax(beta Xi x).

    update : {"async", "sync"}, default="async"
        Binary rules: "async" updates one unit at a time, in a fresh random order
        each sweep; "sync" updates every unit at once (faster, but it may fall into
        2-cycles, which are detected, and does not always lower the energy).
        "modern" always updates the whole state.

    max_iter : int, default=100
        Largest number of sweeps (async) or updates (sync, modern) per probe;
        recall stops earlier at a fixed point.

    beta : float, default=None
        Inverse temperature of "modern". None uses
        beta = (ln P + ln 1e4) / (2 m2), m2 the mean squared entry of the stored
        patterns (1 for binary ones): a memory whose overlap with the state exceeds
        every other's by the change one flipped unit makes (2 m2) then gets at least
        1 - 1e-4 of the softmax weight, so recall returns the nearest memory by
        overlap. Recomputed as patterns are added.

    degree : int, default=3
        Degree n of the polynomial interaction of "dense" (n = 2 is Hebbian).

    temperature : float, default=0.5
        Temperature of the Glauber dynamics of :meth:`sample` for the binary rules,
        in the units of the energy (the Hebbian network retrieves below about 1).

    tol : float, default=1e-6
        "modern" stops once no entry of the state moves by more than
        tol times the root mean square entry of the stored patterns.

    encoding : {"auto", "binary", "bipolar", "real"}, default="auto"
        How the values of X code the states. "binary": {0, 1}, other values are
        thresholded at 0.5; "bipolar": {-1, +1}, thresholded at 0; "real": real
        values, stored and recalled as they are ("modern" only). "auto" picks
        "binary" if the patterns have no negative value and "bipolar" otherwise;
        for "modern" it picks "real" unless the patterns are all in {0, 1} or in
        {-1, +1}. Outputs use the same encoding.

    {backend}

    {device}

    {random_state}

    verbose : int, default=0
        If positive, print one line per fit / partial_fit call: the patterns
        stored, how many are not recalled, the load against the capacity, and the
        time it took.

    Attributes
    ----------
    memories_ : ndarray of shape (n_memories, n_features)
        The stored patterns, in ``encoding_`` (binary patterns after thresholding).

    weights_ : ndarray of shape (n_features, n_features)
        Symmetric weight matrix with a zero diagonal ("hebbian", "storkey",
        "pseudoinverse" only).

    beta_ : float
        Inverse temperature in use ("modern" only).

    encoding_ : {"binary", "bipolar", "real"}
        Encoding of the stored patterns and of the outputs.

    capacity_ : float
        The rule's known capacity for ``n_features_in_`` units (see Notes); storing
        more patterns warns.

    n_unstable_ : int
        Number of stored patterns that recall does not return from a clean probe:
        not fixed points of one update (binary rules), or recalled elsewhere
        ("modern"). Checked after every fit and partial_fit, which warn when it is
        not zero, naming a rule or setting that would store them.

    n_iter_ : int
        Number of storing passes: 1 after :meth:`fit`, plus one per
        :meth:`partial_fit` call.

    random_state_ : RandomState
        Generator from which fit draws the seed of the recall unit orders and
        :meth:`sample` the seed of its chains.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    skebm.RBM : A Boltzmann machine with hidden units, trained by likelihood.
    sklearn.neighbors.NearestNeighbors : Exact nearest-pattern look-up.

    Notes
    -----
    **States and energies.** Binary states are s in {-1, +1}^N (the {0, 1} coding
    is mapped to it and back). The pairwise rules have E(s) = -1/2 s^T W s; "dense"
    has E(s) = -N sum_mu (xi_mu . s / N)^n; "modern" has Ramsauer's energy
    E(x) = -lse(beta, Xi x) + x.x / 2 + log(P) / beta + M^2 / 2 with
    lse(beta, a) = log(sum exp(beta a)) / beta and M the largest memory norm.
    :meth:`score_samples` is -E, an unnormalised log-probability.

    **Recall.** A unit takes the sign of its energy gap
    E(s_i = -1) - E(s_i = +1) (the field 2 (W s)_i for pairwise rules) and keeps its
    state on a tie (a gap within rounding of zero), so asynchronous recall never
    raises the energy and ends at a fixed point. Synchronous recall stops at a fixed
    point or, when a state returns after two updates, at the lower-energy state of
    that 2-cycle (on equal energies, within rounding, the state it was in when the
    cycle was found). "modern" iterates its update, which never raises its energy
    (a concave-convex procedure); for binary encodings it thresholds the result at
    0, keeping the probe's bit where memories tie (the result is 0). The unit orders of asynchronous sweeps come from a seed drawn in fit, the same
    orders for every probe, so a probe's recall depends neither on the other rows
    nor on the backend.

    **Capacity** (patterns of N random unbiased units; storing more warns):
    Hebbian about 0.138 N with about 1.5% bit errors, N / (2 ln N) error-free
    (Amit, Gutfreund & Sompolinsky 1985); Storkey about N / sqrt(2 ln N); the
    pseudo-inverse up to N linearly independent patterns as fixed points, with
    basins that vanish as P approaches N, so N / 2 is used; dense
    N^(n-1) / (2 (2n-3)!! ln N); modern exponential in N.

    **Transactions.** :meth:`fit`, :meth:`partial_fit` and :meth:`sample` complete
    or leave the estimator exactly as it was: an error or Ctrl-C (which propagates)
    keeps the earlier memory, or leaves a first fit unfitted. Settings that cannot
    give finite recall (a ``beta`` or ``degree`` that overflows) are rejected by fit;
    probes whose real-valued overlaps overflow raise an error naming the cause.
    Prediction works in row blocks of bounded size in bytes.

    **Sampling.** :meth:`sample` runs Glauber (heat-bath) dynamics at
    ``temperature`` for the pairwise and dense rules: each unit is set to +1 with
    probability sigmoid(gap / T), in a random order each sweep, so the chains
    converge to p(s) ~ exp(-E(s) / T). For "modern", whose energy defines
    p(x) ~ exp(-beta E(x)), a Gaussian mixture of the memories with covariance
    I / beta, chains start from exact draws of that mixture and move by block
    Gibbs sampling on (x, mu): mu ~ softmax(beta Xi x), x ~ N(xi_mu, I / beta).
    Binary encodings threshold the draws.

    References
    ----------
    J. J. Hopfield, "Neural networks and physical systems with emergent collective
    computational abilities", PNAS 79, 1982.

    D. J. Amit, H. Gutfreund and H. Sompolinsky, "Storing infinite numbers of
    patterns in a spin-glass model of neural networks", PRL 55, 1985.

    A. Storkey, "Increasing the capacity of a Hopfield network without sacrificing
    functionality", ICANN 1997; A. Storkey and R. Valabregue, "The basins of
    attraction of a new Hopfield learning rule", Neural Networks 12, 1999.

    L. Personnaz, I. Guyon and G. Dreyfus, "Collective computational properties of
    neural networks: New learning mechanisms", Phys. Rev. A 34, 1986; I. Kanter and
    H. Sompolinsky, "Associative recall of memory without errors", Phys. Rev. A 35,
    1987.

    D. Krotov and J. J. Hopfield, "Dense Associative Memory for Pattern
    Recognition", NeurIPS 2016.

    H. Ramsauer et al., "Hopfield Networks is All You Need", ICLR 2021
    (arXiv:2008.02217, 2020).

    Examples
    --------
    >>> import numpy as np
    >>> from skebm import HopfieldMemory
    >>> X = np.random.default_rng(0).choice([-1.0, 1.0], size=(5, 64))
    >>> memory = HopfieldMemory(rule="storkey", random_state=0).fit(X)
    >>> probe = X.copy()
    >>> probe[:, :8] *= -1
    >>> memory.predict(probe)
    array([0, 1, 2, 3, 4])
    >>> bool((memory.transform(probe) == X).all())
    True
    """

    _parameter_constraints: dict = {
        "rule": [StrOptions(set(RULES))],
        "update": [StrOptions({"async", "sync"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="neither"), None],
        "degree": [Interval(Integral, 2, None, closed="left")],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "encoding": [StrOptions({"auto", "binary", "bipolar", "real"})],
        "backend": [StrOptions(set(BACKENDS))],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        rule="modern",
        *,
        update="async",
        max_iter=100,
        beta=None,
        degree=3,
        temperature=0.5,
        tol=1e-6,
        encoding="auto",
        backend="numpy",
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.rule = rule
        self.update = update
        self.max_iter = max_iter
        self.beta = beta
        self.degree = degree
        self.temperature = temperature
        self.tol = tol
        self.encoding = encoding
        self.backend = backend
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- storing ---------------------------------------------------------------------

    @array_api_boundary(fits=True)
    @transaction
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Store the rows of X, replacing any stored patterns.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Patterns to store, in the encoding given by ``encoding``.
        y : None
            Ignored.

        Returns
        -------
        self : HopfieldMemory
            The fitted memory.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import HopfieldMemory
        >>> X = np.random.default_rng(0).choice([-1.0, 1.0], size=(3, 32))
        >>> memory = HopfieldMemory(random_state=0).fit(X)
        >>> probe = X.copy()
        >>> probe[:, :4] *= -1
        >>> memory.memories_.shape
        (3, 32)
        """
        return self._fit(X, reset=True)

    @array_api_boundary(fits=True)
    @transaction
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Add the rows of X to the stored patterns.

        Exact incremental updates: the Hebbian sum and Storkey's rule continue where
        they stopped, the pseudo-inverse rule adds the patterns' components outside
        the stored span (a rank-one update per new direction), "dense" and "modern"
        append. The first call stores as :meth:`fit` does.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Patterns to add.
        y : None
            Ignored.

        Returns
        -------
        self : HopfieldMemory
            The updated memory.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import HopfieldMemory
        >>> X = np.random.default_rng(0).choice([-1.0, 1.0], size=(3, 32))
        >>> memory = HopfieldMemory(random_state=0).fit(X)
        >>> probe = X.copy()
        >>> probe[:, :4] *= -1
        >>> online = HopfieldMemory(random_state=0).partial_fit(X[:2]).partial_fit(X[2:])
        >>> online.memories_.shape
        (3, 32)
        """
        return self._fit(X, reset=False)

    def _fit(self, X, *, reset):
        first = reset or not hasattr(self, "memories_")
        if not first:
            self._check_rule()
            if self.encoding not in ("auto", self.encoding_):
                raise ValueError(
                    f"encoding={self.encoding!r} but the stored patterns are in "
                    f"{self.encoding_!r} (encoding_); call fit to store them again."
                )
        # the new memory is built on a shallow copy and published in one assignment,
        # so a concurrent reader sees the old memory or the new one, never a mix (an
        # error before that point changes nothing)
        new = object.__new__(type(self))
        vars(new).update(vars(self))
        dtype = (np.float64, np.float32) if first else new.memories_.dtype
        X = validate_data(new, X, dtype=dtype, reset=first)
        rule, (n_rows, n) = RULES[new.rule], X.shape
        tic = time.perf_counter()
        if first:  # a memory that holds no pattern yet
            random_state = check_random_state(new.random_state)
            new.encoding_ = new._resolve_encoding(X)
            new.random_state_ = random_state
            new._recall_seed = int(random_state.randint(_SEED_MAX))
            new._fitted_rule, new.n_iter_ = new.rule, 0
            new.memories_ = np.empty((0, n), dtype=X.dtype)
            new.capacity_ = float(rule.capacity(n, new.degree))
            for key, attr in rule.state_names.items():
                setattr(new, attr, np.zeros((n, n) if key == "W" else n, X.dtype))
        patterns = _as_patterns(X, new.encoding_, new.rule)
        new.memories_ = np.concatenate([new.memories_, patterns])
        new.n_iter_ += 1
        new._check_settings()
        if new.rule == "modern":
            new.beta_ = new._beta()
        backend, device = new._get_backend()
        state = new._load_state(backend, device, rule.state_names, X.dtype)
        Xi = backend.core.asarray(_to_states(patterns, new.encoding_), X.dtype, device)
        with backend.core.thread_limit():
            state = rule.store(backend.hopfield, state, Xi)
            new._store_state(backend, state, rule.state_names)
            new.n_unstable_ = new._count_unstable()
        self.__dict__ = vars(new)
        n_memories = self.memories_.shape[0]
        if n_memories > self.capacity_:
            warnings.warn(
                f"{n_memories} patterns stored in {n} units exceed the capacity of "
                f"rule={self.rule!r}: {rule.capacity_text(n, self.degree)}. Expect "
                "recall errors and spurious states; use more units, fewer patterns or "
                "a rule of larger capacity (storkey < pseudoinverse < dense < modern).",
                UserWarning,
                stacklevel=6,
            )
        if self.n_unstable_:
            warnings.warn(
                f"{self.n_unstable_} of the {n_memories} stored patterns are not "
                f"recalled from themselves by rule={self.rule!r} (they are not fixed "
                f"points of the recall); {rule.advice(self._config())}.",
                UserWarning,
                stacklevel=6,
            )
        if self.verbose:
            print(
                f"[{type(self).__name__}] stored {n_rows} patterns with "
                f"rule={self.rule!r}: {n_memories} in memory ({self.n_unstable_} not "
                f"recalled), capacity about {self.capacity_:.3g} for N = {n}, "
                f"time = {time.perf_counter() - tic:.2f}s"
            )
        return self

    def _check_settings(self):
        """Reject a degree whose interactions overflow: every energy and gap of
        "dense" is a sum of P terms of size up to N ((N + 2) / N)^degree."""
        if self.rule != "dense":
            return
        (n_memories, n), dtype = self.memories_.shape, self.memories_.dtype
        log_max = math.log(float(np.finfo(dtype).max))
        log_term = math.log(n) + self.degree * math.log1p(2.0 / n)
        if log_term + math.log(4 * (n_memories + 2)) > log_max:
            raise ValueError(
                f"degree={self.degree} overflows {dtype} in the "
                f"dense energy of {n} units (N ((N + 2) / N)^degree summed over "
                f"{n_memories} patterns). Use a smaller degree, more units or float64."
            )

    def _beta(self):
        """beta_ of "modern", checked: beta times the largest overlap of two stored
        patterns must be finite, or every softmax would be NaN."""
        memories, encoding = self.memories_, self.encoding_
        rms = _rms(memories, encoding)
        if self.beta is None:
            log_odds = math.log(memories.shape[0]) + math.log(_BETA_ODDS)
            beta = log_odds / 2 / rms / rms  # inf, not an error, when it overflows
        else:
            beta = float(self.beta)
        finfo = np.finfo(memories.dtype)
        norm2 = float(np.max(np.square(memories, dtype=np.float64).sum(axis=1)))
        if encoding != "real":
            norm2 = float(memories.shape[1])
        tiny, top = float(finfo.tiny), float(finfo.max)
        if not (tiny <= beta and beta * max(norm2, 1.0) <= top):
            source = "beta" if self.beta is not None else "the default beta"
            raise ValueError(
                f"{source} = {beta:.3g} cannot give finite recall in "
                f"{memories.dtype}: beta times the largest overlap of the stored "
                f"patterns ({norm2:.3g}) must lie in [{tiny:.3g}, {top:.3g}]. Scale X first (e.g. StandardScaler; RMS now "
                f"{rms:.3g}) or choose a moderate beta."
            )
        return beta

    def _count_unstable(self):
        """Stored patterns that recall from a clean probe does not return: those
        that one update moves (binary rules: not fixed points), or whose whole
        recall ends elsewhere ("modern"). Runs inside the caller's thread limit."""
        rule, cfg = RULES[self.rule], self._config()

        def fn(backend, p, block):
            # fresh arrays: recall works in place
            probes = functools.partial(_initial_states, backend, block, self.encoding_)
            out = rule.update_once(backend.hopfield, p, probes(), cfg)
            if out is None:
                out = rule.recall(backend.hopfield, p, probes, cfg, None)[0]
            return (out,)

        x = self._map_blocks(self.memories_, fn, fitting=True)[0]
        if cfg.real:
            d2 = np.square(x - self.memories_, dtype=np.float64).sum(axis=1)
            return int((d2 > cfg.radius2).sum())
        return int((x != _to_states(self.memories_, self.encoding_)).any(axis=1).sum())

    def _resolve_encoding(self, X):
        if self.encoding == "real" and self.rule != "modern":
            raise ValueError(
                f"encoding='real' needs rule='modern'; rule={self.rule!r} stores "
                "binary patterns (use encoding='binary', 'bipolar' or 'auto')."
            )
        if self.encoding != "auto":
            return self.encoding
        if self.rule == "modern":
            if np.isin(X, (0.0, 1.0)).all():
                return "binary"
            return "bipolar" if np.isin(X, (-1.0, 1.0)).all() else "real"
        return "binary" if X.min() >= 0 else "bipolar"

    def _config(self):
        """The settings recall, energies and sampling use (rules read nothing else)."""
        rms = _rms(self.memories_, self.encoding_)
        return SimpleNamespace(
            update=self.update,
            max_iter=self.max_iter,
            degree=self.degree,
            temperature=self.temperature,
            beta=getattr(self, "beta_", None),
            tol=self.tol * rms,
            # a recalled state is memory mu if |state - xi_mu|^2 <= radius2
            radius2=_MATCH_RTOL**2 * self.memories_.shape[1] * rms**2,
            real=self.encoding_ == "real",
        )

    # -- recall ----------------------------------------------------------------------

    def _check_rule(self):
        """The stored state belongs to the rule of the first fit: a ValueError if
        ``rule`` has changed since (its weights or memories do not fit the new one),
        or if a setting changed since makes it overflow (:meth:`_check_settings`)."""
        fitted = getattr(self, "_fitted_rule", self.rule)
        if self.rule != fitted:
            raise ValueError(
                f"rule changed from {fitted!r} to {self.rule!r} since the "
                "patterns were stored; call fit to store them again."
            )
        self._check_settings()

    def _check_X(self, X):
        check_is_fitted(self)
        self._check_rule()
        X = validate_data(
            self, X, dtype=self.memories_.dtype, reset=False, ensure_all_finite=False
        )
        check_finite(X, self._get_backend()[0], estimator_name=type(self).__name__)
        return X

    def _block_rows(self):
        """Rows per block of every prediction path: at most _BLOCK_BYTES of states,
        overlaps and weights per block (and at most _BATCH_ROWS rows)."""
        n_memories, n = self.memories_.shape
        row_bytes = self.memories_.dtype.itemsize * (4 * n + 3 * n_memories + 8)
        return int(max(1, min(_BATCH_ROWS, _BLOCK_BYTES // row_bytes)))

    def _map_blocks(self, X, fn, states=False, fitting=False):
        """fn(backend, params, block) -> tuple of backend arrays, over row blocks of
        X (:meth:`_block_rows`); their NumPy values, each written into one array.

        ``states=True``: the first output has the shape of X (the recalled states);
        on the CPU ``fn`` is also given ``dest=``, a backend view of the block's rows
        of that output, which it may return filled (no copy). ``fitting=True``: the
        caller holds the thread limit.
        """
        backend, device = self._get_backend()
        dtype, rows = self.memories_.dtype, self._block_rows()
        p = self._load_state(backend, device, RULES[self.rule].state_names, dtype)
        p["Xi"] = backend.core.asarray(
            _to_states(self.memories_, self.encoding_), dtype, device
        )
        outs = [np.empty(X.shape, dtype)] if states else []
        limit = contextlib.nullcontext() if fitting else backend.core.thread_limit()
        # overflow of extreme inputs is detected on the outputs and named there
        with limit, np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, X.shape[0], rows):
                kw = {}
                if states and device == "cpu":
                    kw["dest"] = backend.core.asarray(
                        outs[0][start : start + rows], dtype
                    )
                block = backend.core.asarray(X[start : start + rows], dtype, device)
                for i, a in enumerate(fn(backend, p, block, **kw)):
                    if a is kw.get("dest"):
                        continue
                    if not isinstance(a, np.ndarray):  # "memory" is NumPy already
                        a = backend.core.to_numpy(a)
                    if i == len(outs):
                        outs.append(np.empty((X.shape[0], *a.shape[1:]), a.dtype))
                    outs[i][start : start + a.shape[0]] = a
        return outs

    def _recall(self, X, want=("states", "n_iter", "status", "proba")):
        """Recall from validated probes: the outputs named in ``want`` of
        (states, n_iter, status, proba, memory); the others are dropped block by
        block."""
        rule, cfg = RULES[self.rule], self._config()
        names = ("states", "n_iter", "status", "proba")

        def fn(backend, p, block, dest=None):
            order_rng = np.random.default_rng(self._recall_seed)
            probes = functools.partial(_initial_states, backend, block, self.encoding_)
            recalled = rule.recall(backend.hopfield, p, probes, cfg, order_rng, dest)
            out = dict(zip(names, recalled, strict=True))
            if cfg.real and not np.isfinite(backend.core.to_float(out["states"].sum())):
                raise ValueError(
                    "X has values up to "
                    f"{backend.core.max_abs(block):.3g}, whose overlaps with the "
                    f"stored patterns overflow {self.memories_.dtype} at beta_ = "
                    f"{self.beta_:.3g}: recall has no finite answer. Scale X as the "
                    "stored patterns are."
                )
            if "memory" in want:
                idx, d2 = backend.hopfield.nearest_memory(out["states"], p["Xi"])
                idx, d2 = backend.core.to_numpy(idx), backend.core.to_numpy(d2)
                out["memory"] = np.where(d2 <= cfg.radius2, idx, -1)
            return [out[name] for name in want]

        return self._map_blocks(X, fn, states=want[0] == "states")

    @array_api_boundary
    def recall(self, X):
        """Recall from every probe and report how each recall ended.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Probes (initial states), in ``encoding_``; binary encodings threshold
            them as in :meth:`fit`, without a warning.

        Returns
        -------
        result : :class:`~sklearn.utils.Bunch`
            With ``states`` (ndarray of shape (n_samples, n_features), the recalled
            patterns, as :meth:`transform`), ``memory`` (ndarray of shape
            (n_samples,), as :meth:`predict`), ``n_iter`` (sweeps, or updates for
            sync and "modern", per probe), ``converged`` (reached a fixed point),
            ``cycle`` (stopped in a 2-cycle of synchronous updates) and, for
            "modern", ``proba`` (as :meth:`predict_proba`).

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import HopfieldMemory
        >>> X = np.random.default_rng(0).choice([-1.0, 1.0], size=(3, 32))
        >>> memory = HopfieldMemory(random_state=0).fit(X)
        >>> probe = X.copy()
        >>> probe[:, :4] *= -1
        >>> result = memory.recall(probe)
        >>> result.memory
        array([0, 1, 2])
        >>> bool(result.converged.all())
        True
        """
        X = self._check_X(X)
        want = ("states", "memory", "n_iter", "status")
        if self.rule == "modern":
            want += ("proba",)
        out = dict(zip(want, self._recall(X, want), strict=True))
        status, ops = out["status"], self._get_backend()[0].hopfield
        result = Bunch(
            states=_decode(out["states"], self.encoding_),
            memory=out["memory"],
            n_iter=out["n_iter"],
            converged=status == ops.CONVERGED,
            cycle=status == ops.CYCLE,
        )
        if "proba" in out:
            result.proba = out["proba"]
        return result

    @array_api_boundary
    def transform(self, X):
        """Recall the stored pattern nearest to each probe by the network dynamics.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Probes (initial states), in ``encoding_``; binary encodings threshold
            them (at 0.5 for {0, 1}, at 0 for {-1, +1}).

        Returns
        -------
        X_recalled : ndarray of shape (n_samples, n_features)
            The state each probe's recall ended in, in ``encoding_``.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import HopfieldMemory
        >>> X = np.random.default_rng(0).choice([-1.0, 1.0], size=(3, 32))
        >>> memory = HopfieldMemory(random_state=0).fit(X)
        >>> probe = X.copy()
        >>> probe[:, :4] *= -1
        >>> bool((memory.transform(probe) == X).all())
        True
        """
        X = self._check_X(X)
        return _decode(self._recall(X, ("states",))[0], self.encoding_)

    @array_api_boundary
    def predict(self, X):
        """Index of the stored pattern each probe recalls; -1 for a spurious state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Probes.

        Returns
        -------
        memory : ndarray of shape (n_samples,)
            Row of ``memories_`` equal to the recalled state (within 1e-3 of the
            RMS memory norm for real-valued patterns; the first of duplicates), or
            -1 when recall ends in a spurious state (a mixture, an inverted pattern
            or a 2-cycle).

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import HopfieldMemory
        >>> X = np.random.default_rng(0).choice([-1.0, 1.0], size=(3, 32))
        >>> memory = HopfieldMemory(random_state=0).fit(X)
        >>> probe = X.copy()
        >>> probe[:, :4] *= -1
        >>> memory.predict(probe)
        array([0, 1, 2])
        """
        X = self._check_X(X)
        return self._recall(X, ("memory",))[0]

    @available_if(lambda est: est.rule == "modern")
    @array_api_boundary
    def predict_proba(self, X):
        """Softmax weights over the memories at the end of recall ("modern" only).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Probes.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_memories)
            The weights softmax(beta Xi x) of the last update: the recalled state
            is ``proba @ Xi`` (before thresholding, for binary encodings).

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import HopfieldMemory
        >>> X = np.random.default_rng(0).choice([-1.0, 1.0], size=(3, 32))
        >>> memory = HopfieldMemory(random_state=0).fit(X)
        >>> probe = X.copy()
        >>> probe[:, :4] *= -1
        >>> modern = HopfieldMemory(rule="modern").fit(X)
        >>> modern.predict_proba(probe).shape
        (3, 3)
        >>> modern.predict_proba(probe).argmax(axis=1)
        array([0, 1, 2])
        """
        X = self._check_X(X)
        return self._recall(X, ("proba",))[0]

    @array_api_boundary
    def energy(self, X):
        """Energy of each state under the stored patterns (lower is more stable).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            States, in ``encoding_`` (binary encodings are thresholded).

        Returns
        -------
        energy : ndarray of shape (n_samples,)
            E(s); see Notes of the class for each rule's energy.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import HopfieldMemory
        >>> X = np.random.default_rng(0).choice([-1.0, 1.0], size=(3, 32))
        >>> memory = HopfieldMemory(random_state=0).fit(X)
        >>> probe = X.copy()
        >>> probe[:, :4] *= -1
        >>> bool((memory.energy(X) < memory.energy(probe)).all())
        True
        """
        X = self._check_X(X)
        rule, cfg = RULES[self.rule], self._config()

        def fn(backend, p, block):
            s = _initial_states(backend, block, self.encoding_)
            return (rule.energy(backend.hopfield, p, s, cfg),)

        energy = self._map_blocks(X, fn)[0]
        if not np.isfinite(energy).all():  # only "modern" on huge real states
            raise ValueError(
                f"X has values up to {np.abs(X).max():.3g}, whose energies overflow "
                f"{energy.dtype}. Scale X as the stored patterns are."
            )
        return energy

    @array_api_boundary
    def score_samples(self, X):
        """Negative energy: an unnormalised log-probability of each state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            States.

        Returns
        -------
        score : ndarray of shape (n_samples,)
            -E(s).

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import HopfieldMemory
        >>> X = np.random.default_rng(0).choice([-1.0, 1.0], size=(3, 32))
        >>> memory = HopfieldMemory(random_state=0).fit(X)
        >>> probe = X.copy()
        >>> probe[:, :4] *= -1
        >>> bool(np.allclose(memory.score_samples(X), -memory.energy(X)))
        True
        """
        return -self.energy(X)

    @array_api_boundary
    @transaction
    @validate_params(
        {
            "n_samples": [Interval(Integral, 1, None, closed="left")],
            "n_steps": [Interval(Integral, 0, None, closed="left")],
            "init": [StrOptions({"random"}), "array-like"],
            "random_state": ["random_state"],
        },
        prefer_skip_nested_validation=True,
    )
    def sample(self, n_samples=1, *, n_steps=100, init="random", random_state=None):
        """Draw states from the Boltzmann distribution of the stored patterns.

        Glauber (heat-bath) dynamics at ``temperature`` for the pairwise and dense
        rules; exact mixture draws followed by block Gibbs sampling for "modern"
        (see Notes of the class).

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples (independent chains).
        n_steps : int, default=100
            Sweeps (Gibbs steps for "modern") per chain.
        init : "random" or array-like of shape (n_samples, n_features), \
default="random"
            Where the chains start: "random" draws uniform states (exact draws
            from the model for "modern"); an array gives the states.
        random_state : int, RandomState instance or None, default=None
            Seed of the chains; None draws one from the fitted ``random_state_``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Samples, in ``encoding_``.

        Examples
        --------
        >>> import numpy as np
        >>> from skebm import HopfieldMemory
        >>> X = np.random.default_rng(0).choice([-1.0, 1.0], size=(3, 32))
        >>> memory = HopfieldMemory(random_state=0).fit(X)
        >>> probe = X.copy()
        >>> probe[:, :4] *= -1
        >>> memory.sample(2, random_state=0).shape
        (2, 32)
        """
        check_is_fitted(self)
        self._check_rule()
        rule, cfg = RULES[self.rule], self._config()
        X0 = None if isinstance(init, str) else self._check_X(init)
        if X0 is not None and X0.shape[0] != n_samples:
            raise ValueError(f"init has {X0.shape[0]} rows but n_samples={n_samples}.")
        rs = check_random_state(
            self.random_state_ if random_state is None else random_state
        )
        backend, device = self._get_backend()
        rng = backend.core.make_rng(rs.randint(_SEED_MAX), device)
        rows = np.arange(n_samples)[:, None]  # chains in blocks, one generator

        def fn(backend, p, block):
            if X0 is None:
                s = rule.random_init(backend.hopfield, p, block.shape[0], cfg, rng)
            else:
                s = _initial_states(backend, block, self.encoding_)
            return (rule.sample(backend.hopfield, p, s, cfg, n_steps, rng),)

        s = self._map_blocks(rows if X0 is None else X0, fn)[0]
        return _decode(s, self.encoding_)

    # -- scikit-learn plumbing -------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.array_api_support = ARRAY_API_SUPPORT
        return tags


# -- encodings and blocks (module functions: the estimator's state is passed in) -------


def _as_patterns(X, encoding, rule):
    """X in ``encoding``: binary encodings thresholded, with a warning."""
    if encoding == "real":
        with np.errstate(over="ignore"):
            overflow = not np.isfinite(np.square(X).sum(axis=1)).all()
        if overflow:  # beta and every overlap x . xi would be inf or NaN
            raise ValueError(
                f"X has values up to {np.abs(X).max():.3g}, whose squared norms "
                f"overflow {X.dtype}: rule='modern' cannot compare such patterns. "
                "Scale X first (e.g. StandardScaler)."
            )
        return X.copy()
    codes = (0.0, 1.0) if encoding == "binary" else (-1.0, 1.0)
    if not np.isin(X, codes).all():
        warnings.warn(
            f"X has values other than {_CODES[encoding]}; rule={rule!r} stores binary "
            f"patterns, so they were thresholded at {_THRESHOLDS[encoding]} (larger "
            "values become 1). Binarise X first, set `encoding`, or use "
            "rule='modern' for real-valued patterns.",
            UserWarning,
            stacklevel=7,
        )
    s = np.where(X > _THRESHOLDS[encoding], 1.0, -1.0).astype(X.dtype)
    return s if encoding == "bipolar" else (s + 1) / 2


def _to_states(patterns, encoding):
    """Patterns in ``encoding`` -> the {-1, +1} (or real) states of the network."""
    return 2 * patterns - 1 if encoding == "binary" else patterns


def _decode(states, encoding):
    """Network states ({-1, +1} for binary encodings) -> outputs in ``encoding``."""
    return (states > 0).astype(states.dtype) if encoding == "binary" else states


def _initial_states(backend, block, encoding, dtype=None):
    """Probes -> network states (a fresh array: recall works in place), in ``dtype``
    for the binary encodings (default: that of ``block``)."""
    if encoding == "real":
        return backend.core.copy(block)
    return backend.hopfield.to_spins(block, _THRESHOLDS[encoding], dtype=dtype)


def _rms(memories, encoding):
    """Root mean square entry of the stored states (1 for binary patterns)."""
    if encoding != "real" or not memories.size:
        return 1.0
    top = float(np.abs(memories).max())  # scaled: subnormal entries do not vanish
    if top == 0:
        return 1.0
    return top * float(np.sqrt(np.mean(np.square(memories / top, dtype=np.float64))))
