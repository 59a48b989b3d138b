"""Helpers shared by the skebm benchmarks.

* :func:`machine_info` - a JSON-able description of the machine and the libraries,
  printed at the top of every result file;
* :func:`interleaved_timings` / :func:`best_of` - wall-clock timers that run the
  candidates of a comparison round-robin, so that a background load slows every
  candidate alike, and keep the best of the repeats;
* :class:`Table`, :class:`Report` - result tables written as markdown (for people)
  and JSON (for scripts) side by side.

Nothing here downloads anything or imports torch unless torch is installed.
"""

from __future__ import annotations

import datetime
import importlib
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

#: where the benchmarks write their result files by default
RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: environment variables that change the number of threads the libraries use
_THREAD_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "GOMP_SPINCOUNT",
)


# -- machine description ---------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    """The SIMD flags of the CPU that matter for GEMM speed (Linux only)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    wanted = (
                        "avx",
                        "avx2",
                        "fma",
                        "avx512f",
                        "avx512_bf16",
                        "amx_tile",
                    )
                    return [name for name in wanted if name in flags]
    except OSError:
        pass
    return []


def _ram_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(module: str) -> str | None:
    try:
        return importlib.import_module(module).__version__
    except ImportError:
        return None


def _blas_info() -> list[dict]:
    """BLAS libraries loaded in this process (threadpoolctl, a scikit-learn dependency),
    falling back to numpy's build configuration."""
    try:
        from threadpoolctl import threadpool_info

        keys = ("prefix", "internal_api", "version", "architecture", "threading_layer")
        return [
            {**{k: lib.get(k) for k in keys}, "num_threads": lib.get("num_threads")}
            for lib in threadpool_info()
        ]
    except ImportError:
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return [{"internal_api": blas.get("name"), "version": blas.get("version")}]
    except (TypeError, KeyError):
        return []


def _torch_info() -> dict | None:
    try:
        import torch
    except ImportError:
        return None
    info = {
        "version": torch.__version__,
        "num_threads": torch.get_num_threads(),
        "mkl": torch.backends.mkl.is_available(),
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
        info["cuda_version"] = torch.version.cuda
    return info


def cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def machine_info() -> dict:
    """Describe the machine, the libraries and the current load, as a JSON-able dict."""
    try:
        n_usable = len(os.sched_getaffinity(0))
    except AttributeError:
        n_usable = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "logical_cores": os.cpu_count(),
        "usable_cores": n_usable,
        "ram_gib": _ram_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": _version("scipy"),
        "scikit-learn": _version("sklearn"),
        "skebm": _version("skebm"),
        "blas": _blas_info(),
        "torch": _torch_info(),
        "thread_env": {k: os.environ[k] for k in _THREAD_ENV if k in os.environ},
        "load_average_1_5_15min": load,
    }


def machine_markdown(info: dict) -> str:
    """A two-column markdown table of :func:`machine_info`."""
    blas = "; ".join(
        " ".join(
            str(lib[k]) for k in ("prefix", "version", "architecture") if lib.get(k)
        )
        + f" ({lib.get('num_threads')} threads)"
        for lib in info["blas"]
    )
    torch = info["torch"]
    if torch is None:
        torch_txt, cuda_txt = "not installed", "no torch"
    else:
        torch_txt = f"{torch['version']} ({torch['num_threads']} threads"
        torch_txt += ", MKL)" if torch["mkl"] else ")"
        cuda_txt = torch.get("cuda_device", "no CUDA device in this run")
    rows = [
        ("CPU", f"{info['cpu']} ({', '.join(info['cpu_flags']) or 'flags unknown'})"),
        ("cores", f"{info['usable_cores']} usable of {info['logical_cores']} logical"),
        ("RAM", f"{info['ram_gib']} GiB"),
        ("OS", info["os"]),
        ("Python", info["python"]),
        ("numpy / scipy", f"{info['numpy']} / {info['scipy']}"),
        ("scikit-learn", info["scikit-learn"]),
        ("skebm", info["skebm"]),
        ("BLAS / OpenMP pools loaded", blas or "unknown"),
        ("torch", torch_txt),
        ("CUDA", cuda_txt),
        (
            "thread variables",
            ", ".join(f"{k}={v}" for k, v in info["thread_env"].items()) or "none set",
        ),
        ("load average at start (1/5/15 min)", str(info["load_average_1_5_15min"])),
    ]
    lines = ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


