"""HopfieldMemory defaults: which rule stores real, correlated patterns.

Run ``python benchmarks/bench_hopfield_defaults.py`` (a few minutes). The tables go
to ``benchmarks/results/hopfield_defaults.md`` and ``.json``.

* Real patterns: scikit-learn's digits (8 x 8, binarised at 8 of 16), k patterns
  per class (k = 1, 2, 5: 10, 20 and 50 patterns in N = 64 units), 10 random draws of
  each set. Digits of one class overlap strongly, and so do several classes.
* Random patterns: unbiased {0, 1} patterns, P = 10 and 30 in N = 64, 10 sets.
* Each stored pattern is probed clean and with 10% and 20% of its pixels flipped
  (20 probes each); a probe counts if recall returns the stored pattern exactly.
* Every rule at its default settings, and the settings a user would try next.

The default rule must store ten binarised digits (one per class), recall them all
from clean probes and at least 95% from probes with 10% of the pixels flipped.
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS_DIR, Report, Table, finish, machine_info  # noqa: E402

from skebm import HopfieldMemory  # noqa: E402

SETTINGS = [
    ("default", {}),
    ("hebbian", {"rule": "hebbian"}),
    ("storkey", {"rule": "storkey"}),
    ("pseudoinverse", {"rule": "pseudoinverse"}),
    ("dense, degree 3", {"rule": "dense"}),
    ("dense, degree 8", {"rule": "dense", "degree": 8}),
    ("dense, degree 20", {"rule": "dense", "degree": 20}),
    ("modern, beta 1", {"rule": "modern", "beta": 1.0}),
    ("modern, default beta", {"rule": "modern"}),
]
FLIPS = (0.0, 0.1, 0.2)
N_PROBES = 20


def digit_sets(per_class, n_sets):
    digits = load_digits()
    X, y = (digits.data > 8).astype(float), digits.target
    for k in range(n_sets):
        rng = np.random.default_rng([per_class, k])
        rows = [
            rng.choice(np.flatnonzero(y == c), per_class, replace=False)
            for c in range(10)
        ]
        yield X[np.concatenate(rows)]


def random_sets(n_patterns, n_sets):
    for k in range(n_sets):
        rng = np.random.default_rng([1000 + n_patterns, k])
        yield (rng.random((n_patterns, 64)) < 0.5).astype(float)


def flipped(X, fraction, rng):
    """N_PROBES probes per row of X with round(fraction N) distinct pixels flipped."""
    probes = np.repeat(X, N_PROBES, axis=0)
    k = round(fraction * X.shape[1])
    if k:
        idx = np.argsort(rng.random(probes.shape), axis=1)[:, :k]
        values = np.take_along_axis(probes, idx, axis=1)
        np.put_along_axis(probes, idx, 1.0 - values, axis=1)
    return probes, np.repeat(X, N_PROBES, axis=0)


def evaluate(params, sets):
    """Exact-recall rate per flip fraction, mean n_unstable_, seconds."""
    rates, unstable = {f: [] for f in FLIPS}, []
    tic = time.perf_counter()
    for k, X in enumerate(sets):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            est = HopfieldMemory(**params, random_state=0).fit(X)
        unstable.append(est.n_unstable_ / X.shape[0])
        for f in FLIPS:
            probes, target = flipped(X, f, np.random.default_rng([k, int(100 * f)]))
            rates[f].append(float((est.transform(probes) == target).all(1).mean()))
    out = {f"recall_{int(100 * f)}": float(np.mean(r)) for f, r in rates.items()}
    out["min_clean"] = float(np.min(rates[0.0]))
    out["unstable"] = float(np.mean(unstable))
    out["seconds"] = time.perf_counter() - tic
    return out


def table(title, make_sets, n_sets, sizes):
    columns = [
        ("setting", "setting", ""),
        ("P", "P", "d"),
        ("recall_0", "clean", ".3f"),
        ("min_clean", "worst set, clean", ".2f"),
        ("recall_10", "10% flipped", ".3f"),
        ("recall_20", "20% flipped", ".3f"),
        ("unstable", "not fixed points", ".3f"),
        ("seconds", "time (s)", ".1f"),
    ]
    t = Table(title, columns)
    for size, n_patterns in sizes:
        for name, params in SETTINGS:
            row = evaluate(params, list(make_sets(size, n_sets)))
            t.add(setting=name, P=n_patterns, params=params, **row)
    return t


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report = Report(
        "hopfield_defaults",
        "HopfieldMemory: which rule stores real, correlated patterns",
        machine_info(),
        settings={"sets": args.sets, "probes_per_pattern": N_PROBES},
        intro=[
            "Produced by `python benchmarks/bench_hopfield_defaults.py`. Exact-recall "
            "rate (the recalled state equals the stored pattern) from clean probes "
            "and probes with 10% and 20% of the pixels flipped; 'not fixed points' "
            "is the mean fraction `n_unstable_ / P` after fit. 'default' is "
            "`HopfieldMemory()`."
        ],
    )
    digits = report.add(
        table(
            f"Binarised digits, k per class ({args.sets} draws per size)",
            digit_sets,
            args.sets,
            [(1, 10), (2, 20), (5, 50)],
        )
    )
    report.add(
        table(
            f"Random {{0, 1}} patterns, N = 64 ({args.sets} sets per size)",
            random_sets,
            args.sets,
            [(10, 10), (30, 30)],
        )
    )
    default = next(r for r in digits.rows if r["setting"] == "default" and r["P"] == 10)
    digits.target(
        "default stores ten digits: all recalled from clean probes",
        default["min_clean"] == 1.0,
        f"worst set {default['min_clean']:.2f}, mean {default['recall_0']:.3f}",
    )
    digits.target(
        "default: >= 95% recalled with 10% of the pixels flipped",
        default["recall_10"] >= 0.95,
        f"{default['recall_10']:.3f}",
    )
    for t in report.tables:
        print(t.to_markdown() + "\n")
    finish(report, started, args.out)


if __name__ == "__main__":
    main()
