"""Adversarial checks of four changes: recall written straight into the output
(Hopfield), column-major RBM training state, the array API boundary's per-call
copies, and torch's int8 overlaps; each bug this pass found has a test here."""

import copy
import threading
import warnings

import numpy as np
import pytest
from scipy.special import softmax
from sklearn import config_context

import skebm._hopfield as hopfield_module
from skebm import RBM, HopfieldMemory
from skebm._backends.numpy import primitives as np_primitives
from skebm._numerics import rbm as rbm_numerics
from skebm.utils._array_api import ARRAY_API_SUPPORT
from tests.conftest import HAS_TORCH

needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
needs_dispatch = pytest.mark.skipif(
    not (HAS_TORCH and ARRAY_API_SUPPORT),
    reason="array API dispatch needs torch and scikit-learn >= 1.9",
)


def _int8_path():
    if not HAS_TORCH:
        return False
    import torch

    from skebm._backends.torch import primitives

    return primitives.overlap_dtype(16, torch.zeros(1)) == torch.int8


needs_int8 = pytest.mark.skipif(not _int8_path(), reason="no torch int8 overlaps")


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def flipped(M, frac, seed, encoding="bipolar"):
    rng = np.random.default_rng(seed)
    X = M[rng.integers(0, len(M), 23)].copy()
    flip = rng.random(X.shape) < frac
    X[flip] = (1 - X[flip]) if encoding == "binary" else -X[flip]
    return X


def textbook_modern(Xi, X, beta, max_iter, tol):
    """x <- Xi^T softmax(beta Xi x), row by row, until no entry moves by > tol."""
    out = []
    for x in X.astype(np.float64):
        for _ in range(max_iter):
            new = Xi.T @ softmax(beta * (Xi @ x))
            done, x = np.max(np.abs(new - x)) <= tol, new
            if done:
                break
        out.append(x)
    return np.array(out)


# -- 1. recall written into the preallocated output ------------------------------------


