"""The RBM's inference side under adversarial use: data out of range, inputs near
the float limits, wide exact likelihoods, the AIS error bar and concurrent calls."""

import pickle
import re
import tracemalloc
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import logsumexp
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from skebm import RBM
from skebm._backends import get_backend
from skebm._rbm import EXACT_MAX_STATES, _check_gaussian_scale
from tests.conftest import BACKENDS


def rbm_with(W, b, c, backend="numpy", visible="bernoulli", **kwargs):
    """An RBM whose parameters are W, b, c (in their dtype)."""
    n_h, n_v = W.shape
    rbm = RBM(n_components=n_h, n_iter=0, visible=visible, backend=backend, **kwargs)
    rbm.fit(np.zeros((2, n_v), dtype=W.dtype))
    rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_ = W, b, c
    return rbm


def random_rbm(seed, n_h, n_v, scale=1.0, dtype=np.float64, **kwargs):
    rng = np.random.default_rng(seed)
    W = rng.normal(0, scale, (n_h, n_v)).astype(dtype)
    b = rng.normal(0, 1, n_v).astype(dtype)
    c = rng.normal(0, 1, n_h).astype(dtype)
    return rbm_with(W, b, c, **kwargs)


def binary(rng, n, d):
    return (rng.random((n, d)) < 0.4).astype(float)


@pytest.fixture(scope="module")
def gaussian_data():
    rng = np.random.default_rng(0)
    return StandardScaler().fit_transform(rng.normal(3, 7, (60, 5)) @ np.eye(5) * 2)


# -- out-of-range data: one warning per call, at the caller's line -------------------

INFERENCE = {
    "transform": lambda rbm, X: rbm.transform(X),
    "score_samples": lambda rbm, X: rbm.score_samples(X),
    "score": lambda rbm, X: rbm.score(X),
    "free_energy": lambda rbm, X: rbm.free_energy(X),
    "energy": lambda rbm, X: rbm.energy(X),
    "gibbs": lambda rbm, X: rbm.gibbs(X),
    "pseudo_likelihood": lambda rbm, X: rbm.pseudo_likelihood(X),
    "sample": lambda rbm, X: rbm.sample(len(X), n_steps=2, init=X, random_state=0),
}


