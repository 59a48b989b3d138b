"""Array API dispatch: the same fits on torch tensors and on NumPy arrays.

Run ``python benchmarks/bench_dispatch.py`` (about three minutes on two cores). With
``sklearn.set_config(array_api_dispatch=True)`` every skebm estimator takes torch
tensors and answers in tensors on their device. Each task below runs, side by side
in this one process and round-robin:

* NumPy in, ``backend="numpy"`` (the reference row: ratio 1);
* NumPy in, ``backend="torch"`` on the CPU (no dispatch), where the estimator has it;
* torch CPU tensors in, under dispatch;
* CUDA tensors in, under dispatch, when a GPU is there (plus the GPU-sized Hopfield
  recall of 10,000 probes at N = 4096).

Tasks: RBM fit on the nudged digits at BernoulliRBM's settings (batch 10 and 100),
a ``MinMaxScaler -> RBM -> LogisticRegression`` pipeline fit and score, HopfieldMemory
fit and one-step modern / synchronous Hebbian recall of 4000 probes at N = 1024, and
the default LangevinEBMClassifier and VAETransformer fits on the digits.

``--threads 1`` pins BLAS and torch to one thread (threadpoolctl); the default keeps
the machine's settings. Results go to ``benchmarks/results/dispatch.md`` (and
``dispatch_1thread.md`` when pinned).
"""

import os

# scikit-learn's dispatch needs SciPy's array API support, read at SciPy's import
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import argparse
import contextlib
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS_DIR,
    Report,
    Table,
    cuda_available,
    interleaved_timings,
    machine_info,
)
from bench_hopfield import flip_bits, random_patterns  # noqa: E402
from bench_rbm import nudged_digits  # noqa: E402

from skebm import (  # noqa: E402
    RBM,
    HopfieldMemory,
    LangevinEBMClassifier,
    VAETransformer,
)
from skebm.utils._array_api import ARRAY_API_SUPPORT  # noqa: E402


class Inputs:
    """The ways one task is fed: (label, array converter, estimator params, dispatch)."""

    def __init__(self, torch_backend: bool):
        import torch

        self.torch = torch
        self.ways = [("NumPy in, backend numpy", np.asarray, {"backend": "numpy"}, 0)]
        if torch_backend:
            self.ways.append(
                (
                    "NumPy in, backend torch (CPU)",
                    np.asarray,
                    {"backend": "torch", "device": "cpu"},
                    0,
                )
            )
        self.ways.append(("torch CPU tensors, dispatch", torch.from_numpy, {}, 1))
        if cuda_available():
            self.ways.append(
                ("CUDA tensors, dispatch", lambda a: torch.from_numpy(a).cuda(), {}, 1)
            )

    def sync(self):
        if cuda_available():
            self.torch.cuda.synchronize()


def _dispatch(on):
    return (
        sklearn.config_context(array_api_dispatch=True)
        if on
        else contextlib.nullcontext()
    )


def timed_task(table, task, ways, make_call, repeats, check):
    """Time ``make_call(convert, params)`` for every way, round-robin; add rows."""
    calls, outputs = {}, {}
    for label, convert, params, dispatch in ways.ways:

        def call(convert=convert, params=params, dispatch=dispatch, label=label):
            with _dispatch(dispatch):
                out = make_call(convert, params)
                ways.sync()
            outputs[label] = out
            return out

        call()  # warm up: imports, lazy modules, CUDA context
        calls[label] = call
    # idle before each turn: threads that one library leaves spinning (OpenBLAS,
    # torch's OpenMP) would otherwise take the cores from the next candidate
    times = interleaved_timings(calls, repeats=repeats, pause_s=0.3)
    ref_label = ways.ways[0][0]
    ref = min(times[ref_label])
    for label, _, _, _ in ways.ways:
        best = min(times[label])
        table.add(
            task=task,
            input=label,
            seconds=best,
            ratio=best / ref,
            result=check(outputs[label]),
        )


