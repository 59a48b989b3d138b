"""Adversarial checks of LangevinEBMClassifier and VAETransformer off the tested
paths: user networks, labels of other types, partial_fit's ``classes``, and
parameters that shape the network changed after fit."""

import pickle

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning

from skebm import LangevinEBMClassifier, VAETransformer
from tests.conftest import HAS_TORCH, requires_torch

if HAS_TORCH:
    import torch

pytestmark = [
    requires_torch,
    pytest.mark.filterwarnings("ignore", category=ConvergenceWarning),
]

rng = np.random.default_rng(0)
X = rng.normal(size=(30, 3))
y = np.arange(30) % 3


def _langevin(**params):
    return LangevinEBMClassifier(
        hidden_layer_sizes=(8,),
        max_iter=1,
        sgld_steps=1,
        buffer_size=20,
        device="cpu",
        random_state=0,
    ).set_params(**params)


def _vae(**params):
    return VAETransformer(
        n_components=2, hidden_layer_sizes=(8,), max_iter=1, random_state=0
    ).set_params(**params)


@pytest.mark.parametrize("n_out", [1, 2, 4])
def test_user_module_with_the_wrong_number_of_logits_is_an_error(n_out):
    # three classes: a network with another number of outputs must be refused,
    # not trained (4 outputs trained silently, 1 or 2 raised an IndexError)
    clf = _langevin(
        module=lambda n_features, n_classes: torch.nn.Linear(n_features, n_out)
    )
    with pytest.raises(ValueError, match=r"module.*\(2, 3\)"):
        clf.fit(X, y)
    assert not hasattr(clf, "n_iter_")


def test_user_module_with_the_wrong_input_width_says_so():
    clf = _langevin(module=lambda n_features, n_classes: torch.nn.Linear(5, n_classes))
    with pytest.raises(ValueError, match=r"module.*\(2, 3\)"):
        clf.fit(X, y)


class _LogitsAndFeatures(torch.nn.Module if HAS_TORCH else object):
    def __init__(self, n_features, n_classes):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, n_classes)

    def forward(self, x):
        return self.linear(x), x


def test_user_module_that_returns_a_tuple_is_named():
    # was an AttributeError or a cross-entropy TypeError on a tuple
    with pytest.raises(ValueError, match=r"module.*\(2, 3\).*tuple"):
        _langevin(module=_LogitsAndFeatures).fit(X, y)


def test_user_module_with_batch_norm_trains():
    def factory(n_features, n_classes):
        return torch.nn.Sequential(
            torch.nn.Linear(n_features, 8),
            torch.nn.BatchNorm1d(8),
            torch.nn.SiLU(),
            torch.nn.Linear(8, n_classes),
        )

    clf = _langevin(module=factory, max_iter=2).fit(X, y)
    assert clf.predict_proba(X).shape == (30, 3)


@pytest.mark.parametrize("make", [_langevin, _vae])
def test_partial_fit_refuses_other_classes_later(make):
    # as MLPClassifier: classes= on a later call must be the first call's
    est = make(conditional=True) if make is _vae else make()
    est.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="not the same as on last call"):
        est.partial_fit(X, y, classes=[0, 1, 2, 3])
    assert est.n_iter_ == 1
    est.partial_fit(X, y, classes=[2, 1, 0])  # the same classes: fine
    assert est.n_iter_ == 2


@pytest.mark.parametrize(
    "labels, label",
    [
        (y + 1.0, 2.0),
        (y + 1.0, np.float64(2.0)),
        (y > 0, np.True_),
        (y > 0, True),
    ],
)
def test_sample_takes_one_label_of_the_classes_type(labels, label):
    clf = _langevin().fit(X, labels)
    out = clf.sample(2, y=label, n_steps=1, random_state=0)
    assert out.shape == (2, 3)
    with pytest.raises(ValueError, match="Unknown label"):
        clf.sample(2, y=0.5 if labels.dtype.kind == "f" else 7, n_steps=1)


