"""How many torch threads small skebm fits should use, measured.

Run ``python benchmarks/bench_threads.py`` (five to ten minutes on two cores;
``--quick`` for a smoke run that writes no files unless ``--out`` is given). The
tables go to ``benchmarks/results/threads.md`` and ``threads.json``.

1. **Gain of a second thread by problem size**: one training step (forward,
   backward, Adam) of an MLP on a batch, at one and at two torch threads, for
   networks from the digits JEM's to an MNIST-sized one. The work of a step is
   rows x parameters multiply-adds, the measure skebm's thread policy reads
   (``skebm._backends.torch.core.threads_for``).
2. **Small fits, quiet vs one core busy**: a VAETransformer and a
   LangevinEBMClassifier fit on the digits, with nothing else running and with
   another process spinning on one core, under three thread settings: the policy
   (nothing set), torch's own width (``SKEBM_TORCH_THREADS`` = all cores, what
   skebm did before the policy) and one thread (``SKEBM_TORCH_THREADS=1``).
3. **GridSearchCV over torch estimators**: ``n_jobs=2`` against ``n_jobs=1`` (loky
   workers, warmed up first), for a JEM grid and a VAE pipeline grid.

"Quiet" means no load that this script adds; other processes on a shared machine
still count, and the load average is recorded with the machine.
"""

import argparse
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS_DIR, Report, Table, finish, machine_info  # noqa: E402

from skebm import LangevinEBMClassifier, VAETransformer  # noqa: E402
from skebm._backends.torch import core  # noqa: E402
from skebm._backends.torch.nn import mlp  # noqa: E402

#: (name, batch rows, input width, hidden sizes, outputs)
SIZES = [
    ("digits JEM default", 64, 64, (128, 128), 10),
    ("digits VAE default (encoder)", 200, 64, (256,), 4),
    ("digits JEM, (256, 256)", 64, 64, (256, 256), 10),
    ("MNIST-sized MLP", 200, 784, (256, 256), 10),
    ("wide MLP", 256, 784, (1024, 1024), 10),
]


def step_time(rows, d_in, hidden, d_out, threads, min_time):
    """Seconds per training step of an MLP at ``threads`` torch threads."""
    torch.set_num_threads(threads)
    net = mlp(d_in, hidden, d_out, "swish")
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x, y = torch.randn(rows, d_in), torch.randint(0, d_out, (rows,))

    def step():
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    best = np.inf
    for _ in range(3):
        n, tic = 0, time.perf_counter()
        while time.perf_counter() - tic < min_time:
            step()
            n += 1
        best = min(best, (time.perf_counter() - tic) / n)
    return best, sum(p.numel() for p in net.parameters())


