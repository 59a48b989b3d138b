"""The ``make demo`` job: ``python -m skebm.demo [--out DIR] [--backend NAME]``.

Each estimator contributes one section module with
``run(out_dir, random_state=0, backend="numpy") -> list of (model, metric, value)`` rows;
sections fit their estimator inside a Pipeline / GridSearchCV on the digits bundled
with scikit-learn, save a figure into ``out_dir`` and print its path.
"""

import argparse
import importlib
import pathlib
import time

#: the demo sections, in the order they run
SECTIONS = ("rbm", "hopfield", "langevin", "vae")


def pyplot():
    """matplotlib's pyplot on the Agg backend: the demo only writes files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def show_image(ax, image):
    """Draw ``image`` (a digit's 64 pixels, or a picture) in [0, 1] black on white,
    without axes."""
    image = image.reshape(8, 8) if image.ndim == 1 else image
    ax.imshow(image, cmap="gray_r", vmin=0, vmax=1)
    ax.set_axis_off()


def save_figure(fig, path, what):
    """Write ``fig`` to ``path``, close it and print where it went."""
    fig.savefig(path, dpi=80)
    pyplot().close(fig)
    print(f"[demo] {what} figure written to {path}")


def print_table(rows):
    widths = [max(len(str(r[i])) for r in rows) for i in range(3)]
    header = ("model", "metric", "value")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m skebm.demo", description=__doc__)
    parser.add_argument("--out", default="demo_output", help="folder for the figures")
    parser.add_argument("--backend", default="numpy", choices=["numpy", "torch"])
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    out_dir = pathlib.Path(args.out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in SECTIONS:
        tic = time.perf_counter()
        section = importlib.import_module(f"skebm.demo.{name}")
        rows += section.run(
            out_dir, random_state=args.random_state, backend=args.backend
        )
        print(f"[demo] {name} section done in {time.perf_counter() - tic:.1f}s")
    print()
    print_table(rows)
    return rows
