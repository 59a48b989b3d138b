"""Array API dispatch: any namespace in, the same namespace and device out.

scikit-learn's own checks (``check_array_api_input`` and friends) run over every
estimator with the ``array_api_support`` tag in ``tests/test_common.py``; these tests
cover what they do not: every public method, a whole pipeline, persistence and
the behaviour without dispatch. ``tests/conftest.py`` sets ``SCIPY_ARRAY_API=1``.
"""

import contextlib
import io
import pickle
import threading

import numpy as np
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skebm import RBM, HopfieldMemory, LangevinEBMClassifier, VAETransformer
from skebm.utils._array_api import ARRAY_API_SUPPORT  # noqa: E402
from tests.conftest import HAS_CUDA, requires_torch

if not ARRAY_API_SUPPORT:
    pytest.skip("array API dispatch needs scikit-learn >= 1.9", allow_module_level=True)
torch = pytest.importorskip("torch")
xps = pytest.importorskip("array_api_strict")

pytestmark = requires_torch

#: estimator -> public methods that take visible rows X and return one array
ROW_METHODS = {
    RBM: ("transform", "score_samples", "free_energy", "energy", "gibbs"),
    VAETransformer: ("transform", "score_samples", "energy"),
}


def _data(n=60, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = (rng.random((n, d)) > 0.5).astype(np.float64)
    y = (X[:, 0] + X[:, 1] > 1).astype(np.int64)
    return X, y


def _estimators():
    yield RBM(n_components=3, n_iter=3, random_state=0)
    yield RBM(n_components=3, n_iter=3, random_state=0, backend="torch")
    yield VAETransformer(
        n_components=2, hidden_layer_sizes=(8,), max_iter=3, random_state=0
    )


def _namespaces():
    yield "torch-cpu", lambda X: torch.asarray(X, device="cpu")
    if HAS_CUDA:
        yield "torch-cuda", lambda X: torch.asarray(X, device="cuda")
    yield "array_api_strict", xps.asarray
    device1 = xps.Device("device1")
    yield "array_api_strict-device1", lambda X: xps.asarray(X, device=device1)


def _same_place(out, X):
    if isinstance(X, torch.Tensor):
        return isinstance(out, torch.Tensor) and out.device == X.device
    return type(out) is type(X) and out.device == X.device


def _numpy(a):
    if isinstance(a, torch.Tensor):
        return a.cpu().numpy()
    return np.asarray(xps.asarray(a, device=xps.Device("CPU_DEVICE")))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("estimator", list(_estimators()), ids=repr)
@pytest.mark.parametrize("name, convert", list(_namespaces()), ids=lambda v: "")
def test_every_output_in_the_input_namespace(estimator, name, convert):
    X, _ = _data()
    Xa = convert(X)
    with sklearn.config_context(array_api_dispatch=True):
        est = sklearn.clone(estimator).fit(Xa)
        for attr in ("components_", "intercept_visible_", "h_samples_"):
            if hasattr(est, attr):
                assert _same_place(getattr(est, attr), Xa), attr
        for method in ROW_METHODS[type(estimator)]:
            assert _same_place(getattr(est, method)(Xa), Xa), method
        H = est.transform(Xa)
        assert _same_place(est.inverse_transform(H), Xa)
        assert _same_place(est.sample(4, random_state=0), Xa)
        assert isinstance(est.score(Xa), float)
        if isinstance(est, RBM):
            assert isinstance(est.log_partition(), float)
            assert _same_place(est.pseudo_likelihood(Xa), Xa)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_rbm_on_tensors_matches_torch_backend_on_numpy(backend):
    """Torch input runs the torch backend whatever ``backend`` says, so its fit is
    the one of ``backend="torch"`` on the same values in NumPy."""
    X, _ = _data()
    reference = RBM(n_components=3, n_iter=3, random_state=0, backend="torch").fit(X)
    with sklearn.config_context(array_api_dispatch=True):
        est = RBM(n_components=3, n_iter=3, random_state=0, backend=backend)
        est.fit(torch.asarray(X))
        assert est.get_params()["backend"] == backend  # parameters untouched
        H = est.transform(torch.asarray(X))
    np.testing.assert_allclose(est.components_.numpy(), reference.components_)
    np.testing.assert_allclose(H.numpy(), reference.transform(X))


def test_without_dispatch_numpy_out():
    X, _ = _data()
    est = RBM(n_components=3, n_iter=3, random_state=0).fit(torch.asarray(X))
    assert isinstance(est.components_, np.ndarray)
    assert isinstance(est.transform(torch.asarray(X)), np.ndarray)
    np.testing.assert_array_equal(
        est.components_,
        RBM(n_components=3, n_iter=3, random_state=0).fit(X).components_,
    )


def test_other_namespace_after_fit_raises():
    X, _ = _data()
    with sklearn.config_context(array_api_dispatch=True):
        est = RBM(n_components=3, n_iter=2, random_state=0).fit(torch.asarray(X))
        with pytest.raises(ValueError, match=r"RBM.transform\(\) must use the same"):
            est.transform(X)
    # without dispatch, a model fitted on tensors answers NumPy in NumPy
    assert isinstance(est.transform(X), np.ndarray)


def test_failed_call_leaves_the_estimator_as_it_was():
    X, _ = _data()
    with sklearn.config_context(array_api_dispatch=True):
        est = RBM(n_components=3, n_iter=2, random_state=0).fit(torch.asarray(X))
        before = {k: v for k, v in vars(est).items() if isinstance(v, torch.Tensor)}
        with pytest.raises(ValueError):
            est.partial_fit(torch.asarray(X[:, :3]))
    for key, value in before.items():
        assert getattr(est, key) is value
    assert est.get_params()["backend"] == "numpy"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_pipeline_on_tensors_scores_like_numpy():
    X, y = _data(n=200, d=8)
    Xt, yt = torch.asarray(X), torch.asarray(y)

    def pipeline():
        return make_pipeline(
            MinMaxScaler(),
            RBM(n_components=8, n_iter=5, random_state=0, backend="torch"),
            LogisticRegression(),
        )

    reference = pipeline().fit(X, y)
    with sklearn.config_context(array_api_dispatch=True):
        pipe = pipeline().fit(Xt, yt)
        proba = pipe.predict_proba(Xt)
        score = pipe.score(Xt, yt)
    assert isinstance(proba, torch.Tensor)
    np.testing.assert_allclose(proba.numpy(), reference.predict_proba(X), atol=1e-6)
    assert score == pytest.approx(reference.score(X, y))


class _RecordingUnpickler(pickle.Unpickler):
    def __init__(self, file):
        super().__init__(file)
        self.modules = set()

    def find_class(self, module, name):
        self.modules.add(module)
        return super().find_class(module, name)


def _langevin():
    return LangevinEBMClassifier(
        hidden_layer_sizes=(8,),
        max_iter=3,
        sgld_steps=2,
        buffer_size=20,
        random_state=0,
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("estimator", [*_estimators(), _langevin()], ids=repr)
def test_pickle_of_a_tensor_fit_holds_no_torch(estimator):
    X, y = _data()
    method = "predict_proba" if hasattr(estimator, "predict_proba") else "transform"
    with sklearn.config_context(array_api_dispatch=True):
        est = sklearn.clone(estimator).fit(torch.asarray(X), torch.asarray(y))
        expected = getattr(est, method)(torch.asarray(X)).numpy()
    data = pickle.dumps(est)
    assert b"torch." not in data  # no torch module (a tensor would name several)
    unpickler = _RecordingUnpickler(io.BytesIO(data))
    loaded = unpickler.load()
    assert not {m for m in unpickler.modules if m.split(".")[0] == "torch"}
    # the estimator itself is untouched by pickling
    assert any(isinstance(v, torch.Tensor) for v in vars(est).values())
    assert not any(isinstance(v, torch.Tensor) for v in vars(loaded).values())
    np.testing.assert_allclose(getattr(loaded, method)(X), expected, rtol=1e-6)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_skops_file_of_a_tensor_fit_needs_only_the_estimator_type():
    sio = pytest.importorskip("skops.io")
    X, _ = _data()
    with sklearn.config_context(array_api_dispatch=True):
        est = RBM(n_components=3, n_iter=2, random_state=0).fit(torch.asarray(X))
    data = sio.dumps(est)
    assert sio.get_untrusted_types(data=data) == ["skebm._rbm.RBM"]
    loaded = sio.loads(data, trusted=["skebm._rbm.RBM"])
    assert isinstance(loaded.components_, np.ndarray)


@pytest.mark.cuda
def test_cuda_tensors_stay_on_cuda():
    X, _ = _data()
    Xc = torch.asarray(X, device="cuda")
    with sklearn.config_context(array_api_dispatch=True):
        est = RBM(n_components=3, n_iter=2, random_state=0).fit(Xc)
        assert est.components_.device.type == "cuda"
        assert est.transform(Xc).device.type == "cuda"
        vae = VAETransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=2)
        assert vae.fit(Xc).transform(Xc).device.type == "cuda"


#: the estimators whose modules other work edits: one test each, kept apart
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name, convert", list(_namespaces()), ids=lambda v: "")
def test_hopfield_outputs_in_the_input_namespace(name, convert):
    from skebm import HopfieldMemory

    X, _ = _data(n=4, d=16)
    Xa = convert(X)
    with sklearn.config_context(array_api_dispatch=True):
        for rule in ("hebbian", "modern"):
            est = HopfieldMemory(rule=rule, max_iter=20, random_state=0).fit(Xa)
            for method in ("transform", "predict", "energy", "score_samples"):
                assert _same_place(getattr(est, method)(Xa), Xa), method
            assert _same_place(est.recall(Xa).states, Xa)
            assert _same_place(est.sample(3, random_state=0), Xa)
        assert _same_place(est.predict_proba(Xa), Xa)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name, convert", list(_namespaces()), ids=lambda v: "")
def test_langevin_outputs_in_the_input_namespace(name, convert):
    from skebm import LangevinEBMClassifier

    X, y = _data()
    Xa, ya = convert(X), convert(y)
    est = LangevinEBMClassifier(
        hidden_layer_sizes=(8,),
        max_iter=3,
        sgld_steps=2,
        buffer_size=20,
        random_state=0,
    )
    with sklearn.config_context(array_api_dispatch=True):
        est.fit(Xa, ya)
        for method in (
            "predict",
            "predict_proba",
            "predict_log_proba",
            "score_samples",
            "energy",
        ):
            assert _same_place(getattr(est, method)(Xa), Xa), method
        assert _same_place(est.sample(3, random_state=0), Xa)
        assert isinstance(est.score(Xa, ya), float)


# -- tensors go to the numerics as they are (the torch-only estimators) -------------


@contextlib.contextmanager
def _no_host_copy_of(*shapes):
    """Dispatch on, and any NumPy view or copy of a tensor of ``shapes`` (the data
    rows) fails: ``.numpy()`` is how torch hands memory to NumPy (``__array__``,
    ``np.asarray`` and skebm's ``to_numpy`` all go through it)."""
    numpy = torch.Tensor.numpy
    shapes = {tuple(shape) for shape in shapes}

    def guarded(tensor, *args, **kwargs):
        if tuple(tensor.shape) in shapes:
            raise AssertionError(
                f"a tensor of shape {tuple(tensor.shape)} went to NumPy"
            )
        return numpy(tensor, *args, **kwargs)

    torch.Tensor.numpy = guarded
    try:
        with sklearn.config_context(array_api_dispatch=True):
            yield
    finally:
        torch.Tensor.numpy = numpy


def _as_tensor(a):
    return torch.asarray(a) if isinstance(a, np.ndarray) else a


def _check_calls(est, calls, shapes):
    """Each ``(method, args, kwargs)`` of ``calls`` answers a tensor on tensors,
    with no host copy of the rows, equal to the answer on NumPy without dispatch."""
    for name, args, kwargs in calls:
        expected = getattr(est, name)(*args, **kwargs)
        with _no_host_copy_of(*shapes):
            out = getattr(est, name)(
                *map(_as_tensor, args), **{k: _as_tensor(v) for k, v in kwargs.items()}
            )
        if isinstance(expected, float):
            assert out == pytest.approx(expected, rel=1e-6), name
            continue
        assert isinstance(out, torch.Tensor), name
        assert out.dtype == torch.from_numpy(np.asarray(expected)).dtype, name
        np.testing.assert_allclose(
            out.detach().numpy(), expected, rtol=1e-6, err_msg=name
        )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_langevin_tensors_never_visit_numpy():
    X, y = _data()
    Xt, yt = torch.asarray(X), torch.asarray(y)
    reference = _langevin().fit(X, y)
    with _no_host_copy_of(X.shape):
        est = _langevin().fit(Xt, yt)
    assert isinstance(est.data_min_, torch.Tensor)
    assert isinstance(est._buffer, torch.Tensor)
    # the fit on tensors is the fit on NumPy
    np.testing.assert_allclose(est.predict_proba(X), reference.predict_proba(X))
    calls = [
        ("predict", [X], {}),
        ("predict_proba", [X], {}),
        ("predict_log_proba", [X], {}),
        ("score_samples", [X], {}),
        ("energy", [X], {}),
        ("score", [X, y], {}),
        ("sample", [4], {"random_state": 0}),
        ("sample", [4], {"y": np.array([0, 1, 1, 0]), "random_state": 0}),
    ]
    _check_calls(est, calls, [X.shape])
    with _no_host_copy_of(X.shape):
        est.partial_fit(Xt, yt)
        est.set_params(warm_start=True).fit(Xt, yt)
    reference.partial_fit(X, y)
    reference.set_params(warm_start=True).fit(X, y)
    np.testing.assert_allclose(est.predict_proba(X), reference.predict_proba(X))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "params",
    [{}, {"likelihood": "gaussian"}, {"conditional": True}],
    ids=["bernoulli", "gaussian", "conditional"],
)
def test_vae_tensors_never_visit_numpy(params):
    X, y = _data()
    Xt, yt = torch.asarray(X), torch.asarray(y)
    make = VAETransformer(
        n_components=2,
        hidden_layer_sizes=(8,),
        max_iter=3,
        n_importance_samples=5,
        random_state=0,
        **params,
    )
    reference = sklearn.clone(make).fit(X, y)
    with _no_host_copy_of(X.shape):
        est = sklearn.clone(make).fit(Xt, yt)
        codes = est.transform(Xt)
    # the fit on tensors is the fit on NumPy (a Gaussian model's data scale may
    # differ in the last bits, which changes the row-keyed draws of its scores)
    np.testing.assert_allclose(est.transform(X), reference.transform(X), rtol=1e-6)
    H = codes.numpy()
    calls = [
        ("transform", [X], {}),
        ("inverse_transform", [H], {}),
        ("score_samples", [X], {}),
        ("score_samples", [X], {"n_importance_samples": 3}),
        ("energy", [X], {}),
        ("score", [X], {}),
        ("sample", [4], {"random_state": 0}),
        ("sample", [4], {"return_mean": True, "random_state": 0}),
    ]
    if params.get("conditional"):
        calls += [
            ("inverse_transform", [H, y], {}),
            ("sample", [len(y), y], {"random_state": 0}),
        ]
    _check_calls(est, calls, [X.shape, H.shape])
    with _no_host_copy_of(X.shape, H.shape):
        est.partial_fit(Xt, yt)
        assert isinstance(est.fit_transform(Xt, yt), torch.Tensor)


