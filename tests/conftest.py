"""Shared fixtures: the backends installed here and the devices they can use."""

import importlib.util

import pytest

HAS_TORCH = importlib.util.find_spec("torch") is not None
BACKENDS = ["numpy", "torch"] if HAS_TORCH else ["numpy"]


def _has_cuda():
    if not HAS_TORCH:
        return False
    import torch

    return torch.cuda.is_available()


HAS_CUDA = _has_cuda()


def pytest_collection_modifyitems(config, items):
    skip_cuda = pytest.mark.skip(reason="no CUDA device")
    for item in items:
        if "cuda" in item.keywords and not HAS_CUDA:
            item.add_marker(skip_cuda)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


requires_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