# -- timing ----------------------------------------------------------------------------


def time_call(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of ``fn``."""
    tic = time.perf_counter()
    fn()
    return time.perf_counter() - tic


def interleaved_timings(
    candidates: dict[str, Callable[[], object]],
    repeats: int = 3,
    max_total_s: float | None = None,
    calls_per_turn: int = 1,
    pause_s: float = 0.0,
) -> dict[str, list[float]]:
    """Time every candidate ``repeats`` times, round-robin (A B C A B C ...).

    Interleaving spreads a background load that comes and goes over all candidates,
    so that ratios between them stay meaningful on a shared machine. A candidate
    whose timings already add up to ``max_total_s`` seconds is not repeated again
    (it keeps at least one timing): a pathological slowdown then costs the run once.

    ``calls_per_turn`` > 1 calls a candidate that many times back to back on each
    turn and records the fastest: the first call of a turn can pay for what the
    previous candidate left behind. NumPy's OpenBLAS threads keep spinning for a
    while after a product, and a torch call made then ran 4x slower (median of
    10, 4000-probe Hopfield recall) than the same call made after another one.
    ``pause_s`` > 0 idles that long before each turn, so that such threads have
    gone to sleep (OpenBLAS's spin for a while after a product: a 10 ms torch
    recall that follows a NumPy product runs about 1.5x to 2x slower).

    Returns
    -------
    times : dict
        name -> list of wall-clock times in seconds, in run order (``repeats`` of
        them unless ``max_total_s`` cut a candidate short).
    """
    times: dict[str, list[float]] = {name: [] for name in candidates}
    spent = dict.fromkeys(candidates, 0.0)  # every call counts towards max_total_s
    for _ in range(repeats):
        for name, fn in candidates.items():
            if times[name] and max_total_s is not None and spent[name] >= max_total_s:
                continue
            if pause_s:
                time.sleep(pause_s)
            turn = [time_call(fn) for _ in range(calls_per_turn)]
            spent[name] += sum(turn)
            times[name].append(min(turn))
    return times


def best_of(fn: Callable[[], object], n: int = 3) -> float:
    """Best (smallest) wall-clock time of ``n`` calls of ``fn``, in seconds."""
    return min(time_call(fn) for _ in range(n))


def loop_rate(run, work: float, repeats: int = 3, min_time: float = 0.2) -> float:
    """Best rate (work per second) of ``run(calls)``, which does ``calls`` units.

    ``calls`` doubles until one timing lasts ``min_time`` seconds, so that the timer
    resolution and call overheads do not matter; the best of ``repeats`` timings of
    that many calls is kept. ``work`` is the work of one unit (e.g. its flops).
    """
    run(1)  # warm up: threads, page faults, lazy initialisation
    calls = 1
    while time_call(partial(run, calls)) < min_time:
        calls *= 2
    best = min(time_call(partial(run, calls)) for _ in range(repeats))
    return work * calls / best


def gemm_rate(a: np.ndarray, b: np.ndarray, repeats: int = 3, min_time: float = 0.2):
    """Best GFLOP/s of the numpy product ``a @ b`` (2 m k n flops)."""
    (m, k), n = a.shape, b.shape[1]
    out = np.empty((m, n), dtype=np.result_type(a, b))

    def run(calls):
        for _ in range(calls):
            np.matmul(a, b, out=out)

    return loop_rate(run, 2.0 * m * k * n, repeats, min_time) / 1e9


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and (population) standard deviation of a sequence of numbers."""
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std())


# -- result tables ---------------------------------------------------------------------


