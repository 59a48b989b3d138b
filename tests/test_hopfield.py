"""HopfieldMemory: storage rules, recall dynamics, energies, samplers and bad input."""

import itertools
import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skebm import HopfieldMemory
from skebm._backends import get_backend
from tests.conftest import BACKENDS, requires_torch

RULES = ["hebbian", "storkey", "pseudoinverse", "dense", "modern"]
BINARY_RULES = ["hebbian", "storkey", "pseudoinverse", "dense"]

#: (rule, patterns stored in N = 100 units) well below each rule's capacity
BELOW_CAPACITY = {
    "hebbian": 5,
    "storkey": 15,
    "pseudoinverse": 50,
    "dense": 100,
    "modern": 1000,
}


def patterns(n_patterns, n_units, seed=0):
    return np.random.default_rng(seed).choice([-1.0, 1.0], size=(n_patterns, n_units))


def corrupt(X, fraction, seed=1):
    """X with round(fraction * N) distinct bits of every row flipped."""
    rng = np.random.default_rng(seed)
    out = X.copy()
    k = round(fraction * X.shape[1])
    for row in out:
        row[rng.choice(X.shape[1], k, replace=False)] *= -1
    return out


def fit_quiet(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return est.fit(X)


# -- storage rules ---------------------------------------------------------------------


def storkey_update(W, xi):
    """Store one pattern by Storkey's rule in its local-field form (vectorised):
    W' = (1 + 2/N) W + (xi (xi - h)^T - h xi^T) / N off the diagonal, h = W xi."""
    n = W.shape[0]
    h = W @ xi
    W = (1.0 + 2.0 / n) * W + (np.outer(xi, xi - h) - np.outer(h, xi)) / n
    np.fill_diagonal(W, 0.0)
    return W


def storkey_textbook(X):
    """Storkey's rule written element by element, zero diagonal, h_ij excluding i, j."""
    P, n = X.shape
    W = np.zeros((n, n))
    for xi in X:
        new = W.copy()
        for i, j in itertools.permutations(range(n), 2):
            h_ij = sum(W[i, k] * xi[k] for k in range(n) if k not in (i, j))
            h_ji = sum(W[j, k] * xi[k] for k in range(n) if k not in (i, j))
            new[i, j] = W[i, j] + (xi[i] * xi[j] - xi[i] * h_ji - h_ij * xi[j]) / n
        W = new
    return W


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n_units", [2, 7, 12])
def test_storkey_vectorised_equals_textbook(backend, n_units):
    be = get_backend(backend)
    X = patterns(9, n_units, seed=n_units)
    expected = storkey_textbook(X)
    Xb = be.core.asarray(X, np.float64)
    W = np.zeros((n_units, n_units))
    for xi in X:
        W = storkey_update(W, xi)
    np.testing.assert_allclose(W, expected, atol=1e-12)
    # blocked: several blocks for N = 2 (block size 13), one block otherwise
    W0 = be.core.asarray(np.zeros((n_units, n_units)), np.float64)
    blocked = be.core.to_numpy(be.hopfield.storkey_store(W0, Xb))
    np.testing.assert_allclose(blocked, expected, rtol=1e-10, atol=1e-10)


def test_storkey_blocks_match_one_by_one_at_scale():
    ops = get_backend("numpy").hopfield
    X = patterns(150, 40, seed=3)  # three blocks of 64
    W = np.zeros((40, 40))
    for xi in X:
        W = storkey_update(W, xi)
    np.testing.assert_allclose(ops.storkey_store(np.zeros((40, 40)), X), W, atol=1e-9)


def test_hebbian_weights():
    X = patterns(6, 20)
    W = HopfieldMemory("hebbian").fit(X).weights_
    expected = X.T @ X / 20
    np.fill_diagonal(expected, 0)
    np.testing.assert_allclose(W, expected, atol=1e-12)
    np.testing.assert_array_equal(W, W.T)


def textbook_sync(W, probes, max_iter):
    """One probe at a time: s <- sign(W s), ties (W s)_i = 0 keeping s_i, until a
    fixed point, or a 2-cycle (the state of two updates earlier comes back: end at
    the lower-energy state -1/2 s^T W s of the two, the current one on a tie), or
    ``max_iter`` updates. Returns (states, updates computed, status) per probe."""
    states = probes.copy()
    n_iter = np.zeros(len(probes), dtype=int)
    status = np.full(len(probes), "max_iter", dtype=object)
    for i, s in enumerate(states):
        prev = None
        for n_iter[i] in range(1, max_iter + 1):
            h = W @ s
            new = np.where(h > 0, 1.0, np.where(h < 0, -1.0, s))
            if np.array_equal(new, s):
                status[i] = "converged"
                break
            if prev is not None and np.array_equal(new, prev):
                status[i] = "cycle"
                if new @ W @ new > s @ W @ s:
                    s[:] = new
                break
            prev, s[:] = s.copy(), new
    return states, n_iter, status


def assert_recall_equals(out, expected):
    states, n_iter, status = expected
    np.testing.assert_array_equal(out.converged, status == "converged")
    np.testing.assert_array_equal(out.cycle, status == "cycle")
    np.testing.assert_array_equal(out.n_iter, n_iter)
    np.testing.assert_array_equal(out.states, states)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("block_rows", [None, 7])
@pytest.mark.parametrize(
    "n_patterns, n_units, low_rank",
    [(5, 64, True), (20, 64, True), (30, 64, True), (40, 64, False)],
)
def test_sync_hebbian_recall_equals_textbook_updates(
    backend, n_patterns, n_units, low_rank, block_rows, monkeypatch
):
    """Synchronous Hebbian recall computes W s as Xi^T (Xi s) while 2 P < N, in row
    blocks (one here, or blocks of 7 rows); states, update counts and statuses must
    be those of the textbook loop, run here on the integer matrix
    sum_mu xi_mu xi_mu^T with a zero diagonal, 2-cycles included."""
    X = patterns(n_patterns, n_units, seed=n_patterns)
    rng = np.random.default_rng(3)
    probes = corrupt(X[rng.integers(0, n_patterns, 300)], 0.2, seed=4)
    W = X.T @ X
    np.fill_diagonal(W, 0.0)
    expected = textbook_sync(W, probes, 100)
    ops = get_backend(backend).hopfield
    if block_rows is not None:
        monkeypatch.setattr(ops, "sync_block_rows", lambda n_units, like: block_rows)
    est = HopfieldMemory("hebbian", update="sync", backend=backend, device="cpu")
    est = fit_quiet(est, X)
    if low_rank:  # the recall path under test must be the one taken
        monkeypatch.setattr(ops, "pairwise_gap", _forbidden("pairwise_gap"))
        monkeypatch.setattr(ops, "pairwise_energy", _forbidden("pairwise_energy"))
    assert_recall_equals(est.recall(probes), expected)
    assert np.mean(expected[2] == "converged") > 0.5
    assert np.any(expected[2] == "cycle")  # the 2-cycle branch is tested too


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("max_iter", [1, 2, 3])
def test_sync_recall_stopped_by_max_iter_equals_textbook(backend, max_iter):
    """Rows still moving after max_iter updates keep their last state (MAX_ITER)."""
    X = patterns(8, 64, seed=5)
    probes = corrupt(X[np.arange(60) % 8], 0.35, seed=6)
    W = X.T @ X
    np.fill_diagonal(W, 0.0)
    expected = textbook_sync(W, probes, max_iter)
    assert np.any(expected[2] == "max_iter")
    est = HopfieldMemory("hebbian", update="sync", max_iter=max_iter, backend=backend)
    out = fit_quiet(est.set_params(device="cpu"), X).recall(probes)
    assert_recall_equals(out, expected)


def _backend_sync_recall(be, probes, W, factors, max_iter=10):
    """The backend's synchronous pairwise recall on float64 probes and weights."""
    asarray = be.core.asarray
    return be.hopfield.pairwise_recall(
        asarray(probes, np.float64),
        asarray(W, np.float64),
        be.hopfield.pairwise_tolerance(asarray(W, np.float64)),
        update="sync",
        max_iter=max_iter,
        order_rng=np.random.default_rng(0),
        factors=factors,
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("factor_dtype", [np.float32, np.float64, None])
def test_sync_factored_and_weight_paths_agree(backend, factor_dtype):
    """The factored Hebbian path, in float32 or float64 (used when P N >= 2**24),
    and the path through W give the textbook states, counts and statuses, 2-cycles
    with exactly equal energies included (W's rounded energies compare as ties)."""
    be = get_backend(backend)
    X = patterns(9, 46, seed=10)
    probes = corrupt(X[np.arange(120) % 9], 0.3, seed=11)
    W = X.T @ X
    np.fill_diagonal(W, 0.0)
    expected = textbook_sync(W, probes, 100)
    Wn = W / X.shape[1]  # the stored weights
    asarray = be.core.asarray
    factors = None
    if factor_dtype is not None:
        factors = (asarray(X, factor_dtype), asarray(np.full(46, 9.0), factor_dtype))
    s, n_iter, status = _backend_sync_recall(be, probes, Wn, factors, max_iter=100)
    status = be.core.to_numpy(status)
    names = np.array(["converged", "cycle", "max_iter"], dtype=object)
    np.testing.assert_array_equal(names[status], expected[2])
    np.testing.assert_array_equal(be.core.to_numpy(n_iter), expected[1])
    np.testing.assert_array_equal(be.core.to_numpy(s), expected[0])
    assert np.any(expected[2] == "cycle")


@pytest.mark.parametrize("backend", BACKENDS)
def test_hebbian_energy_from_factors_equals_weight_form(backend):
    """The energy that settles 2-cycles on the factored path is -1/2 s^T W s."""
    be = get_backend(backend)
    X = patterns(12, 64, seed=1)
    W = HopfieldMemory("hebbian").fit(X).weights_
    s = corrupt(X, 0.3, seed=2)
    Xi, d = be.hopfield.hebbian_factors(be.core.asarray(X, np.float64))
    # the factors are float32 here (P N < 2**24), and so are the states
    energy = be.hopfield.hebbian_energy(be.core.asarray(s, np.float32), Xi, d)
    np.testing.assert_allclose(
        be.core.to_numpy(energy), -0.5 * np.einsum("ni,ij,nj->n", s, W, s), rtol=1e-12
    )


def textbook_modern(probes, Xi, beta, max_iter, tol, tie=1e-6):
    """One probe at a time, float64: x <- Xi^T softmax(beta Xi x) until no entry moves
    by more than tol (converged) or max_iter updates; then sign(x), keeping the
    probe's bit where |x_i| <= tie. Returns (states, updates, status, last weights)."""
    states = np.empty_like(probes)
    weights = np.empty((len(probes), len(Xi)))
    n_iter = np.zeros(len(probes), dtype=int)
    status = np.full(len(probes), "max_iter", dtype=object)
    for i, s in enumerate(probes):
        x = s.copy()
        for n_iter[i] in range(1, max_iter + 1):
            a = beta * (Xi @ x)
            p = np.exp(a - a.max())
            p /= p.sum()
            new = Xi.T @ p
            moved = np.abs(new - x).max()
            x = new
            if n_iter[i] < max_iter and moved <= tol:
                status[i] = "converged"
                break
        states[i] = np.where(np.abs(x) <= tie, s, np.sign(x))
        weights[i] = p
    return states, n_iter, status, weights


def _modern_cases():
    """(memories, probes): corrupted patterns, and probes halfway between two
    memories that differ in 4 bits (weights 1/2 each: ties keep the probe's bits)."""
    X = patterns(12, 48, seed=20)
    X[1] = X[0]
    X[1, :4] *= -1
    rng = np.random.default_rng(21)
    probes = corrupt(X[rng.integers(0, 12, 150)], 0.25, seed=22)
    halfway = np.repeat(X[:1], 6, axis=0)
    halfway[:, :2] *= -1  # 2 bits from X[0], 2 from X[1]
    halfway[:, 20:23] *= -1  # the same distance from both
    return X, np.concatenate([probes, halfway])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "beta, max_iter, tol",
    [
        (None, 1, 1e-6),  # default beta, one step: the product is skipped
        (None, 100, 1e-6),  # converges on the second update
        (0.2, 100, 0.02),  # the convergence bound settles some rows, not all
        (0.15, 100, 0.1),
        (0.15, 3, 1e-6),
        (0.02, 100, 1e-6),  # mixtures: the products are needed
    ],
)
def test_modern_binary_recall_equals_textbook(backend, beta, max_iter, tol):
    """Binary "modern" recall takes the sign of x = Xi^T p without computing x where
    the largest weight settles it, and its first overlaps in float32; states, update
    counts, statuses and weights must be those of the textbook float64 iteration."""
    X, probes = _modern_cases()
    est = HopfieldMemory("modern", beta=beta, max_iter=max_iter, tol=tol)
    est = est.set_params(backend=backend, device="cpu").fit(X)
    states, n_iter, status, weights = textbook_modern(
        probes, X, est.beta_, max_iter, tol
    )
    out = est.recall(probes)
    assert_recall_equals(out, (states, n_iter, status))
    np.testing.assert_allclose(out.proba, weights, rtol=1e-10, atol=1e-300)
    if beta is None:  # halfway probes: X[0] where X[0] and X[1] agree, else a tie
        np.testing.assert_array_equal(states[-6:, :4], probes[-6:, :4])
        np.testing.assert_array_equal(states[-6:, 4:], np.repeat(X[:1, 4:], 6, axis=0))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("encoding", ["spin", "binary"])
def test_modern_one_step_recall_of_clean_probes_equals_textbook(backend, encoding):
    """Every probe near one memory: all rows are settled on the first update (the
    states are gathered from the memories at once), in either binary encoding."""
    X = patterns(30, 200, seed=23)
    rng = np.random.default_rng(24)
    probes = corrupt(X[rng.integers(0, 30, 300)], 0.2, seed=25)
    low = 0.0 if encoding == "binary" else -1.0
    est = HopfieldMemory("modern", max_iter=1, backend=backend, device="cpu")
    est.fit((X > 0) * (1.0 - low) + low)
    states, n_iter, status, weights = textbook_modern(probes, X, est.beta_, 1, 1e-6)
    ops = get_backend(backend).hopfield
    with pytest.MonkeyPatch.context() as mp:  # no row takes the product Xi^T p
        mp.setattr(ops, "modern_spins", _forbidden("modern_spins"))
        out = est.recall((probes > 0) * (1.0 - low) + low)
    assert_recall_equals(out, ((states > 0) * (1.0 - low) + low, n_iter, status))
    np.testing.assert_allclose(out.proba, weights, rtol=1e-10, atol=1e-300)


def _spin_dtypes(backend):
    """The dtypes ``spin_dtype`` and ``overlap_dtype`` may choose."""
    if backend == "numpy":
        return [np.float32]
    import torch

    from skebm._backends.torch.primitives import _int_mm_works

    return [torch.float32] + ([torch.int8] if _int_mm_works() else [])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n_units", [7, 300, 5000])
def test_spin_overlaps_are_exact_integers(backend, n_units):
    """Probes in the spin dtype a backend chooses (float32) give the overlaps
    Xi s exactly; the dtype chosen is that one."""
    be = get_backend(backend)
    rng = np.random.default_rng(26)
    Xi = rng.choice([-1.0, 1.0], size=(9, n_units))
    probes = rng.choice([-1.0, 1.0], size=(40, n_units))
    probes[:3] = Xi[:3]  # overlaps of n_units: beyond int8 and float16
    like = be.core.asarray(probes, np.float64)
    expected = probes.astype(np.int64) @ Xi.astype(np.int64).T
    for dtype in _spin_dtypes(backend):
        s = be.hopfield.to_spins(like, 0.0, dtype=dtype)
        a = be.primitives.spin_overlaps(s, be.core.asarray(Xi, np.float64))
        np.testing.assert_array_equal(be.core.to_numpy(a), expected)
    assert be.primitives.spin_dtype(n_units, like) in _spin_dtypes(backend)
    assert be.primitives.overlap_dtype(n_units, like) in _spin_dtypes(backend)


@requires_torch
@pytest.mark.parametrize(
    "params, recalled",
    [
        ({"rule": "modern", "max_iter": 1}, True),
        ({"rule": "modern", "beta": 0.05}, False),  # mixtures: Xi^T p computed
        ({"update": "sync"}, True),
    ],
)
@pytest.mark.parametrize("spins", ["float32", "int8", "default"])
def test_torch_spin_paths_equal_numpy(params, recalled, spins, monkeypatch):
    """Recall from float32 or int8 spins (the fast path of ``overlap_dtype``, where
    torch._int_mm works) on torch's CPU equals the NumPy backend's, which is tested
    against the textbook loops above."""
    import torch

    from skebm._backends.torch import primitives as tops

    X = patterns(12, 96, seed=27)
    probes = corrupt(X[np.arange(80) % 12], 0.2, seed=28)
    ref = HopfieldMemory(**params).fit(X).recall(probes)
    if spins == "int8" and not tops._int_mm_works():
        pytest.skip("torch._int_mm does not work on this CPU")
    if spins != "default":
        dtype = getattr(torch, spins)
        monkeypatch.setattr(tops, "spin_dtype", lambda n_units, like: torch.float32)
        monkeypatch.setattr(tops, "overlap_dtype", lambda n_units, like: dtype)
    out = HopfieldMemory(**params, backend="torch", device="cpu").fit(X).recall(probes)
    for key in ("states", "n_iter", "converged", "cycle", "memory"):
        np.testing.assert_array_equal(out[key], ref[key])
    np.testing.assert_allclose(out.proba, ref.proba, rtol=1e-12, atol=1e-300)
    assert ((ref.memory >= 0).mean() > 0.5) == recalled


@pytest.mark.parametrize("backend", BACKENDS)
def test_hebbian_sync_step_with_a_diagonal_vector(backend):
    """The step takes d - 1/2 as one float (spin patterns, d = P) or as a vector:
    both give sign(Xi^T (Xi s) - (d - 1/2) s)."""
    be = get_backend(backend)
    rng = np.random.default_rng(29)
    Xi = rng.choice([-1.0, 1.0], size=(5, 40)).astype(np.float32)
    s = rng.choice([-1.0, 1.0], size=(30, 40)).astype(np.float32)
    d = rng.integers(1, 9, size=40).astype(np.float32)
    expected = np.sign(s @ Xi.T @ Xi - (d - 0.5) * s)
    asarray = be.core.asarray
    for shift in (asarray(d - 0.5, np.float32), 4.5):
        out = asarray(np.empty_like(s), np.float32)
        got = be.core.to_numpy(
            be.hopfield.hebbian_sync_step(
                asarray(s, np.float32), asarray(Xi, np.float32), shift, out
            )
        )
        want = (
            expected
            if not isinstance(shift, float)
            else np.sign(s @ Xi.T @ Xi - 4.5 * s)
        )
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_factored_sync_recall_of_no_rows(backend):
    be = get_backend(backend)
    X = patterns(3, 40)
    W = X.T @ X / 40
    np.fill_diagonal(W, 0.0)
    factors = be.hopfield.hebbian_factors(be.core.asarray(X, np.float64))
    s, n_iter, status = _backend_sync_recall(be, np.empty((0, 40)), W, factors)
    assert be.core.to_numpy(s).shape == (0, 40)
    assert be.core.to_numpy(n_iter).shape == be.core.to_numpy(status).shape == (0,)


def test_modern_binary_recall_cases_cover_every_branch():
    """The cases above reach both ways of settling a row: the skipped product (on the
    last update, and by the convergence bound) and the computed one."""
    from skebm._backends.numpy import hopfield as ops

    X, probes = _modern_cases()
    calls = []
    real = ops.modern_spins

    def spy(x, p, s, tie):
        calls.append(len(x))
        return real(x, p, s, tie)

    for beta, max_iter, tol in [(None, 1, 1e-6), (0.2, 100, 0.02)]:
        est = HopfieldMemory("modern", beta=beta, max_iter=max_iter, tol=tol).fit(X)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(ops, "modern_spins", spy)
            calls.clear()
            est.transform(probes)
        computed = sum(calls)
        assert 0 < computed < len(probes), (beta, max_iter, tol, computed)


def _forbidden(name):
    def fail(*args):
        raise AssertionError(f"{name} used although 2 P < N")

    return fail


def test_pseudoinverse_is_projector_and_stores_half_n_exactly():
    n = 64
    X = patterns(n // 2, n, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # N / 2 is within capacity: no warning
        est = HopfieldMemory("pseudoinverse", update="sync").fit(X)
    projector = est.weights_ + np.diag(est._projector_diag)
    np.testing.assert_allclose(projector, np.linalg.pinv(X) @ X, atol=1e-10)
    assert np.all(np.diag(est.weights_) == 0)
    np.testing.assert_array_equal(est.transform(X), X)
    np.testing.assert_array_equal(est.predict(X), np.arange(n // 2))


@pytest.mark.parametrize("rule", RULES)
def test_partial_fit_equals_fit(rule):
    X = patterns(12, 30, seed=2)
    full = fit_quiet(HopfieldMemory(rule), X)
    inc = HopfieldMemory(rule)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for chunk in (X[:1], X[1:5], X[5:6], X[6:]):
            inc.partial_fit(chunk)
    np.testing.assert_array_equal(inc.memories_, full.memories_)
    assert inc.n_iter_ == 4 and full.n_iter_ == 1
    if hasattr(full, "weights_"):
        np.testing.assert_allclose(inc.weights_, full.weights_, atol=1e-10)
    if rule == "modern":
        assert inc.beta_ == pytest.approx(full.beta_)


def test_pseudoinverse_rank_one_update_ignores_patterns_in_span():
    X = patterns(5, 16, seed=4)
    est = HopfieldMemory("pseudoinverse").fit(X)
    before = est.weights_.copy()
    est.partial_fit(X[:2])  # already stored: nothing outside the span
    np.testing.assert_allclose(est.weights_, before, atol=1e-10)


# -- recall dynamics -------------------------------------------------------------------


@pytest.mark.parametrize("update", ["async", "sync"])
@pytest.mark.parametrize("rule", RULES)
def test_stored_patterns_below_capacity_are_fixed_points(rule, update):
    P = BELOW_CAPACITY[rule]
    X = patterns(P, 100, seed=P)
    est = HopfieldMemory(rule, update=update, random_state=0).fit(X)
    res = est.recall(X)
    np.testing.assert_array_equal(res.states, X)
    np.testing.assert_array_equal(res.memory, np.arange(P))
    if rule != "modern":
        assert res.converged.all() and (res.n_iter == 1).all()


@pytest.mark.parametrize("rule", BINARY_RULES)
def test_async_recall_never_raises_energy_sweep_after_sweep(rule):
    X = patterns(20, 60, seed=7)
    probes = corrupt(X, 0.3)
    est = fit_quiet(HopfieldMemory(rule, random_state=0), X)
    energies = [est.energy(probes)]
    for k in range(1, 8):
        energies.append(est.set_params(max_iter=k).energy(est.transform(probes)))
    energies = np.array(energies)
    assert np.all(np.diff(energies, axis=0) <= 1e-9 * np.abs(energies).max())
    # the sweeps continue the same trajectory: the k-sweep state is the prefix
    res = est.set_params(max_iter=100).recall(probes)
    assert res.converged.all()


@pytest.mark.parametrize("rule", RULES)
def test_energy_of_recall_not_above_energy_of_probe(rule):
    X = patterns(15, 64, seed=8)
    probes = np.vstack([corrupt(X, 0.2), patterns(20, 64, seed=9)])
    est = fit_quiet(HopfieldMemory(rule, random_state=0), X)
    e0, e1 = est.energy(probes), est.energy(est.transform(probes))
    assert np.all(e1 <= e0 + 1e-9 * np.abs(e0).max())


def test_modern_real_valued_energy_decreases_and_recalls():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 20))
    X *= np.sqrt(20) / np.linalg.norm(X, axis=1, keepdims=True)  # equal norms
    est = HopfieldMemory("modern").fit(X)
    assert est.encoding_ == "real"
    probes = X + 0.3 * rng.normal(size=X.shape)
    res = est.recall(probes)
    np.testing.assert_allclose(res.states, X, atol=1e-3)
    np.testing.assert_array_equal(res.memory, np.arange(30))
    assert np.all(est.energy(res.states) <= est.energy(probes))
    # predict_proba is the softmax that produced the recalled state
    proba = est.predict_proba(probes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba @ X, res.states, atol=1e-12)
    np.testing.assert_array_equal(proba.argmax(axis=1), np.arange(30))


def test_sync_two_cycle_is_detected():
    # one stored pattern (+1, -1): W = [[0, -1/2], [-1/2, 0]]; from (+1, +1)
    # synchronous updates alternate (+1, +1) <-> (-1, -1)
    est = HopfieldMemory("hebbian", update="sync").fit([[1.0, -1.0]])
    res = est.recall([[1.0, 1.0]])
    assert res.cycle[0] and not res.converged[0]
    assert res.n_iter[0] == 2  # seen at the second update, long before max_iter
    assert res.memory[0] == -1
    res = (
        HopfieldMemory("hebbian", update="async", random_state=0)
        .fit([[1, -1]])
        .recall([[1, 1]])
    )
    assert res.converged[0] and abs(res.states[0].sum()) == 0


@pytest.mark.parametrize("rule", ["hebbian", "dense"])
def test_gap_is_energy_difference(rule):
    """gap_i = E(s_i = -1) - E(s_i = +1), checked by flipping every unit."""
    ops = get_backend("numpy").hopfield
    X, s = patterns(5, 9, seed=1), patterns(4, 9, seed=2)
    if rule == "hebbian":
        W = ops.hebbian_update(np.zeros((9, 9)), X)
        gap, energy = ops.pairwise_gap(s, W), lambda t: ops.pairwise_energy(t, W)
    else:
        gap, energy = ops.dense_gap(s, X, 3)[0], lambda t: ops.dense_energy(t, X, 3)
    for i in range(9):
        plus, minus = s.copy(), s.copy()
        plus[:, i], minus[:, i] = 1, -1
        np.testing.assert_allclose(gap[:, i], energy(minus) - energy(plus), atol=1e-10)


def test_recall_of_a_probe_does_not_depend_on_the_batch():
    X = patterns(10, 50)
    probes = corrupt(np.repeat(X, 3, axis=0), 0.25)
    est = HopfieldMemory("storkey", random_state=3).fit(X)
    full = est.transform(probes)
    perm = np.random.default_rng(0).permutation(len(probes))
    np.testing.assert_array_equal(est.transform(probes[perm]), full[perm])
    np.testing.assert_array_equal(est.transform(probes[:7]), full[:7])
    # an int seed gives the same recall after refitting; pickling keeps it
    again = HopfieldMemory("storkey", random_state=3).fit(X)
    np.testing.assert_array_equal(again.transform(probes), full)
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(est)).transform(probes), full
    )


