"""scikit-learn's estimator checks over every estimator x every installed backend.

The constructor arguments below only make the checks fast (few units, few epochs);
they do not switch any behaviour off. Expected failures would go in EXPECTED_FAILED
with the reason; there are none.
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skebm import RBM, HopfieldMemory, LangevinEBMClassifier, VAETransformer
from tests.conftest import BACKENDS, HAS_TORCH

#: estimator class -> list of fast constructor-argument dicts (one per variant)
FAST_ARGS = {
    RBM: [
        dict(n_components=4, n_iter=3, random_state=0),
        dict(
            n_components=4,
            n_iter=3,
            random_state=0,
            visible="gaussian",
            learning_rate=0.01,
            centered=True,
            momentum=0.5,
            persistent=False,
            k=2,
        ),
    ],
    HopfieldMemory: [
        dict(rule="hebbian", max_iter=20, random_state=0),
        dict(rule="hebbian", update="sync", max_iter=20, random_state=0),
        dict(rule="storkey", max_iter=20, random_state=0),
        dict(rule="pseudoinverse", max_iter=20, random_state=0),
        dict(rule="dense", max_iter=20, random_state=0),
        dict(rule="modern", max_iter=20, random_state=0),
    ],
}

#: torch-only estimators (no ``backend`` parameter): checked where torch is installed
TORCH_ONLY_ARGS = {
    LangevinEBMClassifier: [
        dict(
            hidden_layer_sizes=(16,),
            max_iter=30,
            learning_rate_init=0.01,
            sgld_steps=2,
            buffer_size=100,
            random_state=0,
        ),
    ],
    VAETransformer: [
        dict(
            n_components=2,
            hidden_layer_sizes=(8,),
            max_iter=5,
            n_importance_samples=10,
            random_state=0,
        ),
        dict(
            n_components=2,
            hidden_layer_sizes=(8,),
            max_iter=5,
            n_importance_samples=10,
            random_state=0,
            conditional=True,
        ),
    ],
}

#: estimator class -> {check name: reason}; empty on purpose
EXPECTED_FAILED = {}


def _instances():
    for cls, variants in FAST_ARGS.items():
        for args in variants:
            for backend in BACKENDS:
                yield cls(**args, backend=backend)
    if HAS_TORCH:
        for cls, variants in TORCH_ONLY_ARGS.items():
            for args in variants:
                yield cls(**args)


@parametrize_with_checks(
    list(_instances()),
    expected_failed_checks=lambda est: EXPECTED_FAILED.get(type(est), {}),
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_every_public_estimator_is_checked():
    import skebm

    exported = {getattr(skebm, name) for name in skebm.__all__ if name[0].isupper()}
    checked = {c.__name__ for c in [*FAST_ARGS, *TORCH_ONLY_ARGS]}
    missing = {cls.__name__ for cls in exported} - checked
    assert not missing, f"add {missing} to FAST_ARGS or TORCH_ONLY_ARGS here"


@pytest.mark.parametrize("cls", list(FAST_ARGS))
def test_backend_parameter_rejects_unknown(cls):
    import numpy as np
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="backend"):
        cls(backend="jax").fit(np.zeros((4, 3)))
