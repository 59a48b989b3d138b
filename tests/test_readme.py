"""Every Python block of README.md runs as written, without a single warning."""

import pathlib
import re
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.DOTALL | re.M)
#: the estimators that need torch; a block using one is skipped without it
TORCH_ONLY = ("LangevinEBMClassifier", "VAETransformer")


def _block_id(block):
    names = re.findall(r"from skebm import (\w+)", block)
    return names[0] if names else "block"


def run_block(block):
    """Execute ``block`` in a fresh namespace, warnings raised as errors."""
    if any(name in block for name in TORCH_ONLY):
        pytest.importorskip("torch")
    namespace = {}
    # one BLAS thread: the examples are small, and idle threads spinning on a busy
    # machine slow lbfgs down many times over
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("error")
        exec(compile(block, str(README), "exec"), namespace)
    return namespace


def test_readme_has_an_example_per_estimator():
    assert [_block_id(b) for b in BLOCKS] == [
        "RBM",
        "HopfieldMemory",
        "LangevinEBMClassifier",
        "VAETransformer",
    ]


@pytest.mark.parametrize("block", BLOCKS, ids=[_block_id(b) for b in BLOCKS])
def test_readme_block_runs_without_warnings(block):
    run_block(block)


def test_readme_hopfield_example_recalls_every_digit():
    (block,) = [b for b in BLOCKS if _block_id(b) == "HopfieldMemory"]
    ns = run_block(block)
    probes = np.where(ns["flip"], -ns["patterns"], ns["patterns"])
    np.testing.assert_array_equal(ns["memory"].predict(probes), np.arange(10))
