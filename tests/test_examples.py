"""Every example runs (so none goes stale), with a non-interactive backend."""

import importlib.util
import pathlib
import runpy

import pytest

from skebm.utils._array_api import ARRAY_API_SUPPORT

matplotlib = pytest.importorskip("matplotlib")
EXAMPLES = sorted((pathlib.Path(__file__).parents[1] / "examples").rglob("plot_*.py"))


HAS_TORCH = importlib.util.find_spec("torch") is not None
#: an example that mentions one of these needs PyTorch (skipped without it)
TORCH_MARKERS = ("LangevinEBMClassifier", "VAETransformer", '"torch"')


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path, monkeypatch):
    if not HAS_TORCH and any(m in path.read_text() for m in TORCH_MARKERS):
        pytest.skip("this example needs torch")
    if "array_api_dispatch" in path.read_text() and not ARRAY_API_SUPPORT:
        pytest.skip("array API dispatch needs scikit-learn >= 1.9")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setattr(plt, "show", lambda *a, **k: None)
    runpy.run_path(str(path), run_name="__main__")
    plt.close("all")


def test_demo_sections_are_importable():
    import importlib

    from skebm.demo import SECTIONS

    for name in SECTIONS:
        assert callable(importlib.import_module(f"skebm.demo.{name}").run)
