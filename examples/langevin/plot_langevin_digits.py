"""
===========================================================
LangevinEBMClassifier: out-of-distribution scores on digits
===========================================================

A :class:`skebm.LangevinEBMClassifier` trained on the 8x8 digits is a classifier
and, through its energy E(x) = -logsumexp_y f(x)[y], a density model of the
digits. We compare two scores for telling digits from inputs that are not digits:
the energy (``score_samples`` = -E(x)) and the maximum softmax probability, the
usual baseline for a classifier. Then we run the model backwards and draw samples
conditioned on each class.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from skebm import LangevinEBMClassifier

X, y = load_digits(return_X_y=True)
X = X.astype(np.float32)  # pixels in [0, 16]; float32 throughout
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
# 30 epochs keep this example short; the loss is still decreasing, which
# ``fit`` reports with a ConvergenceWarning that we silence here.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    clf = LangevinEBMClassifier(max_iter=30, random_state=0).fit(X_train, y_train)
print(f"test accuracy: {clf.score(X_test, y_test):.3f}")

# %%
# Inputs that are not digits: uniform noise over the pixel range, digits with their
# pixels shuffled (the same ink, no strokes), inverted digits (16 - x) and digits
# rotated by 90 degrees.
rng = np.random.default_rng(0)
ood = {
    "uniform noise": rng.uniform(0, 16, size=X_test.shape).astype(np.float32),
    "pixels shuffled": X_test[:, rng.permutation(64)],
    "inverted": 16 - X_test,
    "rotated 90 degrees": np.rot90(X_test.reshape(-1, 8, 8), axes=(1, 2)).reshape(
        -1, 64
    ),
}

# %%
# Histograms of both scores; higher means "more like the training data". The
# energy separates the digits from every corruption, while the softmax is often
# confident on inputs that are not digits at all. AUROC: the probability that a
# test digit scores higher than a corrupted input (1 = perfect, 0.5 = chance).
scores = {
    "energy score -E(x)": clf.score_samples,
    "max softmax probability": lambda Z: clf.predict_proba(Z).max(axis=1),
}
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for ax, (score_name, score) in zip(axes, scores.items(), strict=True):
    s_in = score(X_test)
    bins = np.linspace(
        min(s_in.min(), *(score(Z).min() for Z in ood.values())),
        max(s_in.max(), *(score(Z).max() for Z in ood.values())),
        50,
    )
    ax.hist(s_in, bins=bins, density=True, alpha=0.6, label="test digits")
    for name, Z in ood.items():
        s_out = score(Z)
        auroc = roc_auc_score(
            np.r_[np.ones(len(s_in)), np.zeros(len(s_out))], np.r_[s_in, s_out]
        )
        ax.hist(s_out, bins=bins, density=True, alpha=0.45, label=f"{name}")
        print(f"{score_name:>24} | {name:>18}: AUROC {auroc:.3f}")
    ax.set(xlabel=score_name, ylabel="density", yscale="log")
    ax.legend(fontsize=8)
fig.tight_layout()

# %%
# Class-conditional samples: SGLD chains from uniform noise on the energy
# E(x | y) = -f(x)[y] of each class (one column per requested digit). They are
# not photographs, but the class is usually recognisable, and the classifier
# agrees with the label it was asked for.
labels = np.repeat(np.arange(10), 4)
samples = clf.sample(len(labels), y=labels, random_state=0)
print(f"samples classified as requested: {np.mean(clf.predict(samples) == labels):.2f}")
fig, axes = plt.subplots(4, 10, figsize=(8, 3.6))
for i, ax in enumerate(axes.T.ravel()):
    ax.imshow(samples[i].reshape(8, 8), cmap="gray_r", vmin=0, vmax=16)
    ax.set_axis_off()
fig.suptitle("class-conditional samples: one column per digit")
# sphinx_gallery_thumbnail_number = 2
plt.show()
