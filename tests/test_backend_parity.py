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
    "name", ["mean_hiddens", "free_energy", "gradients", "log_partition_exact"]
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
