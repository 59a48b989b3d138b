"""Demo section: LangevinEBMClassifier as a classifier, a density and a sampler."""

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import VarianceThreshold
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline

from skebm import LangevinEBMClassifier
from skebm.demo import pyplot, save_figure, show_image
from skebm.demo._data import digits
from skebm.utils._metrics import expected_calibration_error


def _auroc(score_in, score_out):
    labels = np.r_[np.ones(len(score_in)), np.zeros(len(score_out))]
    return roc_auc_score(labels, np.r_[score_in, score_out])


def run(out_dir, random_state=0, backend="numpy"):
    """Fit the JEM and an MLP on the digits; OOD scores; class-conditional samples.

    ``backend`` is ignored: the estimator is torch-only.
    """
    X, y = digits()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=random_state, stratify=y
    )
    # constant pixels carry nothing; the selector's inverse_transform puts them back
    jem = Pipeline(
        [
            ("drop_constant", VarianceThreshold()),
            ("jem", LangevinEBMClassifier(max_iter=40, random_state=random_state)),
        ]
    )
    mlp = MLPClassifier(
        hidden_layer_sizes=(256, 256), batch_size=64, random_state=random_state
    )
    rows = []
    rng = np.random.default_rng(random_state)
    outliers = {
        "uniform noise": rng.uniform(0, 1, X_test.shape),
        "inverted digits": 1 - X_test,
    }
    # how each model tells in- from out-of-distribution rows (higher: in)
    scores = {
        "LangevinEBMClassifier": ("score_samples", jem.score_samples),
        "MLPClassifier": ("max-softmax", lambda Z: mlp.predict_proba(Z).max(axis=1)),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, model in (("LangevinEBMClassifier", jem), ("MLPClassifier", mlp)):
            tic = time.perf_counter()
            model.fit(X_train, y_train)
            elapsed = time.perf_counter() - tic
            proba = model.predict_proba(X_test)
            ece = expected_calibration_error(y_test, proba)
            rows += [
                (name, "test accuracy", f"{model.score(X_test, y_test):.3f}"),
                (name, "ECE (15 bins)", f"{ece:.4f}"),
                (name, "fit time", f"{elapsed:.1f}s"),
            ]
            label, score = scores[name]
            for what, X_out in outliers.items():
                auc = _auroc(score(X_test), score(X_out))
                rows.append((name, f"OOD AUROC vs {what} ({label})", f"{auc:.3f}"))

    _figure(jem, out_dir / "langevin_class_conditional_samples.png", random_state)
    return rows


def _figure(pipe, path, random_state):
    model = pipe.named_steps["jem"]
    labels = np.repeat(model.classes_, 8)
    samples = model.sample(len(labels), y=labels, random_state=random_state)
    images = pipe.named_steps["drop_constant"].inverse_transform(samples)
    fig, axes = pyplot().subplots(10, 8, figsize=(5, 6.5))
    for ax, img in zip(axes.ravel(), images, strict=True):
        show_image(ax, img)
    fig.suptitle("LangevinEBMClassifier.sample(y=0..9): one row per class")
    save_figure(fig, path, "LangevinEBMClassifier")
