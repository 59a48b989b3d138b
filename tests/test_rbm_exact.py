"""The RBM against exact answers: brute-force enumeration written independently here.

Nothing in this file calls the implementation to produce the expected value: log Z,
log p(v), model expectations and gradients are computed from the energy
E(v, h) = E_vis(v) - c.h - h^T W v by summing (or numerically integrating) over
states.
"""

import itertools

import numpy as np
import pytest
from scipy.special import logsumexp

from skebm import RBM
from skebm._backends import get_backend


def states(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def joint_log_weights(V, H, W, b, c):
    """-E(v, h) for every pair of binary states (Bernoulli visible units)."""
    return V @ b[:, None] + (H @ c)[None, :] + V @ W.T @ H.T


def brute_log_p_bernoulli(X, W, b, c):
    n_h, n_v = W.shape
    V, H = states(n_v), states(n_h)
    log_z = logsumexp(joint_log_weights(V, H, W, b, c))
    return logsumexp(joint_log_weights(X, H, W, b, c), axis=1) - log_z


def brute_log_p_gaussian(X, W, b, c, half_width=12.0, step=0.03):
    """log p(x) for 2 Gaussian visible units, log Z by a Riemann sum over a grid."""
    n_h, n_v = W.shape
    assert n_v == 2
    H = states(n_h)
    g = np.arange(-half_width, half_width, step)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)

    def neg_energy(Vs):  # (n, n_h_states)
        return (
            (-0.5 * ((Vs - b) ** 2).sum(1))[:, None] + (H @ c)[None, :] + Vs @ W.T @ H.T
        )

    log_z = logsumexp(neg_energy(grid)) + 2 * np.log(step)
    return logsumexp(neg_energy(X), axis=1) - log_z


def random_params(rng, n_h, n_v, scale=1.0):
    return (
        rng.normal(0, scale, (n_h, n_v)),
        rng.normal(0, scale, n_v),
        rng.normal(0, scale, n_h),
    )


def rbm_with(params, backend, visible="bernoulli", **kwargs):
    """An RBM whose parameters are set to ``params`` (W, b, c)."""
    W, b, c = params
    n_h, n_v = W.shape
    X0 = np.zeros((2, n_v))
    rbm = RBM(n_components=n_h, n_iter=0, visible=visible, backend=backend, **kwargs)
    rbm.fit(X0)
    rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_ = (
        W.copy(),
        b.copy(),
        c.copy(),
    )
    return rbm


@pytest.mark.parametrize("n_h, n_v", [(3, 5), (6, 3)])  # enumerate h, then v
def test_score_samples_bernoulli_matches_enumeration(backend, n_h, n_v):
    rng = np.random.default_rng(0)
    params = random_params(rng, n_h, n_v)
    rbm = rbm_with(params, backend)
    X = states(n_v)
    expected = brute_log_p_bernoulli(X, *params)
    np.testing.assert_allclose(rbm.score_samples(X), expected, atol=1e-10)
    # a distribution: probabilities of all states sum to one
    np.testing.assert_allclose(np.exp(expected).sum(), 1.0)
    assert rbm.score(X) == pytest.approx(expected.mean())


def test_score_samples_gaussian_matches_integration(backend):
    rng = np.random.default_rng(1)
    params = random_params(rng, 3, 2, scale=0.7)
    rbm = rbm_with(params, backend, visible="gaussian")
    X = rng.normal(0, 1.5, (7, 2))
    np.testing.assert_allclose(
        rbm.score_samples(X), brute_log_p_gaussian(X, *params), atol=1e-6
    )


def test_free_energy_is_log_sum_over_hidden(backend):
    rng = np.random.default_rng(2)
    params = random_params(rng, 4, 3)
    rbm = rbm_with(params, backend)
    X = states(3)
    expected = -logsumexp(joint_log_weights(X, states(4), *params), axis=1)
    np.testing.assert_allclose(rbm.free_energy(X), expected, atol=1e-10)
    np.testing.assert_allclose(rbm.energy(X), expected, atol=1e-10)


def test_ais_log_partition_close_to_exact(backend):
    """Above the exact threshold (21 hidden, 22 visible units) AIS is within 0.3 nats."""
    rng = np.random.default_rng(0)
    protos = rng.random((5, 22)) < 0.5
    X = np.repeat(protos, 100, axis=0).astype(float)
    X = np.abs(X - (rng.random(X.shape) < 0.05))
    rbm = RBM(
        n_components=21, n_iter=20, learning_rate=0.05, random_state=0, backend=backend
    ).fit(X)
    W, b, c = rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_
    parts = []
    for start in range(0, 1 << 21, 1 << 16):
        h = states_slice(21, start, start + (1 << 16))
        parts.append(logsumexp(h @ c + np.logaddexp(0, h @ W + b).sum(1)))
    exact = logsumexp(parts)
    ais = rbm.log_partition()  # "auto" -> AIS: both layers exceed 20 units
    assert abs(ais - exact) < 0.3
    assert rbm.log_partition(method="ais") == ais  # cached, deterministic
    assert rbm.log_partition() == ais


def states_slice(n, start, stop):
    codes = np.arange(start, stop)[:, None]
    return ((codes >> np.arange(n)) & 1).astype(float)


def test_ais_is_deterministic_given_random_state():
    rng = np.random.default_rng(3)
    X = (rng.random((50, 24)) < 0.4).astype(float)
    z = [
        RBM(n_components=24, n_iter=2, random_state=7).fit(X).log_partition("ais")
        for _ in range(2)
    ]
    assert z[0] == z[1]


