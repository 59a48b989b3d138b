"""Demo section: RBM features for a classifier, exact log-likelihood, filters, samples."""

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline

from skebm import RBM
from skebm.demo import pyplot, save_figure, show_image
from skebm.demo._data import digits


def run(out_dir, random_state=0, backend="numpy"):
    X, y = digits(nudge=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=random_state
    )

    # 1. features for a classifier, the RBM's settings chosen by grid search
    pipe = Pipeline(
        [
            (
                "rbm",
                RBM(
                    n_components=100,
                    n_iter=10,
                    random_state=random_state,
                    backend=backend,
                ),
            ),
            # lbfgs stops at max_iter before full convergence at this C; the
            # accuracy is within 0.01 of the converged one at a tenth of the time
            ("logistic", LogisticRegression(C=1000, max_iter=300)),
        ]
    )
    search = GridSearchCV(pipe, {"rbm__learning_rate": [0.02, 0.06]}, cv=2, n_jobs=1)
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X_train, y_train)
        fit_time = time.perf_counter() - tic
        raw = LogisticRegression(C=100, max_iter=300).fit(X_train, y_train)
    features = "RBM(100) + LogisticRegression"
    rows = [
        (features, "test accuracy", f"{search.score(X_test, y_test):.3f}"),
        (
            "raw pixels + LogisticRegression",
            "test accuracy",
            f"{raw.score(X_test, y_test):.3f}",
        ),
        (features, "grid search fit time", f"{fit_time:.1f}s (4 fits + refit)"),
    ]

    # 2. a density model: 16 hidden units, exact log-likelihood, selected by score
    B_train, B_test = (X_train > 0.5).astype(float), (X_test > 0.5).astype(float)
    density = GridSearchCV(
        RBM(
            n_components=16,
            n_iter=20,
            centered=True,
            momentum=0.5,
            n_chains=100,
            random_state=random_state,
            backend=backend,
        ),
        {"learning_rate": [0.02, 0.05]},
        cv=2,
    )
    tic = time.perf_counter()
    density.fit(B_train)
    rbm16 = density.best_estimator_
    name = "RBM(16), binarised digits"
    rows += [
        (name, "test log-likelihood (exact)", f"{rbm16.score(B_test):.2f} nats"),
        (name, "chosen learning_rate", f"{density.best_params_['learning_rate']}"),
        (name, "grid search fit time", f"{time.perf_counter() - tic:.1f}s"),
    ]

    rbm100 = search.best_estimator_.named_steps["rbm"]
    _figure(rbm100, rbm16, out_dir / "rbm_filters_and_samples.png", random_state)
    return rows


def _figure(rbm_features, rbm_density, path, random_state):
    """Ten rows of ten filters (blue-white-red) then five samples (black on white)."""
    samples = rbm_density.sample(
        50, n_steps=1000, return_mean=True, random_state=random_state
    )
    fig, axes = pyplot().subplots(10, 15, figsize=(11, 7.5))
    for ax, img in zip(axes[:, :10].ravel(), rbm_features.components_, strict=True):
        bound = np.abs(img).max()
        ax.imshow(img.reshape(8, 8), cmap="RdBu_r", vmin=-bound, vmax=bound)
        ax.set_axis_off()
    for ax, img in zip(axes[:, 10:].ravel(), samples, strict=True):
        show_image(ax, img)
    fig.text(0.33, 0.97, "filters: components_ of RBM(100)", ha="center")
    fig.text(0.83, 0.97, "samples: RBM(16).sample(n_steps=1000)", ha="center")
    save_figure(fig, path, "RBM")