def test_dense_and_modern_exceed_classical_capacity():
    X = patterns(60, 100, seed=11)
    probes = corrupt(X, 0.15)
    for rule in ("dense", "modern"):
        est = HopfieldMemory(rule, random_state=0).fit(X)
        np.testing.assert_array_equal(est.predict(probes), np.arange(60))


def test_default_beta_retrieves_where_one_over_sqrt_n_fails():
    X = patterns(1000, 100, seed=12)
    probes = corrupt(X[:200], 0.15)
    default = HopfieldMemory("modern").fit(X)
    assert (default.predict(probes) == np.arange(200)).mean() >= 0.99
    small = HopfieldMemory("modern", beta=0.1).fit(X)
    assert (small.predict(probes) == np.arange(200)).mean() < 0.5


# -- encodings ---------------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES)
def test_zero_one_patterns_recall_in_zero_one(rule):
    X01 = (patterns(6, 40, seed=4) + 1) / 2
    est = HopfieldMemory(rule, random_state=0).fit(X01)
    assert est.encoding_ == "binary"
    np.testing.assert_array_equal(est.memories_, X01)
    probes = (corrupt(2 * X01 - 1, 0.1) + 1) / 2
    np.testing.assert_array_equal(est.transform(probes), X01)
    # a {-1, +1} probe is read correctly by the threshold at 0.5
    np.testing.assert_array_equal(est.transform(2 * probes - 1), X01)