def _fmt(value, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if spec and isinstance(value, (int, float, np.floating, np.integer)):
        return format(value, spec)
    return str(value)


@dataclass
class Table:
    """A result table: named columns, rows of raw values, notes and targets.

    ``columns`` is a list of ``(key, header, format_spec)``; rows are dicts keyed by
    ``key`` that keep their raw values for JSON and are formatted for markdown.
    """

    title: str
    columns: list[tuple[str, str, str]]
    rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[dict] = field(default_factory=list)

    def add(self, **row) -> dict:
        """Append a row (keyword per column key; extra keys go to JSON only)."""
        self.rows.append(row)
        return row

    def target(self, name: str, met: bool, detail: str) -> None:
        """Record a target, shown as ``target met: yes/no`` under the table."""
        self.targets.append({"target": name, "met": bool(met), "detail": detail})

    def to_markdown(self) -> str:
        head = "| " + " | ".join(h for _, h, _ in self.columns) + " |"
        sep = "|" + "|".join("---" for _ in self.columns) + "|"
        body = [
            "| "
            + " | ".join(_fmt(row.get(k), spec) for k, _, spec in self.columns)
            + " |"
            for row in self.rows
        ]
        parts = [f"## {self.title}", "", head, sep, *body]
        if self.notes:
            parts += [""] + [f"- {note}" for note in self.notes]
        if self.targets:
            parts.append("")
            for t in self.targets:
                verdict = "yes" if t["met"] else "no"
                parts.append(
                    f"- **{t['target']}** - target met: {verdict} ({t['detail']})"
                )
        return "\n".join(parts)

    def to_json(self) -> dict:
        return {
            "title": self.title,
            "columns": [{"key": k, "header": h} for k, h, _ in self.columns],
            "rows": self.rows,
            "notes": self.notes,
            "targets": self.targets,
        }


@dataclass
class Report:
    """A benchmark report: machine description, settings and tables."""

    name: str
    title: str
    machine: dict
    settings: dict = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    intro: list[str] = field(default_factory=list)
    started: str = field(
        default_factory=lambda: (
            datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        )
    )

    def add(self, table: Table) -> Table:
        self.tables.append(table)
        return table

    def targets(self) -> list[dict]:
        return [t for table in self.tables for t in table.targets]

    def to_markdown(self, elapsed: float | None = None) -> str:
        parts = [f"# {self.title}", "", f"Date: {self.started}"]
        if elapsed is not None:
            parts[-1] += f" (whole run: {elapsed:.0f} s)"
        parts += ["", machine_markdown(self.machine), ""]
        parts += self.intro
        if self.targets():
            parts += ["", "## Targets", ""]
            parts += [
                f"- {t['target']}: target met: {'yes' if t['met'] else 'no'}"
                for t in self.targets()
            ]
        for table in self.tables:
            parts += ["", table.to_markdown()]
        return "\n".join(parts) + "\n"

    def to_json(self, elapsed: float | None = None) -> dict:
        return {
            "benchmark": self.name,
            "date": self.started,
            "elapsed_s": elapsed,
            "machine": self.machine,
            "settings": self.settings,
            "targets": self.targets(),
            "tables": [t.to_json() for t in self.tables],
        }

    def write(self, out_dir: Path, elapsed: float | None = None) -> tuple[Path, Path]:
        """Write ``<name>.md`` and ``<name>.json`` into ``out_dir``; return the paths."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        md, js = out_dir / f"{self.name}.md", out_dir / f"{self.name}.json"
        md.write_text(self.to_markdown(elapsed))
        js.write_text(
            json.dumps(self.to_json(elapsed), indent=1, default=_json_default)
        )
        return md, js


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def run_sections(report: Report, steps, sections) -> None:
    """Run the ``(key, thunk)`` steps whose key is selected; add and print each table."""
    for key, run in steps:
        if key in sections:
            t0 = time.perf_counter()
            table = report.add(run())
            print(table.to_markdown())
            print(f"({time.perf_counter() - t0:.0f} s)\n", flush=True)


def finish(report: Report, started: float, out: Path | None) -> None:
    """Record the load at the end, print the targets, write the files (if ``out``)."""
    elapsed = time.perf_counter() - started
    report.machine["load_average_at_end_1_5_15min"] = [
        round(x, 2) for x in os.getloadavg()
    ]
    print("## Targets")
    for t in report.targets():
        print(
            f"- {t['target']}: target met: {'yes' if t['met'] else 'no'} "
            f"({t['detail']})"
        )
    print(f"\nwhole run: {elapsed:.0f} s")
    if out is not None:
        md, js = report.write(out, elapsed)
        print(f"wrote {md} and {js}")
