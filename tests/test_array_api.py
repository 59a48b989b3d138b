"""Array API dispatch: any namespace in, the same namespace and device out.

scikit-learn's own checks (``check_array_api_input`` and friends) run over every
estimator with the ``array_api_support`` tag in ``tests/test_common.py``; these tests
cover what they do not: every public method, a whole pipeline, persistence and
the behaviour without dispatch. ``tests/conftest.py`` sets ``SCIPY_ARRAY_API=1``.
"""

import io
import pickle

import numpy as np
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skebm import RBM, VAETransformer
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


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("estimator", list(_estimators()), ids=repr)
def test_pickle_of_a_tensor_fit_holds_no_torch(estimator):
    X, _ = _data()
    with sklearn.config_context(array_api_dispatch=True):
        est = sklearn.clone(estimator).fit(torch.asarray(X))
        expected = est.transform(torch.asarray(X)).numpy()
    unpickler = _RecordingUnpickler(io.BytesIO(pickle.dumps(est)))
    loaded = unpickler.load()
    assert not {m for m in unpickler.modules if m.split(".")[0] == "torch"}
    # the estimator itself is untouched by pickling
    assert any(isinstance(v, torch.Tensor) for v in vars(est).values())
    assert not any(isinstance(v, torch.Tensor) for v in vars(loaded).values())
    np.testing.assert_allclose(loaded.transform(X), expected, rtol=1e-6)


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