def test_non_binary_values_are_thresholded_with_a_warning():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 30))
    with pytest.warns(UserWarning, match="thresholded at 0.0"):
        est = HopfieldMemory("hebbian").fit(X)
    assert est.encoding_ == "bipolar"
    np.testing.assert_array_equal(est.memories_, np.where(X > 0, 1.0, -1.0))
    with pytest.warns(UserWarning, match="thresholded at 0.5"):
        est = HopfieldMemory("hebbian", encoding="binary").fit(X)
    np.testing.assert_array_equal(est.memories_, (X > 0.5).astype(float))


def test_explicit_encoding_and_verbose(capsys):
    X01 = (patterns(3, 30) + 1) / 2
    with pytest.warns(UserWarning, match="other than -1 and \\+1"):
        est = HopfieldMemory("hebbian", encoding="bipolar", verbose=1).fit(
            X01
        )  # 0 -> -1
    np.testing.assert_array_equal(est.memories_, 2 * X01 - 1)
    assert "stored 3 patterns" in capsys.readouterr().out
    real = HopfieldMemory("modern", encoding="real").fit(X01)
    assert real.encoding_ == "real"
    np.testing.assert_allclose(real.transform(X01), X01, atol=1e-6)


def test_float32_stays_float32(backend):
    X = patterns(4, 32).astype(np.float32)
    for rule in RULES:
        est = HopfieldMemory(rule, backend=backend).fit(X)
        assert est.memories_.dtype == np.float32
        assert est.transform(X).dtype == np.float32
        assert est.energy(X).dtype == np.float32


