"""Demo section: Hopfield memories recall binarised digit prototypes from noisy probes."""

import warnings

import numpy as np

from skebm import HopfieldMemory
from skebm.demo import pyplot, save_figure, show_image
from skebm.demo._data import digits

#: the memories compared: figure label -> HopfieldMemory parameters. The prototypes
#: overlap by up to 0.78 N, which the pairwise rules and a cubic dense memory cannot
#: separate; degree 8 and the modern rule can
RULES = {
    "Hebbian": {"rule": "hebbian"},
    "Storkey": {"rule": "storkey"},
    "pseudo-inverse": {"rule": "pseudoinverse"},
    "dense, degree 3": {"rule": "dense", "degree": 3},
    "dense, degree 8": {"rule": "dense", "degree": 8},
    "modern": {"rule": "modern"},
}

#: fraction of the 64 pixels flipped in every probe
NOISE = 0.1


def prototypes():
    """The ten class means of the digits, thresholded at 0.5: {0, 1} patterns."""
    X, y = digits()
    return np.stack([(X[y == k].mean(axis=0) > 0.5).astype(float) for k in range(10)])


def corrupt(patterns, n_probes, rng):
    """``n_probes`` probes per pattern with a fraction NOISE of the pixels flipped."""
    probes = np.repeat(patterns, n_probes, axis=0)
    n_flip = round(NOISE * patterns.shape[1])
    for row in probes:
        idx = rng.choice(patterns.shape[1], n_flip, replace=False)
        row[idx] = 1 - row[idx]
    return probes, np.repeat(np.arange(len(patterns)), n_probes)


def run(out_dir, random_state=0, backend="numpy"):
    """Store the prototypes with every rule, recall from probes, draw one figure.

    Returns rows (estimator label, metric name, formatted value).
    """
    rng = np.random.default_rng(random_state)
    protos = prototypes()
    probes, labels = corrupt(protos, 20, rng)
    rows, recalled = [], {}
    metric = f"exact recall, {NOISE:.0%} pixels flipped"
    for label, params in RULES.items():
        memory = HopfieldMemory(**params, random_state=random_state, backend=backend)
        with warnings.catch_warnings():
            # 10 correlated patterns in 64 units exceed the Hebbian capacity (8.8):
            # that is the point of the comparison
            warnings.simplefilter("ignore", UserWarning)
            memory.fit(protos)
        out = memory.transform(probes)
        exact = np.mean((out == protos[labels]).all(axis=1))
        args = ", ".join(f"{k}={v!r}" for k, v in params.items())
        rows.append((f"HopfieldMemory({args})", metric, f"{exact:.3f}"))
        recalled[label] = out
    _figure(protos, probes, labels, recalled, out_dir / "hopfield_recall.png")
    return rows


def _figure(protos, probes, labels, recalled, path):
    first = [np.flatnonzero(labels == k)[0] for k in range(10)]
    columns = [("probe", probes[first])]
    columns += [(name, out[first]) for name, out in recalled.items()]
    columns.append(("original", protos))
    fig, axes = pyplot().subplots(10, len(columns), figsize=(1.2 * len(columns), 11.5))
    for j, (title, images) in enumerate(columns):
        axes[0, j].set_title(title.replace(", ", "\n").replace("-", "-\n"), fontsize=7)
        for i in range(10):
            show_image(axes[i, j], images[i])
    fig.suptitle(
        f"Recall of digit prototypes from probes with {NOISE:.0%} of the "
        "pixels flipped",
        fontsize=9,
    )
    save_figure(fig, path, "Hopfield")
