"""RBM: the BernoulliRBM contract, the extensions, bad input and robustness."""

import inspect
import pickle
import pickletools
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import BernoulliRBM
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import InvalidParameterError

from skebm import RBM


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def test_drop_in_defaults_match_bernoulli_rbm():
    ours = inspect.signature(RBM).parameters
    for name, param in inspect.signature(BernoulliRBM).parameters.items():
        assert ours[name].default == param.default, name


def test_same_parameters_give_sklearn_outputs(digits):
    """transform and pseudo_likelihood equal BernoulliRBM's on the same weights."""
    X = digits[0][:100]
    sk = BernoulliRBM(n_components=8, n_iter=2, random_state=0).fit(X)
    ours = RBM(n_components=8, n_iter=0, random_state=0).fit(X)
    ours.components_ = sk.components_.copy()
    ours.intercept_hidden_ = sk.intercept_hidden_.copy()
    ours.intercept_visible_ = sk.intercept_visible_.copy()
    np.testing.assert_allclose(ours.transform(X), sk.transform(X), rtol=1e-12)
    np.testing.assert_allclose(
        ours.pseudo_likelihood(X), sk.score_samples(X), rtol=1e-10
    )


def test_fitted_attributes(digits, backend):
    X = digits[0][:200]
    rbm = RBM(n_components=7, n_iter=2, n_chains=13, backend=backend, random_state=0)
    assert rbm.fit(X) is rbm
    assert rbm.components_.shape == (7, 64)
    assert rbm.intercept_hidden_.shape == (7,)
    assert rbm.intercept_visible_.shape == (64,)
    assert rbm.h_samples_.shape == (13, 7)
    assert rbm.n_iter_ == 2 and rbm.n_features_in_ == 64
    for attr in (
        "components_",
        "intercept_hidden_",
        "intercept_visible_",
        "h_samples_",
    ):
        assert type(getattr(rbm, attr)) is np.ndarray
    assert list(rbm.get_feature_names_out()[:2]) == ["rbm0", "rbm1"]


def test_partial_fit_returns_self_keeps_float32_and_batches(digits, backend):
    X = digits[0][:95].astype(np.float32)
    rbm = RBM(n_components=5, batch_size=10, backend=backend, random_state=0)
    assert rbm.partial_fit(X) is rbm
    assert rbm.components_.dtype == np.float32
    assert rbm.transform(X).dtype == np.float32
    assert rbm.score_samples(X).dtype == np.float32
    assert rbm.n_iter_ == 1
    before = rbm.components_.copy()
    rbm.partial_fit(X[:10])
    assert rbm.n_iter_ == 2 and not np.array_equal(before, rbm.components_)


def test_partial_fit_passes_equal_fit_without_shuffling_when_one_epoch(digits):
    """fit and partial_fit run the same per-batch step (one training loop)."""
    X = digits[0][:60]
    a = RBM(n_components=4, n_iter=1, random_state=3).fit(X)
    b = RBM(n_components=4, random_state=3).partial_fit(X)
    # same initialisation, same updates up to the batch order
    assert a.components_.shape == b.components_.shape
    assert np.abs(a.components_ - b.components_).max() < 0.5


def test_same_seed_same_result(digits, backend):
    X = digits[0][:300]
    a = RBM(n_components=6, n_iter=3, backend=backend, random_state=1).fit(X)
    b = RBM(n_components=6, n_iter=3, backend=backend, random_state=1).fit(X)
    np.testing.assert_array_equal(a.components_, b.components_)
    np.testing.assert_array_equal(a.sample(5, n_steps=3), b.sample(5, n_steps=3))
    c = RBM(n_components=6, n_iter=3, backend=backend, random_state=2).fit(X)
    assert not np.array_equal(a.components_, c.components_)


def test_batches_are_reshuffled_each_epoch(digits, monkeypatch):
    X = digits[0][:40]
    seen = []
    rbm = RBM(n_components=3, n_iter=2, batch_size=40, random_state=0)
    original = rbm._train_batch

    def spy(backend, state, batch, rng, lr):
        seen.append(batch.copy())
        original(backend, state, batch, rng, lr)

    monkeypatch.setattr(rbm, "_train_batch", spy)
    rbm.fit(X)
    assert len(seen) == 2
    assert not np.array_equal(seen[0], seen[1])  # different order each epoch
    np.testing.assert_array_equal(np.sort(seen[0], 0), np.sort(seen[1], 0))


