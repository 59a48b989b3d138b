"""The storage rules of HopfieldMemory and their dynamics: a registry (STYLE rule 7).

Each rule object knows which state it trains (``state_names``), how to store patterns,
its capacity, and which backend functions recall, score and sample with it; the
estimator in :mod:`skebm._hopfield` dispatches through :data:`RULES`.
"""

import math

import numpy as np

#: binary "modern" recall keeps the probe's bit where |Xi^T p| <= this (a tie)
_MODERN_TIE = 1e-6


def _dense_capacity(n, degree):
    """N^(n-1) / (2 (2n-3)!! ln N), Krotov & Hopfield (2016)."""
    double_factorial = math.prod(range(2 * degree - 3, 0, -2))
    return n ** (degree - 1) / (2 * double_factorial * math.log(n)) if n > 1 else 0.0


class _Pairwise:
    """E(s) = -1/2 s^T W s: W (``weights_``) built by ``store(ops, state, Xi)``."""

    def __init__(self, store, capacity, note, extra_state=None):
        self._store, self.capacity, self.note = store, capacity, note
        self.state_names = {"W": "weights_", "tol": "_tie_tol", **(extra_state or {})}

    def initialize(self, est, n, dtype):
        for key, attr in self.state_names.items():
            setattr(est, attr, np.zeros((n, n) if key == "W" else n, dtype=dtype))

    def store(self, ops, state, Xi):
        self._store(ops, state, Xi)
        state["tol"] = ops.pairwise_tolerance(state["W"])  # ties of the gaps, once

    def capacity_text(self, n, degree):
        errfree = n / (2 * math.log(n)) if n > 1 else 0.0
        return self.note.format(cap=self.capacity(n, degree), errfree=errfree, n=degree)

    def recall(self, ops, p, s, est, order_rng):
        kw = {"update": est.update, "max_iter": est.max_iter, "order_rng": order_rng}
        factors = self.factors(ops, p, est)
        return (*ops.pairwise_recall(s, p["W"], p["tol"], factors=factors, **kw), None)

    def factors(self, ops, p, est):
        """Factors of W that synchronous recall uses instead of W, or None."""
        return None

    def probe_dtype(self, ops, est, like):
        """dtype of the states recall starts from, if not that of the estimator;
        ``like`` is a probe block on the target device."""
        return None

    def energy(self, ops, p, s, est):
        return ops.pairwise_energy(s, p["W"])

    def random_init(self, ops, p, n_samples, est, rng):
        return ops.random_spins(n_samples, est.n_features_in_, est._dtype, rng)

    def sample(self, ops, p, s, est, n_steps, rng):
        W, tol = p["W"], p["tol"]
        return ops.pairwise_glauber(s, W, tol, est.temperature, n_steps, rng)


class _Dense(_Pairwise):
    """Krotov & Hopfield (2016): E(s) = -N sum_mu (xi_mu . s / N)^degree."""

    def __init__(self, capacity, note):
        self.capacity, self.note, self.state_names = capacity, note, {}

    def store(self, ops, state, Xi):
        pass  # the memories are the state

    def recall(self, ops, p, s, est, order_rng):
        kw = {"update": est.update, "max_iter": est.max_iter, "order_rng": order_rng}
        return (*ops.dense_recall(s, p["Xi"], est.degree, **kw), None)

    def energy(self, ops, p, s, est):
        return ops.dense_energy(s, p["Xi"], est.degree)

    def sample(self, ops, p, s, est, n_steps, rng):
        return ops.dense_glauber(s, p["Xi"], est.degree, est.temperature, n_steps, rng)


