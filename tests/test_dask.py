"""Model selection over skebm pipelines runs on a Dask cluster (docs/scaling_out.rst).

``GridSearchCV`` / ``RandomizedSearchCV`` hand their fits to joblib; with
``joblib.parallel_config(backend="dask")`` and a ``distributed.Client`` they run in
the cluster's worker processes and must give what a local ``n_jobs=1`` search gives.
"""

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skebm import RBM, LangevinEBMClassifier, VAETransformer
from tests.conftest import requires_torch

distributed = pytest.importorskip("distributed")

# tiny budgets: the searches compare results, not models
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes on localhost, closed even on failure."""
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(n_class=3, return_X_y=True)
    return X[:90] / 16.0, y[:90]


def _assert_same_search(search, X, y, client):
    local = clone(search).set_params(n_jobs=1).fit(X, y)
    with joblib.parallel_config(backend="dask"):
        remote = clone(search).set_params(n_jobs=2).fit(X, y)
    assert remote.best_params_ == local.best_params_
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"],
        local.cv_results_["mean_test_score"],
        atol=1e-12,
    )
    # the fits ran in the cluster's worker processes; the scheduler may give all of
    # them to one worker, so at least one worker (not each) must have imported skebm
    assert any(client.run(lambda: "skebm" in __import__("sys").modules).values())


def test_grid_search_rbm_pipeline_on_dask(client, digits):
    X, y = digits
    pipe = make_pipeline(
        RBM(n_iter=3, learning_rate=0.05, backend="numpy", random_state=0),
        LogisticRegression(max_iter=200),
    )
    search = GridSearchCV(pipe, {"rbm__n_components": [4, 16]}, cv=3)
    _assert_same_search(search, X, y, client)


@requires_torch
def test_randomized_search_vae_pipeline_on_dask(client, digits):
    X, y = digits
    pipe = make_pipeline(
        VAETransformer(
            hidden_layer_sizes=(8,), max_iter=3, device="cpu", random_state=0
        ),
        LogisticRegression(max_iter=200),
    )
    search = RandomizedSearchCV(
        pipe,
        {"vaetransformer__n_components": [1, 2, 3], "logisticregression__C": [0.1, 1]},
        n_iter=3,
        cv=2,
        random_state=0,
    )
    _assert_same_search(search, X, y, client)


@requires_torch
def test_grid_search_langevin_pipeline_on_dask(client, digits):
    X, y = digits
    pipe = make_pipeline(
        MinMaxScaler(),
        LangevinEBMClassifier(
            hidden_layer_sizes=(8,),
            max_iter=2,
            sgld_steps=2,
            buffer_size=30,
            calibrate=False,
            device="cpu",
            random_state=0,
        ),
    )
    search = GridSearchCV(pipe, {"langevinebmclassifier__energy_weight": [0, 1]}, cv=2)
    _assert_same_search(search, X, y, client)
