"""Adversarial checks of the slimmed neural estimators and training engine.

Warnings that a fit or a method issues must point at the user's line (this
file), not at a line of skebm or scikit-learn, whatever the number of wrappers
between them.
"""

import pickle
import threading
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skebm import LangevinEBMClassifier, VAETransformer
from tests.conftest import HAS_TORCH, requires_torch

if HAS_TORCH:
    import torch

pytestmark = requires_torch

rng = np.random.default_rng(0)
X = rng.normal(size=(40, 3))
y = (X[:, 0] > 0).astype(int)


def _langevin(**params):
    return LangevinEBMClassifier(
        hidden_layer_sizes=(8,),
        max_iter=3,
        sgld_steps=1,
        buffer_size=20,
        device="cpu",
        random_state=0,
    ).set_params(**params)


def _vae(**params):
    return VAETransformer(
        n_components=2, hidden_layer_sizes=(8,), max_iter=3, random_state=0
    ).set_params(**params)


def _interrupt_second_epoch(monkeypatch):
    """Ctrl-C in the second training epoch of the next fit."""
    import skebm._backends.torch.nn as nn

    train_epoch, calls = nn.train_epoch, []

    def interrupted(*args, **kwargs):
        calls.append(None)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return train_epoch(*args, **kwargs)

    monkeypatch.setattr(nn, "train_epoch", interrupted)


def _only(caught, category, text):
    found = [w for w in caught if w.category is category and text in str(w.message)]
    assert len(found) == 1, [str(w.message) for w in caught]
    return found[0]


@pytest.mark.parametrize("make", [_langevin, _vae], ids=["langevin", "vae"])
def test_interrupt_warning_points_at_the_user(make, monkeypatch):
    _interrupt_second_epoch(monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = make().fit(X, y)
    assert est.n_iter_ == 1  # the completed epoch is kept
    assert _only(caught, UserWarning, "interrupted").filename == __file__


def test_calibration_interrupt_warning_points_at_the_user(monkeypatch):
    def interrupted(self, X, y):
        raise KeyboardInterrupt

    monkeypatch.setattr(LangevinEBMClassifier, "_crossfit_temperature", interrupted)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = _langevin(calibration_cv=2).fit(X, y)
    assert clf.temperature_ == 1.0
    assert _only(caught, UserWarning, "calibration").filename == __file__


@pytest.mark.parametrize("make", [_langevin, _vae], ids=["langevin", "vae"])
def test_max_iter_warning_points_at_the_user(make):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make(max_iter=1).fit(X, y)
    assert _only(caught, ConvergenceWarning, "maximum").filename == __file__


def test_divergence_warning_points_at_the_user():
    vae = _vae(learning_rate_init=1e6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(FloatingPointError):
            vae.fit(X * 1e3)
    diverged = [w for w in caught if "rolled back" in str(w.message)]
    assert diverged and all(w.filename == __file__ for w in diverged)


def test_vae_energy_clip_warning_points_at_the_user():
    Xb = (rng.random((30, 4)) < 0.5).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae = _vae(likelihood="bernoulli", max_iter=1).fit(Xb)
    for method in (vae.score_samples, vae.energy):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            method(Xb + 1e-3)
        assert _only(caught, UserWarning, "outside [0, 1]").filename == __file__


class _Gate(torch.nn.Module if HAS_TORCH else object):
    """A dropout network whose forward can hold a thread at a named gate."""

    gates = {}

    def __init__(self, n_features, n_classes):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(n_features, 16),
            torch.nn.Dropout(0.5),
            torch.nn.Linear(16, n_classes),
        )

    def forward(self, x):
        gate = _Gate.gates.pop(threading.current_thread().name, None)
        if gate is not None:
            arrived, proceed = gate
            arrived.set()
            assert proceed.wait(10)
        return self.body(x)


def test_sample_and_predict_in_threads_on_a_loaded_model():
    """A just-loaded model's first sample() must not leave its module in training
    mode while another thread predicts: dropout would make predict random."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = _langevin(module=_Gate, max_iter=2).fit(X, y)
    expected = clf.predict_proba(X)
    loaded = pickle.loads(pickle.dumps(clf))
    sampling, predicting = threading.Event(), threading.Event()
    sampled, release = threading.Event(), threading.Event()
    # the sampler stops in its first SGLD step until the predictor is in forward
    _Gate.gates["sampler"] = (sampling, predicting)
    _Gate.gates["predictor"] = (predicting, release)
    out = {}

    def sample():
        loaded.sample(2, random_state=0)
        sampled.set()

    threads = [
        threading.Thread(target=sample, name="sampler"),
        threading.Thread(
            target=lambda: out.update(p=loaded.predict_proba(X)), name="predictor"
        ),
    ]
    threads[0].start()
    assert sampling.wait(10)
    threads[1].start()
    assert sampled.wait(10)  # the sample is done; the predictor goes on
    release.set()
    for thread in threads:
        thread.join(10)
    _Gate.gates.clear()
    np.testing.assert_allclose(out["p"], expected)


def test_predict_in_inference_mode_leaves_the_model_usable_for_sample():
    """The first predict of a loaded model builds its module; inside the user's
    torch.inference_mode() that module's parameters must not become inference
    tensors, or every later sample() (SGLD needs gradients) fails."""
    for dtype in (np.float64, np.float32):  # float32: the module is converted
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = _langevin(max_iter=1).fit(X.astype(dtype), y)
        loaded = pickle.loads(pickle.dumps(clf))
        with torch.inference_mode():
            loaded.predict(X)
        np.testing.assert_array_equal(
            loaded.sample(2, random_state=0), clf.sample(2, random_state=0)
        )


def test_unconditional_vae_ignores_y_in_inverse_transform():
    """As documented (and as sample does): y is ignored by unconditional models."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        vae = _vae(max_iter=1).fit(X)
    Z = vae.transform(X[:4])
    np.testing.assert_array_equal(
        vae.inverse_transform(Z, y=[0, 1, 0, 1]), vae.inverse_transform(Z)
    )


def test_interrupted_holdout_calibration_keeps_the_trained_model(monkeypatch):
    """Ctrl-C in the default (held-out) calibration ends the calibration only, as
    in the cross-fitted one: the trained network is kept, with a warning."""
    import skebm._backends.torch.langevin as langevin

    def interrupted(logits, target):
        raise KeyboardInterrupt

    monkeypatch.setattr(langevin, "fit_temperature", interrupted)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            clf = _langevin(max_iter=2).fit(X, y)
        except KeyboardInterrupt:
            pytest.fail("the interrupt threw the trained model away")
    assert clf.n_iter_ == 2 and clf.temperature_ == 1.0
    assert _only(caught, UserWarning, "calibration").filename == __file__
    assert clf.predict(X).shape == y.shape


@pytest.mark.parametrize("make", [_langevin, _vae], ids=["langevin", "vae"])
def test_fit_inside_no_grad_trains_as_outside(make):
    """Training takes its own gradients: a fit called inside the user's
    torch.no_grad() (e.g. next to inference code) trains the same model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        expected = make(max_iter=2).fit(X, y)
        with torch.no_grad():
            est = make(max_iter=2).fit(X, y)
    assert est.loss_curve_ == expected.loss_curve_
