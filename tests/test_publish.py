"""A call that changes an estimator publishes its new state at once: a reader in
another thread sees the fitted state from before the call until the call completes,
never a mix of old and new attributes."""

import threading

import numpy as np
import pytest

from skebm import RBM, HopfieldMemory
from tests.conftest import HAS_TORCH

RNG = np.random.default_rng(0)
PATTERNS = RNG.choice([-1.0, 1.0], size=(6, 40))
X01 = (RNG.random((60, 12)) > 0.5).astype(float)


def _estimators():
    yield "hopfield-hebbian", HopfieldMemory("hebbian", random_state=0), PATTERNS
    yield "hopfield-modern", HopfieldMemory("modern", random_state=0), PATTERNS
    yield "rbm", RBM(n_components=4, n_iter=2, batch_size=20, random_state=0), X01
    if HAS_TORCH:
        from skebm import LangevinEBMClassifier, VAETransformer

        jem = LangevinEBMClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
        yield "jem", jem, X01
        vae = VAETransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=2)
        yield "vae", vae.set_params(random_state=0), X01


def _sklearn_bookkeeping(key):
    """Attributes scikit-learn's callback machinery sets on an estimator during fit."""
    return key.startswith("_skl_") or key == "_callback_fit_ctx"


#: a private step that every fit and partial_fit of the estimator runs before it
#: completes
HOOKS = {
    "hopfield": "_count_unstable",
    "rbm": "_objective",
    "jem": "_divergence_reason",
    "vae": "_divergence_reason",
}


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize(
    "name, est, X", list(_estimators()), ids=[e[0] for e in _estimators()]
)
def test_a_second_fit_publishes_its_state_at_once(
    name, est, X, method, monkeypatch, request
):
    if method == "fit" and not name.startswith("hopfield"):
        # known gap: these re-initialise in place when a fit starts (as
        # scikit-learn's estimators do); only their partial_fit publishes at once
        request.applymarker(pytest.mark.xfail(strict=True, reason="refit in place"))
    y = np.arange(X.shape[0]) % 2
    fit_args = (X, y) if name == "jem" else (X,)
    est.fit(*fit_args)
    before = dict(vars(est))
    hook = HOOKS[name.split("-")[0]]
    original = getattr(type(est), hook)
    reached, release = threading.Event(), threading.Event()

    def paused(self, *args, **kwargs):
        reached.set()
        assert release.wait(30)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(est), hook, paused)
    more = tuple(a[:20] for a in fit_args)
    worker = threading.Thread(target=getattr(est, method), args=more)
    worker.start()
    try:
        assert reached.wait(30)
        # what a concurrent reader finds mid-call (scikit-learn's callback machinery
        # keeps its own bookkeeping there during a fit)
        seen = {k: v for k, v in vars(est).items() if not _sklearn_bookkeeping(k)}
    finally:
        release.set()
        worker.join(30)
    assert seen.keys() == before.keys()
    for key, value in before.items():
        assert seen[key] is value, f"{key} changed before {method} completed"
    changed = [key for key, value in vars(est).items() if before.get(key) is not value]
    assert changed  # the call did publish its new state