class _Modern(_Dense):
    """Ramsauer et al. (2020): x <- Xi^T softmax(beta Xi x) on continuous states."""

    def probe_dtype(self, ops, est, like):
        # binary probes in the backend's spin dtype make the first overlaps Xi s an
        # exact product in the fastest arithmetic (float32, or int8 on torch's CPU)
        if est.encoding_ == "real":
            return None
        return ops.spin_dtype(est.n_features_in_, like)

    def recall(self, ops, p, s, est, order_rng):
        kw = {"max_iter": est.max_iter, "tol": est.tol * est._rms}
        if est.encoding_ != "real":  # binary states; a tie between memories keeps s
            x, proba, n_iter, status = ops.modern_recall_spins(
                s, p["Xi"], est.beta_, tie=_MODERN_TIE, **kw
            )
        else:
            x, proba, n_iter, status = ops.modern_recall(s, p["Xi"], est.beta_, **kw)
        return x, n_iter, status, proba

    def energy(self, ops, p, s, est):
        return ops.modern_energy(s, p["Xi"], est.beta_)

    def random_init(self, ops, p, n_samples, est, rng):
        return ops.modern_base_sample(p["Xi"], est.beta_, n_samples, rng)

    def sample(self, ops, p, s, est, n_steps, rng):
        x = ops.modern_gibbs(s, p["Xi"], est.beta_, n_steps, rng)
        return x if est.encoding_ == "real" else ops.to_spins(x, 0.0)


class _Hebbian(_Pairwise):
    """The Hebb rule: W = (Xi^T Xi - diag(d)) / N has rank <= P, so synchronous recall
    computes W s as Xi^T (Xi s) while 2 P < N (fewer flops, the same signs)."""

    @staticmethod
    def _factored(est):
        n_patterns, n_units = est.memories_.shape
        return est.update == "sync" and 2 * n_patterns < n_units

    def factors(self, ops, p, est):
        return ops.hebbian_factors(p["Xi"]) if self._factored(est) else None

    def probe_dtype(self, ops, est, like):
        # the factored updates run in the factors' dtype: start there
        return ops.spin_dtype(est.n_features_in_, like) if self._factored(est) else None


def _store_hebbian(ops, state, Xi):
    state["W"] = ops.hebbian_update(state["W"], Xi)


def _store_storkey(ops, state, Xi):
    state["W"] = ops.storkey_store(state["W"], Xi)


def _store_projection(ops, state, Xi):
    state["W"], state["d"] = ops.projection_update(state["W"], state["d"], Xi)


RULES = {
    "hebbian": _Hebbian(
        _store_hebbian,
        lambda n, degree: 0.138 * n,
        "about 0.138 N = {cap:.1f} patterns, recalled with about 1.5% of their bits "
        "wrong (Amit, Gutfreund & Sompolinsky 1985); recalling every pattern without "
        "error needs P < N / (2 ln N) = {errfree:.1f}",
    ),
    "storkey": _Pairwise(
        _store_storkey,
        lambda n, degree: n / math.sqrt(2 * math.log(n)) if n > 1 else 0.0,
        "about N / sqrt(2 ln N) = {cap:.1f} patterns (Storkey 1997)",
    ),
    "pseudoinverse": _Pairwise(
        _store_projection,
        lambda n, degree: n / 2,
        "about N / 2 = {cap:.1f} patterns: up to N linearly independent patterns are "
        "fixed points, but without self-couplings their basins of attraction shrink "
        "as P approaches N (Personnaz, Guyon & Dreyfus 1986; Kanter & Sompolinsky "
        "1987)",
        extra_state={"d": "_projector_diag"},
    ),
    "dense": _Dense(
        _dense_capacity,
        "about N^(n-1) / (2 (2n-3)!! ln N) = {cap:.1f} patterns for degree n = {n} "
        "(Krotov & Hopfield 2016)",
    ),
    "modern": _Modern(
        lambda n, degree: 3.1546 ** ((n - 1) / 4),
        "exponential in N: Ramsauer et al. (2020, Theorem 3) retrieve "
        "sqrt(p) c^((N-1)/4) random patterns in one step with probability 1 - p "
        "(c = 3.15 in their example); skebm warns above c^((N-1)/4) = {cap:.3g}",
    ),
}
