"""Persistence: pickle, joblib and skops round trips, CUDA -> CPU, version warnings.

Every estimator keeps its fitted state as NumPy arrays (CONTRIBUTING.md,
convention 9): a pickle holds no torch object, a skops file needs no type trusted
but the estimator's own class, and a model fitted on a GPU loads where there is none.
"""

import io
import pathlib
import pickle
import re
import warnings

import joblib
import numpy as np
import pytest
from sklearn.base import clone

import skebm
from skebm import RBM, HopfieldMemory, LangevinEBMClassifier, VAETransformer
from skebm.base import InconsistentVersionWarning
from tests.conftest import BACKENDS, HAS_TORCH, requires_torch

sio = pytest.importorskip("skops.io")

#: the types ``skops.io.load`` must be told to trust: the estimator class only
#: (documented in docs/persistence.rst; keep the two in sync)
TRUSTED_TYPES = {
    RBM: ["skebm._rbm.RBM"],
    HopfieldMemory: ["skebm._hopfield.HopfieldMemory"],
    LangevinEBMClassifier: ["skebm._langevin.LangevinEBMClassifier"],
    VAETransformer: ["skebm._vae.VAETransformer"],
}

#: methods compared between an estimator and its loaded copy (where it has them)
METHODS = (
    "transform",
    "predict",
    "predict_proba",
    "score_samples",
    "energy",
    "free_energy",
    "inverse_transform",
)


def _data():
    rng = np.random.RandomState(0)
    X = (rng.rand(40, 6) > 0.5).astype(np.float64)
    y = np.where(X[:, 0] + X[:, 1] > 0, "a", "b")
    return X, y


def _variants():
    """(id, estimator, needs y) for every estimator and backend."""
    for backend in BACKENDS:
        yield f"rbm-{backend}", RBM(n_components=3, n_iter=2, backend=backend), False
        yield (
            f"rbm-gaussian-{backend}",
            RBM(
                n_components=3,
                n_iter=2,
                visible="gaussian",
                learning_rate=0.01,
                momentum=0.5,
                backend=backend,
            ),
            False,
        )
        for rule in ("hebbian", "modern"):
            est = HopfieldMemory(rule, max_iter=20, backend=backend)
            yield f"hopfield-{rule}-{backend}", est, False
    if HAS_TORCH:
        yield (
            "langevin",
            LangevinEBMClassifier(
                hidden_layer_sizes=(4,), max_iter=2, sgld_steps=2, buffer_size=20
            ),
            True,
        )
        yield (
            "vae",
            VAETransformer(n_components=2, hidden_layer_sizes=(4,), max_iter=2),
            False,
        )
        yield (
            "cvae",
            VAETransformer(
                n_components=2, hidden_layer_sizes=(4,), max_iter=2, conditional=True
            ),
            True,
        )


VARIANTS = {name: (est, needs_y) for name, est, needs_y in _variants()}


@pytest.fixture(scope="module", params=list(VARIANTS))
def fitted(request):
    est, needs_y = VARIANTS[request.param]
    X, y = _data()
    est = clone(est).set_params(random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence / capacity: irrelevant here
        est.fit(X, y if needs_y else None)
    est.score_samples(X)  # fills the RBM's log Z cache, which is pickled too
    return est


def _assert_same_outputs(est, loaded):
    X, _ = _data()
    for name in METHODS:
        if not hasattr(est, name):
            continue
        arg = est.transform(X) if name == "inverse_transform" else X
        np.testing.assert_array_equal(
            getattr(loaded, name)(arg), getattr(est, name)(arg), err_msg=name
        )
    np.testing.assert_array_equal(
        loaded.sample(3, random_state=0), est.sample(3, random_state=0)
    )
    # the fitted random_state_ travels too: samples drawn from it agree
    np.testing.assert_array_equal(loaded.sample(2), est.sample(2))


class _NoTorchUnpickler(pickle.Unpickler):
    """Loads a pickle only if it needs no torch class or function."""

    def find_class(self, module, name):
        assert module.split(".")[0] != "torch", f"pickle needs {module}.{name}"
        return super().find_class(module, name)


def _torch_objects(obj, path="state"):
    """Paths of every torch object inside a (nested) state."""
    if type(obj).__module__.split(".")[0] == "torch":
        return [path]
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list | tuple):
        items = enumerate(obj)
    else:
        return []
    return [p for k, v in items for p in _torch_objects(v, f"{path}[{k!r}]")]


# -- pickle and joblib -----------------------------------------------------------------


def test_pickle_round_trip(fitted):
    blob = pickle.dumps(fitted)
    _assert_same_outputs(fitted, _NoTorchUnpickler(io.BytesIO(blob)).load())


def test_joblib_round_trip(fitted, tmp_path):
    path = tmp_path / "model.joblib"
    joblib.dump(fitted, path)
    _assert_same_outputs(fitted, joblib.load(path))


def test_state_holds_no_torch_objects(fitted):
    state = fitted.__getstate__()
    assert _torch_objects(state) == []
    assert state["_skebm_version"] == skebm.__version__
    if isinstance(fitted, LangevinEBMClassifier | VAETransformer):
        assert isinstance(state["_dtype"], str)
        assert {"_net_state", "_optim_state"} <= set(state)
        assert "_net_device" not in state