def test_sparse_input_matches_dense(digits):
    X = digits[0][:120]
    dense = RBM(n_components=5, n_iter=2, random_state=0).fit(X)
    for fmt in (sp.csr_matrix, sp.csc_matrix, sp.lil_matrix, sp.csr_array):
        sparse = RBM(n_components=5, n_iter=2, random_state=0).fit(fmt(X))
        np.testing.assert_allclose(sparse.components_, dense.components_, atol=1e-12)
        np.testing.assert_allclose(
            sparse.transform(fmt(X)), dense.transform(X), atol=1e-12
        )
        np.testing.assert_allclose(
            sparse.score_samples(fmt(X)), dense.score_samples(X), atol=1e-9
        )


def test_transform_inverse_transform_gibbs(digits, backend):
    X = digits[0][:50]
    rbm = RBM(n_components=6, n_iter=2, backend=backend, random_state=0).fit(X)
    H = rbm.transform(X)
    assert H.shape == (50, 6) and ((H >= 0) & (H <= 1)).all()
    V = rbm.inverse_transform(H)
    assert V.shape == X.shape and ((V >= 0) & (V <= 1)).all()
    G = rbm.gibbs(X)
    assert G.shape == X.shape and set(np.unique(G)) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="n_components"):
        rbm.inverse_transform(np.zeros((2, 5)))


def test_sample_options(digits, backend):
    X = (digits[0] > 0.5).astype(float)[:300]
    rbm = RBM(n_components=16, n_iter=3, backend=backend, random_state=0).fit(X)
    S = rbm.sample(7, n_steps=5, random_state=0)
    assert S.shape == (7, 64) and set(np.unique(S)) <= {0.0, 1.0}
    np.testing.assert_array_equal(S, rbm.sample(7, n_steps=5, random_state=0))
    M = rbm.sample(3, n_steps=5, return_mean=True, init="persistent")
    assert ((M > 0) & (M < 1)).all()
    S0 = rbm.sample(2, n_steps=0, init=X[:2])
    np.testing.assert_array_equal(S0, X[:2])
    with pytest.raises(ValueError, match="rows"):
        rbm.sample(3, init=X[:2])
    with pytest.raises(InvalidParameterError):
        rbm.sample(0)


def test_gaussian_visible_units(backend):
    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (400, 5)) + np.array([3, -2, 0, 1, 0.5])
    rbm = RBM(
        n_components=4,
        visible="gaussian",
        learning_rate=0.01,
        n_iter=10,
        backend=backend,
        random_state=0,
    ).fit(X)
    S = rbm.sample(2000, n_steps=50, random_state=0)
    np.testing.assert_allclose(S.mean(0), X.mean(0), atol=0.25)
    assert np.isfinite(rbm.score_samples(X)).all()
    with pytest.raises(ValueError, match="bernoulli"):
        rbm.pseudo_likelihood(X)


def test_grid_search_selects_without_labels(digits):
    X = (digits[0] > 0.5).astype(float)
    search = GridSearchCV(
        RBM(n_iter=10, random_state=0), {"n_components": [1, 16]}, cv=2
    ).fit(X)
    assert search.best_params_ == {"n_components": 16}
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_pipeline_features_beat_chance(digits, backend):
    X, y = digits
    pipe = Pipeline(
        [
            (
                "rbm",
                RBM(
                    n_components=64,
                    n_iter=5,
                    learning_rate=0.05,
                    backend=backend,
                    random_state=0,
                ),
            ),
            ("clf", LogisticRegression(C=100, max_iter=1000)),
        ]
    ).fit(X[:1000], y[:1000])
    assert pipe.score(X[1000:], y[1000:]) > 0.8


def test_set_output_pandas(digits):
    pd = pytest.importorskip("pandas")
    rbm = RBM(n_components=3, n_iter=1, random_state=0).set_output(transform="pandas")
    out = rbm.fit_transform(pd.DataFrame(digits[0][:20]).add_prefix("px"))
    assert list(out.columns) == ["rbm0", "rbm1", "rbm2"]


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_pickle_round_trip(digits, backend, visible):
    X = digits[0][:80]
    rbm = RBM(
        n_components=5,
        n_iter=2,
        visible=visible,
        learning_rate=0.01,
        backend=backend,
        random_state=0,
    ).fit(X)
    blob = pickle.dumps(rbm)
    # NumPy state only: nothing in the pickle needs torch to load
    modules = {
        arg.split()[0]
        for op, arg, _ in pickletools.genops(blob)
        if op.name in ("GLOBAL", "STACK_GLOBAL") and arg
    }
    strings = [arg for op, arg, _ in pickletools.genops(blob) if isinstance(arg, str)]
    assert not any(m.startswith("torch") for m in modules)
    assert not any(s.startswith("torch.") or s == "torch._utils" for s in strings)
    clone = pickle.loads(blob)
    np.testing.assert_array_equal(clone.transform(X), rbm.transform(X))
    np.testing.assert_array_equal(clone.score_samples(X), rbm.score_samples(X))
    clone.partial_fit(X)  # training resumes


