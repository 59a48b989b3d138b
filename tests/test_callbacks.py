"""scikit-learn's experimental callbacks in the two training loops.

Each ``fit`` / ``partial_fit`` is a root task with one sub-task per epoch; an
``on_fit_task_end`` that returns True stops training after that epoch. Without
``sklearn.callback`` (scikit-learn < 1.9) the estimators work as before.
"""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skebm import RBM, LangevinEBMClassifier, VAETransformer
from tests.conftest import requires_torch

pytest.importorskip("sklearn.callback")

X = (np.random.default_rng(0).random((40, 6)) < 0.5).astype(float)
y = np.arange(40) % 2


class Recorder:
    """Records (hook, task name, task id) of every hook call, in order."""

    def __init__(self, stop_after=None):
        self.stop_after = stop_after
        self.events = []
        self.fitted = []

    def setup(self, estimator, context):
        self.events.append(("setup", context.task_name, context.task_id))

    def on_fit_task_begin(self, estimator, context):
        self.events.append(("begin", context.task_name, context.task_id))

    def on_fit_task_end(
        self, estimator, context, *, X=None, y=None, fitted_estimator=None
    ):
        self.events.append(("end", context.task_name, context.task_id))
        self.fitted.append(fitted_estimator)
        self.data = X, y
        epochs = sum(e[:2] == ("end", "epoch") for e in self.events)
        return self.stop_after is not None and epochs >= self.stop_after

    def teardown(self, estimator, context):
        self.events.append(("teardown", context.task_name, context.task_id))

    def epochs(self):
        return [e for e in self.events if e[1] == "epoch"]


class PropagatedRecorder(Recorder):
    """Auto-propagated: set on a Pipeline, it reaches the skebm step."""

    max_propagation_depth = None


def _expected(n_epochs):
    epochs = []
    for i in range(n_epochs):
        epochs += [("begin", "epoch", i), ("end", "epoch", i)]
    return [
        ("setup", "fit", 0),
        ("begin", "fit", 0),
        *epochs,
        ("end", "fit", 0),
        ("teardown", "fit", 0),
    ]


def _rbm(backend):
    return RBM(n_components=3, n_iter=3, backend=backend, random_state=0)


def _vae():
    return VAETransformer(
        n_components=2,
        hidden_layer_sizes=(4,),
        max_iter=3,
        device="cpu",
        random_state=0,
    )


def _langevin():
    return LangevinEBMClassifier(
        hidden_layer_sizes=(4,),
        max_iter=3,
        sgld_steps=1,
        buffer_size=20,
        device="cpu",
        random_state=0,
    )


def test_rbm_reports_one_task_per_epoch(backend):
    recorder = Recorder()
    rbm = _rbm(backend).set_callbacks(recorder).fit(X)
    assert recorder.events == _expected(3)
    # the epoch's fitted_estimator is usable; the last one is the fitted model
    np.testing.assert_allclose(recorder.fitted[-2].components_, rbm.components_)
    np.testing.assert_allclose(recorder.fitted[-2].transform(X), rbm.transform(X))
    assert not np.allclose(recorder.fitted[0].components_, rbm.components_)
    assert not hasattr(rbm, "_callback_fit_ctx")  # torn down


def test_rbm_partial_fit_is_one_epoch_task(backend):
    recorder = Recorder()
    rbm = _rbm(backend).set_callbacks(recorder)
    rbm.partial_fit(X)
    rbm.partial_fit(X)
    assert recorder.events == _expected(1) * 2


def test_rbm_callback_can_stop_training(backend):
    rbm = _rbm(backend).set_params(n_iter=10).set_callbacks(Recorder(stop_after=2))
    assert rbm.fit(X).n_iter_ == 2


def test_rbm_callback_stop_while_averaging_keeps_what_it_saw(backend):
    """Stopped in the averaging epochs, fit stores the mean over those completed,
    which is the fitted estimator the callback received."""
    recorder = Recorder(stop_after=9)
    rbm = _rbm(backend).set_params(n_iter=10, average_epochs=2)
    rbm.set_callbacks(recorder).fit(X)
    assert rbm.n_iter_ == 9
    seen = recorder.fitted[-2]  # the end of epoch 9 (the last is the fit task)
    np.testing.assert_array_equal(seen.components_, rbm.components_)
    assert rbm._last_update is not None
    assert not np.allclose(rbm._last_update["W"], rbm.components_)


@requires_torch
@pytest.mark.parametrize("make", [_vae, _langevin], ids=["vae", "langevin"])
def test_torch_only_estimators_report_one_task_per_epoch(make):
    recorder = Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = make().set_callbacks(recorder).fit(X, y)
    assert recorder.events == _expected(3)
    assert est.n_iter_ == 3
    # a fitted_estimator is a snapshot: it predicts with that epoch's weights
    snapshot = recorder.fitted[0]
    assert snapshot is not est and snapshot.n_iter_ == 1
    # the hooks see the data as passed to fit, not the scaled / encoded copies
    assert recorder.data[0] is X and recorder.data[1] is y


@requires_torch
def test_scoring_monitor_scores_every_epoch_of_a_classifier():
    from sklearn.callback import ScoringMonitor

    labels = np.array(["even", "odd"])[y]
    monitor = ScoringMonitor(scoring="accuracy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = _langevin().set_callbacks(monitor).fit(X, labels)
    scores = {
        (r["task_name"], r["task_id"]): r["accuracy"] for r in monitor.get_logs().data
    }
    assert sorted(scores) == [("epoch", 0), ("epoch", 1), ("epoch", 2), ("fit", 0)]
    assert scores["fit", 0] == pytest.approx(clf.score(X, labels))


@requires_torch
@pytest.mark.parametrize("make", [_vae, _langevin], ids=["vae", "langevin"])
def test_torch_only_callback_can_stop_training(make):
    est = make().set_params(max_iter=10).set_callbacks(Recorder(stop_after=2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a stop is no failure
        assert est.fit(X, y).n_iter_ == 2


@pytest.mark.parametrize(
    "make",
    [lambda: _rbm("numpy"), pytest.param(_vae, marks=requires_torch)],
    ids=["rbm", "vae"],
)
def test_callbacks_reach_the_skebm_step_of_a_pipeline(make):
    recorder = PropagatedRecorder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", "The estimator MinMaxScaler does not support")
        make_pipeline(MinMaxScaler(), make()).set_callbacks(recorder).fit(X)
    assert len(recorder.epochs()) == 2 * 3


@pytest.mark.parametrize(
    "make",
    [lambda: _rbm("numpy"), pytest.param(_langevin, marks=requires_torch)],
    ids=["rbm", "langevin"],
)
def test_progress_bar(make):
    pytest.importorskip("rich")
    from sklearn.callback import ProgressBar

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        make().set_callbacks(ProgressBar()).fit(X, y)


def test_estimators_work_without_sklearn_callback():
    """As on scikit-learn < 1.9: no set_callbacks, fits unchanged."""
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        import sklearn.model_selection, sklearn.pipeline  # they import sklearn.callback
        saved = sys.modules.pop("sklearn.callback")
        sys.modules["sklearn.callback"] = None  # `import sklearn.callback` fails
        from skebm import RBM
        sys.modules["sklearn.callback"] = saved  # sklearn's own fit machinery needs it
        assert not hasattr(RBM(), "set_callbacks")
        X = (np.random.default_rng(0).random((20, 4)) < 0.5).astype(float)
        assert RBM(n_components=2, n_iter=2, backend="numpy").fit(X).n_iter_ == 2
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
