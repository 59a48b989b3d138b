"""What a LangevinEBMClassifier fit costs, and what each lever of that cost does to
its quality, on the digits, next to MLPClassifier in the same run.

Run ``python benchmarks/bench_langevin.py`` (about eight minutes on two quiet
cores; ``--quick`` for a one-minute smoke run that writes no files unless ``--out``
is given). The tables go to ``benchmarks/results/langevin.md`` and
``langevin.json``.

* **Levers** (one torch thread, every lever on the same splits and seeds): the
  default JEM, then one setting changed at a time: SGLD steps, the start of the
  replay buffer (uniform noise, the default, or JEM++'s informative start, a
  Gaussian per class fitted to the data), network size, epoch budget, learning
  rate, early stopping, calibration (a held-out 20%, the default; 10%;
  cross-fitting; none) and float32 data instead of the digits' float64. Each row gives the fit time over
  the default MLPClassifier's, fitted just before it (the median of the per-split
  ratios), and every quality figure:

  - accuracy, mean over the splits, and its difference to the MLP's;
  - expected calibration error (15 bins), mean over the splits, paired with the
    MLP's;
  - AUROC of ``score_samples`` against uniform noise, pixel-shuffled digits and
    inverted digits (the smallest over the splits);
  - class-conditional samples (``sample`` at its defaults, fresh chains from
    uniform noise) read as the requested class by an independent classifier,
    an MLPClassifier(128) trained on the training digits (mean and smallest over
    the splits).

* **Default threads**: the default JEM against the default MLPClassifier again,
  with the machine's thread settings (torch's, NumPy's BLAS) untouched.
* **The sampler's cost per step**: one SGLD step of the default network on a
  batch of 64, the package's loop against one with fewer Python-level tensor
  operations, in float64 and float32.

Split s is ``train_test_split(test_size=0.25, stratify=y, random_state=s)`` and both
models use ``random_state=s``; split 0 is the split of the earlier results.
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS_DIR,
    Report,
    Table,
    finish,
    machine_info,
)

from skebm import LangevinEBMClassifier  # noqa: E402
from skebm._backends.torch import langevin  # noqa: E402
from skebm.utils._metrics import expected_calibration_error  # noqa: E402

#: per class of the samples table
PER_CLASS = 20


class InformativeStartJEM(LangevinEBMClassifier):
    """JEM++'s informative start: the replay buffer begins as draws of a Gaussian
    per class (mean and per-pixel standard deviation of that class's training
    rows, in the internal scale) instead of uniform noise. A benchmark-only variant:
    the defaults keep the uniform start (see the levers table)."""

    def _train_context(self, be, device, X, y):
        fresh = getattr(self, "_buffer", None) is None
        ctx = super()._train_context(be, device, X, y)
        if not fresh:
            return ctx
        X = np.asarray(X, dtype=np.float64)  # the internal scale: [-1, 1] per feature
        Z = (X - self._center) * self._scale
        rng = np.random.default_rng(self._buffer_seed)
        codes = rng.choice(y, size=self.buffer_size)
        mean = np.stack([Z[y == c].mean(0) for c in range(len(self.classes_))])
        std = np.stack([Z[y == c].std(0) for c in range(len(self.classes_))])
        start = mean[codes] + std[codes] * rng.standard_normal(mean[codes].shape)
        ctx["buffer"].copy_(be.core.asarray(np.clip(start, -1, 1), self._dtype, device))
        return ctx


class Float32JEM(LangevinEBMClassifier):
    """The digits given as float32: the network then computes in float32."""

    def fit(self, X, y):
        return super().fit(np.asarray(X, dtype=np.float32), y)


#: lever name -> (estimator class, parameters changed from the defaults)
LEVERS = {
    "defaults": (LangevinEBMClassifier, {}),
    "sgld_steps=5": (LangevinEBMClassifier, {"sgld_steps": 5}),
    "sgld_steps=10": (LangevinEBMClassifier, {"sgld_steps": 10}),
    "sgld_steps=20 (earlier default)": (LangevinEBMClassifier, {"sgld_steps": 20}),
    "informative buffer start (JEM++)": (InformativeStartJEM, {}),
    "hidden_layer_sizes=(64, 64)": (
        LangevinEBMClassifier,
        {"hidden_layer_sizes": (64, 64)},
    ),
    "hidden_layer_sizes=(256, 256) (earlier default)": (
        LangevinEBMClassifier,
        {"hidden_layer_sizes": (256, 256)},
    ),
    "max_iter=20": (LangevinEBMClassifier, {"max_iter": 20}),
    "learning_rate_init=1e-3 (earlier default)": (
        LangevinEBMClassifier,
        {"learning_rate_init": 1e-3},
    ),
    "early_stopping=True, max_iter=60": (
        LangevinEBMClassifier,
        {"early_stopping": True, "max_iter": 60},
    ),
    "validation_fraction=0.1 (earlier default)": (
        LangevinEBMClassifier,
        {"validation_fraction": 0.1},
    ),
    "calibration_cv=2 (cross-fit, earlier default)": (
        LangevinEBMClassifier,
        {"calibration_cv": 2},
    ),
    "calibrate=False": (LangevinEBMClassifier, {"calibrate": False}),
    "float32 data (X.astype(np.float32))": (Float32JEM, {}),
}

QUICK_LEVERS = (
    "defaults",
    "sgld_steps=5",
    "calibration_cv=2 (cross-fit, earlier default)",
)


# -- data and metrics --------------------------------------------------------------------


def split(X, y, seed):
    return train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)


def outliers(X_test, seed):
    rng = np.random.default_rng(seed)
    return {
        "noise": rng.uniform(0, 16, X_test.shape),
        "shuffled": np.array([row[rng.permutation(X_test.shape[1])] for row in X_test]),
        "inverted": 16 - X_test,
    }


def auroc(score_in, score_out):
    labels = np.r_[np.ones(len(score_in)), np.zeros(len(score_out))]
    return float(roc_auc_score(labels, np.r_[score_in, score_out]))


def timed_fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        tic = time.perf_counter()
        model.fit(X, y)
        return model, time.perf_counter() - tic


def judge_for(X_train, y_train):
    """The independent classifier that reads the samples."""
    judge = MLPClassifier(hidden_layer_sizes=(128,), max_iter=500, random_state=123)
    return judge.fit(X_train / 16, y_train)


def evaluate_jem(model, data, ood, judge, seed):
    X_train, X_test, y_train, y_test = data
    proba = model.predict_proba(X_test)
    s_in = model.score_samples(X_test)
    wanted = np.repeat(model.classes_, PER_CLASS)
    S = model.sample(len(wanted), y=wanted, random_state=seed)
    return {
        "accuracy": float(np.mean(model.classes_[proba.argmax(1)] == y_test)),
        "ece": expected_calibration_error(y_test, proba, 15),
        **{f"auroc_{k}": auroc(s_in, model.score_samples(v)) for k, v in ood.items()},
        "reads": float(np.mean(judge.predict(S / 16) == wanted)),
        "n_iter": model.n_iter_,
        "temperature": model.temperature_,
    }


def evaluate_mlp(model, data):
    _, X_test, _, y_test = data
    proba = model.predict_proba(X_test)
    return {
        "accuracy": float(np.mean(proba.argmax(1) == y_test)),
        "ece": expected_calibration_error(y_test, proba, 15),
    }


# -- the runs ----------------------------------------------------------------------------


def run_levers(X, y, seeds, levers, device, max_iter=None):
    """Per lever and split: the JEM's figures and its time over the MLP's."""
    rows = {name: [] for name in levers}
    mlp_rows = []
    for seed in seeds:
        data = split(X, y, seed)
        X_train, X_test, y_train, _ = data
        ood = outliers(X_test, seed)
        judge = judge_for(X_train, y_train)
        for name in levers:
            cls, params = LEVERS[name]
            params = dict(params)
            if max_iter is not None:
                params["max_iter"] = min(params.get("max_iter", max_iter), max_iter)
            mlp, t_mlp = timed_fit(MLPClassifier(random_state=seed), X_train, y_train)
            jem, t_jem = timed_fit(
                cls(random_state=seed, device=device, **params), X_train, y_train
            )
            row = evaluate_jem(jem, data, ood, judge, seed)
            mlp_row = evaluate_mlp(mlp, data)
            row.update(
                seed=seed,
                fit_s=t_jem,
                mlp_fit_s=t_mlp,
                ratio=t_jem / t_mlp,
                mlp_accuracy=mlp_row["accuracy"],
                mlp_ece=mlp_row["ece"],
            )
            rows[name].append(row)
            mlp_rows.append({**mlp_row, "seed": seed, "fit_s": t_mlp})
            print(
                f"  split {seed} {name}: {t_jem:.2f} s = {row['ratio']:.1f}x MLP, "
                f"acc {row['accuracy']:.4f} (MLP {row['mlp_accuracy']:.4f}), "
                f"ECE {row['ece']:.4f} (MLP {row['mlp_ece']:.4f}), "
                f"reads {row['reads']:.3f}",
                flush=True,
            )
    return rows, mlp_rows


def summarise(rows):
    """Means over the splits, paired with the MLP fitted next to each JEM."""
    a = {k: np.array([r[k] for r in rows], dtype=float) for k in rows[0]}
    return {
        "ratio": float(np.median(a["ratio"])),
        "fit_s": float(np.median(a["fit_s"])),
        "mlp_fit_s": float(np.median(a["mlp_fit_s"])),
        "accuracy": float(a["accuracy"].mean()),
        "d_accuracy": float((a["accuracy"] - a["mlp_accuracy"]).mean()),
        "ece": float(a["ece"].mean()),
        "mlp_ece": float(a["mlp_ece"].mean()),
        "auroc_noise": float(a["auroc_noise"].min()),
        "auroc_shuffled": float(a["auroc_shuffled"].min()),
        "auroc_inverted": float(a["auroc_inverted"].min()),
        "reads": float(a["reads"].mean()),
        "reads_min": float(a["reads"].min()),
        "n_iter": float(a["n_iter"].mean()),
    }


def holds(s):
    """Every quality figure of the issue: accuracy within 0.01 of the MLP's, ECE no
    worse than the MLP's (means over the paired splits), AUROC >= 0.98 against
    each kind of outlier, samples read as the requested class >= 90%."""
    return (
        s["d_accuracy"] >= -0.01
        and s["ece"] <= s["mlp_ece"]
        and min(s["auroc_noise"], s["auroc_shuffled"], s["auroc_inverted"]) >= 0.98
        and s["reads"] >= 0.9
    )


def levers_table(title, rows):
    table = Table(
        title,
        [
            ("lever", "lever (one change from the defaults)", ""),
            ("ratio", "fit time / MLP's", ".1f"),
            ("fit_s", "fit (s)", ".2f"),
            ("accuracy", "accuracy", ".4f"),
            ("d_accuracy", "- MLP's", "+.4f"),
            ("ece", "ECE", ".4f"),
            ("mlp_ece", "MLP's ECE", ".4f"),
            ("auroc_noise", "AUROC noise", ".4f"),
            ("auroc_shuffled", "AUROC shuffled", ".4f"),
            ("auroc_inverted", "AUROC inverted", ".4f"),
            ("reads", "samples read", ".3f"),
            ("reads_min", "(min)", ".3f"),
            ("holds", "all quality figures", ""),
        ],
    )
    for name, per_split in rows.items():
        s = summarise(per_split)
        table.add(lever=name, **s, holds=holds(s), per_split=per_split)
    return table


def sgld_step_cost(repeats=200):
    """Seconds per SGLD step of the default network on a batch of 64, at one
    thread: the package's loop, and a variant with fewer Python-level tensor
    operations (all the steps' noise drawn in one call, in-place updates), each
    in float64 and float32."""
    from skebm._backends.torch.nn import mlp

    out = {}
    for dtype in (torch.float64, torch.float32):
        net = mlp(64, (128, 128), 10, "swish").to(dtype).eval()
        gen = torch.Generator().manual_seed(0)
        x0 = (torch.rand(64, 64, generator=gen) * 2 - 1).to(dtype)

        def fewer_ops(x, n_steps, net=net, gen=gen):
            eps = torch.randn((n_steps, *x.shape), generator=gen, dtype=x.dtype)
            x = x.detach().clone()
            with torch.enable_grad():
                for step in range(n_steps):
                    x.requires_grad_(True)
                    e = -torch.logsumexp(net(x), dim=1)
                    (grad,) = torch.autograd.grad(e.sum(), x)
                    x = x.detach().sub_(grad, alpha=0.1)
                    x = x.add_(eps[step], alpha=0.05).clamp_(-1, 1)
            return x

        def package(x, n_steps, net=net, gen=gen):
            return langevin.sgld(net, x, n_steps, 0.1, 0.05, gen)

        name = str(dtype).replace("torch.", "")
        for variant, fn in (("package loop", package), ("fewer ops", fewer_ops)):
            fn(x0, 5)
            best = np.inf
            for _ in range(5):
                tic = time.perf_counter()
                fn(x0, repeats)
                best = min(best, (time.perf_counter() - tic) / repeats)
            out[f"{variant}, {name}"] = best
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seeds", type=int, default=3, help="splits per lever")
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else (None if args.quick else RESULTS_DIR)
    tic = time.perf_counter()
    X, y = load_digits(return_X_y=True)
    seeds = list(range(1 if args.quick else args.seeds))
    levers = QUICK_LEVERS if args.quick else tuple(LEVERS)
    max_iter = 3 if args.quick else None
    report = Report(
        "langevin",
        "LangevinEBMClassifier: the cost of a fit and what each lever does",
        machine_info(),
        settings={"seeds": seeds, "levers": list(levers), "per_class": PER_CLASS},
    )
    report.intro += [
        "Digits (1797 x 64, pixel values 0-16); split s is a stratified 75/25 split "
        "with random_state=s (1347 training rows), both models with random_state=s. "
        "Defaults: hidden (128, 128), swish, batch 64, learning_rate_init=2e-3, "
        "max_iter=30, sgld_steps=3 (step 0.1, noise 0.05), replay buffer of 10000 "
        "chains started from uniform noise, temperature on a held-out 20% "
        "(calibration_cv=None, validation_fraction=0.2); the network computes in "
        "the data's precision (float64 for the digits). The earlier defaults were "
        "hidden (256, 256), learning_rate_init=1e-3, max_iter=100, sgld_steps=20 "
        "and calibration_cv=2.",
        "",
        "MLPClassifier at its defaults (hidden (100,), batch 200, up to 200 epochs). "
        "Each JEM fit is timed right after an MLP fit on the same split, and the "
        "ratio is the median over the splits of the two times' quotient, so that a "
        "background load that comes and goes affects both alike. One warm-up fit "
        "of each comes first: the first torch fit of a process pays about a second "
        "to initialise torch, which is not counted.",
    ]
    warm = split(X, y, 0)
    timed_fit(MLPClassifier(max_iter=5), warm[0], warm[2])
    timed_fit(LangevinEBMClassifier(max_iter=1), warm[0], warm[2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        with threadpool_limits(1):
            print("levers, one thread", flush=True)
            one, _ = run_levers(X, y, seeds, levers, args.device, max_iter)
        torch.set_num_threads(previous)
        print("defaults, default threads", flush=True)
        default_threads, _ = run_levers(
            X, y, seeds, ("defaults",), args.device, max_iter
        )
    table = report.add(
        levers_table(f"Levers, one thread (torch and BLAS), {len(seeds)} splits", one)
    )
    table.notes += [
        "fit time / MLP's: median over the splits; fit (s): median JEM fit time. "
        "Accuracy and ECE: means over the splits ('- MLP's': the mean paired "
        "difference). AUROC of score_samples, in-distribution = test digits: the "
        "smallest over the splits. Samples: sample(200, y=20 of each class) at its "
        "defaults (100 SGLD steps from uniform noise), the fraction the "
        "independent classifier reads as the requested class, mean (smallest).",
        "'all quality figures': accuracy within 0.01 of the MLP's, mean ECE no worse "
        "than the MLP's, every AUROC >= 0.98, samples read >= 0.9.",
        "The informative start changes only where the training chains begin; "
        "sample() still starts from uniform noise.",
    ]
    d = summarise(one["defaults"])
    table.target(
        "default JEM fit <= 10x the default MLPClassifier's (one thread)",
        d["ratio"] <= 10,
        f"{d['ratio']:.1f}x ({d['fit_s']:.2f} s vs {d['mlp_fit_s']:.2f} s)",
    )
    table.target(
        "default JEM holds every quality figure (one thread)",
        holds(d),
        f"accuracy {d['accuracy']:.4f} ({d['d_accuracy']:+.4f}), ECE {d['ece']:.4f} "
        f"vs {d['mlp_ece']:.4f}, AUROC >= "
        f"{min(d['auroc_noise'], d['auroc_shuffled'], d['auroc_inverted']):.4f}, "
        f"samples read {d['reads']:.3f}",
    )
    dt = report.add(
        levers_table(
            f"Defaults with the machine's default thread settings, {len(seeds)} splits",
            default_threads,
        )
    )
    s = summarise(default_threads["defaults"])
    dt.notes.append(
        f"torch at {previous} threads (its default here), NumPy's BLAS at its "
        "default. The neural estimators reach only the budget part of the thread "
        "policy until the training loop passes the work of a step to thread_limit "
        "(threads.md); under load two threads cost more than one."
    )
    dt.target(
        "default JEM fit <= 10x the default MLPClassifier's (default threads)",
        s["ratio"] <= 10,
        f"{s['ratio']:.1f}x ({s['fit_s']:.2f} s vs {s['mlp_fit_s']:.2f} s)",
    )
    torch.set_num_threads(1)
    steps = sgld_step_cost(20 if args.quick else 200)
    torch.set_num_threads(previous)
    st = report.add(
        Table(
            "The sampler's cost per step: default network, batch 64, one thread",
            [
                ("loop", "loop", ""),
                ("ms", "ms per step", ".3f"),
                ("rel", "relative to the package loop in float64", ".2f"),
            ],
        )
    )
    for name, secs in steps.items():
        st.add(loop=name, ms=1e3 * secs, rel=secs / steps["package loop, float64"])
    st.notes.append(
        "'fewer ops' draws all the steps' noise in one call and updates x in place. "
        "The package keeps the plain loop unless the variant pays 1.5x "
        "(CONTRIBUTING: complexity must pay). float32 is the precision of "
        "float32 training data."
    )
    finish(report, tic, out)


if __name__ == "__main__":
    main()
