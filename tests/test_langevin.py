"""LangevinEBMClassifier: the sampler against a known density, the energy / probability
identities, determinism, robustness (rollback, interrupt) and the API contract."""

import pickle
import warnings

import numpy as np
import pytest
from scipy.special import logsumexp, softmax
from sklearn.datasets import load_digits, make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests.conftest import HAS_TORCH

pytestmark = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")

if HAS_TORCH:
    import torch

    from skebm import LangevinEBMClassifier
    from skebm._backends.torch import langevin

FAST = dict(
    hidden_layer_sizes=(32,),
    max_iter=5,
    sgld_steps=5,
    buffer_size=200,
    random_state=0,
)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LangevinEBMClassifier(**FAST).fit(X, y)


# -- the sampler reproduces a known density -------------------------------------------


class _Quadratic(torch.nn.Module if HAS_TORCH else object):
    """One 'logit' f(x) = -E(x) with E(x) = 0.5 (x - mu)^T P (x - mu): a Gaussian."""

    def __init__(self, mean, cov):
        super().__init__()
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        self.precision = torch.linalg.inv(torch.as_tensor(cov, dtype=torch.float64))

    def forward(self, x):
        d = x - self.mean
        return -0.5 * ((d @ self.precision) * d).sum(1, keepdim=True)


def test_sgld_reproduces_gaussian_mean_and_covariance():
    """With noise sqrt(2 * step) SGLD is unadjusted Langevin: it samples exp(-E)."""
    mean = np.array([0.2, -0.1])
    cov = np.array([[0.15**2, 0.5 * 0.15 * 0.1], [0.5 * 0.15 * 0.1, 0.1**2]])
    net = _Quadratic(mean, cov)
    gen = torch.Generator().manual_seed(0)
    n_chains, step = 4000, 1e-4
    x0 = torch.zeros(n_chains, 2, dtype=torch.float64)
    x = langevin.sgld(net, x0, 1500, step, np.sqrt(2 * step), gen).numpy()
    # Monte Carlo standard errors of the mean and of the covariance entries
    se_mean = np.sqrt(np.diag(cov) / n_chains)
    np.testing.assert_array_less(np.abs(x.mean(0) - mean), 4 * se_mean)
    emp = np.cov(x.T)
    se_cov = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n_chains)
    # + 2% for the discretisation bias of the unadjusted sampler at this step
    np.testing.assert_array_less(np.abs(emp - cov), 4 * se_cov + 0.02 * np.abs(cov))


def test_sgld_class_conditional_moves_towards_the_class():
    """E(x | y) = -f(x)[y]: chains descend the logit of the requested class only."""

    class TwoWells(torch.nn.Module):
        def forward(self, x):
            return torch.stack([-((x - 0.5) ** 2).sum(1), -((x + 0.5) ** 2).sum(1)], 1)

    gen = torch.Generator().manual_seed(0)
    x0 = torch.zeros(200, 3, dtype=torch.float64)
    y = torch.tensor([0] * 100 + [1] * 100)
    x = langevin.sgld(TwoWells(), x0, 200, 0.05, 0.0, gen, y=y).numpy()
    np.testing.assert_allclose(x[:100], 0.5, atol=1e-6)
    np.testing.assert_allclose(x[100:], -0.5, atol=1e-6)


def test_temperature_minimises_validation_nll():
    """Labels drawn from softmax(logits / 2): the NLL-optimal temperature is ~2."""
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, (3000, 4))
    p = softmax(z / 2.0, axis=1)
    labels = (p.cumsum(1) < rng.random((3000, 1))).sum(1)
    logits, y = torch.as_tensor(z), torch.as_tensor(labels)
    t = langevin.fit_temperature(logits, y)
    assert t == pytest.approx(2.0, rel=0.1)

    def nll(temp):
        return float(torch.nn.functional.cross_entropy(logits / temp, y))

    assert nll(t) <= min(nll(t * 1.05), nll(t / 1.05)) + 1e-9
    assert nll(t) <= nll(1.0)


