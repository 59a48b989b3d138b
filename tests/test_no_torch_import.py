"""skebm and its NumPy backends work where torch cannot be imported."""

import subprocess
import sys
import textwrap

BLOCK_TORCH = """
import sys

class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"No module named {name!r} (blocked by the test)")
        return None

sys.meta_path.insert(0, _NoTorch())
"""


def run_without_torch(code):
    script = BLOCK_TORCH + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )


def test_import_and_numpy_fit_never_import_torch():
    result = run_without_torch(
        """
        import numpy as np
        import skebm
        from skebm import RBM
        X = (np.random.default_rng(0).random((30, 5)) < 0.5).astype(float)
        rbm = RBM(n_components=3, n_iter=2, backend="numpy", random_state=0).fit(X)
        rbm.transform(X); rbm.score_samples(X); rbm.sample(2, n_steps=2)
        assert "torch" not in sys.modules, "torch was imported"
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_torch_backend_without_torch_says_how_to_install():
    result = run_without_torch(
        """
        import numpy as np
        from skebm import RBM
        try:
            RBM(backend="torch").fit(np.zeros((3, 2)))
        except ImportError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "pip install torch" in result.stdout


def test_torch_only_estimators_without_torch_say_how_to_install():
    result = run_without_torch(
        """
        import numpy as np
        import skebm
        for cls in (skebm.LangevinEBMClassifier, skebm.VAETransformer):
            est = cls()
            repr(est)  # constructing and printing needs no torch
            try:
                est.fit(np.zeros((4, 2)), [0, 1, 0, 1])
            except ImportError as exc:
                print(type(est).__name__, exc)
        assert "torch" not in sys.modules
        """
    )
    assert result.returncode == 0, result.stderr
    assert "LangevinEBMClassifier needs PyTorch" in result.stdout
    assert "VAETransformer needs PyTorch" in result.stdout
    assert "pip install torch" in result.stdout


def test_torch_imported_only_by_the_torch_backend():
    """Static guard (also a ruff banned-api rule): no torch import elsewhere."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1] / "skebm"
    pattern = re.compile(r"^\s*(import torch|from torch)", re.MULTILINE)
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "_backends/torch" not in p.as_posix() and pattern.search(p.read_text())
    ]
    assert not offenders
