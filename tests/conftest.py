"""Shared fixtures: the backends installed here and the devices they can use."""

import importlib.util
import os
import signal
import threading

# scikit-learn's array API dispatch (tests/test_common.py, tests/test_array_api.py)
# needs SciPy's own support, which SciPy reads when it is first imported
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import pytest  # noqa: E402

HAS_TORCH = importlib.util.find_spec("torch") is not None
BACKENDS = ["numpy", "torch"] if HAS_TORCH else ["numpy"]


def _has_cuda():
    if not HAS_TORCH:
        return False
    import torch

    return torch.cuda.is_available()


HAS_CUDA = _has_cuda()


def pytest_configure(config):
    """Under pytest-xdist (``make test`` runs one worker per core) each worker uses
    one thread: BLAS and torch pools of the core count in every worker would
    oversubscribe the machine several times over and slow the suite down 2-3x."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
        if HAS_TORCH:
            import torch

            torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    skip_cuda = pytest.mark.skip(reason="no CUDA device")
    for item in items:
        if "cuda" in item.keywords and not HAS_CUDA:
            item.add_marker(skip_cuda)


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler for the test, restored afterwards.

    Timer-driven interrupt tests call ``_thread.interrupt_main``, which does nothing
    when SIGINT is not handled by Python; a library used by an earlier test in the
    same worker process may have left another handler installed. The interrupt goes
    to the main thread, where pytest (and each xdist worker) runs the tests.
    """
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("timer interrupts need the main thread")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


requires_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