def test_pickling_leaves_the_estimator_usable(fitted):
    before = fitted.transform(_data()[0]) if hasattr(fitted, "transform") else None
    pickle.dumps(fitted)
    if before is not None:
        np.testing.assert_array_equal(fitted.transform(_data()[0]), before)


# -- CUDA -> CPU -------------------------------------------------------------------------


@requires_torch
@pytest.mark.parametrize("name", [n for n in VARIANTS if "numpy" not in n])
def test_model_fitted_on_cuda_loads_without_cuda(name, monkeypatch):
    """Simulated on the CPU: the pickled state claims CUDA, the loader has none."""
    import torch

    est, needs_y = VARIANTS[name]
    X, y = _data()
    est = clone(est).set_params(random_state=0, device="auto")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y if needs_y else None)
    expected = est.score_samples(X)
    state = est.__getstate__()
    assert _torch_objects(state) == []
    blob = pickle.dumps(est)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = pickle.loads(blob)
    assert loaded.device == "auto"
    np.testing.assert_array_equal(loaded.score_samples(X), expected)

    # an explicit device="cuda" fails with an error that says what to change
    loaded.set_params(device="cuda")
    with pytest.raises(ValueError, match="no CUDA device is available"):
        loaded.score_samples(X)
    loaded.set_params(device="cpu")
    np.testing.assert_array_equal(loaded.score_samples(X), expected)


def test_skebm_never_calls_unsafe_torch_load():
    root = pathlib.Path(skebm.__file__).parent
    for path in root.rglob("*.py"):
        for call in re.findall(r"torch\.load\(([^)]*)\)", path.read_text()):
            assert "weights_only=True" in call, f"{path}: torch.load({call})"


# -- skops -----------------------------------------------------------------------------


def test_skops_round_trip_trusts_only_the_estimator(fitted, tmp_path):
    path = tmp_path / "model.skops"
    sio.dump(fitted, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert untrusted == TRUSTED_TYPES[type(fitted)]
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.load(path)
    loaded = sio.load(path, trusted=TRUSTED_TYPES[type(fitted)])
    _assert_same_outputs(fitted, loaded)


@requires_torch
def test_skops_loaded_neural_model_keeps_training():
    est, needs_y = VARIANTS["langevin"]
    X, y = _data()
    est = clone(est).set_params(random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
        loaded = sio.loads(sio.dumps(est), trusted=TRUSTED_TYPES[type(est)])
        before = est.predict_proba(X)
        loaded.partial_fit(X, y)
        est.partial_fit(X, y)
    # the network and Adam state travel; the replay buffer does not (the loaded
    # model draws new SGLD chains), so the two updates agree closely, not exactly
    assert not np.allclose(est.predict_proba(X), before)
    np.testing.assert_allclose(loaded.predict_proba(X), est.predict_proba(X), atol=1e-3)


# -- version mismatch --------------------------------------------------------------------


def test_round_trip_does_not_warn(fitted):
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        pickle.loads(pickle.dumps(fitted))


@pytest.mark.parametrize(
    "key, library", [("_skebm_version", "skebm"), ("_sklearn_version", "scikit-learn")]
)
def test_version_mismatch_warns(fitted, key, library):
    state = fitted.__getstate__()
    state[key] = "0.0.1"
    loaded = type(fitted).__new__(type(fitted))
    with pytest.warns(InconsistentVersionWarning, match=f"{library} version 0.0.1"):
        loaded.__setstate__(state)  # what pickle.loads does
    assert key not in vars(loaded)
    X, _ = _data()
    np.testing.assert_array_equal(loaded.score_samples(X), fitted.score_samples(X))


def test_version_mismatch_warns_through_pickle_and_skops(fitted, monkeypatch):
    from sklearn.exceptions import InconsistentVersionWarning as SklearnWarning

    with monkeypatch.context() as m:
        m.setattr(skebm._version, "__version__", "0.0.1")
        blob, skops_blob = pickle.dumps(fitted), sio.dumps(fitted)
    # a subclass of scikit-learn's warning: its filters apply
    with pytest.warns(SklearnWarning, match="skebm version 0.0.1"):
        pickle.loads(blob)
    with pytest.warns(InconsistentVersionWarning, match="skebm version 0.0.1"):
        sio.loads(skops_blob, trusted=TRUSTED_TYPES[type(fitted)])


def test_pickle_without_version_warns():
    X, _ = _data()
    est = HopfieldMemory("modern", max_iter=5).fit(X[:2])
    state = est.__getstate__()
    del state["_skebm_version"], state["_sklearn_version"]
    loaded = HopfieldMemory.__new__(HopfieldMemory)
    with pytest.warns(InconsistentVersionWarning, match="version unknown"):
        loaded.__setstate__(state)


def test_docs_list_the_trusted_types():
    docs = pathlib.Path(__file__).parents[1] / "docs" / "persistence.rst"
    if not docs.exists():
        pytest.skip("docs not in this checkout")
    text = docs.read_text()
    for names in TRUSTED_TYPES.values():
        for name in names:
            assert name in text


def test_unfitted_estimators_round_trip():
    for est, _ in VARIANTS.values():
        est = clone(est)
        assert pickle.loads(pickle.dumps(est)).get_params() == est.get_params()
        loaded = sio.loads(sio.dumps(est), trusted=TRUSTED_TYPES[type(est)])
        assert loaded.get_params() == est.get_params()