@pytest.mark.parametrize("method", list(INFERENCE))
def test_bernoulli_out_of_range_warns_once_per_call(backend, method):
    rng = np.random.default_rng(0)
    X = binary(rng, 20, 6)
    rbm = RBM(n_components=3, n_iter=2, backend=backend, random_state=0).fit(X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out_of_range = INFERENCE[method](rbm, X * 16 - 2)
        in_range = INFERENCE[method](rbm, np.clip(X * 16 - 2, 0, 1))
    messages = [w for w in caught if "clipped" in str(w.message)]
    assert len(messages) == 1, [str(w.message) for w in caught]
    assert "[-2, 14]" in str(messages[0].message)
    assert messages[0].filename == __file__  # points at the user's call
    if method not in ("gibbs", "sample"):
        np.testing.assert_array_equal(out_of_range, in_range)


def test_gaussian_fit_scale_helper_warns_on_unscaled_data(gaussian_data):
    rng = np.random.default_rng(1)
    raw = rng.normal(0, 1, (50, 4)) * [1.0, 30.0, 1.0, 1.0]
    with pytest.warns(
        UserWarning, match=r"standard deviations in \[0\.9\d*, 2\d\.\d\].*far from 1"
    ):
        _check_gaussian_scale(raw)
    with pytest.warns(UserWarning, match="StandardScaler"):
        _check_gaussian_scale(raw * 0.01)  # far narrower than unit variance
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _check_gaussian_scale(gaussian_data)
        # constant features (e.g. digit borders) are left aside; one row says nothing
        _check_gaussian_scale(np.column_stack([gaussian_data, np.zeros(60)]))
        _check_gaussian_scale(raw[:1] * 1e6)
    # sparse and near the float limits, without overflow
    import scipy.sparse as sp

    with pytest.warns(UserWarning, match="far from 1"):
        _check_gaussian_scale(sp.csr_matrix(raw))
    with pytest.warns(UserWarning, match=r"\d+e\+30"):
        _check_gaussian_scale(raw * 1e300)


@pytest.mark.parametrize("method", [m for m in INFERENCE if m != "pseudo_likelihood"])
def test_gaussian_inference_far_from_unit_scale_warns_once(gaussian_data, method):
    X = gaussian_data
    rbm = RBM(
        n_components=3, visible="gaussian", learning_rate=0.01, n_iter=2, random_state=0
    ).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        INFERENCE[method](rbm, X)
        INFERENCE[method](rbm, X[:1] * 3)  # an outlier row is not "unscaled data"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        INFERENCE[method](rbm, X * 100)
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert "StandardScaler" in str(caught[0].message)
    assert caught[0].filename == __file__


# -- AIS standard error ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_ais_standard_error_covers_exact_log_z(backend):
    """Over 40 models and seeds, exact log Z lies within 3 AIS standard errors of
    the AIS estimate in at least 95% of them, and the errors are not inflated (the
    standardised errors have a spread near 1)."""
    z = []
    with threadpool_limits(1):  # small GEMMs: threads only add overhead
        for seed in range(40):
            rbm = random_rbm(
                seed, 10, 24, backend=backend, random_state=seed, ais_n_betas=200
            )
            exact, exact_std = rbm.log_partition("exact", return_std=True)
            ais, std = rbm.log_partition("ais", return_std=True)
            assert exact_std == 0.0
            assert 0 < std < 0.5
            z.append((ais - exact) / std)
    z = np.abs(z)
    assert np.mean(z <= 3) >= 0.95
    assert 0.5 < np.sqrt(np.mean(z**2)) < 2


def test_ais_standard_error_shrinks_with_chains_and_handles_one_chain():
    stds = [
        random_rbm(
            3, 8, 12, ais_n_chains=n, ais_n_betas=100, random_state=0
        ).log_partition("ais", return_std=True)[1]
        for n in (25, 400)
    ]
    assert stds[1] < stds[0] / 2
    one = random_rbm(3, 8, 12, ais_n_chains=1, ais_n_betas=10, random_state=0)
    log_z, std = one.log_partition("ais", return_std=True)
    assert np.isfinite(log_z) and std == np.inf


def test_log_partition_return_std_is_cached_with_log_z(monkeypatch):
    monkeypatch.setattr("skebm._rbm.EXACT_MAX_UNITS", 5)  # "auto" is AIS above it
    rbm = random_rbm(4, 8, 9, scale=0.5, ais_n_betas=50, random_state=0)
    first = rbm.log_partition(return_std=True)
    assert first[1] > 0
    assert rbm.log_partition() == first[0]
    assert rbm.log_partition("ais", return_std=True) == first
    assert len(rbm._log_z_cache) == 1
    # the other method is cached beside it for the same parameters, not instead
    rbm.log_partition("exact")
    assert len(rbm._log_z_cache) == 2
    rbm.components_ = rbm.components_ * 2  # a new state drops the old entries
    rbm.log_partition("ais")
    assert len(rbm._log_z_cache) == 1


def test_verbose_says_when_ais_and_exact_run(capsys):
    rbm = random_rbm(5, 6, 9, ais_n_betas=20, random_state=0, verbose=1)
    log_z, std = rbm.log_partition("ais", return_std=True)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "[RBM] log Z: AIS, 100 chains x 20 temperatures ..."
    assert re.fullmatch(r"\[RBM\] log Z = -?\d+\.\d{4} \+- \d\.\d{4} .*ais.*", out[1])
    assert f"{log_z:.4f} +- {std:.4f}" in out[1]
    rbm.log_partition("exact")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "[RBM] log Z: exact sum over 2**6 states of the hidden layer ..."
    assert out[1].startswith("[RBM] log Z = ") and "exact" in out[1]
    rbm.score_samples(np.zeros((1, 9)))  # cached: nothing more to say
    assert capsys.readouterr().out == ""


# -- exact log Z: bounded memory, a state-count limit ----------------------------------


def test_exact_log_z_memory_is_bounded_whatever_the_width():
    """12 hidden x 4000 visible: 4096 states of 4000 softplus terms each. Enumerating
    them in one chunk took 260 MB; chunks bounded in bytes keep the peak far lower."""
    rng = np.random.default_rng(0)
    rbm = random_rbm(0, 12, 4000, scale=0.05)
    X = binary(rng, 20, 4000)
    tracemalloc.start()
    try:
        log_p = rbm.score_samples(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64e6, f"peak {peak / 1e6:.0f} MB"
    assert np.isfinite(log_p).all()


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_exact_log_z_is_the_same_in_any_chunking(backend, visible):
    ops = get_backend(backend)
    rng = np.random.default_rng(1)
    W, b, c = rng.normal(0, 1, (9, 5)), rng.normal(0, 1, 5), rng.normal(0, 1, 9)
    args = [ops.core.asarray(a, np.float64) for a in (W, b, c)]
    # an independent sum over h: c.h + log sum_v exp(b.v + h W v)
    H = ((np.arange(512)[:, None] >> np.arange(9)) & 1).astype(float)
    if visible == "bernoulli":  # 5 visible < 9 hidden: the sum runs over v
        terms = H @ c + np.logaddexp(0, H @ W + b).sum(1)
    else:
        F = H @ W + b
        terms = H @ c + 2.5 * np.log(2 * np.pi) + 0.5 * ((F**2).sum(1) - b @ b)
    expected = logsumexp(terms)
    for chunk_bytes in (1, 1000, 1 << 24):
        got = ops.rbm.log_partition_exact(*args, visible, chunk_bytes=chunk_bytes)
        assert got == pytest.approx(expected, abs=1e-9)


def test_exact_refuses_above_the_state_limit():
    rbm = random_rbm(6, 26, 30, scale=0.01, ais_n_betas=10, random_state=0)
    with pytest.raises(ValueError) as info:
        rbm.log_partition("exact")
    message = str(info.value)
    assert "2**26 = 67,108,864 states of the hidden layer" in message
    assert "method='ais'" in message and "max_states" in message
    assert EXACT_MAX_STATES == 1 << 24
    assert np.isfinite(rbm.log_partition())  # "auto" chooses AIS, no refusal
    small = random_rbm(6, 12, 30, scale=0.1)
    with pytest.raises(ValueError, match="2\\*\\*12 = 4,096 states"):
        small.log_partition("exact", max_states=4095)
    assert small.log_partition("exact", max_states=4096) == small.log_partition()
    huge = random_rbm(6, 80, 90, scale=0.01, ais_n_betas=10, random_state=0)
    with pytest.raises(ValueError, match=r"2\*\*80 states of the hidden layer"):
        huge.log_partition("exact")
    for bad in (0, 2.5, "many"):
        with pytest.raises(ValueError, match="max_states"):
            small.log_partition("exact", max_states=bad)


# -- inputs near the float limits: finite outputs or a clear error ---------------------

EXTREMES = [0.0, 1.0, -1.0, 1e308, -1e308, 1.7e308, 5e-324, -2.2e-308, 1e-310, 3e38]
EXTREMES += [-3e38, 1e19, 1e154, -1e154, 0.5]

FAST = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def extreme_arrays(dtype, n_features):
    values = st.sampled_from(EXTREMES) | st.floats(
        allow_nan=False, allow_infinity=False
    )
    if dtype == np.float32:
        values = st.sampled_from([x for x in EXTREMES if abs(x) < 3.4e38]) | st.floats(
            width=32, allow_nan=False, allow_infinity=False
        )
    return hnp.arrays(dtype, (3, n_features), elements=values)


def _fitted(backend, visible, dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (30, 5)) if visible == "gaussian" else binary(rng, 30, 5)
    return RBM(
        n_components=4,
        n_iter=2,
        visible=visible,
        learning_rate=0.01,
        backend=backend,
        random_state=0,
    ).fit(X.astype(dtype))


def _finite_or_clear_error(call):
    """The call's output is finite, or it raised a ValueError naming the overflow;
    never a RuntimeWarning (pyproject turns them into errors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("error", RuntimeWarning)
        try:
            out = call()
        except ValueError as exc:
            assert re.search(
                r"overflows float(32|64) arithmetic: X has values", str(exc)
            )
            return
    assert np.isfinite(out).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("model_dtype", [np.float64, np.float32])
@pytest.mark.parametrize("input_dtype", [np.float64, np.float32])
def test_extreme_inputs_give_finite_outputs_or_clear_errors(
    backend, visible, model_dtype, input_dtype
):
    rbm = _fitted(backend, visible, model_dtype)
    methods = [
        m for m in INFERENCE if visible == "bernoulli" or m != "pseudo_likelihood"
    ]

    @FAST
    @given(X=extreme_arrays(input_dtype, 5), H=extreme_arrays(input_dtype, 4))
    def check(X, H):
        for method in methods:
            _finite_or_clear_error(lambda m=method: INFERENCE[m](rbm, X))
        _finite_or_clear_error(lambda: rbm.inverse_transform(H))

    check()


def test_gaussian_overflow_error_names_the_cause():
    rbm = _fitted("numpy", "gaussian", np.float64)
    X = np.full((2, 5), 1e300)
    with pytest.warns(UserWarning, match="far from the unit scale"):
        with pytest.raises(ValueError) as info:
            rbm.score_samples(X)
    assert "score_samples overflows float64 arithmetic" in str(info.value)
    assert "X has values up to 1e+300" in str(info.value)
    assert "StandardScaler" in str(info.value)
    # float64 data beyond float32's range, on a float32 model
    rbm32 = _fitted("numpy", "gaussian", np.float32)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="float32"):
        rbm32.transform(np.full((2, 5), 1e39))


@pytest.mark.parametrize("backend", BACKENDS)
def test_overflowing_parameters_raise_naming_them(backend):
    rbm = _fitted(backend, "bernoulli", np.float32)
    rbm.components_ = np.full_like(rbm.components_, 3e38)
    rbm.intercept_hidden_ = np.full_like(rbm.intercept_hidden_, -3e38)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(
            ValueError, match="components_ up to 3e\\+38.*learning_rate"
        ):
            rbm.score_samples(np.ones((2, 5)))
        with pytest.raises(ValueError, match="log Z .* not finite.*learning_rate"):
            rbm.log_partition("exact")
    # subnormal parameters are ordinary numbers
    tiny = _fitted(backend, "bernoulli", np.float64)
    tiny.components_ = np.full_like(tiny.components_, 1e-310)
    assert np.isfinite(tiny.score_samples(np.ones((2, 5)))).all()


# -- threads: fitted and just-unpickled models, results identical to serial calls -------


def _calls(X):
    return {
        "transform": lambda m: m.transform(X),
        "score_samples": lambda m: m.score_samples(X),
        "free_energy": lambda m: m.free_energy(X),
        "sample": lambda m: m.sample(5, n_steps=5, random_state=3),
        "log_partition": lambda m: np.array(m.log_partition(return_std=True)),
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loaded", [False, True], ids=["fitted", "unpickled"])
def test_concurrent_inference_equals_serial(backend, loaded, monkeypatch):
    rng = np.random.default_rng(0)
    X = binary(rng, 80, 21)
    # 22 hidden x 21 visible: above the exact limit of "auto", so log Z is AIS
    fitted = RBM(
        n_components=22, n_iter=2, ais_n_betas=20, backend=backend, random_state=0
    ).fit(X)
    blob = pickle.dumps(fitted)  # before any log Z: each copy computes its own
    serial_model = pickle.loads(blob)
    expected = {name: call(serial_model) for name, call in _calls(X).items()}

    model = pickle.loads(blob) if loaded else fitted
    computed = []
    real = RBM._compute_log_partition

    def counting(self, *args):
        computed.append(1)
        return real(self, *args)

    monkeypatch.setattr(RBM, "_compute_log_partition", counting)
    jobs = [(name, call) for name, call in _calls(X).items()] * 8
    order = np.random.default_rng(1).permutation(len(jobs))
    with ThreadPoolExecutor(8) as pool:
        futures = [(jobs[i][0], pool.submit(jobs[i][1], model)) for i in order]
        results = [(name, future.result()) for name, future in futures]
    for name, result in results:
        np.testing.assert_array_equal(result, expected[name], err_msg=name)
    assert len(computed) == 1  # log Z once, however many threads asked
    # the randomness drawn from the fitted generator is shared out, not duplicated
    gibbs_model = pickle.loads(blob)
    serial_gibbs = pickle.loads(blob)
    serial = sorted(serial_gibbs.gibbs(X[:4]).tobytes() for _ in range(8))
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(lambda _: gibbs_model.gibbs(X[:4]), range(8)))
    assert sorted(a.tobytes() for a in threaded) == serial