def test_exact_log_partition_gaussian_small():
    rng = np.random.default_rng(4)
    params = random_params(rng, 3, 2, scale=0.5)
    rbm = rbm_with(params, "numpy", visible="gaussian")
    # log p integrates to 1 over the plane
    g = np.arange(-12, 12, 0.03)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    with pytest.warns(UserWarning, match="far from the unit scale"):  # the grid is
        log_p = rbm.score_samples(grid)
    total = np.exp(logsumexp(log_p) + 2 * np.log(0.03))
    assert total == pytest.approx(1.0, abs=1e-6)


# -- the training step follows the exact gradient ---------------------------------------


def exact_expectations(W, b, c, X, mu, lam):
    """Data and model expectations of (h - lam)(v - mu)^T, v and h, by enumeration."""
    n_h, n_v = W.shape
    V = states(n_v)
    ph_data = 1 / (1 + np.exp(-(X @ W.T + c)))
    data = ((ph_data - lam).T @ (X - mu) / len(X), X.mean(0), ph_data.mean(0))
    p_v = np.exp(brute_log_p_bernoulli(V, W, b, c))
    ph_model = 1 / (1 + np.exp(-(V @ W.T + c)))
    model = (
        ((ph_model - lam) * p_v[:, None]).T @ (V - mu),
        p_v @ V,
        p_v @ ph_model,
    )
    return data, model


@pytest.mark.parametrize("centered", [False, True])
def test_pcd_step_follows_exact_gradient(backend, centered):
    """CD-infinity: with 20000 long-run chains one step of train_step moves the
    parameters along the exact log-likelihood gradient, within Monte Carlo error.

    Centred: the step is the centred gradient, mapped back to the plain parameters
    by b = b_c - W^T lam, c = c_c - W mu.
    """
    ops = get_backend(backend)
    rng = np.random.default_rng(5)
    n_h, n_v, n_chains = 3, 4, 20000
    W, b, c = random_params(rng, n_h, n_v, scale=0.8)
    X = (rng.random((6, n_v)) < 0.5).astype(float)
    mu = X.mean(0) if centered else np.zeros(n_v)
    lam = np.full(n_h, 0.4) if centered else np.zeros(n_h)
    (dW_d, db_d, dc_d), (dW_m, db_m, dc_m) = exact_expectations(W, b, c, X, mu, lam)
    dW, db, dc = dW_d - dW_m, db_d - db_m, dc_d - dc_m

    brng = ops.core.make_rng(0)
    as_b = lambda a: ops.core.asarray(np.array(a), np.float64)  # noqa: E731 (a copy)
    # burn the chains in with a long run at fixed parameters
    h0 = as_b((rng.random((n_chains, n_h)) < 0.5).astype(float))
    v = ops.rbm.negative_phase(h0, as_b(W), as_b(b), as_b(c), "bernoulli", 200, brng)
    chains = ops.primitives.bernoulli(ops.rbm.mean_hiddens(v, as_b(W), as_b(c)), brng)
    params = {
        "W": as_b(W),
        "b": as_b(b),
        "c": as_b(c),
        "chains": chains,
        "vW": as_b(np.zeros_like(W)),
        "vb": as_b(np.zeros(n_v)),
        "vc": as_b(np.zeros(n_h)),
        "mu": as_b(mu),
        "lam": as_b(lam),
    }
    lr = 1e-3
    ops.rbm.train_step(
        params,
        as_b(X),
        visible="bernoulli",
        k=5,
        persistent=True,
        lr=lr,
        momentum=0.0,
        weight_decay=0.0,
        offset_rate=1e-12 if centered else 0.0,
        rng=brng,
    )
    step_W = (ops.core.to_numpy(params["W"]) - W) / lr
    step_b = (ops.core.to_numpy(params["b"]) - b) / lr
    step_c = (ops.core.to_numpy(params["c"]) - c) / lr
    # Monte Carlo standard error of a mean of n_chains terms bounded by 1: <= 0.5/141
    tol = 5 * 0.5 / np.sqrt(n_chains)
    np.testing.assert_allclose(step_W, dW, atol=tol)
    np.testing.assert_allclose(step_b, db - lam @ dW, atol=2 * tol)
    np.testing.assert_allclose(step_c, dc - dW @ mu, atol=2 * tol)
    # and the test can tell the two rules apart: the centred weight step differs
    # from the plain gradient by far more than the tolerance
    if centered:
        zeros_v, zeros_h = np.zeros(n_v), np.zeros(n_h)
        (pW_d, _, _), (pW_m, _, _) = exact_expectations(W, b, c, X, zeros_v, zeros_h)
        assert np.abs(step_W - (pW_d - pW_m)).max() > 5 * tol


def test_sampler_reproduces_exact_distribution(backend):
    """Long Gibbs chains visit states with the exact model probabilities."""
    rng = np.random.default_rng(6)
    params = random_params(rng, 3, 4, scale=1.0)
    rbm = rbm_with(params, backend, random_state=0)
    S = rbm.sample(20000, n_steps=30)
    assert set(np.unique(S)) <= {0.0, 1.0}
    codes = (S @ (2 ** np.arange(4))).astype(int)
    freq = np.bincount(codes, minlength=16) / len(S)
    V = states(4)[:, ::-1]  # itertools order is big-endian; codes are little-endian
    p = np.exp(brute_log_p_bernoulli(V, *params))
    order = (V @ (2 ** np.arange(4))).astype(int)
    expected = np.empty(16)
    expected[order] = p
    assert 0.5 * np.abs(freq - expected).sum() < 0.02  # total variation
