"""Every public call is a transaction: failures, interrupts, threads, pickles.

The iterative estimators (RBM on both backends, LangevinEBMClassifier,
VAETransformer) are driven into failures at chosen points of fit, refit and
partial_fit, and interrupted by a timer at random moments; afterwards the estimator
must be exactly as before the call, or (for an interrupt after at least one
completed epoch) a consistent new model. HopfieldMemory has its own suite in
``test_hopfield_adversarial.py``.
"""

import _thread
import io
import pickle
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import skops.io as sio
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted

from skebm import RBM, LangevinEBMClassifier, VAETransformer, _engine
from tests.conftest import HAS_TORCH

requires_torch = pytest.mark.skipif(not HAS_TORCH, reason="needs torch")

_digits = load_digits()
X = (_digits.data[:240] / 16.0).astype(np.float64)
y = _digits.target[:240]

ESTIMATORS = {
    "rbm-numpy": (RBM(n_components=8, n_iter=3, batch_size=20, random_state=0), False),
    "rbm-torch": (
        RBM(
            n_components=8,
            n_iter=3,
            batch_size=20,
            random_state=0,
            backend="torch",
            device="cpu",
        ),
        False,
    ),
    "langevin": (
        LangevinEBMClassifier(
            hidden_layer_sizes=(16,),
            max_iter=3,
            sgld_steps=2,
            buffer_size=64,
            calibration_cv=2,
            random_state=0,
            device="cpu",
        ),
        True,
    ),
    "vae": (
        VAETransformer(
            n_components=2,
            hidden_layer_sizes=(16,),
            max_iter=3,
            random_state=0,
            device="cpu",
        ),
        False,
    ),
}
NAMES = [n for n in ESTIMATORS if HAS_TORCH or n == "rbm-numpy"]


def _make(name):
    est, needs_y = ESTIMATORS[name]
    return clone(est), needs_y


def _fit(est, needs_y, method="fit", rows=slice(None)):
    args = (X[rows], y[rows]) if needs_y else (X[rows],)
    kwargs = {"classes": np.unique(y)} if needs_y and method == "partial_fit" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return getattr(est, method)(*args, **kwargs)


def _equal(a, b):
    """Deep equality of attribute values (arrays exactly, NaN equal to NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
        )
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(_equal(a[k], b[k]) for k in a)
        )
    if isinstance(a, (list, tuple)):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(_equal(u, v) for u, v in zip(a, b, strict=True))
        )
    if isinstance(a, np.random.RandomState):
        return isinstance(b, np.random.RandomState) and _equal(
            a.get_state(legacy=False), b.get_state(legacy=False)
        )
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a):
        return np.isnan(b)
    if hasattr(a, "get_params") and hasattr(a, "__dict__"):  # a fitted sub-estimator
        return type(a) is type(b) and _equal(vars(a), vars(b))
    return a is b or a == b


def _frozen(est):
    """A deep copy of the estimator's attributes, to compare against later."""
    return pickle.loads(pickle.dumps(_engine.snapshot(est)))


def _assert_unchanged(est, before):
    after = vars(est)
    assert after.keys() == before.keys(), set(after) ^ set(before)
    for key in before:
        assert _equal(after[key], before[key]), key


class _RecordingUnpickler(pickle.Unpickler):
    def __init__(self, blob):
        super().__init__(io.BytesIO(blob))
        self.modules = set()

    def find_class(self, module, name):
        self.modules.add(module)
        return super().find_class(module, name)


def _assert_no_torch(est):
    """The pickle names no torch module, and skops can write the estimator."""
    unpickler = _RecordingUnpickler(pickle.dumps(est))
    unpickler.load()
    assert not [m for m in unpickler.modules if m.split(".")[0] == "torch"]
    sio.dumps(est)


def _outputs(est, needs_y):
    if needs_y:
        return est.predict_proba(X[:50])
    return est.transform(X[:50])


class _Injected(RuntimeError):
    pass


def _fail_at(monkeypatch, name, k):
    """Make the k-th training step of this estimator kind raise."""
    calls = {"n": 0}
    if name.startswith("rbm"):
        target, attr = RBM, "_train_batch"
    else:
        from skebm._backends.torch import nn

        target, attr = nn, "train_epoch"
    real = getattr(target, attr)

    def step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == k:
            raise _Injected(f"injected failure at step {k}")
        return real(*args, **kwargs)

    monkeypatch.setattr(target, attr, step)


