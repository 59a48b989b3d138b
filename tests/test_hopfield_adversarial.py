"""HopfieldMemory as an adversarial user meets it: failures injected at every step of
storing, timer-driven Ctrl-C, threads on fitted and just-loaded models, bounded
memory, and values at the float limits. Every public call completes or leaves the
estimator exactly as it was."""

import _thread
import copy
import functools
import pickle
import threading
import time
import tracemalloc
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError

import skebm._hopfield as hopfield_module
from skebm import HopfieldMemory
from skebm._backends import get_backend
from tests.conftest import BACKENDS

RULES = ["hebbian", "storkey", "pseudoinverse", "dense", "modern"]


def spins(n, N, seed=0):
    return np.random.default_rng(seed).choice([-1.0, 1.0], size=(n, N))


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


def state(est):
    """A deep copy of ``vars(est)``, to compare with :func:`assert_same_state`."""
    return copy.deepcopy(vars(est))


def assert_same_state(before, after):
    """Every attribute present in both, with equal values (arrays bit for bit,
    random generators in the same state)."""
    assert before.keys() == after.keys(), set(before) ^ set(after)
    for key, value in before.items():
        other = after[key]
        if isinstance(value, np.ndarray):
            assert value.dtype == other.dtype and value.shape == other.shape, key
            np.testing.assert_array_equal(value, other, err_msg=key)
        elif isinstance(value, np.random.RandomState):
            a, b = value.get_state(), other.get_state()
            assert a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:], key
        else:
            assert value == other or (value != value and other != other), key


# -- failure injection -----------------------------------------------------------------


class Boom(RuntimeError):
    pass


def fail_at(k, target):
    """A wrapper of ``target`` that raises on its k-th call (1-based)."""
    calls = [0]

    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == k:
            raise Boom(f"injected at call {k}")
        return target(*args, **kwargs)

    return wrapped


STEPS = [  # (object, attribute) of each step of storing
    ("core", "asarray"),
    ("core", "to_numpy"),
    ("hopfield", "to_spins"),
    ("estimator", "_count_unstable"),
    ("estimator", "_beta"),
    ("module", "_as_patterns"),
]


def _target(step, backend):
    where, name = step
    obj = {
        "core": get_backend(backend).core,
        "hopfield": get_backend(backend).hopfield,
        "estimator": HopfieldMemory,
        "module": hopfield_module,
    }[where]
    return obj, name


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("step", STEPS, ids=[name for _, name in STEPS])
@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("call", ["fit", "partial_fit", "refit"])
def test_failure_at_any_step_leaves_the_estimator_as_it_was(
    rule, step, k, call, monkeypatch
):
    if step[1] == "_beta" and rule != "modern":
        pytest.skip("modern only")
    X = spins(8, 24)
    est = HopfieldMemory(rule, max_iter=5, random_state=0)
    if call != "fit":
        quiet(est.fit, X[:4])
    before = state(est)
    obj, name = _target(step, "numpy")
    monkeypatch.setattr(obj, name, fail_at(k, getattr(obj, name)))
    method = est.partial_fit if call == "partial_fit" else est.fit
    try:
        quiet(method, X[4:] if call == "partial_fit" else X)
    except Boom:
        assert_same_state(before, vars(est))
        if call == "fit":
            with pytest.raises(NotFittedError):
                est.predict(X)
        return
    # the step ran fewer than k times: the call completed, consistently
    assert est.memories_.shape[0] == 8 if call != "refit" else 8


@pytest.mark.parametrize("rule", RULES)
def test_failure_in_a_prediction_leaves_the_estimator_as_it_was(rule, monkeypatch):
    X = spins(6, 24)
    est = quiet(HopfieldMemory(rule, max_iter=5, random_state=0).fit, X)
    before = state(est)
    ops = get_backend("numpy").hopfield
    for method in ("transform", "predict", "score_samples", "sample"):
        name = {"score_samples": "pairwise_energy"}.get(method, "to_spins")
        if rule in ("dense", "modern") and method == "score_samples":
            name = f"{rule}_energy"
        with monkeypatch.context() as m:
            m.setattr(ops, name, fail_at(1, getattr(ops, name)))
            try:
                args = (3,) if method == "sample" else (X,)
                getattr(est, method)(*args)
            except Boom:
                pass
        assert_same_state(before, vars(est))


