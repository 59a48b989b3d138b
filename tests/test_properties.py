"""Property-based tests: any input is handled or rejected clearly, never silently.

Over every estimator, hypothesis draws inputs of odd shapes (one sample, one feature,
wide, tall), dtypes (float32 / float64 / int / bool), layouts (Fortran order, strided,
negatively strided, read-only), scales (1e5, 1e-12), constant columns and NaN / inf.
Each must either work, with finite outputs and the caller's array untouched, or raise
a ValueError / TypeError (FloatingPointError for a divergent fit) whose message names
the problem. Models are tiny and examples few (derandomized): the file runs in
seconds. What these tests found is listed with ``@example`` regressions below.
"""

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from skebm import RBM, HopfieldMemory, LangevinEBMClassifier, VAETransformer
from skebm.base import BackendMixin
from tests.conftest import BACKENDS, HAS_TORCH

FAST = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: tiny models: every variant whose numerics differ (visible units, storage rules)
ESTIMATORS = {}
for _backend in BACKENDS:
    ESTIMATORS[f"rbm-{_backend}"] = RBM(
        n_components=2, n_iter=1, batch_size=4, backend=_backend, random_state=0
    )
    ESTIMATORS[f"hopfield-modern-{_backend}"] = HopfieldMemory(
        "modern", max_iter=5, backend=_backend, random_state=0
    )
ESTIMATORS["rbm-gaussian"] = RBM(
    n_components=2, n_iter=1, visible="gaussian", learning_rate=0.01, random_state=0
)
ESTIMATORS["hopfield-hebbian"] = HopfieldMemory(max_iter=5, random_state=0)
ESTIMATORS["hopfield-storkey"] = HopfieldMemory("storkey", max_iter=5, random_state=0)
if HAS_TORCH:
    ESTIMATORS["langevin"] = LangevinEBMClassifier(
        hidden_layer_sizes=(3,),
        max_iter=1,
        sgld_steps=1,
        buffer_size=10,
        random_state=0,
    )
    ESTIMATORS["vae"] = VAETransformer(
        n_components=1,
        hidden_layer_sizes=(3,),
        max_iter=1,
        n_importance_samples=2,
        random_state=0,
    )

METHODS = ("transform", "predict", "predict_proba", "score_samples", "energy")

#: what a clear rejection names: the offending value, shape, dtype, classes, or
#: (FloatingPointError) the divergence and what to change
CLEAR = re.compile(
    r"NaN|infinity|sample|feature|class|dtype|overflow|[Ss]parse|diverged|Scale"
)

SHAPES = st.sampled_from([(1, 1), (1, 4), (3, 1), (2, 25), (30, 2), (6, 3)])
DTYPES = st.sampled_from([np.float64, np.float32, np.int64, np.bool_])
SCALES = st.sampled_from([1.0, 1.0, 1e5, 1e-12])
LAYOUTS = st.sampled_from(["C", "F", "strided", "reversed", "readonly"])


def _elements(dtype):
    if dtype == np.bool_:
        return st.booleans()
    if dtype == np.int64:
        return st.integers(-2, 2)
    return st.floats(-1, 1, width=32, allow_subnormal=False)


@st.composite
def matrices(draw, shape=SHAPES, special=True):
    """An input matrix in an arbitrary dtype, scale and memory layout."""
    dtype = draw(DTYPES)
    X = draw(hnp.arrays(dtype, draw(shape), elements=_elements(dtype)))
    if dtype in (np.float32, np.float64):
        X = (X * draw(SCALES)).astype(dtype)
        if special and draw(st.booleans()) and draw(st.booleans()):
            i, j = draw(st.integers(0, X.shape[0] - 1)), draw(st.integers(0, 99))
            X[i, j % X.shape[1]] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    if draw(st.booleans()):
        X[:, 0] = X[0, 0]  # a constant column
    return _layout(X, draw(LAYOUTS))


