"""The README's Python code runs as written."""

import importlib.util
import pathlib
import re
import warnings

import numpy as np

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_tour_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks
    if importlib.util.find_spec("torch") is None:  # the torch-only estimators' block
        blocks = [b for b in blocks if "LangevinEBMClassifier" not in b]
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs convergence warnings in the tour
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
    np.testing.assert_array_equal(
        namespace["memory"].predict(namespace["B"][:10]), np.arange(10)
    )