# -- failure injection -----------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_failed_fresh_fit_leaves_the_estimator_unfitted(name, k, monkeypatch):
    est, needs_y = _make(name)
    before = _frozen(est)
    _fail_at(monkeypatch, name, k)
    with pytest.raises(_Injected):
        _fit(est, needs_y)
    _assert_unchanged(est, before)
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    _assert_no_torch(est)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("k", [1, 3])
def test_failed_refit_or_update_keeps_the_old_model(name, method, k, monkeypatch):
    if k > 1 and method == "partial_fit" and not name.startswith("rbm"):
        pytest.skip("a neural partial_fit is one training step")
    est, needs_y = _make(name)
    _fit(est, needs_y)
    before, expected = _frozen(est), _outputs(est, needs_y)
    _fail_at(monkeypatch, name, k)
    with pytest.raises(_Injected):
        _fit(est, needs_y, method)
    _assert_unchanged(est, before)
    np.testing.assert_array_equal(_outputs(est, needs_y), expected)
    _assert_no_torch(est)
    monkeypatch.undo()
    _fit(est, needs_y, "partial_fit")  # and it trains on from there
    assert est.n_iter_ == before["n_iter_"] + 1


@pytest.mark.parametrize("name", NAMES)
def test_failure_while_committing_keeps_the_old_model(name, monkeypatch):
    """The failure lands after the training, in the step that stores the result."""
    est, needs_y = _make(name)
    _fit(est, needs_y)
    before = _frozen(est)

    def broken_commit(self, *args):
        vars(self.est)["n_iter_"] = -1  # half-written ...
        raise _Injected("commit")

    trainer = (
        "skebm.base._StateTrainer"
        if name.startswith("rbm")
        else ("skebm._neural._NeuralTrainer")
    )
    monkeypatch.setattr(f"{trainer}.commit", broken_commit)
    with pytest.raises(_Injected):
        _fit(est, needs_y)
    _assert_unchanged(est, before)


@pytest.mark.parametrize("name", NAMES)
def test_a_diverging_update_restores_the_learning_rate(name):
    """A partial_fit that diverges for good raises and leaves the rate (and
    everything else) as it was; the next call trains at the current setting."""
    est, needs_y = _make(name)
    _fit(est, needs_y)
    before = _frozen(est)
    rate = "learning_rate" if name.startswith("rbm") else "learning_rate_init"
    est.set_params(**{rate: 1e12})
    with pytest.raises(FloatingPointError, match=rate):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _fit(est, needs_y, "partial_fit")
    before_rate = ESTIMATORS[name][0].get_params()[rate]
    est.set_params(**{rate: before_rate})
    _assert_unchanged(est, before)
    _fit(est, needs_y, "partial_fit")
    assert est.learning_rate_ == before_rate


@requires_torch
def test_calibration_failure_keeps_the_old_model(monkeypatch):
    est, needs_y = _make("langevin")
    _fit(est, needs_y)
    before = _frozen(est)

    def broken(*args, **kwargs):
        raise _Injected("temperature")

    monkeypatch.setattr(LangevinEBMClassifier, "_crossfit_temperature", broken)
    with pytest.raises(_Injected):
        _fit(est, needs_y)
    _assert_unchanged(est, before)
    _assert_no_torch(est)


# -- interrupts ------------------------------------------------------------------------


def _interrupted_call(fn, delay):
    """Run fn with a KeyboardInterrupt delivered to this thread after ``delay``;
    "raised" if it reached the caller, "returned" otherwise. Returns only once the
    timer is dead and any late interrupt has been absorbed."""
    timer = threading.Timer(delay, _thread.interrupt_main)
    outcome = "returned"
    try:
        timer.start()  # inside: a short delay can fire before start() returns
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn()
    except KeyboardInterrupt:
        outcome = "raised"
    while True:
        try:
            timer.cancel()
            timer.join()
            # a pending interrupt is delivered in here: the interpreter checks
            # for it on calls and backward jumps
            for _ in range(5):
                time.sleep(0.002)
            return outcome
        except KeyboardInterrupt:
            outcome = "raised"


def _fit_seconds(name):
    est, needs_y = _make(name)
    tic = time.perf_counter()
    _fit(est, needs_y)
    return time.perf_counter() - tic


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.usefixtures("python_sigint")
def test_timer_interrupts_leave_the_old_model_or_a_consistent_new_one(name):
    """Ctrl-C at random moments of fit, refit and partial_fit: afterwards the
    estimator is exactly the old one, or a new model that is whole (fitted, finite
    outputs, more epochs, nothing of torch in its state)."""
    duration = _fit_seconds(name)
    rng = np.random.default_rng(0)
    outcomes = set()
    for trial in range(8):
        est, needs_y = _make(name)
        refit = trial % 2 == 1
        if refit:
            _fit(est, needs_y)
        before = _frozen(est)
        method = "partial_fit" if trial % 4 == 3 else "fit"
        delay = rng.uniform(0, 1.2 * duration)
        outcome = _interrupted_call(
            lambda e=est, m=method, n=needs_y: _fit(e, n, m), delay
        )
        outcomes.add(outcome)
        try:
            _assert_unchanged(est, before)
            continue  # the old model (or the old unfitted estimator)
        except AssertionError:
            pass
        check_is_fitted(est)
        if method == "fit":
            assert est.n_iter_ >= 1
        else:
            assert est.n_iter_ == before.get("n_iter_", 0) + 1
        assert np.isfinite(_outputs(est, needs_y)).all()
        _assert_no_torch(est)