def _noisy_labels(n, seed):
    """Class signal in one of 10 features, Bayes error 16%: easy to overfit."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 10))
    X[:, 0] += 2.0 * y - 1.0
    return X, y


def test_crossfitted_temperature_comes_from_out_of_fold_logits():
    """A network that fits its noisy training labels is sure of them: fitted to its
    own training logits, T would sharpen (T < 1). The cross-fitted T sees logits of
    rows each fold model did not train on, which are overconfident, so it softens
    (T > 1); and the returned network is the one trained on every row."""
    X, y = _noisy_labels(200, 0)
    kw = dict(
        hidden_layer_sizes=(64,),
        max_iter=100,
        learning_rate_init=0.01,
        sgld_steps=1,
        buffer_size=100,
        energy_weight=0.0,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = LangevinEBMClassifier(**kw, calibrate=False).fit(X, y)
        calibrated = LangevinEBMClassifier(**kw, calibration_cv=2).fit(X, y)
    in_sample_t = langevin.fit_temperature(plain._logits(X), torch.as_tensor(y))
    assert in_sample_t < 1.0
    assert calibrated.temperature_ > 1.5
    np.testing.assert_array_equal(
        calibrated._logits(X).numpy(), plain._logits(X).numpy()
    )
    assert plain.temperature_ == 1.0


def test_crossfit_with_a_class_too_small_to_stratify():
    """One row of class 2: plain K folds; the fold model that never saw class 2
    gives it no probability and that row is left out of the temperature fit."""
    X, y = _noisy_labels(60, 1)
    X, y = np.vstack([X, np.full((1, 10), 3.0)]), np.append(y, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LangevinEBMClassifier(**{**FAST, "calibration_cv": 3}).fit(X, y)
    assert np.isfinite(clf.temperature_) and clf.temperature_ > 0
    assert np.all(np.isfinite(clf.predict_proba(X)))


def test_holdout_calibration_trains_on_the_remaining_rows(digits):
    """calibration_cv=None: T from a validation_fraction hold-out, one training."""
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LangevinEBMClassifier(**FAST, calibration_cv=None).fit(X, y)
    assert clf.temperature_ != 1.0
    with pytest.raises(ValueError, match="calibration_cv"):
        LangevinEBMClassifier(calibration_cv=1).fit(X, y)


# -- the estimator's identities ---------------------------------------------------------


def test_energy_probabilities_and_scores_are_consistent(fitted, digits):
    X, _ = digits
    logits = fitted._logits(X[:50].astype(np.float64)).numpy()
    proba = fitted.predict_proba(X[:50])
    np.testing.assert_allclose(proba, softmax(logits / fitted.temperature_, axis=1))
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_allclose(
        fitted.predict_log_proba(X[:50]), np.log(proba), rtol=1e-6, atol=1e-9
    )
    np.testing.assert_allclose(fitted.score_samples(X[:50]), logsumexp(logits, axis=1))
    np.testing.assert_allclose(fitted.energy(X[:50]), -fitted.score_samples(X[:50]))
    np.testing.assert_array_equal(
        fitted.predict(X[:50]), fitted.classes_[np.argmax(logits, axis=1)]
    )


def test_logits_are_the_network_on_the_scaled_input(fitted, digits):
    X, _ = digits
    span = fitted.data_max_ - fitted.data_min_
    mid = (fitted.data_max_ + fitted.data_min_) / 2
    Z = np.where(span > 0, 2 * (X[:5] - mid) / np.where(span > 0, span, 1), 0.0)
    with torch.no_grad():
        expected = fitted._net(torch.as_tensor(Z)).numpy()
    np.testing.assert_allclose(fitted._logits(X[:5].astype(float)).numpy(), expected)


def test_score_outside_the_training_range_has_a_gaussian_tail(fitted, digits):
    """Outside the box of training ranges: the network at the clipped point, minus
    half the squared distance to the box in the internal scale."""
    X, _ = digits
    span = fitted.data_max_ - fitted.data_min_
    mid = (fitted.data_max_ + fitted.data_min_) / 2
    X_out = X[:6].astype(float).copy()
    X_out[:3, 10] = fitted.data_max_[10] + 0.25 * span[10]  # 0.5 beyond +1
    X_out[3:, :] = 16.0 - X_out[3:, :]  # inverted digits: far outside
    Z = np.where(span > 0, 2 * (X_out - mid) / np.where(span > 0, span, 1), 0.0)
    C = np.clip(Z, -1, 1)
    with torch.no_grad():
        logits = fitted._net(torch.as_tensor(C)).numpy()
    expected = logsumexp(logits, axis=1) - 0.5 * ((Z - C) ** 2).sum(1)
    np.testing.assert_allclose(fitted.score_samples(X_out), expected, rtol=1e-10)
    np.testing.assert_allclose(expected[:3] - logsumexp(logits[:3], axis=1), -0.125)
    assert fitted.score_samples(X_out[3:]).max() < fitted.score_samples(X).min()
    # the classifier itself sees the unclipped input
    np.testing.assert_array_equal(
        fitted.predict(X_out), fitted.classes_[fitted._logits(X_out).argmax(1).numpy()]
    )


def test_deterministic_given_random_state(digits):
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = LangevinEBMClassifier(**FAST).fit(X, y)
        b = LangevinEBMClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(
        a.sample(4, y=3, random_state=1), b.sample(4, y=3, random_state=1)
    )
    assert a.temperature_ == b.temperature_


def test_deterministic_with_several_threads(digits):
    """Replay-buffer write-backs go to distinct rows: with repeated indices the
    last of several threads to write would win, and refits would differ."""
    from threadpoolctl import threadpool_limits

    X, y = digits
    previous = torch.get_num_threads()
    try:
        with threadpool_limits(4):
            torch.set_num_threads(4)
            fits = [
                LangevinEBMClassifier(**{**FAST, "buffer_size": 40}).fit(X, y)
                for _ in range(2)
            ]
    finally:
        torch.set_num_threads(previous)
    np.testing.assert_array_equal(fits[0].predict_proba(X), fits[1].predict_proba(X))


def test_global_torch_random_state_is_untouched(digits):
    X, y = digits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        LangevinEBMClassifier(**FAST).fit(X, y).sample(2)
    np.testing.assert_array_equal(torch.rand(3), expected)


# -- sampling ---------------------------------------------------------------------------


def test_sample_shapes_range_and_labels(fitted, digits):
    X, _ = digits
    s = fitted.sample(6, y=[0, 1, 2, 3, 4, 5], n_steps=5, random_state=0)
    assert s.shape == (6, 64) and s.dtype == np.float64
    assert np.all(s >= fitted.data_min_ - 1e-9) and np.all(s <= fitted.data_max_ + 1e-9)
    constant = fitted.data_max_ == fitted.data_min_
    np.testing.assert_array_equal(s[:, constant], X[:6, constant])
    assert fitted.sample(3, y=7, n_steps=2).shape == (3, 64)
    assert fitted.sample(n_steps=0).shape == (1, 64)


def test_sample_rejects_unknown_label_and_length_mismatch(fitted):
    with pytest.raises(ValueError, match="Unknown label"):
        fitted.sample(2, y=[0, 11])
    with pytest.raises(ValueError, match="n_samples=3"):
        fitted.sample(3, y=[0, 1])


def test_string_labels_and_class_conditional_samples():
    X, y = make_blobs(200, centers=[[-2, -2], [2, 2]], cluster_std=0.5, random_state=0)
    labels = np.array(["neg", "pos"])[y]
    clf = LangevinEBMClassifier(
        hidden_layer_sizes=(32,), max_iter=40, learning_rate_init=0.01, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, labels)
    assert clf.score(X, labels) > 0.95
    s = clf.sample(40, y="pos", random_state=0)
    assert np.mean(clf.predict(s) == "pos") > 0.9


# -- fitting API ---------------------------------------------------------------------


def test_partial_fit_needs_classes_then_accumulates(digits):
    X, y = digits
    clf = LangevinEBMClassifier(**FAST)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:300], y[:300], classes=np.arange(10))
    clf.partial_fit(X[300:], y[300:])
    assert clf.n_iter_ == 2 and len(clf.loss_curve_) == 2
    with pytest.raises(ValueError, match="not seen before"):
        clf.partial_fit(X[:5], np.full(5, 12))


def test_warm_start_continues(digits):
    X, y = digits
    clf = LangevinEBMClassifier(**{**FAST, "max_iter": 2}, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y).fit(X, y)
    assert clf.n_iter_ == 4


def test_early_stopping_records_validation_scores(digits):
    X, y = digits
    clf = LangevinEBMClassifier(
        **{**FAST, "max_iter": 30}, early_stopping=True, n_iter_no_change=2
    ).fit(X, y)
    assert len(clf.validation_scores_) == clf.n_iter_ < 30
    assert clf.best_validation_score_ == max(clf.validation_scores_)


def test_float32_is_kept(digits):
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LangevinEBMClassifier(**FAST).fit(X.astype(np.float32), y)
    assert clf._net[0].weight.dtype == torch.float32
    assert clf.sample(2).dtype == np.float32


def test_one_class_is_an_error():
    with pytest.raises(ValueError, match="at least two classes"):
        LangevinEBMClassifier(**FAST).fit(np.zeros((5, 2)), np.ones(5))


def test_nan_input_is_an_error(fitted):
    X = np.zeros((3, 64))
    X[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fitted.predict(X)


def test_custom_module_factory(digits):
    X, y = digits

    def factory(n_features, n_classes):
        return torch.nn.Sequential(
            torch.nn.Linear(n_features, 16),
            torch.nn.ELU(),
            torch.nn.Linear(16, n_classes),
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LangevinEBMClassifier(**FAST, module=factory).fit(X, y)
    assert clf._net[0].out_features == 16
    assert clf.predict_proba(X[:3]).shape == (3, 10)


def test_pickle_round_trip_holds_numpy_state_only(fitted, digits):
    X, _ = digits
    blob = pickle.dumps(fitted)
    clone = pickle.loads(blob)
    assert "_net" not in vars(clone)  # built lazily from NumPy state, kept outside
    state = {k: v for k, v in clone.__dict__.items() if k != "module"}
    for value in _leaves(state):
        assert not type(value).__module__.startswith("torch"), type(value)
    np.testing.assert_array_equal(clone.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(
        clone.sample(2, random_state=0, n_steps=3),
        fitted.sample(2, random_state=0, n_steps=3),
    )


def _leaves(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _leaves(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _leaves(v)
    else:
        yield obj


def test_pipeline_and_grid_search(digits):
    X, y = digits
    pipe = make_pipeline(
        StandardScaler(), LangevinEBMClassifier(**FAST, learning_rate_init=0.01)
    )
    search = GridSearchCV(
        pipe, {"langevinebmclassifier__energy_weight": [0.0, 1.0]}, cv=2
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    assert search.best_score_ > 0.7


def test_verbose_prints_one_line_per_epoch(digits, capsys):
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        LangevinEBMClassifier(
            **{**FAST, "max_iter": 3}, calibration_cv=2, verbose=1
        ).fit(X, y)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "epoch" in ln]
    main = [ln for ln in lines if ln.startswith("[LangevinEBMClassifier] epoch")]
    assert [ln.split(",")[0] for ln in main] == [
        f"[LangevinEBMClassifier] epoch {i}/3 (total {i})" for i in (1, 2, 3)
    ]
    assert all("elapsed" in ln and "left" in ln for ln in main)
    # the cross-fitted calibration shows its fold trainings in the same format
    folds = {ln.split("]")[0] for ln in lines if "calibration fold" in ln}
    assert folds == {f"[LangevinEBMClassifier calibration fold {k}/2" for k in (1, 2)}


# -- robustness ------------------------------------------------------------------------


class _Exploding(torch.nn.Module if HAS_TORCH else object):
    """An MLP whose output is inf for the first ``bad_calls`` training-mode calls."""

    def __init__(self, n_features, n_classes, bad_calls):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(n_features, 16),
            torch.nn.SiLU(),
            torch.nn.Linear(16, n_classes),
        )
        self.calls = 0
        self.bad_calls = bad_calls

    def forward(self, x):
        out = self.net(x)
        if self.training:
            self.calls += 1
            if self.calls <= self.bad_calls:
                return out * float("inf")
        return out


def test_divergence_rolls_back_warns_and_recovers(digits):
    X, y = digits
    clf = LangevinEBMClassifier(
        **{**FAST, "max_iter": 3}, module=lambda n, k: _Exploding(n, k, bad_calls=1)
    )
    with pytest.warns(ConvergenceWarning, match="rolled back"):
        clf.fit(X, y)
    assert clf.n_iter_ == 3
    assert clf.learning_rate_ == pytest.approx(clf.learning_rate_init / 2)
    assert np.all(np.isfinite(clf.predict_proba(X)))


def test_repeated_divergence_raises_naming_the_parameters(digits):
    X, y = digits
    clf = LangevinEBMClassifier(
        **FAST, module=lambda n, k: _Exploding(n, k, bad_calls=10**9)
    )
    with pytest.raises(FloatingPointError, match="learning_rate_init.*sgld_step_size"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)


def test_keyboard_interrupt_keeps_a_usable_model(digits):
    X, y = digits

    class Interrupting(_Exploding):
        def forward(self, x):
            out = self.net(x)
            if self.training:
                self.calls += 1
                if self.calls == 30:
                    raise KeyboardInterrupt
            return out

    clf = LangevinEBMClassifier(**FAST, module=lambda n, k: Interrupting(n, k, 0))
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    assert np.all(np.isfinite(clf.predict_proba(X)))
    assert clf.sample(2, n_steps=2).shape == (2, 64)


def test_keyboard_interrupt_during_calibration_keeps_the_trained_model(digits):
    """Ctrl-C while a fold model trains: no further fold model, T stays 1."""
    X, y = digits
    built = []

    class InterruptFirstFold(_Exploding):
        def forward(self, x):
            if self.training and len(built) == 2:  # built[1]: the first fold model
                self.calls += 1
                if self.calls == 5:
                    raise KeyboardInterrupt
            return self.net(x)

    def factory(n, k):
        built.append(InterruptFirstFold(n, k, 0))
        return built[-1]

    clf = LangevinEBMClassifier(**FAST, calibration_cv=2, module=factory)
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    assert len(built) == 2
    assert clf.temperature_ == 1.0
    assert clf.n_iter_ == FAST["max_iter"]
    assert np.all(np.isfinite(clf.predict_proba(X)))


def test_default_settings_train_without_rollback_on_five_seeds(digits):
    X, y = digits
    for seed in range(5):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.filterwarnings("error", message=".*rolled back.*")
            clf = LangevinEBMClassifier(max_iter=8, random_state=seed).fit(X, y)
        assert clf.learning_rate_ == clf.learning_rate_init
        assert clf.score(X, y) > 0.9


@pytest.mark.cuda
def test_cuda_fit_then_cpu_load(digits):
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LangevinEBMClassifier(**FAST, device="cuda").fit(X, y)
    proba = clf.predict_proba(X)
    clone = pickle.loads(pickle.dumps(clf))
    clone.set_params(device="cpu")
    np.testing.assert_allclose(clone.predict_proba(X), proba, rtol=1e-4, atol=1e-6)


# -- extreme inputs, labels and persistence (issues 14 and 16) -------------------------


@pytest.fixture(scope="module")
def fitted_unit(digits):
    """A model of data on [0, 1], as in issue 14."""
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LangevinEBMClassifier(**FAST).fit(X / 16, y)


METHODS = ["predict", "predict_proba", "predict_log_proba", "score_samples", "energy"]


@pytest.mark.parametrize("method", METHODS)
def test_input_that_overflows_the_network_is_a_clear_error(fitted_unit, digits, method):
    """1e308 in a feature trained on [0, 1]: no NaN, no silent classes_[0]."""
    X = digits[0][:3] / 16
    X[1, 5] = 1e308
    with pytest.raises(ValueError, match=r"row 1 has 1e\+308 in feature 5"):
        getattr(fitted_unit, method)(X)


@pytest.mark.parametrize("value", [1e308, -1e308, 1e300, 1e6])
def test_far_inputs_get_a_finite_answer_or_a_clear_error(fitted, digits, value):
    X = digits[0][:3].astype(np.float64)
    X[1, 5] = value
    for method in METHODS:
        try:
            out = getattr(fitted, method)(X)
        except ValueError as exc:
            assert "feature 5" in str(exc)
            continue
        if method == "predict":
            assert np.isin(out, fitted.classes_).all()
        else:
            assert np.all(np.isfinite(out))


def test_subnormal_feature_range_is_treated_as_constant():
    X = np.zeros((40, 3))
    X[::2, 0] = 1e-310
    X[:, 1] = np.arange(40) % 3
    y = np.arange(40) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LangevinEBMClassifier(**{**FAST, "max_iter": 3}).fit(X, y)
        proba = clf.predict_proba(X)
    assert clf._scale[0] == 0 and np.all(np.isfinite(clf._scale))
    assert np.all(np.isfinite(proba))
    assert np.all(clf.sample(3, random_state=0)[:, 0] == clf._center[0])


def test_huge_feature_range_does_not_overflow():
    X = np.zeros((40, 2))
    X[:, 0] = np.where(np.arange(40) % 2, 1e308, -1e308)
    X[:, 1] = np.arange(40) % 3
    y = np.arange(40) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # scikit-learn's finiteness check sums X, which overflows here
        warnings.filterwarnings("ignore", "invalid value encountered in reduce")
        clf = LangevinEBMClassifier(**{**FAST, "max_iter": 3}).fit(X, y)
        proba = clf.predict_proba(X)
    assert np.all(np.isfinite(clf._scale)) and clf._scale[0] > 0
    assert np.all(np.isfinite(proba))


@pytest.mark.parametrize("label", [0.5, [0.5], [11], ["a"], [[0, 1]]])
def test_sample_rejects_labels_that_are_not_classes(fitted, label):
    n = 2 if label == [[0, 1]] else 1
    with pytest.raises(ValueError, match="Unknown label|1-D|'y' parameter"):
        fitted.sample(n, y=label)


def test_sample_accepts_an_equal_label_of_another_type(fitted):
    assert fitted.sample(1, y=[1.0], n_steps=1, random_state=0).shape == (1, 64)


def test_default_model_pickles_small_without_the_replay_buffer():
    """Issue 16: a default model on the digits pickles in at most 1.5 MB."""
    X, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LangevinEBMClassifier(max_iter=1, random_state=0).fit(X, y)
    assert clf._buffer.shape == (clf.buffer_size, 64)  # kept in memory
    blob = pickle.dumps(clf)
    assert len(blob) <= 1.5e6
    loaded = pickle.loads(blob)
    assert getattr(loaded, "_buffer", None) is None
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_warm_start_after_loading_restarts_the_chains(digits):
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LangevinEBMClassifier(**FAST).fit(X, y)
        loaded = pickle.loads(pickle.dumps(clf)).set_params(warm_start=True)
        loaded.partial_fit(X, y)
    assert loaded.n_iter_ == clf.n_iter_ + 1
    assert loaded._buffer.shape == clf._buffer.shape
    assert np.all(np.abs(loaded._buffer) <= 1)


def test_sample_defaults_to_at_least_100_steps(fitted, monkeypatch):
    seen = []
    sgld = langevin.sgld

    def recording(net, x, n_steps, *args, **kwargs):
        seen.append(n_steps)
        return sgld(net, x, n_steps, *args, **kwargs)

    monkeypatch.setattr(langevin, "sgld", recording)
    fitted.sample(2, random_state=0)
    assert seen == [max(100, 10 * fitted.sgld_steps)]