def test_row_draws_on_the_device_are_numpys():
    from skebm.utils._random import row_normal_draws

    X = np.random.default_rng(0).normal(size=(9, 5))
    X[0, 0], X[1, 1] = -0.0, 1e30
    for dtype in (np.float64, np.float32):
        Xd = X.astype(dtype)
        # the same hashes; torch's cosine may round an ulp apart from NumPy's
        np.testing.assert_allclose(
            row_normal_draws(torch.asarray(Xd), 123, 4, 3).numpy(),
            row_normal_draws(Xd, 123, 4, 3),
            rtol=1e-15,
            atol=1e-15,
        )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_calls_on_tensors_reuse_the_built_network(monkeypatch):
    from skebm._neural import NeuralFitMixin

    X, y = _data()
    Xt = torch.asarray(X)
    with sklearn.config_context(array_api_dispatch=True):
        est = _langevin().fit(Xt, torch.asarray(y))
    loaded = pickle.loads(pickle.dumps(est))  # no network built yet
    build = NeuralFitMixin._build_module
    builds = []

    def counting(self, *args):
        builds.append(type(self).__name__)
        return build(self, *args)

    monkeypatch.setattr(NeuralFitMixin, "_build_module", counting)
    with sklearn.config_context(array_api_dispatch=True):
        for _ in range(3):
            est.predict_proba(Xt)
        assert builds == []  # the fit's network serves the per-call copies
        for _ in range(3):
            loaded.predict_proba(X)  # a NumPy model: no copy
        assert len(builds) == 1
    est.predict_proba(X)  # without dispatch: a copy with NumPy attributes
    assert len(builds) == 1


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_calls_under_dispatch_never_write_the_estimator():
    """The network runs mid-call: the estimator must look as it did before."""
    from torch import nn

    X, y = _data()
    Xt = torch.asarray(X)
    seen = []

    class Probe(nn.Module):
        def __init__(self, n_features, n_classes):
            super().__init__()
            self.linear = nn.Linear(n_features, n_classes)

        def forward(self, x):
            seen.append({k: id(v) for k, v in vars(est).items()})
            return self.linear(x)

    est = _langevin().set_params(module=Probe)
    with sklearn.config_context(array_api_dispatch=True):
        est.fit(Xt, torch.asarray(y))
        before = {k: id(v) for k, v in vars(est).items()}
        seen.clear()
        est.predict_proba(Xt)
        est.score_samples(Xt)
        est.sample(2, random_state=0)
    est.predict(X)  # a model fitted on tensors, called without dispatch
    assert seen and all(state == before for state in seen)
    assert {k: id(v) for k, v in vars(est).items()} == before