@pytest.mark.parametrize(
    "make, change",
    [
        (_langevin, {"hidden_layer_sizes": (5,)}),
        (_vae, {"n_components": 3}),
        (_vae, {"hidden_layer_sizes": (4, 4)}),
    ],
)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_training_on_after_a_shape_change_says_what_changed(make, change, method):
    # was a RuntimeError of torch's load_state_dict (size mismatch)
    est = make(warm_start=True)
    est.fit(X, y)
    before = est.transform(X) if make is _vae else est.predict_proba(X)
    est.set_params(**change)
    with pytest.raises(ValueError, match="changed after fit"):
        getattr(est, method)(X, y)
    assert est.n_iter_ == 1
    est.set_params(warm_start=False).fit(X, y)  # fitting anew works
    assert est.n_iter_ == 1 and before.shape[0] == 30


def test_set_params_after_fit_acts_alike_before_and_after_pickling():
    # the module built at fit was kept and answered for the old activation, a
    # loaded copy built the new one: two answers from one model
    clf = _langevin().fit(X, y)
    clf.set_params(activation="relu")
    proba = clf.predict_proba(X)
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(proba, loaded.predict_proba(X))
    clf.set_params(hidden_layer_sizes=(5,))
    for model in (clf, pickle.loads(pickle.dumps(clf))):
        with pytest.raises(ValueError, match="changed after fit"):
            model.predict(X)


def test_vae_conditional_switched_off_after_fit_is_a_clear_error():
    # was a TypeError ('NoneType' object is not subscriptable) from sample
    vae = _vae(conditional=True).fit(X, y)
    vae.set_params(conditional=False)
    for method in ("transform", "sample"):
        with pytest.raises(ValueError, match="changed after fit"):
            getattr(vae, method)(X) if method == "transform" else vae.sample(2)
    vae.set_params(conditional=True)
    assert vae.sample(2, y=1).shape == (2, 3)


def test_conditional_vae_takes_a_column_vector_y_as_classifiers_do():
    # was refused ("y should be a 1d array with one label per row"), while
    # LangevinEBMClassifier and MLPClassifier take it with a DataConversionWarning
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        vae = _vae(conditional=True).fit(X, y[:, None])
    np.testing.assert_array_equal(vae.classes_, [0, 1, 2])
    with pytest.raises(ValueError, match=r"1d array, got an array of shape \(30, 2\)"):
        _vae(conditional=True).fit(X, np.c_[y, y])


@pytest.mark.parametrize("sizes", [(0,), (8, 0), (-1,), (2.5,), (True,), ((4,),)])
def test_jem_refuses_hidden_layer_sizes_that_are_not_positive_integers(sizes):
    # (0,) trained a constant classifier silently; the others failed in torch
    # with a RuntimeError or TypeError. MLPClassifier and VAETransformer refuse.
    clf = _langevin(hidden_layer_sizes=sizes)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be a sequence"):
        clf.fit(X, y)
    assert not hasattr(clf, "classes_")


def test_vae_conditional_switched_on_after_fit_is_a_clear_error():
    # was an AttributeError on classes_ or class_prior_
    vae = _vae().fit(X)
    vae.set_params(conditional=True)
    calls = {
        "transform": lambda: vae.transform(X),
        "score_samples": lambda: vae.score_samples(X),
        "inverse_transform": lambda: vae.inverse_transform(np.zeros((2, 2))),
        "sample": lambda: vae.sample(2),
        "partial_fit": lambda: vae.partial_fit(X, y),
    }
    for call in calls.values():
        with pytest.raises(ValueError, match="changed after fit"):
            call()
    vae.set_params(conditional=False)
    assert vae.transform(X).shape == (30, 2)


def test_vae_unconditional_refit_drops_the_labels_of_a_conditional_fit():
    # classes_ and class_prior_ outlived the refit ("absent otherwise")
    vae = _vae(conditional=True).fit(X, y)
    vae.set_params(conditional=False).fit(X)
    assert not hasattr(vae, "classes_") and not hasattr(vae, "class_prior_")
    vae.set_params(conditional=True)
    with pytest.raises(ValueError, match="changed after fit"):
        vae.sample(2)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_vae_training_on_with_another_likelihood_is_an_error(method):
    # the new likelihood was ignored: training went on with likelihood_
    vae = _vae(warm_start=True).fit(X)  # "auto" -> gaussian
    assert vae.likelihood_ == "gaussian"
    vae.set_params(likelihood="bernoulli")
    with pytest.raises(ValueError, match="changed after fit"):
        getattr(vae, method)(np.abs(X) / 4)
    assert vae.n_iter_ == 1
    vae.set_params(likelihood="gaussian")
    getattr(vae, method)(X)
    assert vae.n_iter_ == 2