# -- sampling ----------------------------------------------------------------------------


def _boltzmann(est, T):
    states = np.array(list(itertools.product([-1.0, 1.0], repeat=est.n_features_in_)))
    p = np.exp(-(est.energy(states) - est.energy(states).min()) / T)
    return states, p / p.sum()


@pytest.mark.parametrize("rule, temperature", [("hebbian", 0.7), ("dense", 2.0)])
def test_glauber_samples_the_boltzmann_distribution(rule, temperature):
    X = patterns(2, 5, seed=3)
    est = HopfieldMemory(rule, temperature=temperature).fit(X)
    states, p = _boltzmann(est, temperature)
    draws = est.sample(4000, n_steps=20, random_state=0)
    weights = 2 ** np.arange(5)
    codes = ((draws > 0) @ weights).astype(int)
    freq = np.bincount(codes, minlength=32)[((states > 0) @ weights).astype(int)]
    assert 0.5 * np.abs(freq / len(draws) - p).sum() < 0.04
    assert p.max() < 0.5  # not a trivial, single-state distribution


def test_modern_sampler_is_the_gaussian_mixture():
    X = np.array([[2.0, 0.0], [0.0, 1.0]])
    est = HopfieldMemory("modern", beta=2.0).fit(X)
    draws = est.sample(20000, n_steps=0, random_state=0)
    w = np.exp(0.5 * 2.0 * (X**2).sum(axis=1))
    w /= w.sum()
    np.testing.assert_allclose(draws.mean(axis=0), w @ X, atol=0.03)
    chain = est.sample(20000, n_steps=3, init=draws, random_state=1)
    np.testing.assert_allclose(chain.mean(axis=0), w @ X, atol=0.03)


