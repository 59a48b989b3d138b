"""Torch work stays within the caller's thread budget, and the caller's count returns.

The budget is what threadpoolctl reports (``threadpool_limits``, the variables that
joblib's loky backend and Dask set in workers). threadpoolctl alone misses torch's
pool when torch sizes it after the limits were entered (skebm imports torch lazily)
or works in another thread; ``skebm._backends.torch.core.thread_limit`` closes both.
"""

import contextlib
import threading

import joblib
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from skebm import RBM, HopfieldMemory, LangevinEBMClassifier
from tests.conftest import HAS_TORCH

pytestmark = [
    pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]

if HAS_TORCH:
    import torch

    from skebm._backends.torch import core
    from skebm._backends.torch import rbm as torch_rbm


X = (np.random.default_rng(0).random((40, 6)) < 0.5).astype(float)
y = np.arange(40) % 2


class _Recording(torch.nn.Module if HAS_TORCH else object):
    """A linear classifier that records torch's thread count at every forward."""

    seen = []

    def __init__(self, n_features, n_classes):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, n_classes)

    def forward(self, x):
        _Recording.seen.append(torch.get_num_threads())
        return self.linear(x)


def _langevin():
    _Recording.seen = []
    return LangevinEBMClassifier(
        module=_Recording,
        max_iter=2,
        sgld_steps=1,
        buffer_size=20,
        device="cpu",
        random_state=0,
    )


@pytest.fixture
def recorded(monkeypatch):
    """Thread counts seen by the torch RBM's training step and transform."""
    seen = []

    def record(fn):
        def wrapped(*args, **kwargs):
            seen.append(torch.get_num_threads())
            return fn(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(RBM, "_train_batch", record(RBM._train_batch))
    monkeypatch.setattr(torch_rbm, "mean_hiddens", record(torch_rbm.mean_hiddens))
    return seen


@pytest.fixture
def two_threads():
    """torch at two intra-op threads; the session's count restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def test_rbm_follows_threadpool_limits(recorded, two_threads):
    with threadpool_limits(1):
        torch.set_num_threads(2)  # as when torch initialises inside the block
        rbm = RBM(n_components=3, n_iter=2, backend="torch", random_state=0).fit(X)
        rbm.transform(X)
        assert torch.get_num_threads() == 2  # the caller's setting, restored
    assert recorded and set(recorded) == {1}


def test_torch_only_estimator_follows_threadpool_limits(two_threads):
    with threadpool_limits(1):
        torch.set_num_threads(2)
        clf = _langevin().fit(X, y)
        n_fit = len(_Recording.seen)
        clf.predict(X)
        assert torch.get_num_threads() == 2
    assert n_fit and len(_Recording.seen) > n_fit
    assert set(_Recording.seen) == {1}


def test_hopfield_store_and_recall_follow_threadpool_limits(two_threads, monkeypatch):
    seen = []
    limit = core.thread_limit

    @contextlib.contextmanager
    def recording_limit():
        with limit():
            seen.append(torch.get_num_threads())
            yield

    monkeypatch.setattr(core, "thread_limit", recording_limit)
    patterns = (np.random.default_rng(0).random((2, 40)) < 0.5).astype(float)
    with threadpool_limits(1):
        torch.set_num_threads(2)
        HopfieldMemory(backend="torch", random_state=0).fit(patterns).transform(
            patterns
        )
        assert torch.get_num_threads() == 2
    assert seen == [1, 1, 1]  # store; recall: the finiteness check, the dynamics


def test_fit_in_another_thread_follows_the_blas_limit(two_threads):
    """A worker thread (joblib's threading backend, a Dask worker thread) starts
    with torch's default pool; the process-wide BLAS limit still holds it."""
    after = []

    def fit():
        torch.set_num_threads(2)
        _langevin().fit(X, y)
        after.append(torch.get_num_threads())

    with threadpool_limits(1):
        worker = threading.Thread(target=fit)
        worker.start()
        worker.join()
    assert set(_Recording.seen) == {1}
    assert after == [2]


def test_torch_thread_count_is_never_raised(recorded, two_threads):
    torch.set_num_threads(1)
    RBM(n_components=3, n_iter=1, backend="torch", random_state=0).fit(X)
    assert set(recorded) == {1}
    assert torch.get_num_threads() == 1


def _torch_threads_in_fit():
    _langevin().fit(X, y)
    return sorted(set(_Recording.seen))


def test_loky_workers_follow_inner_max_num_threads():
    with joblib.parallel_config(backend="loky", inner_max_num_threads=1):
        results = joblib.Parallel(n_jobs=2)(
            joblib.delayed(_torch_threads_in_fit)() for _ in range(2)
        )
    assert results == [[1], [1]]
