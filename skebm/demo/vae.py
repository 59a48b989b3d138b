"""Demo section: VAE features for a classifier, log-likelihood model selection, samples."""

import time
import warnings

import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline

from skebm import VAETransformer
from skebm.demo import pyplot, save_figure, show_image
from skebm.demo._data import digits


def run(out_dir, random_state=0, backend="numpy"):
    """Run the section; ``backend`` is ignored (VAETransformer is torch-only)."""
    X, y = digits()
    X = X.astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=random_state, stratify=y
    )
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)

        # 1. an 8-dimensional VAE code as features, against PCA at equal dimension
        tic = time.perf_counter()
        pipe = Pipeline(
            [
                ("vae", VAETransformer(n_components=8, random_state=random_state)),
                ("logistic", LogisticRegression(max_iter=5000)),
            ]
        ).fit(X_train, y_train)
        fit_time = time.perf_counter() - tic
        pca = Pipeline(
            [("pca", PCA(8)), ("logistic", LogisticRegression(max_iter=5000))]
        ).fit(X_train, y_train)
        features = "VAE(8) + LogisticRegression"
        rows += [
            (features, "test accuracy", f"{pipe.score(X_test, y_test):.3f}"),
            (
                "PCA(8) + LogisticRegression",
                "test accuracy",
                f"{pca.score(X_test, y_test):.3f}",
            ),
            (features, "fit time", f"{fit_time:.1f}s"),
        ]

        # 2. a 2-D VAE whose width is chosen by held-out log-likelihood (no labels)
        tic = time.perf_counter()
        search = GridSearchCV(
            VAETransformer(n_components=2, random_state=random_state),
            {"hidden_layer_sizes": [(64,), (256,)]},
            cv=2,
        ).fit(X_train)
        vae = search.best_estimator_
        name = "VAE(2), digits in [0, 1]"
        sizes = search.best_params_["hidden_layer_sizes"]
        rows += [
            (
                name,
                "test log-likelihood (IWAE, k=100)",
                f"{vae.score(X_test):.2f} nats",
            ),
            (name, "chosen hidden_layer_sizes", f"{sizes}"),
            (
                name,
                "grid search fit time",
                f"{time.perf_counter() - tic:.1f}s (4 fits + refit)",
            ),
        ]

        # 3. a conditional VAE generates the requested digit
        cvae = VAETransformer(
            n_components=2, conditional=True, random_state=random_state
        ).fit(X_train, y_train)
    wanted = np.repeat(np.arange(10), 10)
    samples = cvae.sample(100, y=wanted, return_mean=True, random_state=random_state)
    reader = LogisticRegression(max_iter=5000).fit(X_train, y_train)
    rows.append(
        (
            "conditional VAE(2)",
            "samples read as the requested digit",
            f"{np.mean(reader.predict(samples) == wanted):.2f} (by LogisticRegression)",
        )
    )

    _figure(vae, samples, X_test, y_test, out_dir / "vae_latent_and_samples.png")
    return rows


def _figure(vae, samples, X_test, y_test, path):
    from scipy.stats import norm

    fig = pyplot().figure(figsize=(20, 5))
    ax = fig.add_subplot(1, 4, 1)
    Z = vae.transform(X_test)
    points = ax.scatter(Z[:, 0], Z[:, 1], c=y_test, cmap="tab10", s=8)
    fig.colorbar(points, ax=ax, label="digit")
    ax.set(title="test digits: VAE(2).transform", xlabel="z1", ylabel="z2")

    n = 10
    grid = norm.ppf(np.linspace(0.05, 0.95, n))
    Z_grid = np.array([[a, b] for b in grid[::-1] for a in grid], dtype=np.float32)
    tiles = vae.inverse_transform(Z_grid).reshape(n, n, 8, 8)
    ax = fig.add_subplot(1, 4, 2)
    show_image(ax, _mosaic(tiles))
    ax.set_title("inverse_transform over the latent plane")

    # interpolations between encoded test digits d -> d + 1, then model samples
    steps = np.linspace(0, 1, n)[:, None]
    rows = []
    for d in range(0, 10, 2):
        za, zb = vae.transform(
            np.stack([X_test[y_test == d][0], X_test[y_test == d + 1][0]])
        )
        rows.append(vae.inverse_transform((1 - steps) * za + steps * zb))
    for seed in range(3):
        rows.append(vae.sample(n, return_mean=True, random_state=seed))
    ax = fig.add_subplot(1, 4, 3)
    show_image(ax, _mosaic(np.stack(rows).reshape(-1, n, 8, 8)))
    ax.set_title("interpolations 0->1 ... 8->9; last 3 rows: sample()")

    ax = fig.add_subplot(1, 4, 4)
    by_column = samples.reshape(10, 10, 8, 8).transpose(1, 0, 2, 3)
    show_image(ax, _mosaic(by_column))
    ax.set_title("conditional VAE: sample(y=0..9), one column per digit")
    fig.tight_layout()
    save_figure(fig, path, "VAE")


def _mosaic(tiles, pad=1):
    """(rows, cols, h, w) images -> one picture, with ``pad`` blank pixels between."""
    rows, cols, h, w = tiles.shape
    out = np.zeros((rows, h + pad, cols, w + pad))
    out[:, :h, :, :w] = tiles.transpose(0, 2, 1, 3)  # (row, y, col, x)
    return out.reshape(rows * (h + pad), cols * (w + pad))[:-pad, :-pad]
