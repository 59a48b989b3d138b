"""The documentation site builds without warnings (the gallery is not executed here).

``make docs`` builds the full site and runs every example; this test builds a copy of
``docs/`` with ``-W`` and ``plot_gallery=0`` so that a broken docstring, reference or
toctree fails the test suite in seconds. The examples themselves run in
``test_examples.py``.
"""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("sphinx_gallery")
pytest.importorskip("pydata_sphinx_theme")
pytest.importorskip("numpydoc")

ROOT = pathlib.Path(__file__).parents[1]
#: build outputs inside docs/ that a fresh build regenerates
GENERATED = ("_build", "auto_examples", "generated")


def test_docs_build_without_warnings(tmp_path):
    # conf.py and the pages refer to ../examples and ../CHANGELOG.md: copy them along
    shutil.copytree(
        ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns(*GENERATED)
    )
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copy(ROOT / "CHANGELOG.md", tmp_path / "CHANGELOG.md")
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    cmd = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-q",
        "-E",
        "-D",
        "plot_gallery=0",
        "-b",
        "html",
        str(tmp_path / "docs"),
        str(tmp_path / "html"),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    html = tmp_path / "html"
    for page in (
        "index.html",
        "getting_started.html",
        "backends.html",
        "scaling_out.html",
        "changelog.html",
        "generated/skebm.RBM.html",
        "user_guide/hopfield.html",
        "auto_examples/index.html",
    ):
        assert (html / page).is_file(), page
    # every public method has its own entry in the API page
    rbm_page = (html / "generated/skebm.RBM.html").read_text()
    assert 'id="skebm.RBM.score_samples"' in rbm_page
