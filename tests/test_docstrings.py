"""Public docstrings: numpydoc-valid, shared fragments substituted, doctests pass."""

import doctest
import inspect

import pytest

import skebm
from tests.conftest import HAS_TORCH

numpydoc_validate = pytest.importorskip("numpydoc.validate")

# GL08: private helpers inherited from mixins; SA01/EX01: See Also / Examples are
# required on classes only; ES01: extended summaries optional; RT02: "self" returns.
IGNORED = {"GL08", "SA01", "EX01", "ES01", "RT02", "PR02"}


def _public_objects():
    for name in skebm.__all__:
        obj = getattr(skebm, name)
        if not inspect.isclass(obj):
            continue
        yield f"skebm.{name}"
        for meth, member in inspect.getmembers(obj):
            if meth.startswith("_") or not callable(member):
                continue
            if meth in {
                "get_params",
                "set_params",
                "fit_transform",
                "set_output",
                "get_metadata_routing",
            } or meth.startswith("set_"):
                continue  # inherited from scikit-learn, documented there
            yield f"skebm.{name}.{meth}"


@pytest.mark.parametrize("name", list(_public_objects()))
def test_numpydoc(name):
    result = numpydoc_validate.validate(name)
    errors = [(code, msg) for code, msg in result["errors"] if code not in IGNORED]
    assert not errors, errors


@pytest.mark.parametrize("name", [n for n in skebm.__all__ if n[0].isupper()])
def test_shared_fragments_substituted(name):
    doc = getattr(skebm, name).__doc__
    for placeholder in ("{random_state}", "{backend}", "{device}", "{verbose}"):
        assert placeholder not in doc


@pytest.mark.parametrize("name", [n for n in skebm.__all__ if n[0].isupper()])
def test_doctests(name):
    obj = getattr(skebm, name)
    if "backend" not in obj().get_params() and not HAS_TORCH:
        pytest.skip(f"{name} needs torch")
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(obj, name, globs={}):
        runner.run(test)
    assert runner.failures == 0
