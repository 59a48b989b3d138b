"""Sphinx configuration (the full site, gallery and theme are tracked in issue 6)."""

project = "skebm"
extensions = ["sphinx.ext.autodoc", "numpydoc", "sphinx.ext.mathjax"]
numpydoc_show_class_members = False
html_theme = "alabaster"
exclude_patterns = ["_build"]