# -- bad input -------------------------------------------------------------------------


def test_bad_input_errors(digits):
    X = digits[0][:30]
    rbm = RBM(n_components=3, n_iter=1)
    with pytest.raises(NotFittedError):
        rbm.transform(X)
    with pytest.raises(NotFittedError):
        rbm.score_samples(X)
    with pytest.raises(NotFittedError):
        rbm.sample(2)
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        rbm.fit(X_nan)
    X_inf = X.copy()
    X_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        rbm.fit(X_inf)
    with pytest.raises(ValueError, match="0 sample"):
        rbm.fit(np.empty((0, 4)))
    rbm.fit(X)
    with pytest.raises(ValueError, match="features"):
        rbm.transform(X[:, :10])
    with pytest.raises(ValueError, match="NaN"):
        rbm.score_samples(X_nan)
    with pytest.raises(ValueError, match="method"):
        rbm.log_partition("bogus")


@pytest.mark.parametrize(
    "params",
    [
        {"n_components": 0},
        {"learning_rate": -1.0},
        {"visible": "poisson"},
        {"k": 0},
        {"momentum": 1.0},
        {"n_chains": 0},
        {"batch_size": 0},
    ],
)
def test_invalid_parameters(params):
    with pytest.raises(InvalidParameterError):
        RBM(**params).fit(np.zeros((3, 2)))


def test_device_validation():
    with pytest.raises(ValueError, match="backend='torch'"):
        RBM(device="cuda", n_iter=1).fit(np.zeros((3, 2)))