def _layout(X, kind):
    if kind == "F":
        return np.asfortranarray(X)
    if kind == "strided":
        return np.repeat(X, 2, axis=1)[:, ::2]
    if kind == "reversed":
        return X[::-1].copy()[::-1]
    if kind == "readonly":
        X = X.copy()
        X.setflags(write=False)
    return X


def _fit(est, X):
    y = np.arange(X.shape[0]) % 2 if isinstance(est, LangevinEBMClassifier) else None
    return est.fit(X, y)


def _outputs(est, X):
    out = {m: getattr(est, m)(X) for m in METHODS if hasattr(est, m)}
    out["sample"] = est.sample(2, random_state=0)
    return out


def _check_handled_or_rejected(est, fit_X, probe_X):
    """Fit on fit_X, infer on probe_X: finite outputs or a clear error; no mutation."""
    copies = [np.array(fit_X, copy=True), np.array(probe_X, copy=True)]
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # clipping, capacity
        warnings.simplefilter("ignore", ConvergenceWarning)
        for stage, X in (("fit", fit_X), ("infer", probe_X)):
            nonfinite = not np.isfinite(X).all()
            try:
                if stage == "fit":
                    _fit(est, X)
                else:
                    out = _outputs(est, X)
            except (ValueError, TypeError, FloatingPointError) as exc:
                msg = f"{stage}: {type(exc).__name__}: {exc}"
                assert CLEAR.search(str(exc)), f"unclear error, {msg}"
                if nonfinite:
                    assert isinstance(exc, ValueError), msg
                    assert re.search("NaN|infinity", str(exc)), msg
                break
            assert not nonfinite, f"{stage} accepted NaN or inf"
    for name, value in out.items():
        if value.dtype.kind == "f":
            assert not np.isnan(value).any(), f"{name} returned NaN"
            assert np.isfinite(value).all(), f"{name} returned {value}"
    for original, after in zip(copies, (fit_X, probe_X), strict=True):
        np.testing.assert_array_equal(after, original)  # NaN == NaN here


# -- any input: handled or rejected clearly ------------------------------------------


@pytest.mark.parametrize("name", list(ESTIMATORS))
@FAST
@given(X=matrices())
# regression: rule="modern" on values whose squared norms overflow returned NaN
@example(X=np.full((2, 3), 1e300))
@example(X=np.full((2, 3), 1e38, dtype=np.float32))
def test_fit_and_infer_on_any_input(name, X):
    _check_handled_or_rejected(clone(ESTIMATORS[name]), X, X)


@pytest.mark.parametrize("name", list(ESTIMATORS))
@FAST
@given(data=st.data())
def test_infer_on_other_dtypes_and_layouts(name, data):
    """Probes in another dtype, scale or layout than the training data."""
    X = data.draw(matrices(special=False))
    n_features = X.shape[1]
    rows = st.sampled_from([1, 2, 7])
    probe = data.draw(matrices(shape=rows.map(lambda n: (n, n_features)), special=True))
    _check_handled_or_rejected(clone(ESTIMATORS[name]), X, probe)