def test_low_temperature_samples_are_memories():
    X = patterns(3, 40, seed=1)
    est = HopfieldMemory(temperature=0.05, random_state=0).fit(X)
    draws = est.sample(20, n_steps=30)
    overlaps = np.abs(draws @ X.T).max(axis=1) / 40
    assert np.median(overlaps) == 1.0


# -- backends ----------------------------------------------------------------------------


@requires_torch
@pytest.mark.parametrize("update", ["sync", "async"])
@pytest.mark.parametrize("rule", RULES)
def test_numpy_and_torch_recall_identically(rule, update):
    X = patterns(18, 48, seed=5)
    probes = np.vstack([corrupt(np.repeat(X, 2, axis=0), 0.2), patterns(10, 48, 6)])
    ests = {
        b: fit_quiet(HopfieldMemory(rule, update=update, backend=b, random_state=0), X)
        for b in ("numpy", "torch")
    }
    if "weights_" in vars(ests["numpy"]):
        np.testing.assert_allclose(
            ests["numpy"].weights_, ests["torch"].weights_, atol=1e-10
        )
    np.testing.assert_array_equal(
        ests["numpy"].transform(probes), ests["torch"].transform(probes)
    )
    np.testing.assert_array_equal(
        ests["numpy"].predict(probes), ests["torch"].predict(probes)
    )
    np.testing.assert_allclose(
        ests["numpy"].energy(probes), ests["torch"].energy(probes), rtol=1e-10
    )