def tasks(cfg):
    X, X_test, y, y_test = nudged_digits()
    X_rbm = X[: cfg["rbm_rows"]]
    digits_X, digits_y = load_digits(return_X_y=True)
    digits_X = digits_X / 16.0
    rng = np.random.default_rng(0)
    Xi = random_patterns(rng, 100, 1024)
    probes = flip_bits(rng, Xi[rng.integers(0, 100, cfg["probes"])], 154)
    hebbian = random_patterns(rng, 60, 1024)
    hebbian_probes = flip_bits(rng, hebbian[rng.integers(0, 60, cfg["probes"])], 100)

    def numpy(a):
        import torch

        return a.cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)

    def rbm_fit(batch):
        def make(convert, params):
            return RBM(
                n_components=256,
                learning_rate=0.1,
                n_iter=10,
                batch_size=batch,
                random_state=0,
                **params,
            ).fit(convert(X_rbm))

        return make

    def pipeline(convert, params):
        pipe = make_pipeline(
            MinMaxScaler(),
            RBM(
                n_components=100,
                learning_rate=0.06,
                n_iter=10,
                random_state=0,
                **params,
            ),
            LogisticRegression(max_iter=200),
        )
        pipe.fit(convert(X), convert(y))
        return pipe.score(convert(X_test), convert(y_test))

    def hopfield(rule, patterns, probe_set, **kw):
        def make(convert, params):
            memory = HopfieldMemory(rule=rule, random_state=0, **kw, **params)
            memory.fit(convert(patterns))
            return memory.transform(convert(probe_set))

        return make

    def jem(convert, params):
        model = LangevinEBMClassifier(random_state=0, **params)
        model.fit(convert(digits_X[:1300]), convert(digits_y[:1300]))
        return model.score(convert(digits_X[1300:]), convert(digits_y[1300:]))

    def vae(convert, params):
        model = VAETransformer(random_state=0, **params)
        model.fit(convert(digits_X[:1300].astype(np.float32)))
        return float(numpy(model.score_samples(convert(digits_X[1300:]))).mean())

    def recall_rate(reference):
        return lambda out: float(np.mean(np.all(numpy(out) == reference, axis=1)))

    yield "RBM fit, batch 10", False, rbm_fit(10), cfg["repeats"], lambda m: "-"
    yield "RBM fit, batch 100", False, rbm_fit(100), cfg["repeats"], lambda m: "-"
    yield (
        "MinMaxScaler -> RBM -> LogisticRegression, fit + score",
        False,
        pipeline,
        cfg["repeats"],
        lambda s: f"accuracy {float(s):.3f}",
    )
    target_modern = Xi[np.argmax(probes @ Xi.T, axis=1)]
    yield (
        f"HopfieldMemory modern fit + one-step recall, {cfg['probes']} probes, N = 1024",
        False,
        hopfield("modern", Xi, probes, max_iter=1),
        cfg["hopfield_repeats"],
        lambda out: f"recalled {recall_rate(target_modern)(out):.3f}",
    )
    yield (
        f"HopfieldMemory Hebbian fit + sync recall, {cfg['probes']} probes, N = 1024",
        False,
        hopfield("hebbian", hebbian, hebbian_probes, update="sync"),
        cfg["hopfield_repeats"],
        lambda out: "-",
    )
    if cfg["neural"]:
        yield (
            "LangevinEBMClassifier default fit + score",
            True,
            jem,
            cfg["neural_repeats"],
            lambda s: f"accuracy {float(s):.3f}",
        )
        yield (
            "VAETransformer default fit + score_samples",
            True,
            vae,
            cfg["neural_repeats"],
            lambda s: f"mean log p {s:.1f}",
        )


def cuda_recall(table):
    """10,000 probes at N = 4096 on the GPU: modern one-step and sync Hebbian."""
    import torch

    rng = np.random.default_rng(1)
    Xi = random_patterns(rng, 400, 4096)
    probes = flip_bits(rng, Xi[rng.integers(0, 400, 10_000)], 600)
    for rule, kw in (("modern", {"max_iter": 1}), ("hebbian", {"update": "sync"})):
        with sklearn.config_context(array_api_dispatch=True):
            memory = HopfieldMemory(rule=rule, random_state=0, **kw)
            patterns = Xi[:200] if rule == "hebbian" else Xi
            memory.fit(torch.from_numpy(patterns).cuda())
            P = torch.from_numpy(probes).cuda()
            memory.transform(P)
            torch.cuda.synchronize()
            times = []
            for _ in range(5):
                tic = time.perf_counter()
                memory.transform(P)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - tic)
        table.add(
            task=f"HopfieldMemory {rule} recall, 10,000 probes, N = 4096",
            input="CUDA tensors, dispatch",
            seconds=min(times),
            ratio=None,
            result="-",
        )


