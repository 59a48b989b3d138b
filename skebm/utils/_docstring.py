"""Parameter descriptions shared by several estimators (CONTRIBUTING.md, convention 2).

Use ``@substitute_docstring`` on a class whose docstring contains placeholders such as
``{random_state}``; only the known names below are replaced, so other braces in the
docstring (sets of options, dict literals) are left alone.
"""

import textwrap

_SHARED = {
    "backend": """backend : {"numpy", "torch"}, default="numpy"
    Which numerical backend runs the computations. "numpy" needs nothing beyond
    the runtime dependencies; "torch" needs PyTorch and can use a GPU. Both give
    the same results up to floating point rounding (and to the random streams,
    which differ between backends). It chooses for NumPy input: under array API
    dispatch, estimators that support it compute torch tensors on the torch
    backend, on the tensors' device.""",
    "device": """device : str, default="auto"
    Where the torch backend computes: "cpu", "cuda" or "cuda:N"; "auto" picks
    CUDA when a device is available, else the CPU. The numpy backend accepts only
    "auto" and "cpu". Fitted attributes are NumPy arrays whatever the device
    (under array API dispatch, arrays of the fit input's namespace), and pickles
    hold NumPy arrays, so a model fitted on a GPU loads on a machine without
    one.""",
    "random_state": """random_state : int, RandomState instance or None, default=None
    Seeds initialisation, batch shuffling and every sampler. An int gives
    identical results for the same backend, device and machine. See
    :term:`Glossary <random_state>`.""",
    "verbose": """verbose : int, default=0
    If positive, print one line per epoch with the monitoring figure and the
    time it took.""",
}


def substitute_docstring(obj):
    """Replace ``{name}`` placeholders of the shared parameters in ``obj.__doc__``."""
    doc = obj.__doc__
    for name, text in _SHARED.items():
        placeholder = "{" + name + "}"
        for line in doc.splitlines():
            if line.strip() == placeholder:
                indent = line[: len(line) - len(line.lstrip())]
                doc = doc.replace(line, textwrap.indent(text, indent))
    obj.__doc__ = doc
    return obj