@requires_torch
def test_torch_modern_real_and_samplers_run():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 6))
    ests = [HopfieldMemory("modern", backend=b).fit(X) for b in ("numpy", "torch")]
    probes = X + 0.2 * rng.normal(size=X.shape)
    np.testing.assert_allclose(
        ests[0].transform(probes), ests[1].transform(probes), atol=1e-10
    )
    np.testing.assert_allclose(
        ests[0].predict_proba(probes), ests[1].predict_proba(probes), atol=1e-10
    )
    for rule in RULES:
        est = fit_quiet(
            HopfieldMemory(rule, backend="torch", random_state=0), patterns(3, 10)
        )
        assert est.sample(5, n_steps=3).shape == (5, 10)


@pytest.mark.cuda
@pytest.mark.parametrize("rule", RULES)
def test_cuda_recall_matches_cpu(rule):
    X = patterns(40, 256, seed=2)
    probes = corrupt(np.repeat(X, 5, axis=0), 0.15)
    ests = {
        device: HopfieldMemory(rule, update="sync", backend="torch", device=device)
        for device in ("cpu", "cuda")
    }
    for est in ests.values():
        est.fit(X)
    np.testing.assert_array_equal(
        ests["cpu"].predict(probes), ests["cuda"].predict(probes)
    )
    assert isinstance(ests["cuda"].memories_, np.ndarray)  # unpickles without CUDA


