"""VAETransformer: the maths of the bound, PPCA as a special case, the API contract."""

import pickle
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from skebm import VAETransformer
from tests.conftest import HAS_TORCH
from tests.test_no_torch_import import run_without_torch

pytestmark = pytest.mark.skipif(not HAS_TORCH, reason="VAETransformer needs torch")

#: small and quick: enough to have a model, not to have a good one
SMALL = dict(n_components=3, hidden_layer_sizes=(32,), max_iter=15, random_state=0)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(
        (X / 16.0).astype(np.float32), y, test_size=0.25, random_state=0
    )


@pytest.fixture(scope="module")
def fitted(digits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return VAETransformer(**{**SMALL, "max_iter": 40}).fit(digits[0])


@pytest.fixture(scope="module")
def cvae(digits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return VAETransformer(**SMALL, conditional=True).fit(digits[0], digits[2])


def _torch_vae():
    from skebm._backends.torch import vae

    return vae


# -- the maths -----------------------------------------------------------------------


def test_kl_matches_closed_form_and_monte_carlo():
    import torch

    rng = np.random.default_rng(0)
    mu, logvar = rng.normal(size=(5, 3)), rng.normal(scale=0.5, size=(5, 3))
    ours = _torch_vae().kl_standard_normal(torch.tensor(mu), torch.tensor(logvar))
    for i in range(5):
        # general Gaussian KL with full matrices: 0.5 (tr S + m'm - d - log det S)
        S = np.diag(np.exp(logvar[i]))
        expected = 0.5 * (np.trace(S) + mu[i] @ mu[i] - 3 - np.linalg.slogdet(S)[1])
        np.testing.assert_allclose(ours[i].item(), expected, rtol=1e-12)
        # and E_q[log q - log p] by Monte Carlo
        q = stats.multivariate_normal(mu[i], S)
        z = q.rvs(200_000, random_state=rng)
        mc = q.logpdf(z) - stats.multivariate_normal(np.zeros(3)).logpdf(z)
        assert abs(mc.mean() - expected) < 4 * mc.std() / np.sqrt(len(mc))


def test_reparameterised_gradient_is_unbiased():
    """Mean of d/d(mu, logvar) log p(x | mu + sigma eps) = gradient of its expectation.

    With a linear Gaussian decoder, E_q[log N(x; Wz + b, s2 I)] has the closed form
    -(||x - W mu - b||^2 + sum_ij W_ij^2 sigma_j^2) / (2 s2) + const.
    """
    import torch

    vae = _torch_vae()
    gen = torch.Generator().manual_seed(0)
    D, d, n = 4, 2, 400_000
    W = torch.randn(D, d, generator=gen, dtype=torch.float64)
    b = torch.randn(D, generator=gen, dtype=torch.float64)
    x = torch.randn(D, generator=gen, dtype=torch.float64)
    s2_log = torch.tensor([-0.5], dtype=torch.float64)
    mu0, lv0 = torch.tensor([0.3, -0.7]), torch.tensor([-0.4, 0.2])

    mu = mu0.double().requires_grad_()
    lv = lv0.double().requires_grad_()
    eps = torch.randn(n, d, generator=gen, dtype=torch.float64)
    z = vae.reparameterize(mu, lv, eps)
    ll = vae.log_likelihood(x, z @ W.T + b, "gaussian", s2_log)
    ll.mean().backward()
    mc = torch.cat([mu.grad, lv.grad])

    mu2 = mu0.double().requires_grad_()
    lv2 = lv0.double().requires_grad_()
    resid = x - W @ mu2 - b
    exact = -(resid @ resid + (W**2 @ lv2.exp()).sum()) / (2 * s2_log.exp()) - D / 2 * (
        s2_log + np.log(2 * np.pi)
    )
    exact.sum().backward()
    analytic = torch.cat([mu2.grad, lv2.grad])
    # per-sample gradients have O(1) spread: 400k samples give ~2e-3 standard error
    np.testing.assert_allclose(mc.numpy(), analytic.numpy(), atol=1.5e-2)
    assert not np.allclose(analytic.numpy(), 0)


def test_importance_bound_is_ordered_and_stabilises(digits, fitted):
    X_test = digits[1][:200]
    L = {k: fitted.score_samples(X_test, k).mean() for k in (1, 10, 100, 1000)}
    assert L[1] <= L[10] <= L[100] <= L[1000] + 1e-3
    assert abs(L[1000] - L[100]) < abs(L[10] - L[1])
    assert abs(L[1000] - L[100]) < 0.1


def test_iwae_with_one_draw_is_the_elbo(digits):
    """L_1 with draw eps equals log p(x|z) + log p(z) - log q(z|x) at that z."""
    import torch
    from scipy.special import log_expit

    vae = _torch_vae()
    X = torch.as_tensor(digits[1][:7]).double()
    net = vae.VAE(64, 3, (8,), "tanh", "bernoulli").double()
    eps = torch.randn(
        1, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    bound = vae.iwae_bound(net, X, eps)
    mu, lv = net.encode(X)
    z = mu + torch.exp(lv / 2) * eps
    z_, mu_, lv_ = (t.detach().numpy() for t in (z, mu, lv))
    logits, x = net.decode(z).detach().numpy(), X.numpy()
    expected = (
        stats.norm.logpdf(z_).sum(1)
        - stats.norm.logpdf(z_, mu_, np.exp(lv_ / 2)).sum(1)
        + (x * log_expit(logits) + (1 - x) * log_expit(-logits)).sum(1)
    )
    np.testing.assert_allclose(bound.detach().numpy(), expected, rtol=1e-10)


def test_linear_gaussian_vae_is_probabilistic_pca():
    """On data drawn from a PPCA model, a linear Gaussian VAE reaches PCA's exact
    held-out likelihood (Tipping and Bishop's maximum-likelihood solution)."""
    rng = np.random.default_rng(0)
    D, d = 6, 2
    W = rng.normal(size=(D, d)) * np.array([3.0, 1.5])
    mean = rng.normal(size=D) * 5
    X = rng.normal(size=(3000, d)) @ W.T + mean + 0.5 * rng.normal(size=(3000, D))
    X_train, X_test = X[:2000], X[2000:]
    exact = PCA(d).fit(X_train).score(X_test)
    vae = VAETransformer(
        n_components=d,
        hidden_layer_sizes=(),
        likelihood="gaussian",
        learning_rate_init=1e-2,
        batch_size=100,
        max_iter=150,
        random_state=0,
    ).fit(X_train)
    assert vae.likelihood_ == "gaussian"
    ours = vae.score(X_test)
    assert abs(ours - exact) < 0.5
    assert ours < exact + 0.05


def test_score_samples_is_the_exact_marginal_of_a_linear_gaussian_model():
    """With linear maps, p(x) = N(x; s b + m, s^2 (W W' + v I)) in closed form (s, m
    the internal scale and centre): the IWAE estimate with large k must reach it."""
    rng = np.random.default_rng(1)
    D, d = 5, 2
    X = 10 * (rng.normal(size=(1500, d)) @ rng.normal(size=(d, D)))
    X += rng.normal(size=D) * 20 + 3 * rng.normal(size=(1500, D))
    vae = VAETransformer(
        n_components=d,
        hidden_layer_sizes=(),
        likelihood="gaussian",
        learning_rate_init=1e-2,
        max_iter=60,
        random_state=0,
    ).fit(X)
    layer = vae._net.decoder[0]
    W = layer.weight.detach().double().numpy()
    b = layer.bias.detach().double().numpy()
    v = float(np.exp(vae._net.noise_logvar().item()))
    s, m = vae._x_scale, vae._x_offset
    exact = stats.multivariate_normal(s * b + m, s**2 * (W @ W.T + v * np.eye(D)))
    X_test = X[:100]
    ours = vae.score_samples(X_test, 1000)
    diff = ours - exact.logpdf(X_test)
    assert abs(diff.mean()) < 0.01 and np.abs(diff).max() < 0.1


def test_row_draws_are_standard_normal_and_independent():
    from skebm.utils._random import row_normal_draws

    X = np.random.default_rng(0).random((4000, 3))
    eps = row_normal_draws(X, 123, 4, 2)
    assert eps.shape == (4, 4000, 2)
    assert stats.kstest(eps.ravel(), "norm").pvalue > 1e-3
    # across rows, draws and latent dimensions: uncorrelated (also in squares)
    flat = eps.transpose(1, 0, 2).reshape(4000, 8)
    for F in (flat, flat**2):
        C = np.corrcoef(F.T) - np.eye(8)
        assert np.abs(C).max() < 0.07
    assert abs(np.corrcoef(flat[:-1, 0], flat[1:, 0])[0, 1]) < 0.07
    # a row's first k draws do not depend on k, the other rows or the seed's reuse
    np.testing.assert_array_equal(row_normal_draws(X[5:9], 123, 2, 2), eps[:2, 5:9])
    assert not np.array_equal(row_normal_draws(X[:3], 124, 4, 2), eps[:, :3])


def test_gaussian_score_is_in_input_units():
    """Scaling the data by c shifts log p by -D log c (the Jacobian), nothing else."""
    X = np.random.default_rng(0).normal(size=(80, 5)) * 3 + 1
    kw = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    a = VAETransformer(**kw).fit(X)
    b = VAETransformer(**kw).fit(10 * X)
    # the draws hash the scaled rows, equal up to rounding: equal in distribution
    diff = b.score_samples(10 * X) - (a.score_samples(X) - 5 * np.log(10))
    assert abs(diff.mean()) < 0.05 and np.abs(diff).max() < 0.5
    np.testing.assert_allclose(
        b.transform(10 * X), a.transform(X), rtol=1e-6, atol=1e-9
    )
    np.testing.assert_allclose(
        b.sample(4, random_state=1, return_mean=True),
        10 * a.sample(4, random_state=1, return_mean=True),
        rtol=1e-6,
        atol=1e-8,
    )


# -- the API contract ----------------------------------------------------------------


def test_activation_names_match_the_registry():
    from skebm._backends.torch.nn import ACTIVATIONS
    from skebm._neural import ACTIVATION_NAMES

    assert set(ACTIVATIONS) == set(ACTIVATION_NAMES)


def test_fitted_attributes(fitted, digits):
    assert fitted.likelihood_ == "bernoulli"
    assert fitted.n_iter_ == len(fitted.loss_curve_) > 0
    assert fitted.n_features_in_ == 64
    assert fitted.loss_curve_[-1] < fitted.loss_curve_[0]
    assert not hasattr(fitted, "classes_")
    assert list(fitted.get_feature_names_out()) == [
        "vaetransformer0",
        "vaetransformer1",
        "vaetransformer2",
    ]
    assert fitted.sample(5, random_state=0).shape == (5, 64)
    assert set(np.unique(fitted.sample(5, random_state=0))) <= {0.0, 1.0}
    means = fitted.sample(5, return_mean=True, random_state=0)
    assert means.min() >= 0 and means.max() <= 1
    np.testing.assert_array_equal(
        means, fitted.sample(5, return_mean=True, random_state=0)
    )
    np.testing.assert_allclose(
        fitted.energy(digits[1][:5]), -fitted.score_samples(digits[1][:5])
    )


def test_transform_is_deterministic_and_batch_independent(fitted, digits):
    X = digits[1]
    Z = fitted.transform(X)
    assert Z.dtype == np.float32 and Z.shape == (len(X), 3)
    np.testing.assert_array_equal(Z, fitted.transform(X))
    np.testing.assert_allclose(Z[:7], fitted.transform(X[:7]), rtol=1e-6, atol=1e-7)
    X64 = X.astype(np.float64)
    assert fitted.transform(X64).dtype == np.float64


def test_score_samples_is_deterministic_and_row_independent(fitted, digits):
    X = digits[1][:50]
    s = fitted.score_samples(X)
    assert s.dtype == np.float64 and s.shape == (50,)
    np.testing.assert_array_equal(s, fitted.score_samples(X))
    np.testing.assert_allclose(s[::-1], fitted.score_samples(X[::-1]), rtol=1e-7)
    np.testing.assert_allclose(s[:3], fitted.score_samples(X[:3]), rtol=1e-7)
    assert fitted.score(X) == pytest.approx(s.mean())


def test_float32_model_and_float64_model(digits):
    X = digits[0][:200]
    for dtype in (np.float32, np.float64):
        vae = VAETransformer(**SMALL).fit(X.astype(dtype))
        assert vae.transform(X.astype(dtype)).dtype == dtype
        assert vae.inverse_transform(vae.transform(X.astype(dtype))).dtype == dtype
        assert vae.sample(2).dtype == dtype


def test_pickle_round_trip_holds_numpy_only(fitted, digits):
    X = digits[1][:20]
    blob = pickle.dumps(fitted)
    assert b"torch" not in blob
    clone = pickle.loads(blob)
    np.testing.assert_array_equal(clone.transform(X), fitted.transform(X))
    np.testing.assert_array_equal(clone.score_samples(X), fitted.score_samples(X))
    np.testing.assert_array_equal(
        clone.sample(3, random_state=2), fitted.sample(3, random_state=2)
    )
    # the clone keeps training from the pickled optimiser state
    clone.partial_fit(X)
    assert clone.n_iter_ == fitted.n_iter_ + 1
    assert b"torch" not in pickle.dumps(clone)


def test_inverse_transform(fitted, cvae, digits):
    X = digits[1][:10]
    rec = fitted.inverse_transform(fitted.transform(X))
    assert rec.shape == X.shape and rec.min() >= 0 and rec.max() <= 1
    with pytest.raises(ValueError, match="n_components"):
        fitted.inverse_transform(np.zeros((2, 5)))
    Z = cvae.transform(X)
    marginal = cvae.inverse_transform(Z)
    per_class = np.stack([cvae.inverse_transform(Z, y=c) for c in cvae.classes_])
    np.testing.assert_allclose(
        marginal, np.tensordot(cvae.class_prior_, per_class, axes=1), rtol=1e-5
    )


def test_conditional_model(cvae, digits):
    np.testing.assert_array_equal(cvae.classes_, np.arange(10))
    np.testing.assert_allclose(cvae.class_prior_.sum(), 1)
    assert cvae.transform(digits[1][:4]).shape == (4, 3)  # X only
    assert cvae.sample(6, y=[0, 1, 2, 3, 4, 5]).shape == (6, 64)
    assert cvae.sample(3, y=7).shape == (3, 64)
    assert cvae.sample(4).shape == (4, 64)
    assert np.isfinite(cvae.score_samples(digits[1][:5])).all()
    with pytest.raises(ValueError, match=r"labels not seen.*\[11\]"):
        cvae.sample(2, y=11)
    with pytest.raises(ValueError, match="one label per row"):
        cvae.sample(3, y=[1, 2])
    with pytest.raises(ValueError, match="requires y"):
        VAETransformer(**SMALL, conditional=True).fit(digits[0][:50])
    with pytest.raises(ValueError, match="labels not seen"):
        cvae.partial_fit(digits[0][:5], np.full(5, 42))


def test_conditional_partial_fit_takes_classes(digits):
    X, y = digits[0][:40], digits[2][:40]
    vae = VAETransformer(**SMALL, conditional=True)
    vae.partial_fit(X[y < 5], y[y < 5], classes=np.arange(10))
    np.testing.assert_array_equal(vae.classes_, np.arange(10))
    vae.partial_fit(X[y >= 5], y[y >= 5])
    assert vae.n_iter_ == 2


def test_bad_input_errors(fitted, digits):
    X = digits[0][:50]
    with pytest.raises(ValueError, match=r"outside \[0, 1\].*'gaussian'"):
        VAETransformer(**SMALL, likelihood="bernoulli").fit(X * 2)
    assert VAETransformer(**SMALL).fit(X * 2 - 0.5).likelihood_ == "gaussian"
    with pytest.warns(UserWarning, match=r"outside \[0, 1\].*clipped"):
        clipped = fitted.score_samples(X[:5] * 3 - 1)
    np.testing.assert_array_equal(
        clipped, fitted.score_samples(np.clip(X[:5] * 3 - 1, 0, 1))
    )
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        VAETransformer(**SMALL).fit(X_nan)
    with pytest.raises(ValueError, match="NaN"):
        fitted.transform(X_nan)
    with pytest.raises(ValueError, match="features"):
        fitted.transform(X[:, :10])
    X_inf = X.copy()
    X_inf[1, 3] = np.inf
    for method in (fitted.transform, fitted.score_samples, fitted.partial_fit):
        with pytest.raises(ValueError, match="infinity"):
            method(X_inf)
    for method in (fitted.score_samples, fitted.partial_fit):
        with pytest.raises(ValueError, match="features"):
            method(X[:, :10])
    with pytest.raises(ValueError, match="features|n_components|shape"):
        fitted.inverse_transform(np.zeros((2, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        VAETransformer(hidden_layer_sizes=(4, 0)).fit(X)
    with pytest.raises(ValueError, match="n_importance_samples"):
        fitted.score_samples(X, 0)


def test_partial_fit_and_warm_start(digits):
    X = digits[0][:300]
    vae = VAETransformer(**SMALL)
    assert vae.partial_fit(X) is vae
    assert vae.n_iter_ == 1 and len(vae.loss_curve_) == 1
    for _ in range(5):
        vae.partial_fit(X)
    assert vae.n_iter_ == 6 and vae.loss_curve_[-1] < vae.loss_curve_[0]
    warm = VAETransformer(
        **{**SMALL, "max_iter": 3}, warm_start=True, n_iter_no_change=50
    )
    warm.fit(X)
    warm.fit(X)
    assert warm.n_iter_ == 6


def test_early_stopping(digits):
    X = digits[0]
    vae = VAETransformer(
        **{**SMALL, "max_iter": 200},
        early_stopping=True,
        n_iter_no_change=2,
        tol=0.5,
    ).fit(X)
    assert vae.n_iter_ < 200
    assert len(vae.validation_scores_) == vae.n_iter_
    assert vae.best_validation_score_ == max(vae.validation_scores_)


def test_same_seed_same_model(digits):
    X = digits[0][:200]
    a = VAETransformer(**SMALL).fit(X)
    b = VAETransformer(**SMALL).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    c = VAETransformer(**{**SMALL, "random_state": 1}).fit(X)
    assert not np.array_equal(a.transform(X), c.transform(X))


def test_divergence_rolls_back_then_raises(digits, monkeypatch):
    X = digits[0][:100]
    vae = VAETransformer(**{**SMALL, "max_iter": 2})
    calls = iter(["exploded", None, None, None])
    monkeypatch.setattr(vae, "_divergence_reason", lambda ctx, loss: next(calls))
    with pytest.warns(ConvergenceWarning, match="diverged"):
        vae.fit(X)
    assert vae.learning_rate_ == pytest.approx(vae.learning_rate_init / 2)
    monkeypatch.setattr(vae, "_divergence_reason", lambda ctx, loss: "exploded")
    with pytest.raises(FloatingPointError, match="learning_rate_init"):
        vae.fit(X)


def test_real_divergence_restores_the_parameters_then_raises(digits):
    """No monkeypatching: an absurd learning rate makes the loss non-finite."""
    X = digits[0][:100]
    vae = VAETransformer(
        **{**SMALL, "max_iter": 3}, learning_rate_init=1e4, likelihood="gaussian"
    )
    with pytest.raises(FloatingPointError, match="learning_rate_init"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            vae.fit(X)
    assert sum("rolled back" in str(w.message) for w in caught) == 3
    # a failed fresh fit leaves the estimator unfitted, as it was
    assert vars(vae) == vars(
        VAETransformer(**{**SMALL, "max_iter": 3}).set_params(
            learning_rate_init=1e4, likelihood="gaussian"
        )
    )
    with pytest.raises(NotFittedError):
        vae.transform(X)


def test_conditional_samples_are_of_the_requested_class(digits):
    """An independent reader (logistic regression on real digits) agrees."""
    from sklearn.linear_model import LogisticRegression

    X_train, _, y_train, _ = digits
    cvae = VAETransformer(conditional=True, random_state=0).fit(X_train, y_train)
    reader = LogisticRegression(max_iter=2000).fit(X_train, y_train)
    wanted = np.repeat(np.arange(10), 10)
    samples = cvae.sample(100, y=wanted, return_mean=True, random_state=0)
    assert np.mean(reader.predict(samples) == wanted) >= 0.8


def test_set_output_pandas(fitted, digits):
    pd = pytest.importorskip("pandas")
    out = fitted.set_output(transform="pandas").transform(digits[1][:4])
    fitted.set_output(transform="default")
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == [
        "vaetransformer0",
        "vaetransformer1",
        "vaetransformer2",
    ]


def test_pipeline_and_grid_search_on_score(digits):
    X = digits[0][:300] * 16  # out of [0, 1]: the scaler brings it back
    # clip=True: the scaler fitted on one fold maps the other into [0, 1] too
    scaler = MinMaxScaler(clip=True)
    pipe = Pipeline([("scale", scaler), ("vae", VAETransformer(**SMALL))])
    search = GridSearchCV(pipe, {"vae__beta": [0.5, 1.0]}, cv=2).fit(X)
    assert search.best_params_["vae__beta"] in (0.5, 1.0)
    assert np.isfinite(search.score(X[:20]))
    assert search.transform(X[:5]).shape == (5, 3)


def test_without_torch_a_clear_import_error():
    result = run_without_torch(
        """
        import numpy as np
        import skebm
        from skebm._vae import VAETransformer
        try:
            VAETransformer().fit(np.zeros((3, 2)))
        except ImportError as exc:
            print(exc)
        assert "torch" not in sys.modules
        """
    )
    assert result.returncode == 0, result.stderr
    assert "VAETransformer needs PyTorch" in result.stdout
    assert "pip install torch" in result.stdout


@pytest.mark.cuda
def test_fitted_on_cuda_loads_on_cpu(digits):
    X = digits[0][:200]
    vae = VAETransformer(**SMALL, device="cuda").fit(X)
    clone = pickle.loads(pickle.dumps(vae))
    clone.set_params(device="cpu")
    np.testing.assert_allclose(
        clone.transform(X), vae.transform(X), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        clone.score_samples(X[:20]), vae.score_samples(X[:20]), rtol=1e-4
    )


def test_integer_hidden_layer_sizes_is_one_layer():
    """As in MLPClassifier, an int means one hidden layer of that size."""
    X = np.random.default_rng(0).random((40, 6))
    vae = VAETransformer(hidden_layer_sizes=5, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(X)
    assert vae.transform(X).shape == (40, 2)
