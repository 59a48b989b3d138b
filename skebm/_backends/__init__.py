"""The backend seam: numerics per backend, behind identical module and function names.

Each backend is a package (``skebm._backends.numpy``, ``skebm._backends.torch``) with
the same sub-modules (``core`` for arrays, devices and random generators,
``primitives`` for what the array API standard lacks) exposing the same functions;
``rbm`` and ``hopfield`` are the shared numerics of ``skebm._numerics``, written once
over an array namespace. Estimators call :func:`get_backend` and never import a
backend package directly; only the torch package imports torch, and it is imported
the first time it is asked for.
"""

import functools
import importlib

from array_api_compat import is_torch_namespace

#: name -> importable package; add a backend by adding a mirrored package here.
BACKENDS = {
    "numpy": "skebm._backends.numpy",
    "torch": "skebm._backends.torch",
}

_TORCH_HINT = (
    "The 'torch' backend needs PyTorch, which is not installed. Install it with "
    "`pip install torch` (or `pip install skebm[torch]`), or use backend='numpy'."
)


def get_backend(name):
    """Return the backend package ``name`` (``"numpy"`` or ``"torch"``).

    Raises
    ------
    ImportError
        If the backend's library is not installed; the message says how to install it.
    ValueError
        If ``name`` is not a known backend.
    """
    if name not in BACKENDS:
        raise ValueError(
            f"Unknown backend {name!r}; expected one of {sorted(BACKENDS)}."
        )
    try:
        return importlib.import_module(BACKENDS[name])
    except ImportError as exc:
        if name == "torch" and exc.name in ("torch", None):
            raise ImportError(_TORCH_HINT) from exc
        raise


@functools.cache
def primitives_for(xp):
    """The backend module of primitives (random draws, special functions) that
    serves arrays of namespace ``xp``: torch's for torch, NumPy's otherwise."""
    return get_backend("torch" if is_torch_namespace(xp) else "numpy").primitives


def available_backends():
    """Names of the backends whose library can be imported here (without importing it)."""
    names = ["numpy"]
    if importlib.util.find_spec("torch") is not None:
        names.append("torch")
    return names