# -- scikit-learn integration and bad input ---------------------------------------------


def test_pipeline_denoiser_and_feature_names():
    X = (patterns(4, 16) + 1) / 2
    pipe = make_pipeline(
        HopfieldMemory("storkey", random_state=0), FunctionTransformer()
    )
    pipe.fit(X)
    np.testing.assert_array_equal(pipe.transform(X), X)
    names = [f"px{i}" for i in range(16)]
    est = HopfieldMemory("hebbian").fit(X)
    np.testing.assert_array_equal(est.get_feature_names_out(names), names)
    assert est.__sklearn_tags__().estimator_type is None  # not a classifier
    assert not hasattr(est, "predict_proba")
    assert est.score(X) == pytest.approx(-est.energy(X).mean())


@pytest.mark.parametrize(
    "params, match",
    [
        ({"rule": "oja"}, "rule"),
        ({"max_iter": 0}, "max_iter"),
        ({"beta": -1.0}, "beta"),
        ({"degree": 1}, "degree"),
        ({"temperature": 0.0}, "temperature"),
        ({"update": "random"}, "update"),
        ({"rule": "hebbian", "encoding": "real"}, "needs rule='modern'"),
        ({"backend": "jax"}, "backend"),
    ],
)
def test_invalid_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        HopfieldMemory(**params).fit(patterns(2, 4))