def section_sizes(n_cores, min_time):
    table = Table(
        f"1. Gain of {n_cores} threads over one, one training step by problem size",
        [
            ("name", "network", ""),
            ("work", "work (rows x parameters)", ".3g"),
            ("t1", "1 thread (ms)", ".3f"),
            ("tn", f"{n_cores} threads (ms)", ".3f"),
            ("gain", "speed-up", ".2f"),
            ("policy", "threads the policy picks", ""),
        ],
    )
    for name, rows, d_in, hidden, d_out in SIZES:
        t1, n_params = step_time(rows, d_in, hidden, d_out, 1, min_time)
        tn, _ = step_time(rows, d_in, hidden, d_out, n_cores, min_time)
        work = rows * n_params
        table.add(
            name=f"{name}: batch {rows}, {d_in}-{'-'.join(map(str, hidden))}-{d_out}",
            work=work,
            t1=1e3 * t1,
            tn=1e3 * tn,
            gain=t1 / tn,
            policy=min(n_cores, max(1, int(work // core.WORK_PER_THREAD))),
        )
    table.notes.append(
        f"The policy gives one thread per {core.WORK_PER_THREAD:,} multiply-adds of "
        "a step (skebm._backends.torch.core.WORK_PER_THREAD), within the "
        "threadpoolctl / joblib budget."
    )
    return table


def digits():
    X, y = load_digits(return_X_y=True)
    return X, y


def fits(quick):
    X, y = digits()
    epochs_jem, epochs_vae = (2, 5) if quick else (3, 10)

    def jem():
        LangevinEBMClassifier(max_iter=epochs_jem, random_state=0).fit(X, y)

    def vae():
        VAETransformer(max_iter=epochs_vae, random_state=0).fit(
            (X / 16).astype(np.float32)
        )

    return {
        f"LangevinEBMClassifier, defaults, {epochs_jem} epochs": jem,
        f"VAETransformer, defaults, {epochs_vae} epochs": vae,
    }


def best_time(fn, repeats):
    best = np.inf
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - tic)
    return best


class BusyCore:
    """Another process spinning on one core while the block runs."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def section_busy(n_cores, quick, repeats):
    modes = {
        "policy (nothing set)": None,
        f"torch's own width ({n_cores} threads, before the policy)": str(n_cores),
        "one thread (SKEBM_TORCH_THREADS=1)": "1",
    }
    table = Table(
        "2. Small fits: quiet vs one core busy",
        [
            ("fit", "fit", ""),
            ("mode", "threads", ""),
            ("quiet", "quiet (s)", ".2f"),
            ("busy", "one core busy (s)", ".2f"),
            ("ratio", "busy / quiet", ".2f"),
            ("vs_policy_quiet", "busy / policy's quiet", ".2f"),
        ],
    )
    results = {}
    for name, fn in fits(quick).items():
        fn()  # warm-up
        quiet = {}
        for mode, env in modes.items():
            _set_env(env)
            quiet[mode] = best_time(fn, repeats)
        with BusyCore():
            busy = {}
            for mode, env in modes.items():
                _set_env(env)
                busy[mode] = best_time(fn, repeats)
        _set_env(None)
        base = quiet["policy (nothing set)"]
        for mode in modes:
            table.add(
                fit=name,
                mode=mode,
                quiet=quiet[mode],
                busy=busy[mode],
                ratio=busy[mode] / quiet[mode],
                vs_policy_quiet=busy[mode] / base,
            )
        results[name] = busy["policy (nothing set)"] / base
    table.notes.append(
        f"{repeats} fit(s) each. 'busy / policy's quiet' compares with the "
        "quiet fit under the policy, the time a user gets on an idle machine."
    )
    for name, ratio in results.items():
        table.target(
            f"{name}: one core busy <= 1.3x quiet (policy)",
            ratio <= 1.3,
            f"{ratio:.2f}x",
        )
    return table


def _set_env(value):
    if value is None:
        os.environ.pop(core.THREADS_ENV, None)
    else:
        os.environ[core.THREADS_ENV] = value


def section_grid(quick):
    X, y = digits()
    epochs = 2 if quick else 4
    searches = {
        "LangevinEBMClassifier, 4 settings x 2 folds": lambda n_jobs: GridSearchCV(
            LangevinEBMClassifier(max_iter=epochs, random_state=0),
            {"sgld_steps": [3, 5], "alpha": [1e-4, 1e-3]},
            cv=2,
            n_jobs=n_jobs,
        ).fit(X, y),
        "VAETransformer -> LogisticRegression, 4 settings x 2 folds": (
            lambda n_jobs: GridSearchCV(
                make_pipeline(
                    VAETransformer(max_iter=5 * epochs, random_state=0),
                    LogisticRegression(max_iter=1000),
                ),
                {
                    "vaetransformer__n_components": [2, 8],
                    "vaetransformer__alpha": [1e-4, 1e-3],
                },
                cv=2,
                n_jobs=n_jobs,
            ).fit((X / 16).astype(np.float32), y)
        ),
    }
    table = Table(
        "3. GridSearchCV over torch estimators, n_jobs=2 vs n_jobs=1",
        [
            ("search", "search", ""),
            ("t1", "n_jobs=1 (s)", ".2f"),
            ("t2", "n_jobs=2 (s)", ".2f"),
            ("speedup", "speed-up", ".2f"),
        ],
    )
    for name, search in searches.items():
        search(2)  # starts and warms the loky workers
        t1 = best_time(lambda s=search: s(1), 1)
        t2 = best_time(lambda s=search: s(2), 1)
        table.add(search=name, t1=t1, t2=t2, speedup=t1 / t2)
        table.target(
            f"{name}: n_jobs=2 faster than n_jobs=1", t2 < t1, f"{t1 / t2:.2f}x"
        )
    table.notes.append(
        "joblib's loky workers start with OMP_NUM_THREADS = cores / n_jobs, which "
        "torch and the policy's budget read; the refit on the whole data runs in "
        "the parent after the search."
    )
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--sections", default="1,2,3")
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else (None if args.quick else RESULTS_DIR)
    warnings.simplefilter("ignore", ConvergenceWarning)
    n_cores = len(os.sched_getaffinity(0))
    tic = time.perf_counter()
    report = Report(
        "threads",
        "Torch threads for small skebm models",
        machine_info(),
        settings={"quick": args.quick, "cores": n_cores},
    )
    report.intro.append(
        "The thread policy (skebm._backends.torch.core.thread_limit): torch runs at "
        "the fewest of its own thread count, the threadpoolctl / joblib budget, and "
        f"one thread per {core.WORK_PER_THREAD:,} multiply-adds of a training or "
        "prediction step; one thread inside a joblib worker thread; "
        "SKEBM_TORCH_THREADS=n overrides it. See docs/scaling_out.rst."
    )
    sections = set(args.sections.split(","))
    previous = torch.get_num_threads()
    if "1" in sections:
        report.add(section_sizes(n_cores, 0.05 if args.quick else 0.3))
        torch.set_num_threads(previous)
        print(report.tables[-1].to_markdown(), flush=True)
    if "2" in sections:
        report.add(section_busy(n_cores, args.quick, 3))
        print(report.tables[-1].to_markdown(), flush=True)
    if "3" in sections:
        report.add(section_grid(args.quick))
        print(report.tables[-1].to_markdown(), flush=True)
    finish(report, tic, out)


if __name__ == "__main__":
    main()
