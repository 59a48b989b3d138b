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


def _both(fn):
    """fn(backend package) on each backend, its arrays as NumPy."""
    from skebm._backends import get_backend

    out = {}
    for backend in ("numpy", "torch"):
        be = get_backend(backend)
        res = fn(be)
        out[backend] = be.core.to_numpy(res) if hasattr(res, "shape") else res
    return out


_X = np.random.default_rng(2).normal(0, 30, (6, 9))
_SPINS = np.random.default_rng(3).choice([-1.0, 1.0], size=(12, 300))


@pytest.mark.parametrize(
    "name, call",
    [
        ("logsumexp", lambda be, a: be.primitives.logsumexp(a(_X), axis=1)),
        ("softmax", lambda be, a: be.primitives.softmax(a(_X))),
        ("expit", lambda be, a: be.primitives.expit(a(_X))),
        (
            "fill_diagonal",
            lambda be, a: be.primitives.fill_diagonal(a(_X[:6, :6]), 0.5),
        ),
        ("sign_inplace", lambda be, a: be.primitives.sign_inplace(a(np.round(_X)))),
        (
            "matmul_into",
            lambda be, a: be.primitives.matmul_into(
                a(_X), a(_X.T), a(np.empty((6, 6)))
            ),
        ),
        ("from_mask", lambda be, a: be.primitives.from_mask(a(_X) > 0, np.float32)),
        (
            "float64_bits",
            lambda be, a: be.primitives.float64_bits(a(_X[:3])),
        ),
        (
            "take_into",
            lambda be, a: be.primitives.take_into(
                a(_X), be.core.asarray(np.array([2, 0, 2, 5]), np.int64), a(_X[:4] * 0)
            ),
        ),
        (
            "spin_overlaps",
            lambda be, a: be.primitives.spin_overlaps(
                be.primitives.from_mask(
                    a(_SPINS[:4]) > 0, be.primitives.overlap_dtype(300, a(_SPINS))
                )
                * 2
                - 1,
                a(_SPINS),
            ),
        ),
    ],
)
def test_deterministic_primitives_agree(name, call):
    """Each array primitive, on the same float64 arrays, agrees between backends."""
    out = _both(lambda be: call(be, lambda x: be.core.asarray(x.copy(), np.float64)))
    if name in ("fill_diagonal", "sign_inplace", "from_mask", "spin_overlaps"):
        np.testing.assert_array_equal(out["numpy"], out["torch"])
    if name == "float64_bits":
        np.testing.assert_array_equal(out["numpy"], _X[:3].view(np.int64))
    if name == "take_into":
        np.testing.assert_array_equal(out["numpy"], _X[[2, 0, 2, 5]])
    else:
        np.testing.assert_allclose(out["numpy"], out["torch"], rtol=1e-12, atol=1e-300)
    if name == "spin_overlaps":
        np.testing.assert_array_equal(out["numpy"], _SPINS[:4] @ _SPINS.T)


def test_spin_dtypes():
    """NumPy's overlap dtype is its spin dtype, float32; torch's is float32 or int8."""
    from skebm._backends import get_backend

    prims = get_backend("numpy").primitives
    like = np.zeros((2, 3))
    assert prims.overlap_dtype(300, like) == prims.spin_dtype(300, like) == np.float32
    assert prims.spin_dtype(2**24, like) is None
    torch_prims = get_backend("torch").primitives
    like = get_backend("torch").core.asarray(like, np.float64)
    assert str(torch_prims.spin_dtype(300, like)) == "torch.float32"
    assert str(torch_prims.overlap_dtype(300, like)) in ("torch.float32", "torch.int8")


@pytest.mark.parametrize("name", ["uniform", "normal"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_and_normal_agree_in_distribution(name, dtype):
    """Draws in the dtype of ``like``, with the mean and variance of U(0, 1) or N(0, 1)."""

    def draw(be):
        like = be.core.asarray(np.zeros(1), dtype)
        out = getattr(be.primitives, name)((100, 200), like, be.core.make_rng(0))
        assert be.core.to_numpy(out).dtype == dtype
        return out

    expected = (0.5, 1 / 12) if name == "uniform" else (0.0, 1.0)
    for out in _both(draw).values():
        assert out.shape == (100, 200)
        np.testing.assert_allclose((out.mean(), out.var()), expected, atol=0.03)
        if name == "uniform":
            assert 0.0 <= out.min() and out.max() < 1.0


def test_index_draws_agree_in_distribution():
    """permutation is a permutation; categorical (per row) and choice (with weights)
    draw indices with the given probabilities."""
    w = np.array([1.0, 3.0, 0.0, 4.0])
    p = np.broadcast_to(w / w.sum(), (20_000, 4)).copy()

    def draw(be):
        rng = be.core.make_rng(0)
        perm = be.primitives.permutation(50, rng)
        assert isinstance(perm, list) and sorted(perm) == list(range(50))
        rows = be.primitives.categorical(be.core.asarray(p, np.float64), rng)
        picks = be.primitives.choice(be.core.asarray(w, np.float64), 20_000, rng)
        rows, picks = be.core.to_numpy(rows), be.core.to_numpy(picks)
        return [np.bincount(a, minlength=4) / a.size for a in (rows, picks)]

    for freqs in _both(draw).values():
        for f in freqs:
            np.testing.assert_allclose(f, w / w.sum(), atol=0.015)