def test_bad_input():
    est = HopfieldMemory().fit(patterns(2, 8))
    with pytest.raises(ValueError, match="8 features"):
        est.transform(patterns(2, 5))
    with pytest.raises(ValueError, match="NaN"):
        est.predict(np.full((1, 8), np.nan))
    with pytest.raises(ValueError, match="0 sample"):
        HopfieldMemory().fit(np.empty((0, 8)))
    with pytest.raises(ValueError, match="NaN"):
        HopfieldMemory().fit(np.full((2, 8), np.nan))
    with pytest.raises(ValueError, match="init has 3 rows"):
        est.sample(2, init=patterns(3, 8))
    with pytest.raises(ValueError, match="rule changed"):
        est.set_params(rule="storkey").partial_fit(patterns(1, 8))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("method", ["transform", "predict", "energy", "recall"])
def test_non_finite_probes_raise_sklearn_errors(backend, method):
    """Recall sums the probes in the backend to check them (torch: a faster
    reduction) and raises scikit-learn's own messages; a sum that only overflows
    is not an error; set_config(assume_finite=True) skips the check."""
    from sklearn import config_context

    est = HopfieldMemory("modern", backend=backend, device="cpu").fit(patterns(2, 8))
    call = getattr(est, method)
    for bad, match in [(np.nan, "Input X contains NaN"), (np.inf, "infinity")]:
        X = patterns(3, 8)
        X[1, 2] = bad
        with pytest.raises(ValueError, match=match):
            call(X)
        view = X[::-1]  # torch cannot view negative strides: NumPy sums it
        with pytest.raises(ValueError, match=match):
            call(view)
    big = patterns(3, 8) * 1e308  # finite entries whose sum overflows
    np.testing.assert_array_equal(est.transform(big), est.transform(np.sign(big)))
    X = patterns(3, 8)
    X[1, 2] = np.nan
    with config_context(assume_finite=True):
        call(X)  # no check, as in scikit-learn


@pytest.mark.parametrize("method", ["transform", "predict", "energy", "recall"])
def test_unfitted_raises(method):
    with pytest.raises(NotFittedError):
        getattr(HopfieldMemory(), method)(patterns(1, 4))
    with pytest.raises(NotFittedError):
        HopfieldMemory().sample(1)


@pytest.mark.parametrize(
    "rule, n_patterns, capacity",
    [
        ("hebbian", 14, "13.8"),
        ("storkey", 34, "33.0"),
        ("pseudoinverse", 51, "50.0"),
        ("dense", 362, "361.9"),
    ],
)
def test_capacity_warning_states_the_capacity(rule, n_patterns, capacity):
    X = patterns(n_patterns, 100)
    with pytest.warns(UserWarning, match=rf"capacity of rule='{rule}'.*{capacity}"):
        est = HopfieldMemory(rule).fit(X)
    assert f"{est.capacity_:.1f}" == capacity
    with warnings.catch_warnings():  # at capacity: no capacity warning
        warnings.filterwarnings("error", message=".*capacity")
        warnings.filterwarnings("ignore", message=".*not recalled from themselves")
        HopfieldMemory(rule).fit(X[: int(est.capacity_)])


@pytest.mark.parametrize("rule", ["hebbian", "storkey", "pseudoinverse", "modern"])
def test_keyboard_interrupt_while_storing_is_atomic(rule, monkeypatch):
    """Ctrl-C in partial_fit or a refit propagates and keeps the earlier memory
    intact and usable; in a first fit it leaves the estimator unfitted."""
    import skebm._hopfield as hopfield_module

    X = np.where(np.random.default_rng(0).random((5, 40)) < 0.5, -1.0, 1.0)
    memory = HopfieldMemory(rule=rule, random_state=0).fit(X[:3])
    weights = getattr(memory, "weights_", None)
    weights = None if weights is None else weights.copy()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(hopfield_module.RULES[rule], "store", interrupted)
    with pytest.raises(KeyboardInterrupt):
        memory.partial_fit(X[3:])
    assert memory.memories_.shape == (3, 40)
    if weights is not None:
        np.testing.assert_array_equal(memory.weights_, weights)
    np.testing.assert_array_equal(memory.predict(X[:3]), [0, 1, 2])
    with pytest.raises(KeyboardInterrupt):
        memory.fit(X)  # a refit interrupted keeps the previous model
    np.testing.assert_array_equal(memory.predict(X[:3]), [0, 1, 2])
    fresh = HopfieldMemory(rule=rule, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        fresh.fit(X)
    with pytest.raises(NotFittedError):
        fresh.predict(X)