def test_modern_partial_fit_that_overflows_keeps_the_good_model():
    """Issue 14, case 3: beta_ overflowing used to be stored with the patterns."""
    X = np.random.default_rng(0).normal(size=(5, 16)) * 2e-154
    est = HopfieldMemory("modern", encoding="real").fit(X)
    before = state(est)
    with pytest.raises(ValueError, match="default beta"):  # RMS halves: inf
        est.partial_fit(np.zeros((5, 16)))
    assert_same_state(before, vars(est))
    assert np.isfinite(est.transform(X)).all()


# -- interrupts ------------------------------------------------------------------------


def run_interrupted(fn, delay):
    """Call ``fn`` while a timer sends KeyboardInterrupt to this thread after
    ``delay`` seconds; True if the interrupt landed (inside fn or just after)."""
    timer = threading.Timer(delay, _thread.interrupt_main)
    try:
        timer.start()
        fn()
        timer.join()
        time.sleep(0.05)  # a late interrupt lands here, inside the try
    except KeyboardInterrupt:
        timer.join()
        return True
    return False


@pytest.mark.parametrize("rule", ["storkey", "pseudoinverse", "modern"])
@pytest.mark.usefixtures("python_sigint")
def test_timer_interrupts_leave_the_old_or_a_consistent_new_model(rule):
    rng = np.random.default_rng(0)
    old, new = spins(20, 300, seed=1), spins(40, 300, seed=2)
    reference = {
        "fit": quiet(HopfieldMemory(rule, random_state=0).fit, new),
        "partial_fit": quiet(
            HopfieldMemory(rule, random_state=0).fit(old[:10]).partial_fit, old[10:]
        ),
    }
    tic = time.perf_counter()
    quiet(HopfieldMemory(rule, random_state=0).fit, new)
    duration = time.perf_counter() - tic
    landed = 0
    for trial in range(8):
        call = "fit" if trial % 2 else "partial_fit"
        est = quiet(
            HopfieldMemory(rule, random_state=0).fit, old if call == "fit" else old[:10]
        )
        before = state(est)
        data = new if call == "fit" else old[10:]
        method = getattr(est, call)
        landed += run_interrupted(
            functools.partial(quiet, method, data), rng.uniform(0, 1.5 * duration)
        )
        after = vars(est)
        if after["n_iter_"] == before["n_iter_"] and call == "partial_fit":
            assert_same_state(before, after)
        elif call == "fit" and np.array_equal(after["memories_"], old):
            assert_same_state(before, after)
        else:  # a completed call: the same model as an uninterrupted one
            assert_same_state(state(reference[call]), after)
    assert landed == 8


# -- threads ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rule", ["hebbian", "dense", "modern"])
@pytest.mark.parametrize("loaded", [False, True], ids=["fitted", "unpickled"])
def test_eight_threads_answer_as_serial_calls(backend, rule, loaded):
    X = spins(6, 32)
    probes = np.where(np.random.default_rng(3).random((40, 32)) < 0.1, -X[0], X[0])
    est = quiet(
        HopfieldMemory(rule, max_iter=10, backend=backend, random_state=0).fit, X
    )
    if loaded:
        est = pickle.loads(pickle.dumps(est))
    calls = {
        "transform": lambda: est.transform(probes),
        "predict": lambda: est.predict(probes),
        "score_samples": lambda: est.score_samples(probes),
        "sample": lambda: est.sample(5, n_steps=3, random_state=7),
    }
    serial = {name: fn() for name, fn in calls.items()}
    if loaded:
        est = pickle.loads(pickle.dumps(est))
    jobs = [name for name in calls for _ in range(4)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda name: (name, calls[name]()), jobs))
    for name, out in results:
        np.testing.assert_array_equal(out, serial[name], err_msg=name)


# -- bounded memory --------------------------------------------------------------------


