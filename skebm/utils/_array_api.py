"""Array API dispatch at the estimators' boundary, the scikit-learn way.

With ``sklearn.set_config(array_api_dispatch=True)``, a public method decorated with
:func:`array_api_boundary` takes arrays of any namespace (torch tensors,
array-api-strict arrays, ...) and answers in the namespace and on the device of its
first array argument (of the fitted attributes when it has none, as ``sample``).
Fitted array attributes follow the namespace and device of the ``fit`` input
(``classes_`` and ``feature_names_in_`` stay NumPy).

Torch-only estimators (``_takes_tensors``: ``LangevinEBMClassifier``,
``VAETransformer``) get a torch tensor as it is: they validate it into a tensor
(:func:`float_dtypes`), compute on its device and answer there, so the data never
pass through host memory; the other array arguments (labels) arrive as NumPy. The
other estimators keep their NumPy contract: the decorator converts the array
arguments and the estimator's non-NumPy array attributes to NumPy, and converts the
answer back; torch input runs their numerics on the torch backend on the input's
device (``backend=`` and ``device=`` apply to NumPy input only).

A call other than ``fit`` / ``partial_fit`` never writes the estimator: it runs on a
shallow per-call copy that carries the converted attributes and the parameters that
put it on the input's device, and names the estimator it copies (:func:`origin`,
under which a torch module built for the fitted state is kept and reused). A fit
writes the estimator anyway: under a per-estimator lock it runs on the estimator
itself, as a transaction, and then moves the numeric attributes to the input's
namespace and device. Without dispatch and with NumPy state, the method runs
untouched.

This module never imports torch: it recognises arrays through
``array_api_compat``.
"""

import functools
import threading
import weakref

import numpy as np
from array_api_compat import (
    array_namespace,
    is_array_api_obj,
    is_numpy_array,
    is_torch_array,
)
from sklearn import __version__ as _sklearn_version
from sklearn import get_config
from sklearn.utils._array_api import get_namespace, get_namespace_and_device
from sklearn.utils.fixes import parse_version

#: the estimators follow scikit-learn 1.9's array API conventions (which fitted
#: attributes follow the input's namespace, the checks they pass); with an older
#: scikit-learn they take NumPy only
ARRAY_API_SUPPORT = parse_version(_sklearn_version).release[:2] >= (1, 9)

#: a per-call copy made by the boundary holds the estimator it copies under this key
_ORIGIN = "_boundary_origin"

_LOCKS_GUARD = threading.Lock()
_LOCKS = weakref.WeakKeyDictionary()

#: fitted attributes that stay NumPy whatever the input (labels may be strings)
_KEEP_NUMPY = frozenset({"classes_", "feature_names_in_"})


def _foreign(value):
    """Whether ``value`` is an array of a namespace other than NumPy."""
    return (
        value is not None
        and not isinstance(value, np.ndarray | np.generic)
        and is_array_api_obj(value)
        and not is_numpy_array(value)
    )


def to_numpy(array):
    """A NumPy copy (a view on the CPU where the library allows) of any array."""
    if not _foreign(array):
        return array
    if is_torch_array(array):
        return array.detach().cpu().numpy()
    xp = array_namespace(array)
    if "array_api_strict" in xp.__name__:
        return np.asarray(xp.asarray(array, device=xp.Device("CPU_DEVICE")))
    if "cupy" in xp.__name__:  # pragma: no cover
        return array.get()
    return np.from_dlpack(array)


def numpy_dtype(dtype):
    """The NumPy dtype of a dtype of any namespace (``torch.float32`` -> float32)."""
    try:
        return np.dtype(dtype)
    except TypeError:
        return np.dtype(str(dtype).rsplit(".", 1)[-1])


def float_dtypes(X, dtypes=(np.float64, np.float32)):
    """``dtypes`` (NumPy) as the dtypes of X's namespace, for ``validate_data``.

    Under dispatch, scikit-learn validates a tensor into a tensor when the dtypes it
    is given are the tensor's namespace's; without dispatch these are NumPy's.
    """
    xp, _ = get_namespace(X)
    return tuple(getattr(xp, numpy_dtype(d).name) for d in dtypes)


def from_numpy(array, xp, device):
    """``array`` (NumPy) as an array of namespace ``xp`` on ``device``."""
    if (
        xp is None
        or not isinstance(array, np.ndarray)
        or array.dtype.kind not in "biuf"
    ):
        return array
    return xp.asarray(array, device=device)


def _convert_output(out, xp, device):
    if isinstance(out, tuple):
        return tuple(_convert_output(o, xp, device) for o in out)
    if isinstance(out, dict):  # a Bunch of arrays (HopfieldMemory.recall)
        return type(out)(**{k: _convert_output(v, xp, device) for k, v in out.items()})
    return from_numpy(out, xp, device)


