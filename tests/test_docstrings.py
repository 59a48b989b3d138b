"""Public docstrings: numpydoc-valid, shared fragments substituted, doctests pass."""

import doctest
import inspect

import pytest

import skebm
from tests.conftest import HAS_TORCH

numpydoc_validate = pytest.importorskip("numpydoc.validate")

# GL08: private helpers inherited from mixins; SA01: See Also required on classes
# only; ES01: extended summaries optional; RT02: "self" returns. EX01 (no Examples
# section) is ignored only for methods inherited from scikit-learn: every class and
# every method skebm defines has a doctest example.
IGNORED = {"GL08", "SA01", "ES01", "RT02", "PR02"}


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
    ignored = IGNORED if _defined_in_skebm(name) else IGNORED | {"EX01"}
    errors = [(code, msg) for code, msg in result["errors"] if code not in ignored]
    assert not errors, errors


def _defined_in_skebm(name):
    """Whether the class or method ``skebm.Class[.method]`` is written in skebm."""
    _, cls_name, *meth = name.split(".")
    cls = getattr(skebm, cls_name)
    if not meth:
        return True
    owner = next(k for k in cls.__mro__ if meth[0] in vars(k))
    return owner.__module__.startswith("skebm")


def _resolve(name):
    obj = skebm
    for part in name.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


def test_every_skebm_method_has_an_example():
    """The numpydoc test above checks EX01; this guards the rule itself."""
    missing = [
        name
        for name in _public_objects()
        if _defined_in_skebm(name)
        and "\nExamples\n--------\n" not in inspect.getdoc(_resolve(name))
    ]
    assert not missing, missing


@pytest.mark.parametrize("name", [n for n in skebm.__all__ if n[0].isupper()])
def test_shared_fragments_substituted(name):
    doc = getattr(skebm, name).__doc__
    for placeholder in ("{random_state}", "{backend}", "{device}", "{verbose}"):
        assert placeholder not in doc


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", [n for n in skebm.__all__ if n[0].isupper()])
def test_doctests(name):
    obj = getattr(skebm, name)
    if "backend" not in obj().get_params() and not HAS_TORCH:
        pytest.skip(f"{name} needs torch")
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = finder.find(obj, name, globs={})
    # methods inherited from skebm's mixins (EnergyMixin.score ...), which the finder
    # does not visit on the class
    for meth, member in inspect.getmembers(obj, callable):
        owner = next((k for k in obj.__mro__ if meth in vars(k)), None)
        if meth.startswith("_") or owner in (None, obj):
            continue
        if owner.__module__.startswith("skebm"):
            tests += finder.find(member, f"{name}.{meth}", globs={})
    assert tests
    for test in tests:
        runner.run(test)
    assert runner.failures == 0