def _fitted_on_tensors():
    X, y = _data(n=40, d=16)
    with sklearn.config_context(array_api_dispatch=True):
        Xt, yt = torch.asarray(X), torch.asarray(y)
        yield RBM(n_components=3, n_iter=3, random_state=0).fit(Xt), "transform", X
        hopfield = HopfieldMemory(rule="modern", random_state=0).fit(Xt[:4])
        yield hopfield, "predict_proba", X
        yield _langevin().fit(Xt, yt), "predict_proba", X
        vae = VAETransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=3)
        yield vae.set_params(random_state=0).fit(Xt), "transform", X


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "est, method, X", list(_fitted_on_tensors()), ids=lambda v: type(v).__name__
)
def test_threads_with_and_without_dispatch_share_one_estimator(est, method, X):
    """Half the threads call with NumPy and no dispatch, half with tensors under
    dispatch (``config_context`` is thread-local), on one fitted estimator."""
    expected = getattr(est, method)(X)
    with sklearn.config_context(array_api_dispatch=True):
        expected_t = getattr(est, method)(torch.asarray(X)).numpy()
    barrier = threading.Barrier(8)
    errors, results = [], []

    def work(i):
        try:
            barrier.wait()
            for _ in range(10):
                if i % 2:
                    with sklearn.config_context(array_api_dispatch=True):
                        out = getattr(est, method)(torch.asarray(X)).numpy()
                    results.append((expected_t, out))
                else:
                    results.append((expected, getattr(est, method)(X)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(results) == 80
    for reference, out in results:
        assert isinstance(out, np.ndarray)
        np.testing.assert_array_equal(out, reference)
