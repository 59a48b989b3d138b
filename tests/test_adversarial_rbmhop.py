"""Adversarial tests of RBM and HopfieldMemory off the paths the other tests walk."""

import itertools

import numpy as np
import pytest
from scipy.special import logsumexp

from skebm import RBM


def _binary(n_rows=30, n_features=4, seed=0):
    return (np.random.default_rng(seed).random((n_rows, n_features)) > 0.5).astype(
        float
    )


def _brute_log_z(rbm):
    """log Z by enumerating both layers' joint states (textbook energies)."""
    W, b, c = rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_
    n_hidden, n_visible = W.shape
    terms = []
    for h in itertools.product([0.0, 1.0], repeat=n_hidden):
        h = np.array(h)
        if rbm.visible == "bernoulli":
            # sum over v of exp(b.v + c.h + h W v)
            a = b + W.T @ h
            terms.append(c @ h + np.logaddexp(0.0, a).sum())
        else:
            # integral over v of exp(-|v - b|^2 / 2 + c.h + h W v)
            m = b + W.T @ h
            terms.append(
                c @ h + 0.5 * m @ m - 0.5 * b @ b + 0.5 * n_visible * np.log(2 * np.pi)
            )
    return logsumexp(terms)


def test_log_z_follows_a_change_of_visible_units():
    # the log Z cache was keyed on the parameters and AIS settings but not on
    # `visible`: after set_params(visible=...) score_samples reused the old log Z
    X = _binary()
    rbm = RBM(n_components=3, n_iter=5, learning_rate=0.5, random_state=0).fit(X)
    assert rbm.log_partition() == pytest.approx(_brute_log_z(rbm), abs=1e-9)
    rbm.set_params(visible="gaussian")
    assert rbm.log_partition() == pytest.approx(_brute_log_z(rbm), abs=1e-9)
    log_p = rbm.score_samples(X[:3])
    assert np.allclose(log_p, -rbm.free_energy(X[:3]) - _brute_log_z(rbm))


@pytest.mark.parametrize(
    "first, then", [("bernoulli", "gaussian"), ("gaussian", "bernoulli")]
)
def test_partial_fit_refuses_a_change_of_visible_units(first, then):
    # visible is fixed by the first fit (documented); partial_fit used to train the
    # old parameters with the new kind of units, silently
    X = _binary()
    rbm = RBM(n_components=3, n_iter=2, visible=first, random_state=0)
    rbm.partial_fit(X)
    names = ("components_", "intercept_visible_", "intercept_hidden_", "h_samples_")
    before = {k: getattr(rbm, k).copy() for k in names}
    n_iter = rbm.n_iter_
    rbm.set_params(visible=then)
    with pytest.raises(ValueError, match="visible changed"):
        rbm.partial_fit(X)
    for k, v in before.items():
        assert np.array_equal(getattr(rbm, k), v), k
    assert rbm.n_iter_ == n_iter
    rbm.fit(X)  # a refit takes the new kind, and partial_fit continues it
    rbm.partial_fit(X)
