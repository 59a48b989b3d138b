"""Numerics written once over an array namespace ``xp`` (NumPy, torch, ...).

What the array API standard lacks (random draws from a generator, stable special
functions, in-place kernels) comes from the backend's ``primitives`` module through
:func:`skebm._backends.primitives_for`. Nothing here imports torch.
"""

import array_api_compat

_NAMESPACES = {}


def array_namespace(x):
    """``array_api_compat.array_namespace(x)``, memoised per array type: it costs a
    few microseconds a call, a twentieth of a training step at batch size 10."""
    xp = _NAMESPACES.get(type(x))
    if xp is None:
        xp = _NAMESPACES[type(x)] = array_api_compat.array_namespace(x)
    return xp