@pytest.mark.parametrize("name", list(ESTIMATORS))
@FAST
@given(X=matrices(special=False))
# regression: rule="modern" on float32 patterns of RMS < 1e-19: the default beta_
# overflowed float32 and recall returned NaN (found by the test above)
@example(X=np.array([[1.4e-23]], dtype=np.float32))
def test_tiny_patterns_then_zero_probe(name, X):
    _check_handled_or_rejected(clone(ESTIMATORS[name]), X, np.zeros_like(X[:1]))


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_wrong_number_of_features_is_rejected(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = _fit(clone(ESTIMATORS[name]), np.eye(4)[[0, 1, 2, 3, 0, 1]])
    for method in METHODS:
        if hasattr(est, method):
            with pytest.raises(ValueError, match="features"):
                getattr(est, method)(np.ones((2, 3)))


# -- sparse input --------------------------------------------------------------------


SPARSE_ESTIMATORS = [n for n in ESTIMATORS if n.startswith("rbm") or n == "vae"]


@pytest.mark.parametrize("name", SPARSE_ESTIMATORS)
@FAST
@given(X=hnp.arrays(np.float64, SHAPES, elements=st.sampled_from([0.0, 0.0, 1.0])))
def test_sparse_csr_matches_dense(name, X):
    est = clone(ESTIMATORS[name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dense = _outputs(clone(est).fit(X), X)
        sparse = _outputs(clone(est).fit(sp.csr_matrix(X)), sp.csr_matrix(X))
    for key in dense:
        np.testing.assert_allclose(sparse[key], dense[key], rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("name", [n for n in ESTIMATORS if n not in SPARSE_ESTIMATORS])
def test_sparse_rejected_where_dense_is_required(name):
    with pytest.raises(TypeError, match="[Ss]parse data"):
        _fit(clone(ESTIMATORS[name]), sp.csr_matrix(np.eye(3)))


# -- numerical stress: extreme weights -----------------------------------------------


def _scale_weights(est, factor):
    if isinstance(est, RBM):
        est.components_ = est.components_ / np.abs(est.components_).max() * factor
        est.intercept_hidden_ = np.full_like(est.intercept_hidden_, factor)
        est.intercept_visible_ = np.full_like(est.intercept_visible_, -factor)
        est._log_z_cache.clear()
    elif isinstance(est, HopfieldMemory):
        if hasattr(est, "weights_"):
            est.weights_ = est.weights_ * factor
        if hasattr(est, "beta_"):
            est.beta_ = est.beta_ * factor
    else:
        import torch

        with torch.no_grad():
            for p in est._net.parameters():
                p.mul_(factor)


@pytest.mark.parametrize("name", list(ESTIMATORS))
@settings(FAST, max_examples=10)
@given(log_factor=st.integers(-12, 8))
# regression: a VAE encoder log-variance above ~1400 (weights x 1e4 here) overflowed
# exp() -> infinite codes -> NaN scores
@example(log_factor=4)
def test_extreme_weights_give_finite_results(name, log_factor):
    rng = np.random.RandomState(0)
    X = (rng.rand(20, 4) > 0.5).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = _fit(clone(ESTIMATORS[name]), X)
    _scale_weights(est, 10.0**log_factor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for key, value in _outputs(est, X).items():
            assert np.isfinite(value).all(), f"{key}: {value}"


# -- bounded memory: inference works in row batches ----------------------------------


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_inference_in_small_row_batches_equals_unbatched(name, monkeypatch):
    """Shrink every inference batch to 3 rows: the outputs must not change."""
    rng = np.random.RandomState(0)
    X = (rng.rand(20, 5) > 0.5).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = _fit(clone(ESTIMATORS[name]), X)
        expected = _outputs(est, X)
        map_rows = BackendMixin.__dict__["_map_rows"].__func__
        calls = []

        def small_map_rows(*args, batch_rows=4096):
            calls.append(batch_rows)
            return map_rows(*args, batch_rows=3)

        monkeypatch.setattr(BackendMixin, "_map_rows", staticmethod(small_map_rows))
        monkeypatch.setattr("skebm._hopfield._BATCH_ROWS", 3)
        if HAS_TORCH:
            from skebm._neural import NeuralFitMixin

            predict_tensor = NeuralFitMixin._predict_tensor

            def small_predict_tensor(self, X, fn, dtype=None, batch_rows=4096):
                calls.append(batch_rows)
                # VAE scores pass their own batch_rows (aligned with their draws)
                rows = 3 if batch_rows == 4096 else batch_rows
                return predict_tensor(self, X, fn, dtype, batch_rows=rows)

            monkeypatch.setattr(NeuralFitMixin, "_predict_tensor", small_predict_tensor)
            monkeypatch.setattr("skebm._vae._VALUES_PER_CALL", 8)
        batched = _outputs(est, X)
    if not name.startswith("hopfield"):
        assert calls, "inference did not go through the batching helper"
    for key in expected:
        np.testing.assert_allclose(batched[key], expected[key], rtol=1e-10, err_msg=key)