def numpy_state(state):
    """``state`` (an estimator's ``__dict__``) with every array in NumPy, for pickles."""
    return {k: to_numpy(v) for k, v in state.items()}


def _lock(estimator):
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(estimator, threading.RLock())


def _namespace_and_device(array):
    """(namespace, device) of an array of any namespace."""
    namespace_and_device = get_namespace_and_device(array)
    return namespace_and_device[0], namespace_and_device[-1]


def _where(array):
    """(namespace name, device) of an array; NumPy and array-likes are on the CPU."""
    if not _foreign(array):
        return "numpy", "cpu"
    xp, device = _namespace_and_device(array)
    return xp.__name__, str(device)


def _check_same_namespace(estimator, method, first):
    """Under dispatch, inputs after ``fit`` share the namespace and device of the
    fitted attributes, as scikit-learn's ``check_same_namespace`` demands."""
    fitted = (
        value
        for key, value in vars(estimator).items()
        if key not in _KEEP_NUMPY and (_foreign(value) or isinstance(value, np.ndarray))
    )
    reference = next(fitted, None)
    if first is None or reference is None or _where(first) == _where(reference):
        return
    raise ValueError(
        f"Inputs passed to {type(estimator).__name__}.{method}() must use the same "
        f"namespace and the same device as those passed to fit(): got "
        f"{_where(first)}, fitted on {_where(reference)}."
    )


def _run_on_torch(estimator, device):
    """Parameters that put the numerics on the torch backend on ``device``."""
    params = estimator.get_params(deep=False)
    moved = {"backend": "torch", "device": str(device)}
    return {key: value for key, value in moved.items() if key in params}


def origin(estimator):
    """The estimator that ``estimator`` is a per-call copy of (itself when it is not
    one): the owner of what is kept outside ``__dict__`` (built torch modules)."""
    return vars(estimator).get(_ORIGIN, estimator)


def _view(estimator, attributes, params):
    """A shallow per-call copy of ``estimator`` with ``attributes`` and ``params`` set.

    Built without ``__getstate__`` (which would turn tensors into NumPy): the copy
    shares every value but those set, so the estimator itself is never written.
    """
    cls = type(estimator)
    view = cls.__new__(cls)
    vars(view).update(vars(estimator))
    vars(view).update(attributes)
    vars(view).update(params)
    vars(view)[_ORIGIN] = origin(estimator)
    return view


def array_api_boundary(method=None, *, fits=False):
    """Decorate a public method: any array namespace in, the same namespace out.

    ``fits=True`` marks ``fit`` / ``partial_fit``: on success, every numeric array
    attribute moves to the namespace and device of the input (scikit-learn's
    convention); other methods never write the estimator.
    """
    if method is None:
        return functools.partial(array_api_boundary, fits=fits)

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if _ORIGIN in vars(self):  # called from a method already at the boundary
            return method(self, *args, **kwargs)
        dispatch = get_config()["array_api_dispatch"]
        attributes = {k: v for k, v in vars(self).items() if _foreign(v)}
        values = [*args, *kwargs.values()]
        if not attributes and not (dispatch and any(_foreign(a) for a in values)):
            return method(self, *args, **kwargs)
        # the call answers in the namespace and on the device of its first array
        # argument (of the fitted attributes without one); xp None: NumPy out
        arrays = [a for a in values if is_array_api_obj(a)]
        first = arrays[0] if arrays else next(iter(attributes.values()), None)
        xp = device = None
        if dispatch and _foreign(first):
            xp, device = _namespace_and_device(first)
        else:
            first = None
        if dispatch and not fits:
            _check_same_namespace(self, method.__name__, next(iter(arrays), None))
        # torch-only estimators take tensors as they are, on their device
        native = is_torch_array(first) and getattr(self, "_takes_tensors", False)
        # the call's arguments in NumPy, but for a tensor passed as it is
        keep = first if native else None
        args = [a if a is keep else to_numpy(a) for a in args]
        kwargs = {k: v if v is keep else to_numpy(v) for k, v in kwargs.items()}
        moved = _run_on_torch(self, device) if is_torch_array(first) else {}
        converted = {} if native else {k: to_numpy(v) for k, v in attributes.items()}
        if not fits:
            out = method(_view(self, converted, moved), *args, **kwargs)
            return _convert_output(out, xp, device)
        # a fit writes the estimator anyway (a transaction: all or nothing)
        with _lock(self):
            params = self.get_params(deep=False)
            vars(self).update(converted)
            vars(self).update(moved)
            try:
                out = method(self, *args, **kwargs)
            except BaseException:
                vars(self).update(attributes)
                raise
            finally:
                vars(self).update({k: params[k] for k in moved})
            for key, value in list(vars(self).items()):
                if key not in _KEEP_NUMPY and not key.startswith("__"):
                    setattr(self, key, from_numpy(value, xp, device))
            return _convert_output(out, xp, device)

    return wrapper