@pytest.mark.parametrize("name", NAMES)
def test_interrupt_before_any_epoch_completes_propagates(name, monkeypatch):
    est, needs_y = _make(name)
    _fit(est, needs_y)
    before = _frozen(est)
    _fail_at(monkeypatch, name, 1)
    monkeypatch.setattr(_Injected, "__new__", lambda cls, *a: KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        _fit(est, needs_y)
    _assert_unchanged(est, before)


@pytest.mark.parametrize("name", NAMES)
def test_interrupt_after_an_epoch_keeps_the_completed_epochs(name, monkeypatch):
    est, needs_y = _make(name)
    _fit(est, needs_y)
    steps = {"rbm-numpy": 12, "rbm-torch": 12}.get(name, 1)  # one epoch's steps
    _fail_at(monkeypatch, name, steps + 1)
    monkeypatch.setattr(_Injected, "__new__", lambda cls, *a: KeyboardInterrupt())
    with pytest.warns(UserWarning, match="interrupted"):
        _fit(est, needs_y)
    assert est.n_iter_ == 1
    assert np.isfinite(_outputs(est, needs_y)).all()
    _assert_no_torch(est)


# -- threads ---------------------------------------------------------------------------


def _read_calls(est, needs_y):
    calls = [
        lambda: est.score_samples(X[:40]),
        lambda: (
            est.sample(3, random_state=0)
            if not needs_y
            else est.sample(3, y=[y[0]] * 3, random_state=0)
        ),
    ]
    if needs_y:
        calls += [lambda: est.predict(X[:40]), lambda: est.predict_proba(X[:40])]
    else:
        calls += [lambda: est.transform(X[:40])]
    return calls


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("loaded", [False, True], ids=["fitted", "just-loaded"])
def test_eight_threads_give_the_serial_results(name, loaded):
    est, needs_y = _make(name)
    _fit(est, needs_y)
    serial = [call() for call in _read_calls(est, needs_y)]
    if loaded:
        est = pickle.loads(pickle.dumps(est))
    calls = _read_calls(est, needs_y) * 4
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda call: call(), calls))
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result, serial[i % len(serial)])


# -- pickles after failures ------------------------------------------------------------


@requires_torch
def test_failed_langevin_fit_pickles_without_torch():
    """The reproducer of the issue: a fit that blows up leaves no tensor behind."""
    est = LangevinEBMClassifier(
        hidden_layer_sizes=(16,),
        learning_rate_init=1e3,
        max_iter=3,
        buffer_size=64,
        calibrate=False,
        random_state=0,
    )
    before = _frozen(est)
    with pytest.raises(FloatingPointError, match="learning_rate_init"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
    _assert_unchanged(est, before)
    _assert_no_torch(est)
    with pytest.raises(NotFittedError):
        est.predict(X)


@pytest.mark.parametrize("name", NAMES)
def test_no_torch_object_in_the_state_after_any_call(name):
    est, needs_y = _make(name)
    _fit(est, needs_y)
    _outputs(est, needs_y)
    est.score_samples(X[:5])
    _fit(est, needs_y, "partial_fit")
    for value in vars(est).values():
        assert not type(value).__module__.startswith("torch")
    _assert_no_torch(est)


# -- absurd settings -------------------------------------------------------------------


def test_rbm_absurd_learning_rate_is_not_silent():
    """learning_rate=1e6 once gave a model at -248,676 nats per row silently."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.raises(FloatingPointError, match="learning_rate"):
            RBM(n_components=16, learning_rate=1e6, random_state=0).fit(X > 0.5)


@requires_torch
def test_vae_absurd_learning_rate_is_not_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.raises(FloatingPointError, match="learning_rate_init"):
            VAETransformer(
                n_components=2, max_iter=3, learning_rate_init=1e6, random_state=0
            ).fit(X)


@requires_torch
def test_vae_overflowing_inputs_raise_a_clear_error():
    vae = VAETransformer(
        n_components=2, max_iter=3, likelihood="gaussian", random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae.fit(X * 16)
    extreme = X[:3] * 16
    extreme[1, 5] = 1e308
    with pytest.raises(ValueError, match="overflowed on 1 row"):
        vae.score_samples(extreme)
    for codes in ([[1e308, 1e308]], [[1e308, -1e308]], [[-1e308, 1e308]]):
        try:  # finite, or an error that names the cause
            assert np.isfinite(vae.inverse_transform(np.array(codes))).all()
        except ValueError as exc:
            assert "inverse_transform overflowed" in str(exc)
