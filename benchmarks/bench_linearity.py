"""Benchmark matching a run's cells to its saved notebook, against reading the notebook.

Run ``python benchmarks/bench_linearity.py`` (``--json`` prints one JSON object instead of the
table, ``--quick`` shrinks every size for a smoke run).

When a run ends it numbers its cells and judges linearity (``cell_numbers`` and
``assess_linearity``); every door that shows a run's cells marks them (``annotate_cells``).
Without cell ids (Papermill, ``jupyter_client``) cells are matched by aligning sources, the
costly path, measured here: a session that ran every saved cell once and then reran cells at
random, against ``saved_cells`` (reading and parsing the notebook file, which any check of
the saved notebook needs). Nothing here asserts a time: numbers are medians over repeats.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = [(50, 100), (200, 600), (500, 2000)]
QUICK_SIZES = [(20, 40)]
REPEATS = 7


def median_ms(work: Callable[[], Any], repeats: int) -> float:
    """The median wall time of ``work`` in milliseconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def session(folder: Path, saved: int, ran: int) -> tuple[Path, list[dict[str, Any]]]:
    """A saved notebook without cell ids and the cells a session ran from it."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.nbformat_minor = 4
    notebook.cells = [
        nbformat.v4.new_code_cell(f"x_{i} = compute({i})\nprint(x_{i})") for i in range(saved)
    ]
    for cell in notebook.cells:
        cell.pop("id", None)
    path = folder / f"session-{saved}.ipynb"
    nbformat.write(notebook, path)
    rng = random.Random(0)
    order = list(range(saved)) + [rng.randrange(saved) for _ in range(ran - saved)]
    cells = [
        {"seq": n, "execution_count": n, "cell_id": None, "source": notebook.cells[i].source}
        for n, i in enumerate(order, start=1)
    ]
    return path, cells


def main() -> None:
    """Measure and print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from jupyter_mlops.linearity import (
        annotate_cells,
        assess_linearity,
        cell_numbers,
        saved_cells,
    )

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for saved, ran in QUICK_SIZES if args.quick else SIZES:
            path, cells = session(Path(tmp), saved, ran)
            base = median_ms(lambda p=path: saved_cells(p), REPEATS)
            end = median_ms(
                lambda p=path, c=cells: (cell_numbers(c, p), assess_linearity(c, p)), REPEATS
            )
            shown = median_ms(
                lambda p=path, c=cells: annotate_cells([dict(x) for x in c], p, ended=False),
                REPEATS,
            )
            results.append(
                {
                    "saved_cells": saved,
                    "ran_cells": ran,
                    "read_notebook_ms": round(base, 2),
                    "run_end_ms": round(end, 2),
                    "run_end_ratio": round(end / base, 1),
                    "annotate_ms": round(shown, 2),
                    "annotate_ratio": round(shown / base, 1),
                }
            )
    if args.json:
        print(json.dumps({"linearity": results}))
        return
    print("saved  ran    read nb ms  run end ms (x read)  annotate ms (x read)")
    for r in results:
        print(
            f"{r['saved_cells']:<6} {r['ran_cells']:<6} {r['read_notebook_ms']:>10.2f}  "
            f"{r['run_end_ms']:>10.2f} ({r['run_end_ratio']:>4}x)  "
            f"{r['annotate_ms']:>10.2f} ({r['annotate_ratio']:>4}x)"
        )


if __name__ == "__main__":
    main()
