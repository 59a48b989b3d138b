"""Sphinx configuration: numpydoc API pages, a sphinx-gallery of the examples and the
pydata theme. The build needs no network (no intersphinx) and runs with ``-W``:

    make docs                                          # executes the gallery
    sphinx-build -W -D plot_gallery=0 -b html docs docs/_build/html   # without
"""

import os
import warnings

import skebm

project = "skebm"
author = "the skebm developers"
copyright = "the skebm developers, BSD-3-Clause"
release = skebm.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
templates_path = ["_templates"]

# -- API pages: one generated page per estimator (docs/generated/, not tracked) -------
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# The public methods documented per estimator. Methods inherited from scikit-learn
# (get_params, set_params, set_output, fit_transform, and the classifier's score, the
# accuracy) are documented by scikit-learn.
autosummary_context = {
    "skebm_members": {
        "RBM": [
            "fit", "partial_fit", "transform", "inverse_transform", "score_samples",
            "score", "log_partition", "free_energy", "energy", "pseudo_likelihood",
            "gibbs", "sample",
        ],
        "HopfieldMemory": [
            "fit", "partial_fit", "transform", "predict", "predict_proba", "recall",
            "energy", "score_samples", "score", "sample",
        ],
        "LangevinEBMClassifier": [
            "fit", "partial_fit", "predict", "predict_proba", "predict_log_proba",
            "score_samples", "energy", "sample",
        ],
        "VAETransformer": [
            "fit", "partial_fit", "transform", "inverse_transform", "score_samples",
            "score", "energy", "sample",
        ],
    }
}  # fmt: skip

# -- Gallery ----------------------------------------------------------------------
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings(
    "ignore",
    message="Matplotlib is currently using agg, which is a non-GUI backend",
    category=UserWarning,
)
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("skebm",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"skebm": None},
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
}

# -- HTML -------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skebm {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
