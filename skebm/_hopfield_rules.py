"""The storage rules of HopfieldMemory and their dynamics: a registry (CONTRIBUTING).

Each rule object knows the state it trains (``state_names``: key -> attribute), how to
store patterns, its capacity, and which backend functions recall, score and sample
with it; its ``recall`` picks its fast paths (the factored Hebbian updates, the spin
dtypes of exact overlaps) in one place. Rules read nothing from the estimator: the
estimator passes the backend arrays ``p`` (``Xi`` and the rule's state) and a
namespace ``cfg`` of the settings in use (``update``, ``max_iter``, ``degree``,
``beta``, ``tol``, ``temperature``, ``real``).
"""

import math

#: binary "modern" recall keeps the probe's bit where |Xi^T p| <= this (a tie)
_MODERN_TIE = 1e-6


def _exp(log_value):
    """exp(log_value), inf where it overflows a float."""
    return math.exp(log_value) if log_value < 709.0 else math.inf


def _dense_capacity(n, degree):
    """N^(n-1) / (2 (2n-3)!! ln N), Krotov & Hopfield (2016), in logarithms
    ((2n-3)!! = (2n-2)! / (2^(n-1) (n-1)!)), so large degrees give inf, not
    OverflowError."""
    if n <= 1:
        return 0.0
    log_double_factorial = (
        math.lgamma(2 * degree - 1) - (degree - 1) * math.log(2) - math.lgamma(degree)
    )
    log_cap = (degree - 1) * math.log(n) - math.log(2 * math.log(n))
    return _exp(log_cap - log_double_factorial)


class _Pairwise:
    """E(s) = -1/2 s^T W s: W (``weights_``) built by ``store(ops, state, Xi)``, which
    returns the entries of the state that storing Xi changes."""

    def __init__(self, store, capacity, note, extra_state=None):
        self._store, self.capacity, self.note = store, capacity, note
        self.state_names = {"W": "weights_", "tol": "_tie_tol", **(extra_state or {})}

    def store(self, ops, state, Xi):
        """A new state with the rows of Xi stored; never writes into ``state``."""
        state = {**state, **self._store(ops, state, Xi)}
        state["tol"] = ops.pairwise_tolerance(state["W"])  # ties of the gaps, once
        return state

    def capacity_text(self, n, degree):
        errfree = n / (2 * math.log(n)) if n > 1 else 0.0
        return self.note.format(cap=self.capacity(n, degree), errfree=errfree, n=degree)

    def advice(self, cfg):
        """Which rule or setting would store the patterns that are not fixed points."""
        return "use rule='modern' (or 'pseudoinverse' for linearly independent ones)"

    def update_once(self, ops, p, s, cfg):
        """One synchronous update of the states s: a pattern that it leaves
        unchanged is a fixed point of every recall."""
        return ops.sign_update(ops.pairwise_gap(s, p["W"]), s, p["tol"])

    def recall(self, ops, p, probes, cfg, order_rng, out=None):
        """(states, n_iter, status, proba or None) of recall from ``probes(dtype)``,
        the initial states (a fresh array, in ``dtype`` if not None); the states may
        be written into ``out`` (an array of their shape, or None)."""
        kw = {"update": cfg.update, "max_iter": cfg.max_iter, "order_rng": order_rng}
        return (*ops.pairwise_recall(probes(), p["W"], p["tol"], **kw), None)

    def energy(self, ops, p, s, cfg):
        return ops.pairwise_energy(s, p["W"])

    def random_init(self, ops, p, n_samples, cfg, rng):
        Xi = p["Xi"]
        return ops.random_spins((n_samples, Xi.shape[1]), Xi, rng)

    def sample(self, ops, p, s, cfg, n_steps, rng):
        W, tol = p["W"], p["tol"]
        return ops.pairwise_glauber(s, W, tol, cfg.temperature, n_steps, rng)


