"""Adversarial tests of RBM and HopfieldMemory off the paths the other tests walk."""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import logsumexp

from skebm import RBM, HopfieldMemory


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


def _bipolar(n_rows=3, n_features=20, seed=0):
    return np.random.default_rng(seed).choice([-1.0, 1.0], size=(n_rows, n_features))


@pytest.mark.parametrize(
    "fitted, then", [("modern", "hebbian"), ("hebbian", "modern"), ("dense", "storkey")]
)
@pytest.mark.parametrize(
    "method", ["predict", "transform", "energy", "recall", "predict_proba", "sample"]
)
def test_prediction_after_a_change_of_rule_names_it(fitted, then, method):
    # set_params(rule=...) after fit made every prediction fail on a missing
    # attribute (weights_) or an object-dtype ufunc error; partial_fit already
    # said what was wrong
    X = _bipolar()
    memory = HopfieldMemory(rule=fitted, random_state=0).fit(X)
    memory.set_params(rule=then)
    if method == "predict_proba" and then != "modern":
        pytest.skip("predict_proba exists for rule='modern' only")
    call = getattr(memory, method)
    with pytest.raises(ValueError, match=f"rule changed from '{fitted}' to '{then}'"):
        call(1) if method == "sample" else call(X)
    memory.set_params(rule=fitted)
    assert (memory.predict(X) == np.arange(3)).all()


@pytest.mark.parametrize("method", ["predict", "transform", "energy", "sample"])
def test_dense_degree_raised_after_fit_is_rejected_as_in_fit(method):
    # fit rejects a degree whose interactions overflow; set after fit, the same
    # degree gave silent garbage (every probe "spurious", energies of -0.0)
    X = _bipolar()
    with pytest.raises(ValueError, match="degree=10000 overflows"):
        HopfieldMemory(rule="dense", degree=10000).fit(X)
    memory = HopfieldMemory(rule="dense", random_state=0).fit(X)
    memory.set_params(degree=10000)
    call = getattr(memory, method)
    with pytest.raises(ValueError, match="degree=10000 overflows"):
        call(1) if method == "sample" else call(X)


@pytest.mark.parametrize("first, then", [("real", "binary"), ("binary", "real")])
def test_partial_fit_refuses_an_encoding_other_than_the_stored_one(first, then):
    # partial_fit ignored an encoding set after fit: real patterns added to a
    # binary memory were thresholded, with a warning advising to set `encoding`
    rng = np.random.default_rng(0)
    data = {
        "real": rng.normal(size=(3, 10)),
        "binary": (rng.random((3, 10)) > 0.5).astype(float),
    }
    memory = HopfieldMemory(encoding=first, random_state=0).fit(data[first])
    memories = memory.memories_.copy()
    memory.set_params(encoding=then)
    with pytest.raises(ValueError, match=f"encoding='{then}'.*'{first}'"):
        memory.partial_fit(data[then])
    assert np.array_equal(memory.memories_, memories)
    memory.set_params(encoding="auto").partial_fit(data[first][:1])
    assert memory.memories_.shape == (4, 10)


def test_sparse_duplicate_entries_are_clipped_as_their_sum():
    # a CSR matrix may hold an entry twice (it stands for the sum); clipping each
    # stored value into [0, 1] let the sum 2 through to the Bernoulli units, with
    # no warning, so sparse and dense copies of X got different answers
    X = _binary(20, 5)
    X[:, 0] = 1.0
    data, indices, indptr = [], [], [0]
    for row in X:
        for j in np.flatnonzero(row):
            # column 0 stored twice, 0.6 + 0.6
            data += [0.6, 0.6] if j == 0 else [1.0]
            indices += [j, j] if j == 0 else [j]
        indptr.append(len(data))
    S = sp.csr_matrix((data, indices, indptr), shape=X.shape)
    assert S.nnz > np.count_nonzero(X)
    dense = S.toarray()  # 1.2 in column 0
    rbm = RBM(n_components=3, n_iter=3, random_state=0)
    with pytest.warns(UserWarning, match="outside"):
        rbm.fit(dense)
    ref = {
        "transform": rbm.transform(np.clip(dense, 0, 1)),
        "score_samples": rbm.score_samples(np.clip(dense, 0, 1)),
    }
    for method, expected in ref.items():
        with pytest.warns(UserWarning, match="outside"):
            got = getattr(rbm, method)(S)
        assert np.allclose(got, expected), method
    with pytest.warns(UserWarning, match="outside"):
        sparse_fit = RBM(n_components=3, n_iter=3, random_state=0).fit(S)
    assert np.allclose(sparse_fit.components_, rbm.components_)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"return_std": "no"}, "return_std must be True or False"),
        ({"return_std": 1}, "return_std must be True or False"),
        ({"max_states": True}, "max_states must be an int"),
    ],
)
def test_log_partition_rejects_non_boolean_flags(kwargs, match):
    # "no" is truthy: it returned (log Z, std); True was read as max_states=1
    rbm = RBM(n_components=2, n_iter=1, random_state=0).fit(_binary(10, 3))
    with pytest.raises(ValueError, match=match):
        rbm.log_partition(**kwargs)
    assert isinstance(rbm.log_partition(return_std=np.True_), tuple)
