"""Output containers, feature names and the HTML repr.

``set_output(transform="pandas" | "polars")`` works for every skebm transformer,
``get_feature_names_out`` flows through Pipelines, and every estimator (and a
pipeline of them) renders its HTML repr.
"""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skebm import RBM, HopfieldMemory, LangevinEBMClassifier, VAETransformer
from tests.conftest import BACKENDS, requires_torch

pd = pytest.importorskip("pandas")

# tiny fits on random patterns: convergence and Hopfield capacity warnings expected
pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore:.*exceed the capacity:UserWarning"),
]

COLUMNS = [f"pixel_{i}" for i in range(8)]
X = pd.DataFrame(
    (np.random.default_rng(0).random((30, 8)) < 0.5).astype(float), columns=COLUMNS
)
y = np.arange(30) % 2

#: (factory, output names for 8 inputs); one entry per transformer x backend
TRANSFORMERS = {
    **{
        f"rbm-{b}": (
            lambda b=b: RBM(n_components=3, n_iter=2, backend=b, random_state=0),
            ["rbm0", "rbm1", "rbm2"],
        )
        for b in BACKENDS
    },
    **{
        f"hopfield-{b}": (
            lambda b=b: HopfieldMemory(rule="modern", backend=b, random_state=0),
            COLUMNS,
        )
        for b in BACKENDS
    },
}
TORCH_TRANSFORMERS = {
    "vae": (
        lambda: VAETransformer(
            n_components=2,
            hidden_layer_sizes=(4,),
            max_iter=2,
            device="cpu",
            random_state=0,
        ),
        ["vaetransformer0", "vaetransformer1"],
    ),
}
ALL = [pytest.param(k, id=k) for k in TRANSFORMERS] + [
    pytest.param(k, id=k, marks=requires_torch) for k in TORCH_TRANSFORMERS
]


def _make(key):
    make, names = {**TRANSFORMERS, **TORCH_TRANSFORMERS}[key]
    return make(), names


@pytest.mark.parametrize("key", ALL)
@pytest.mark.parametrize("container", ["pandas", "polars"])
def test_set_output(key, container):
    lib = pytest.importorskip(container)
    est, names = _make(key)
    est.set_output(transform=container)
    Z = est.fit(X).transform(X)
    Z_fit = est.fit_transform(X)
    assert isinstance(Z, lib.DataFrame) and isinstance(Z_fit, lib.DataFrame)
    assert list(Z.columns) == names == list(Z_fit.columns)
    assert list(est.get_feature_names_out()) == names
    np.testing.assert_allclose(
        np.asarray(Z), est.set_output(transform="default").transform(X)
    )
    if container == "pandas":
        assert Z.index.equals(X.index)


@pytest.mark.parametrize("key", ALL)
def test_feature_names_flow_through_a_pipeline(key):
    est, names = _make(key)
    pipe = make_pipeline(MinMaxScaler(), est).fit(X)  # ndarrays between the steps
    assert list(pipe.get_feature_names_out()) == names
    assert list(pipe[:-1].get_feature_names_out()) == COLUMNS
    Z = pipe.set_output(transform="pandas").fit(X).transform(X)  # DataFrames
    assert list(est.feature_names_in_) == COLUMNS
    assert list(Z.columns) == names


def test_feature_names_of_rbm_features_feed_the_next_step():
    pipe = make_pipeline(
        RBM(n_components=4, n_iter=2, random_state=0), LogisticRegression()
    ).set_output(transform="pandas")
    pipe.fit(X, y)
    assert list(pipe[-1].feature_names_in_) == ["rbm0", "rbm1", "rbm2", "rbm3"]


@pytest.mark.parametrize("fitted", [False, True], ids=["unfitted", "fitted"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: RBM(n_components=3, n_iter=2, random_state=0),
        lambda: HopfieldMemory(random_state=0),
        pytest.param(lambda: _make("vae")[0], marks=requires_torch),
        pytest.param(
            lambda: LangevinEBMClassifier(
                hidden_layer_sizes=(4,), max_iter=1, sgld_steps=1, device="cpu"
            ),
            marks=requires_torch,
        ),
        lambda: make_pipeline(
            MinMaxScaler(),
            RBM(n_components=3, n_iter=2, random_state=0),
            LogisticRegression(),
        ),
    ],
    ids=["rbm", "hopfield", "vae", "langevin", "pipeline"],
)
def test_html_repr(make, fitted):
    est = make()
    if fitted:
        est.fit(X, y)
    html = est._repr_html_()
    assert html.startswith("<style>") or "<div" in html
    name = type(est[-1] if hasattr(est, "steps") else est).__name__
    assert name in html
    if hasattr(est, "steps"):
        assert "RBM" in html