FULL = {
    "rbm_rows": 7188,
    "probes": 4000,
    "repeats": 3,
    "hopfield_repeats": 5,
    "neural_repeats": 2,
    "neural": True,
}
QUICK = {
    "rbm_rows": 500,
    "probes": 200,
    "repeats": 1,
    "hopfield_repeats": 1,
    "neural_repeats": 1,
    "neural": False,
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, no files")
    parser.add_argument(
        "--threads", default="default", help="'default' or a number (BLAS and torch)"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not ARRAY_API_SUPPORT:
        print("array API dispatch needs scikit-learn >= 1.9")
        return 1
    import torch

    cfg = QUICK if args.quick else FULL
    pinned = args.threads != "default"
    limits = (
        threadpool_limits(int(args.threads)) if pinned else contextlib.nullcontext()
    )
    if pinned:
        torch.set_num_threads(int(args.threads))
    warnings.simplefilter("ignore", ConvergenceWarning)
    warnings.simplefilter("ignore", UserWarning)
    name = "dispatch" + (f"_{args.threads}thread" if pinned else "")
    report = Report(
        name=name,
        title="Array API dispatch: torch tensors against NumPy arrays"
        + (" (QUICK smoke run)" if args.quick else ""),
        machine=machine_info(),
        settings={"threads": args.threads, **cfg},
        intro=[
            "Produced by `python benchmarks/bench_dispatch.py"
            + (f" --threads {args.threads}`" if pinned else "`")
            + ". Every row of a task ran in this one process, round-robin with 0.3 s "
            "idle before each turn, after one warm-up call; seconds are the best of "
            "the repeats, the ratio divides by "
            "the NumPy row of the same task. Tensor rows run under "
            "`sklearn.config_context(array_api_dispatch=True)` and answer in tensors.",
        ],
    )
    table = Table(
        "Fits and recalls by input",
        [
            ("task", "task", ""),
            ("input", "input", ""),
            ("seconds", "best (s)", ".3f"),
            ("ratio", "vs NumPy in", ".2f"),
            ("result", "result", ""),
        ],
    )
    tic = time.perf_counter()
    with limits:
        for task, torch_only, make_call, repeats, check in tasks(cfg):
            ways = Inputs(torch_backend=not torch_only)
            if torch_only:  # NumPy in already runs on torch: the first row is it
                ways.ways[0] = ("NumPy in", np.asarray, {}, 0)
            print(f"  {task}", flush=True)
            timed_task(table, task, ways, make_call, repeats, check)
        if cuda_available():
            cuda_recall(table)
    table.notes += [
        "RBM settings: n_components=256, learning_rate=0.1, n_iter=10 on the first "
        f"{cfg['rbm_rows']} nudged digits (as benchmarks/bench_rbm.py). Pipeline: "
        "RBM(n_components=100, learning_rate=0.06, n_iter=10), LogisticRegression"
        "(max_iter=200) on the 80/20 split of the nudged digits.",
        "Hopfield: 100 random patterns (modern, max_iter=1) or 60 (Hebbian, "
        "synchronous) of 1024 units; probes with 15% (modern) or 10% (Hebbian) of "
        "their bits flipped. The modern row's result is the share of probes recalled "
        "to their nearest pattern.",
        "Torch-only estimators (JEM, VAE) have no NumPy backend: their first row is "
        "NumPy in, numerics in torch.",
    ]
    if not cuda_available():
        table.notes.append("No CUDA device in this run: the CUDA rows are left out.")
    report.add(table)
    print(table.to_markdown())
    out = args.out if args.out is not None else (None if args.quick else RESULTS_DIR)
    if out is not None:
        md, _ = report.write(out, time.perf_counter() - tic)
        print(f"wrote {md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
