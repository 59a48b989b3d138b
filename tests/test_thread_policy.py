"""The torch thread policy: threads from the problem size, the caller's limits and
joblib, with ``SKEBM_TORCH_THREADS`` as the override (``core.threads_for``)."""

import joblib
import pytest
from threadpoolctl import threadpool_limits

from tests.conftest import HAS_TORCH

pytestmark = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")

if HAS_TORCH:
    import torch

    from skebm._backends.torch import core

BIG = 64 * 2**23  # work enough for 64 threads


@pytest.fixture
def four_threads(monkeypatch):
    """torch at four threads, no override, no BLAS limit below four."""
    monkeypatch.delenv(core.THREADS_ENV, raising=False)
    monkeypatch.setattr(core, "_thread_budget", lambda: 4)
    previous = torch.get_num_threads()
    torch.set_num_threads(4)
    yield
    torch.set_num_threads(previous)


def test_small_work_gets_one_thread(four_threads):
    assert core.threads_for(core.WORK_PER_THREAD - 1, 4) == 1
    assert core.threads_for(3 * core.WORK_PER_THREAD, 4) == 3
    assert core.threads_for(BIG, 4) == 4  # never above torch's own count
    assert core.threads_for(None, 4) == 4  # no size given: the budget only


def test_budget_caps_the_size_rule(four_threads, monkeypatch):
    monkeypatch.setattr(core, "_thread_budget", lambda: 2)
    assert core.threads_for(BIG, 4) == 2


def test_override_by_environment(four_threads, monkeypatch):
    monkeypatch.setenv(core.THREADS_ENV, "3")
    assert core.threads_for(1.0, 1) == 3  # raises too: the user asked for it
    monkeypatch.setenv(core.THREADS_ENV, "nonsense")
    assert core.threads_for(1.0, 4) == 1


def test_thread_limit_sets_and_restores(four_threads):
    with core.thread_limit(1.0):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 4
    with core.thread_limit(BIG):
        assert torch.get_num_threads() == 4


def test_network_work_counts_rows_times_parameters():
    net = torch.nn.Linear(10, 3)  # 33 parameters
    assert core.network_work(net, 64) == 64 * 33


def _threads_in_worker():
    with core.thread_limit(BIG):
        return torch.get_num_threads()


def test_joblib_threading_workers_get_one_thread(four_threads):
    with joblib.parallel_config(backend="threading"):
        counts = joblib.Parallel(n_jobs=2)(
            joblib.delayed(_threads_in_worker)() for _ in range(4)
        )
    assert counts == [1, 1, 1, 1]
    assert _threads_in_worker() == 4  # the main thread, outside joblib


def test_threadpool_limits_hold_for_big_work(monkeypatch):
    monkeypatch.delenv(core.THREADS_ENV, raising=False)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threadpool_limits(1):
            with core.thread_limit(BIG):
                assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)
