"""NumPy and torch compute the same deterministic quantities (float64, 1e-5)."""

import numpy as np
import pytest

from tests.conftest import requires_torch

pytestmark = requires_torch


@pytest.fixture
def pair():
    from skebm import RBM

    rng = np.random.default_rng(0)
    X = (rng.random((40, 9)) < 0.4).astype(float)
    models = {
        b: RBM(n_components=6, n_iter=0, backend=b, random_state=0).fit(X)
        for b in ("numpy", "torch")
    }
    W, bv, c = rng.normal(0, 1, (6, 9)), rng.normal(0, 1, 9), rng.normal(0, 1, 6)
    for m in models.values():
        m.components_, m.intercept_visible_, m.intercept_hidden_ = (
            W.copy(),
            bv.copy(),
            c.copy(),
        )
    return models, X


@pytest.mark.parametrize(
    "method", ["transform", "free_energy", "score_samples", "pseudo_likelihood"]
)
def test_rbm_methods_agree(pair, method):
    models, X = pair
    np.testing.assert_allclose(
        getattr(models["numpy"], method)(X),
        getattr(models["torch"], method)(X),
        rtol=1e-5,
        atol=1e-5,
    )


def test_rbm_inverse_transform_and_log_partition_agree(pair):
    models, X = pair
    H = models["numpy"].transform(X)
    np.testing.assert_allclose(
        models["numpy"].inverse_transform(H),
        models["torch"].inverse_transform(H),
        atol=1e-5,
    )
    assert models["numpy"].log_partition("exact") == pytest.approx(
        models["torch"].log_partition("exact"), abs=1e-5
    )


@pytest.mark.parametrize(
    "name",
    [
        "mean_hiddens",
        "mean_visibles",
        "free_energy",
        "gradients",
        "log_partition_exact",
        "pseudo_likelihood",
    ],
)
def test_rbm_kernels_agree(name):
    """Each kernel, called with the same arrays, on both backends."""
    from skebm._backends import get_backend

    rng = np.random.default_rng(1)
    W, b, c = rng.normal(0, 1, (5, 7)), rng.normal(0, 1, 7), rng.normal(0, 1, 5)
    v = (rng.random((8, 7)) < 0.5).astype(float)
    h = rng.random((8, 5))
    args = {
        "mean_hiddens": (v, W, c),
        "free_energy": (v, W, b, c, "bernoulli"),
        "gradients": (v, h, 3, rng.random(7), rng.random(5)),
        "log_partition_exact": (W, b, c, "gaussian"),
        "mean_visibles": (h, W, b, "bernoulli"),
        "pseudo_likelihood": (v, np.arange(8) % 7, W, b, c, "bernoulli"),
    }[name]
    out = {}
    for backend in ("numpy", "torch"):
        ops = get_backend(backend)
        conv = [
            ops.core.asarray(a, np.float64) if isinstance(a, np.ndarray) else a
            for a in args
        ]
        res = getattr(ops.rbm, name)(*conv)
        res = res if isinstance(res, tuple) else (res,)
        out[backend] = [
            np.asarray(ops.core.to_numpy(r) if hasattr(r, "shape") else r) for r in res
        ]
    for a, t in zip(out["numpy"], out["torch"], strict=True):
        np.testing.assert_allclose(a, t, rtol=1e-5, atol=1e-5)


def test_primitives_share_names_and_signatures():
    """Both backends expose the same primitives, with the same signatures."""
    import inspect

    from skebm._backends import get_backend

    def interface(module):
        return {
            name: inspect.signature(fn)
            for name, fn in vars(module).items()
            if inspect.isfunction(fn)
            and fn.__module__ == module.__name__
            and not name.startswith("_")
        }

    np_api, torch_api = (
        interface(get_backend(b).primitives) for b in ("numpy", "torch")
    )
    assert set(np_api) == set(torch_api)
    for name, sig in np_api.items():
        assert list(sig.parameters) == list(torch_api[name].parameters), name


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "logsumexp"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_primitives_agree(name, dtype):
    """Each special function, on the same values (extremes included), agrees."""
    from skebm._backends import get_backend

    x = np.concatenate([np.linspace(-800, 800, 41), [-30.0, -1e-3, 0.0, 1e-3, 30.0]])
    x = x.astype(dtype).reshape(2, -1)
    out = {}
    for backend in ("numpy", "torch"):
        ops = get_backend(backend)
        res = getattr(ops.primitives, name)(ops.core.asarray(x.copy(), dtype))
        out[backend] = np.asarray(
            ops.core.to_numpy(res) if hasattr(res, "shape") else res
        )
    assert out["numpy"].dtype == out["torch"].dtype
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    tiny = np.finfo(dtype).tiny  # subnormal results may differ in the last bit
    np.testing.assert_allclose(out["numpy"], out["torch"], rtol=rtol, atol=tiny)


@pytest.mark.parametrize("name", ["bernoulli", "standard_normal"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_primitives_agree_in_distribution(name, dtype):
    """Random draws: same shape and dtype, and the same mean and variance."""
    from skebm._backends import get_backend

    p = np.linspace(0.0, 1.0, 20_000, dtype=dtype).reshape(100, 200)
    moments = {}
    for backend in ("numpy", "torch"):
        ops = get_backend(backend)
        draw = getattr(ops.primitives, name)(
            ops.core.asarray(p, dtype), ops.core.make_rng(0)
        )
        out = ops.core.to_numpy(draw)
        assert out.shape == p.shape and out.dtype == dtype
        if name == "bernoulli":
            assert set(np.unique(out)) <= {0.0, 1.0}
            assert (out[p == 0] == 0).all() and (out[p == 1] == 1).all()
        moments[backend] = (out.mean(), out.var())
    # 20000 draws: standard error of the mean below 0.01
    np.testing.assert_allclose(moments["numpy"], moments["torch"], atol=0.03)
    if name == "standard_normal":
        np.testing.assert_allclose(moments["numpy"], (0.0, 1.0), atol=0.03)
    else:
        np.testing.assert_allclose(moments["numpy"][0], 0.5, atol=0.01)