@pytest.mark.parametrize("encoding", ["bipolar", "binary"])
@pytest.mark.parametrize("max_iter", [1, 3, 100])
@pytest.mark.parametrize("block_bytes", [1, 1 << 25])
def test_binary_modern_recall_matches_textbook(
    monkeypatch, encoding, max_iter, block_bytes
):
    monkeypatch.setattr(hopfield_module, "_BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(3)
    spins = rng.choice([-1.0, 1.0], size=(4, 29))
    M = (spins + 1) / 2 if encoding == "binary" else spins
    X = flipped(M, 0.3, 1, encoding)
    est = HopfieldMemory(beta=0.5, max_iter=max_iter, encoding=encoding).fit(M)
    probes = np.where(X > (0.5 if encoding == "binary" else 0.0), 1.0, -1.0)
    x = textbook_modern(spins, probes, est.beta_, max_iter, est.tol)
    expected = np.where(np.abs(x) <= 1e-6, probes, np.sign(x))
    if encoding == "binary":
        expected = (expected + 1) / 2
    for order in ("C", "F"):
        got = est.transform(np.asarray(X, order=order))
        np.testing.assert_array_equal(got, expected)


def test_recall_output_does_not_alias_between_calls(monkeypatch):
    monkeypatch.setattr(hopfield_module, "_BATCH_ROWS", 3)
    M = np.random.default_rng(0).choice([-1.0, 1.0], size=(5, 24))
    X = flipped(M, 0.2, 2)
    est = HopfieldMemory(beta=0.5, max_iter=3).fit(M)
    first = est.transform(X)
    kept = first.copy()
    first[...] = 7.0
    result = est.recall(X)
    result.states[...] = 9.0
    np.testing.assert_array_equal(est.transform(X), kept)
    np.testing.assert_array_equal(est.recall(X).states, kept)


@needs_torch
@pytest.mark.parametrize("encoding", ["bipolar", "binary", "real"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_rows", [2, 4096])
def test_torch_recall_matches_numpy_c_order(monkeypatch, encoding, dtype, batch_rows):
    monkeypatch.setattr(hopfield_module, "_BATCH_ROWS", batch_rows)
    rng = np.random.default_rng(5)
    M = rng.choice([-1.0, 1.0], size=(5, 27))
    if encoding == "binary":
        M = (M + 1) / 2
    elif encoding == "real":
        M = rng.standard_normal((5, 27))
    M = M.astype(dtype)
    X = flipped(M, 0.25, 4, encoding) if encoding != "real" else M[[0, 1, 2]] + 0.3
    out = {}
    for backend in ("numpy", "torch"):
        est = HopfieldMemory(
            beta=0.5, max_iter=3, encoding=encoding, backend=backend, device="cpu"
        ).fit(M)
        out[backend] = (est.transform(X), est.predict(X), est.recall(X).n_iter)
    if encoding == "real":
        np.testing.assert_allclose(out["numpy"][0], out["torch"][0], rtol=1e-4)
    else:
        np.testing.assert_array_equal(out["numpy"][0], out["torch"][0])
        np.testing.assert_array_equal(out["numpy"][2], out["torch"][2])
    np.testing.assert_array_equal(out["numpy"][1], out["torch"][1])


@needs_torch
def test_torch_recall_eight_threads_one_model():
    M = np.random.default_rng(1).choice([-1.0, 1.0], size=(6, 40))
    X = flipped(M, 0.2, 3)
    est = HopfieldMemory(beta=0.5, max_iter=3, backend="torch", device="cpu").fit(M)
    expected = HopfieldMemory(beta=0.5, max_iter=3).fit(M).transform(X)
    errors = []

    def work():
        try:
            for _ in range(10):
                np.testing.assert_array_equal(est.transform(X), expected)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


# -- 4. torch int8 overlaps --------------------------------------------------------------


@needs_int8
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("shape", [(3000, 64), (5, 5000), (1, 13), (2, 7), (4, 2)])
def test_int8_overlaps_match_numpy(shape):
    n_memories, n = shape
    M = np.random.default_rng(0).choice([-1.0, 1.0], size=shape)
    X = flipped(M, 0.3, 1)
    if n_memories > 1:  # a probe exactly halfway between memories 0 and 1
        d = np.nonzero(M[0] != M[1])[0]
        d = d[: len(d) - len(d) % 2]
        X[0] = M[0]
        X[0, d[: len(d) // 2]] = M[1, d[: len(d) // 2]]
    for beta, max_iter in [(None, 100), (1.0, 1)]:
        res = [
            HopfieldMemory(beta=beta, max_iter=max_iter, backend=b, device="cpu")
            .fit(M)
            .recall(X)
            for b in ("numpy", "torch")
        ]
        np.testing.assert_array_equal(res[0].states, res[1].states)
        np.testing.assert_array_equal(res[0].memory, res[1].memory)


@needs_int8
def test_torch_one_row_of_fortran_probes():
    M = np.random.default_rng(0).choice([-1.0, 1.0], size=(5, 25))
    P = np.asfortranarray(M)
    P[:, :8] *= -1
    numpy_est = HopfieldMemory(beta=0.5, backend="numpy").fit(M)
    torch_est = HopfieldMemory(beta=0.5, backend="torch", device="cpu").fit(M)
    for i in range(5):
        x = P[i : i + 1]  # strides (8, 40)
        np.testing.assert_array_equal(torch_est.predict(x), numpy_est.predict(x))


@needs_int8
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_torch_one_feature():
    M = np.array([[1.0], [-1.0]])
    X = np.array([[1.0], [-1.0], [1.0], [-1.0]])
    got = HopfieldMemory(encoding="bipolar", backend="torch", device="cpu")
    np.testing.assert_array_equal(got.fit(M).predict(X), [0, 1, 0, 1])


# -- 2. column-major RBM training state --------------------------------------------------


@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("order", ["C", "F"])
def test_train_step_matches_textbook(monkeypatch, persistent, order):
    monkeypatch.setattr(
        np_primitives, "bernoulli", lambda p, rng: (p > 0.5).astype(p.dtype)
    )
    rng = np.random.default_rng(1)
    n_hidden, n_visible, n = 4, 6, 5
    W = np.array(rng.standard_normal((n_hidden, n_visible)) * 0.3, order=order)
    b, c = rng.standard_normal(n_visible) * 0.1, rng.standard_normal(n_hidden) * 0.1
    v = (rng.random((n, n_visible)) < 0.4).astype(float)
    chains = (rng.random((3, n_hidden)) < 0.5).astype(float)
    params = dict(
        W=W.copy(order="K"), b=b.copy(), c=c.copy(), chains=chains.copy(),
        vW=np.zeros_like(W), vb=np.zeros(n_visible), vc=np.zeros(n_hidden),
    )  # fmt: skip
    lr, weight_decay = 0.1, 0.01
    rbm_numerics.train_step(
        params, v, visible="bernoulli", k=1, persistent=persistent, lr=lr,
        momentum=0.5, weight_decay=weight_decay, offset_rate=0.0, rng=None,
    )  # fmt: skip

    def sig(x):
        return 1 / (1 + np.exp(-x))

    h_pos = sig(v @ W.T + c)
    h = chains if persistent else (h_pos > 0.5).astype(float)
    v_neg = (sig(h @ W + b) > 0.5).astype(float)
    h_neg = sig(v_neg @ W.T + c)
    dW = h_pos.T @ v / n - h_neg.T @ v_neg / len(v_neg) - weight_decay * W
    np.testing.assert_allclose(params["W"], W + lr * dW, atol=1e-14)
    np.testing.assert_allclose(
        params["b"], b + lr * (v.mean(0) - v_neg.mean(0)), atol=1e-14
    )
    np.testing.assert_allclose(
        params["c"], c + lr * (h_pos.mean(0) - h_neg.mean(0)), atol=1e-14
    )


@needs_torch
@pytest.mark.parametrize(
    "kw",
    [{}, {"centered": True}, {"momentum": 0.5, "weight_decay": 1e-3},
     {"visible": "gaussian"}, {"persistent": False, "k": 2}],
)  # fmt: skip
def test_rbm_numpy_torch_parity_with_deterministic_sampling(monkeypatch, kw):
    import torch

    from skebm._backends.torch import primitives as torch_primitives

    monkeypatch.setattr(np_primitives, "bernoulli", lambda p, r: (p > 0.5) * 1.0)
    monkeypatch.setattr(np_primitives, "standard_normal", lambda a, r: 0 * a)
    monkeypatch.setattr(
        torch_primitives, "bernoulli", lambda p, r: (p > 0.5).to(p.dtype)
    )
    monkeypatch.setattr(torch_primitives, "standard_normal", lambda a, r: 0 * a)
    X = (np.random.default_rng(0).random((60, 12)) < 0.3).astype(float)
    fitted = []
    for backend in ("numpy", "torch"):
        est = RBM(
            n_components=5, n_iter=3, batch_size=7, random_state=0,
            backend=backend, device="cpu", **kw,
        )  # fmt: skip
        quiet(est.fit, X)
        est.partial_fit(X[:9])
        fitted.append(est)
    assert torch.is_tensor(torch.zeros(1))
    np.testing.assert_allclose(fitted[0].components_, fitted[1].components_, atol=1e-12)
    np.testing.assert_allclose(
        fitted[0].intercept_visible_, fitted[1].intercept_visible_, atol=1e-12
    )


def test_rbm_pickle_after_partial_fit_resumes_identically():
    import pickle

    X = (np.random.default_rng(0).random((40, 10)) < 0.3).astype(np.float32)
    est = RBM(n_components=4, n_iter=2, random_state=0, average_epochs=2).fit(X)
    est.partial_fit(X[:10])
    other = pickle.loads(pickle.dumps(est))
    est.partial_fit(X[10:20])
    other.partial_fit(X[10:20])
    np.testing.assert_array_equal(est.components_, other.components_)
    assert est.components_.dtype == np.float32


def test_rbm_components_c_contiguous_after_fit():
    X = (np.random.default_rng(0).random((30, 8)) < 0.3).astype(float)
    est = RBM(n_components=4, n_iter=2, random_state=0).fit(X)
    est.partial_fit(X[:5])
    assert est.components_.flags.c_contiguous
    assert all(a.flags.c_contiguous for a in est._last_update.values())


# -- 3. array API boundary ---------------------------------------------------------------


@needs_dispatch
def test_dispatch_calls_leave_estimator_unchanged_and_sample_advances():
    import torch

    rng = np.random.default_rng(0)
    X = torch.from_numpy((rng.random((40, 8)) < 0.4).astype(np.float64))
    M = torch.from_numpy(rng.choice([-1.0, 1.0], size=(4, 16)))
    with config_context(array_api_dispatch=True):
        rbm = RBM(n_components=3, n_iter=2, random_state=0).fit(X)
        hop = HopfieldMemory().fit(M)
        before = {k: copy.copy(v) for k, v in vars(rbm).items()}
        with pytest.raises(ValueError):
            rbm.transform(torch.zeros((3, 5), dtype=torch.float64))
        assert before.keys() == vars(rbm).keys()
        for key, value in before.items():
            if torch.is_tensor(value):
                assert torch.equal(value, vars(rbm)[key]), key
        assert not torch.equal(rbm.sample(2, n_steps=3), rbm.sample(2, n_steps=3))
        assert not torch.equal(hop.sample(3, n_steps=2), hop.sample(3, n_steps=2))
        assert hop.predict(M).tolist() == [0, 1, 2, 3]
    assert hop.predict(M.numpy()).tolist() == [0, 1, 2, 3]  # no dispatch
    assert isinstance(rbm.transform(X.numpy()), np.ndarray)


@needs_dispatch
def test_dispatched_threads_compute_log_z_once(monkeypatch):
    """Per-call copies share their estimator's log Z cache and its lock: eight
    threads scoring under dispatch compute the partition function once."""
    import torch

    X = torch.from_numpy((np.random.default_rng(0).random((50, 6)) < 0.4) * 1.0)
    with config_context(array_api_dispatch=True):
        rbm = RBM(n_components=4, n_iter=2, random_state=0).fit(X)
    vars(rbm).pop("_log_z_cache", None)
    compute, calls, barrier = RBM._compute_log_partition, [], threading.Barrier(8)

    def counted(self, *args, **kwargs):
        calls.append(1)
        return compute(self, *args, **kwargs)

    monkeypatch.setattr(RBM, "_compute_log_partition", counted)

    def score():
        barrier.wait()
        with config_context(array_api_dispatch=True):
            return rbm.score_samples(X)

    threads = [threading.Thread(target=score) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