class _Dense(_Pairwise):
    """Krotov & Hopfield (2016): E(s) = -N sum_mu (xi_mu . s / N)^degree."""

    def __init__(self, capacity, note):
        self.capacity, self.note, self.state_names = capacity, note, {}

    def store(self, ops, state, Xi):
        return state  # the memories are the state

    def advice(self, cfg):
        return f"use a larger degree (now {cfg.degree}) or rule='modern'"

    def update_once(self, ops, p, s, cfg):
        gap, tol = ops.dense_gap(s, p["Xi"], cfg.degree)
        return ops.sign_update(gap, s, tol)

    def recall(self, ops, p, probes, cfg, order_rng, out=None):
        kw = {"update": cfg.update, "max_iter": cfg.max_iter, "order_rng": order_rng}
        return (*ops.dense_recall(probes(), p["Xi"], cfg.degree, **kw), None)

    def energy(self, ops, p, s, cfg):
        return ops.dense_energy(s, p["Xi"], cfg.degree)

    def sample(self, ops, p, s, cfg, n_steps, rng):
        Xi, T = p["Xi"], cfg.temperature
        return ops.dense_glauber(s, Xi, cfg.degree, T, n_steps, rng)


class _Modern(_Dense):
    """Ramsauer et al. (2020): x <- Xi^T softmax(beta Xi x) on continuous states."""

    def advice(self, cfg):
        return f"use a larger beta (now {cfg.beta:.3g})"

    def update_once(self, ops, p, s, cfg):
        return None  # retrieval is checked by the whole recall

    def recall(self, ops, p, probes, cfg, order_rng, out=None):
        # binary probes in the backend's spin dtype make the first overlaps Xi s an
        # exact product in the fastest arithmetic; a tie between memories keeps s
        Xi, tie = p["Xi"], None if cfg.real else _MODERN_TIE
        s = probes(None if cfg.real else ops.overlap_dtype(Xi.shape[1], Xi))
        kw = {"max_iter": cfg.max_iter, "tol": cfg.tol, "tie": tie, "out": out}
        x, proba, n_iter, status = ops.modern_recall(s, Xi, cfg.beta, **kw)
        return x, n_iter, status, proba

    def energy(self, ops, p, s, cfg):
        return ops.modern_energy(s, p["Xi"], cfg.beta)

    def random_init(self, ops, p, n_samples, cfg, rng):
        return ops.modern_base_sample(p["Xi"], cfg.beta, n_samples, rng)

    def sample(self, ops, p, s, cfg, n_steps, rng):
        x = ops.modern_gibbs(s, p["Xi"], cfg.beta, n_steps, rng)
        return x if cfg.real else ops.to_spins(x, 0.0)


class _Hebbian(_Pairwise):
    """The Hebb rule: W = (Xi^T Xi - diag(d)) / N has rank <= P, so synchronous recall
    computes W s as Xi^T (Xi s) while 2 P < N (fewer flops, the same signs)."""

    def recall(self, ops, p, probes, cfg, order_rng, out=None):
        Xi = p["Xi"]
        if cfg.update != "sync" or 2 * Xi.shape[0] >= Xi.shape[1]:
            return super().recall(ops, p, probes, cfg, order_rng)
        s = probes(ops.spin_dtype(Xi.shape[1], Xi))  # the factors' dtype: start there
        factors = ops.hebbian_factors(Xi)
        kw = {"update": "sync", "max_iter": cfg.max_iter, "order_rng": order_rng}
        return (*ops.pairwise_recall(s, p["W"], p["tol"], factors=factors, **kw), None)


RULES = {
    "hebbian": _Hebbian(
        lambda ops, state, Xi: {"W": ops.hebbian_update(state["W"], Xi)},
        lambda n, degree: 0.138 * n,
        "about 0.138 N = {cap:.1f} patterns, recalled with about 1.5% of their bits "
        "wrong (Amit, Gutfreund & Sompolinsky 1985); recalling every pattern without "
        "error needs P < N / (2 ln N) = {errfree:.1f}",
    ),
    "storkey": _Pairwise(
        lambda ops, state, Xi: {"W": ops.storkey_store(state["W"], Xi)},
        lambda n, degree: n / math.sqrt(2 * math.log(n)) if n > 1 else 0.0,
        "about N / sqrt(2 ln N) = {cap:.1f} patterns (Storkey 1997)",
    ),
    "pseudoinverse": _Pairwise(
        lambda ops, state, Xi: dict(
            zip("Wd", ops.projection_update(state["W"], state["d"], Xi), strict=True)
        ),
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
        lambda n, degree: _exp((n - 1) / 4 * math.log(3.1546)),
        "exponential in N: Ramsauer et al. (2020, Theorem 3) retrieve "
        "sqrt(p) c^((N-1)/4) random patterns in one step with probability 1 - p "
        "(c = 3.15 in their example); skebm warns above c^((N-1)/4) = {cap:.3g}",
    ),
}