def test_values_outside_unit_interval_are_read_as_probabilities(digits):
    X = digits[0][:60]
    rbm = RBM(n_components=4, n_iter=1, random_state=0)
    with pytest.warns(UserWarning, match="clipped"):
        rbm.fit(X * 16)  # raw 0..16 pixel values
    np.testing.assert_array_equal(
        rbm.transform(X * 1e5), rbm.transform(np.clip(X * 1e5, 0, 1))
    )


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_extreme_inputs_give_finite_results_without_warnings(backend, visible):
    rng = np.random.default_rng(0)
    X = rng.random((40, 6))
    rbm = RBM(
        n_components=5,
        n_iter=2,
        visible=visible,
        learning_rate=0.01,
        backend=backend,
        random_state=0,
    ).fit(X)
    rbm.components_ = rbm.components_ * 1e3  # extreme weights too
    extreme = np.array([[1e5, -1e5, 1e5, 0, 1e-12, -1e-12]] * 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # out-of-range warnings: fine
        for method in (rbm.transform, rbm.score_samples, rbm.free_energy):
            assert np.isfinite(method(extreme)).all(), method.__name__
        assert np.isfinite(rbm.inverse_transform(np.ones((2, 5)))).all()
        assert np.isfinite(rbm.sample(3, n_steps=3)).all()


# -- tail averaging --------------------------------------------------------------------


def _record_updates(monkeypatch, log):
    """Record the parameters and chains after every update of every RBM."""
    real = RBM._train_batch

    def recording(self, backend, state, batch, rng, learning_rate):
        real(self, backend, state, batch, rng, learning_rate)
        log.append(
            {k: backend.core.to_numpy(backend.core.copy(state[k])) for k in state}
        )

    monkeypatch.setattr(RBM, "_train_batch", recording)


def _assert_mean_of(rbm, updates):
    for attr, key in (
        ("components_", "W"),
        ("intercept_visible_", "b"),
        ("intercept_hidden_", "c"),
    ):
        expected = np.mean([u[key] for u in updates], axis=0)
        np.testing.assert_allclose(getattr(rbm, attr), expected, rtol=1e-10)


@pytest.mark.parametrize("average_epochs", [0, 1, 2, 9])
def test_parameters_are_averaged_over_the_last_epochs(
    digits, backend, average_epochs, monkeypatch
):
    """components_ and the intercepts are the mean of the parameters after each
    update of the last average_epochs epochs (0: the last update, as BernoulliRBM);
    the chains keep their last state."""
    log = []
    _record_updates(monkeypatch, log)
    X = digits[0][:40]  # 4 batches of 10 per epoch
    rbm = RBM(
        n_components=3,
        n_iter=3,
        momentum=0.5,
        average_epochs=average_epochs,
        backend=backend,
        device="cpu",
        random_state=0,
    ).fit(X)
    assert len(log) == 12
    _assert_mean_of(rbm, log[-4 * min(average_epochs, 3) or -1 :])
    np.testing.assert_array_equal(rbm.h_samples_, log[-1]["chains"])
    np.testing.assert_array_equal(rbm._velocity_W, log[-1]["vW"])


def test_partial_fit_averages_its_pass_and_resumes_from_the_last_update(
    digits, backend, monkeypatch
):
    """Each partial_fit call stores the mean of its own pass; training goes on
    from the last update (kept aside), so averaging never changes the trajectory:
    after fit + two partial_fit calls the last update is that of average_epochs=0."""
    log = []
    _record_updates(monkeypatch, log)
    X = digits[0][:30]
    kw = {"n_components": 3, "n_iter": 2, "backend": backend, "device": "cpu"}
    rbm = RBM(**kw, random_state=0).fit(X)
    plain = RBM(**kw, average_epochs=0, random_state=0).fit(X)
    log.clear()
    rbm.partial_fit(X)
    _assert_mean_of(rbm, log)
    rbm.partial_fit(X[:10])
    plain.partial_fit(X).partial_fit(X[:10])
    _assert_mean_of(rbm, log[-1:])  # a pass of one update
    np.testing.assert_allclose(rbm._last_update["W"], plain.components_, rtol=1e-12)
    np.testing.assert_array_equal(rbm.h_samples_, plain.h_samples_)


def test_average_skips_the_rolled_back_epoch(monkeypatch):
    """An averaging epoch that diverges is rolled back: its updates do not count."""
    log = []
    _record_updates(monkeypatch, log)
    real = RBM._divergence
    calls = {"n": 0}

    def diverge_in_last_epoch(self, backend, state, objective):
        calls["n"] += 1
        return "injected" if calls["n"] == 3 else real(self, backend, state, objective)

    monkeypatch.setattr(RBM, "_divergence", diverge_in_last_epoch)
    X = np.random.default_rng(0).random((40, 5))
    with pytest.warns(ConvergenceWarning, match="rolled back"):
        rbm = RBM(n_components=3, n_iter=3, random_state=0).fit(X)
    assert len(log) == 16  # epochs 1, 2, 3 (rolled back), 3 again
    _assert_mean_of(rbm, log[-4:])


def test_averaging_improves_the_density_model():
    """Averaged PCD parameters sit near the centre of the noisy iterates: on the
    binarised digits their exact log-likelihood is higher for every seed tried
    (gains of 0.8-3.0 nats per digit with these settings)."""
    X = (load_digits().data / 16.0 > 0.5).astype(float)

    def score(seed, average_epochs):
        rbm = RBM(n_components=12, average_epochs=average_epochs, random_state=seed)
        return rbm.fit(X).score(X)

    gains = [score(s, 1) - score(s, 0) for s in range(6)]
    assert min(gains) > 0.3 and np.mean(gains) > 1.0, gains


# -- robustness ------------------------------------------------------------------------


def test_divergence_recovers_with_warning(monkeypatch):
    """A blow-up rolls the epoch back, halves the learning rate and goes on."""
    rng = np.random.default_rng(0)
    X = rng.random((50, 4))
    rbm = RBM(n_components=3, n_iter=3, learning_rate=0.1, random_state=0)
    calls = {"n": 0}
    real = type(rbm)._divergence

    def diverge_once(self, backend, state, objective):
        calls["n"] += 1
        if calls["n"] == 2:
            state["W"][0, 0] = np.nan
        return real(self, backend, state, objective)

    monkeypatch.setattr(type(rbm), "_divergence", diverge_once)
    with pytest.warns(ConvergenceWarning, match="rolled back"):
        rbm.fit(X)
    assert rbm.n_iter_ == 3
    assert rbm.learning_rate_ == pytest.approx(0.05)
    assert np.isfinite(rbm.components_).all()


def test_hopeless_divergence_raises_with_advice():
    """Unscaled data with a huge rate for Gaussian units cannot be rescued."""
    X = np.random.default_rng(0).normal(0, 1e4, (100, 8))
    rbm = RBM(
        n_components=8, visible="gaussian", learning_rate=1e6, n_iter=2, random_state=0
    )
    with pytest.warns(ConvergenceWarning):
        with pytest.raises(FloatingPointError, match="learning_rate"):
            rbm.fit(X)


def test_keyboard_interrupt_leaves_usable_model(digits, monkeypatch):
    X = digits[0][:100]
    rbm = RBM(n_components=4, n_iter=5, random_state=0)
    original = type(rbm)._train_batch
    count = {"n": 0}

    def interrupt(self, *args):
        count["n"] += 1
        if count["n"] == 15:
            raise KeyboardInterrupt
        original(self, *args)

    monkeypatch.setattr(type(rbm), "_train_batch", interrupt)
    with pytest.warns(UserWarning, match="interrupted"):
        rbm.fit(X)
    assert rbm.n_iter_ == 1
    assert np.isfinite(rbm.transform(X)).all()


def test_keyboard_interrupt_while_averaging(digits, backend, monkeypatch):
    """Ctrl-C in an averaging epoch keeps the state after the last completed epoch:
    the mean over the completed averaging epochs (or the last update of that epoch,
    if none completed), and that epoch's chains."""
    log = []
    _record_updates(monkeypatch, log)
    recording = RBM._train_batch

    def interrupt(self, *args):
        if len(log) == 25:  # in the third epoch (of 10 batches)
            raise KeyboardInterrupt
        recording(self, *args)

    monkeypatch.setattr(RBM, "_train_batch", interrupt)
    kw = {"n_components": 4, "n_iter": 3, "backend": backend, "device": "cpu"}
    with pytest.warns(UserWarning, match="interrupted"):
        rbm = RBM(**kw, average_epochs=2, random_state=0).fit(digits[0][:100])
    _assert_mean_of(rbm, log[10:20])  # epoch 2 of 3, the one completed average
    np.testing.assert_array_equal(rbm._last_update["W"], log[19]["W"])
    np.testing.assert_array_equal(rbm.h_samples_, log[19]["chains"])
    np.testing.assert_array_equal(rbm._velocity_W, log[19]["vW"])
    log.clear()
    with pytest.warns(UserWarning, match="interrupted"):
        rbm = RBM(**kw, random_state=0).fit(digits[0][:100])
    _assert_mean_of(rbm, log[19:20])  # no averaging epoch completed: epoch 2's end
    assert rbm._last_update is None


def test_centring_offsets_keep_their_last_values(digits, monkeypatch):
    log = []
    _record_updates(monkeypatch, log)
    rbm = RBM(n_components=3, n_iter=2, centered=True, random_state=0)
    rbm.fit(digits[0][:40])
    _assert_mean_of(rbm, log[-4:])
    np.testing.assert_array_equal(rbm._offset_visible, log[-1]["mu"])
    np.testing.assert_array_equal(rbm._offset_hidden, log[-1]["lam"])
    assert not np.allclose(log[-5]["lam"], log[-1]["lam"])  # they moved


def test_pickles_without_average_epochs_keep_the_last_update(digits):
    """Estimators pickled before average_epochs existed load with 0."""
    rbm = RBM(n_components=3, n_iter=1, average_epochs=0, random_state=0)
    state = rbm.fit(digits[0][:30]).__getstate__()
    del state["average_epochs"]
    old = RBM.__new__(RBM)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        old.__setstate__(state)
    assert old.get_params()["average_epochs"] == 0
    old.partial_fit(digits[0][:30])


def test_verbose_prints_one_line_per_epoch(digits, capsys):
    RBM(n_components=3, n_iter=3, verbose=1, random_state=0).fit(digits[0][:50])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert "epoch 3" in lines[-1] and "reconstruction error" in lines[-1]
    assert lines[-1].rstrip().endswith("s")


def test_training_improves_likelihood(digits, backend):
    X = (digits[0] > 0.5).astype(float)
    rbm = RBM(n_components=16, n_iter=0, backend=backend, random_state=0).fit(X)
    before = rbm.score(X)
    rbm.set_params(n_iter=5).fit(X)
    assert rbm.score(X) > before + 2  # nats per digit (sklearn's settings give ~4)


def test_partial_fit_uses_the_learning_rate_set_now(digits, backend):
    """As BernoulliRBM: a rate changed with set_params between partial_fit calls is
    the rate of the next call (users decay it by hand)."""
    X = digits[0][:100]
    rbm = RBM(n_components=4, backend=backend, device="cpu", random_state=0)
    rbm.partial_fit(X)
    W = rbm._last_update["W"].copy()  # training resumes here (tail averaging)
    rbm.set_params(learning_rate=0.0).partial_fit(X)
    assert rbm.learning_rate_ == 0.0
    np.testing.assert_allclose(rbm.components_, W, atol=1e-12)
    rbm.set_params(learning_rate=0.05).partial_fit(X)
    assert rbm.learning_rate_ == 0.05
    assert not np.allclose(rbm.components_, W)