def _peak(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_modern_transform_and_predict_memory_is_bounded(monkeypatch):
    """2000 probes against 500 memories, in blocks of 256 KiB: the n x P weights
    (8 MB) used to be kept for every block and concatenated; now only the output
    and one block's intermediates are held."""
    monkeypatch.setattr(hopfield_module, "_BLOCK_BYTES", 1 << 18)
    est = HopfieldMemory("modern", max_iter=2).fit(spins(500, 64, seed=0))
    probes = spins(2000, 64, seed=1)
    bound = probes.nbytes + 4 * hopfield_module._BLOCK_BYTES
    assert 2000 * 500 * 8 > 3 * bound  # the old code's weights alone exceed it
    for method in (est.transform, est.predict, est.score_samples):
        assert _peak(lambda m=method: m(probes)) < bound, method.__name__


def test_block_rows_are_bounded_in_bytes():
    est = HopfieldMemory("modern").fit(spins(3000, 64))
    rows = est._block_rows()
    row_bytes = 8 * (4 * 64 + 3 * 3000)
    assert rows * row_bytes <= hopfield_module._BLOCK_BYTES
    assert rows < hopfield_module._BATCH_ROWS


# -- extreme values --------------------------------------------------------------------


@pytest.mark.parametrize("dtype, beta", [(np.float64, 1e308), (np.float32, 1e37)])
def test_modern_beta_that_overflows_is_rejected(dtype, beta):
    est = HopfieldMemory("modern", beta=beta)
    with pytest.raises(ValueError, match="beta"):
        est.fit(spins(3, 64).astype(dtype))
    with pytest.raises(NotFittedError):
        est.predict(spins(1, 64))


def test_modern_subnormal_patterns_are_rejected_by_name():
    X = np.zeros((4, 8))
    X[np.arange(4), np.arange(4)] = 1e-310
    with pytest.raises(ValueError, match="default beta"):
        HopfieldMemory("modern", encoding="real").fit(X)


@pytest.mark.parametrize("encoding", ["real", "bipolar"])
@pytest.mark.parametrize("method", ["transform", "predict", "score_samples", "recall"])
def test_modern_probe_near_the_float_limit_is_finite_or_named(encoding, method):
    X = np.random.default_rng(0).normal(size=(5, 16))
    if encoding == "bipolar":
        X = np.sign(X)
    est = HopfieldMemory("modern", encoding=encoding).fit(X)
    probe = X[:2].copy()
    probe[0, 3] = 1.5e308
    try:
        out = getattr(est, method)(probe)
    except ValueError as exc:
        assert encoding == "real" and "overflow" in str(exc)
        return
    values = out.states if method == "recall" else out
    assert np.isfinite(values).all()


def test_dense_large_degree_capacity_does_not_overflow():
    """Issue 14: degree=200 with 512 features raised OverflowError."""
    est = quiet(HopfieldMemory("dense", degree=200).fit, spins(3, 512))
    assert 1e100 < est.capacity_ < np.inf
    assert np.isfinite(est.score_samples(spins(2, 512, seed=1))).all()


def test_dense_degree_that_overflows_is_rejected():
    with pytest.raises(ValueError, match="degree=400"):
        HopfieldMemory("dense", degree=400).fit(spins(3, 4).astype(np.float32))


def test_modern_capacity_at_large_n_does_not_overflow():
    est = HopfieldMemory("modern").fit(spins(2, 3000))
    assert est.capacity_ == np.inf


@settings(max_examples=40, deadline=None)
@given(
    value=st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([1.5e308, -1.7e308, 5e-324, -2.2e-308, 0.0]),
    ),
    column=st.integers(0, 7),
    rule=st.sampled_from(RULES),
)
def test_extreme_probe_entries(value, column, rule):
    X = spins(4, 8)
    if rule == "modern":
        X = X * np.linspace(0.5, 2.0, 8)  # real-valued
    if rule not in _FITTED:
        _FITTED[rule] = quiet(HopfieldMemory(rule, random_state=0).fit, X)
    est = _FITTED[rule]
    probe = X[:1].copy()
    probe[0, column] = value
    for method in ("transform", "score_samples"):
        try:
            out = getattr(est, method)(probe)
        except ValueError as exc:
            assert rule == "modern" and "overflow" in str(exc)
            continue
        assert np.isfinite(out).all(), (method, value)


_FITTED = {}


@settings(max_examples=25, deadline=None)
@given(
    scale=st.floats(1e-200, 1e150),
    beta=st.one_of(st.none(), st.floats(1e-300, 1e300)),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_modern_settings_give_a_finite_model_or_a_named_error(scale, beta, dtype):
    if dtype == np.float32:
        scale = min(scale, 1e37)
    X = (np.random.default_rng(0).normal(size=(4, 8)) * scale).astype(dtype)
    est = HopfieldMemory("modern", encoding="real", beta=beta, max_iter=5)
    try:
        quiet(est.fit, X)
    except ValueError as exc:
        assert "beta" in str(exc) or "overflow" in str(exc)
        with pytest.raises(NotFittedError):
            est.transform(X)
        return
    assert np.isfinite(est.beta_) and est.beta_ > 0
    assert np.isfinite(est.transform(X)).all()
    assert np.isfinite(est.sample(2, n_steps=2, random_state=0)).all()
