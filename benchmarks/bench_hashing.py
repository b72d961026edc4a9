"""Benchmark content hashing and profiling against pandas' own row hash, and what comparing
the values a cell wrote costs each cell.

Run ``python benchmarks/bench_hashing.py`` (add ``--json`` for a JSON dict). It builds a
5M-row x 5-column DataFrame (4 numeric columns, 1 string column), times ``content_hash`` and
``profile`` against ``pd.util.hash_pandas_object`` in the same process (median of a few
repeats), and measures hashing throughput on a 512 MiB numpy array.

Then the per-cell hook (``bench_tracking``'s timer of the capture's own pre/post-run hooks)
on cells that assign nothing and on cells that assign a few plain values (numbers, a list, a
dict with a set), each against a bare ``run_cell`` of the same cells in the same run; and the
cost of ``value_hash`` on typical values, from an int to a fitted forest, including how long
giving up on a value too large to hash takes. Nothing here asserts a time: the numbers are
for reading and for comparing commits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_mlops.hashing import content_hash
from jupyter_mlops.profiles import profile
from jupyter_mlops.values import MAX_ITEMS, value_hash

# Cells for the per-cell hook: the budget (20 us on the anchor machine) is for cells that
# assign nothing; cells that assign plain values pay for hashing them.
CELLS_ASSIGNING_NOTHING = ("abs(-1);", "pass", "[1, 2, 3];")
CELLS_ASSIGNING_PLAIN_VALUES = (
    "n = 3\nname = 'baseline'",
    "scores = [0.91, 0.93, 0.9]\nbest = max(scores)",
    "config = {'lr': 0.01, 'layers': [64, 32], 'tags': {'a', 'b'}}",
)


def build_frame(rows: int) -> pd.DataFrame:
    """Return a frame of ``rows`` rows: two float, two int and one string column."""
    rng = np.random.default_rng(42)
    ids = np.arange(rows) % 50_000
    return pd.DataFrame(
        {
            "x": rng.standard_normal(rows),
            "y": rng.random(rows),
            "count": rng.integers(0, 1_000, rows),
            "step": np.arange(rows, dtype=np.int64),
            "user": pd.Series(ids).astype(str).radd("user_"),
        }
    )


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Return the median wall time of ``repeats`` calls of ``fn``, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_frame(rows: int, repeats: int) -> dict[str, Any]:
    """Time content_hash, hash_pandas_object and profile on one frame."""
    frame = build_frame(rows)
    ours = median_seconds(lambda: content_hash(frame), repeats)
    pandas_time = median_seconds(lambda: pd.util.hash_pandas_object(frame), max(1, repeats // 2))
    return {
        "rows": rows,
        "columns": frame.shape[1],
        "content_hash_s": ours,
        "hash_pandas_object_s": pandas_time,
        "speedup": pandas_time / ours,
        "profile_s": median_seconds(lambda: profile(frame), repeats),
    }


def time_array(mib: int, repeats: int) -> dict[str, Any]:
    """Time content_hash on a contiguous float64 array of ``mib`` MiB and on a strided view."""
    array = np.arange(mib * (1 << 20) // 8, dtype=np.float64)
    seconds = median_seconds(lambda: content_hash(array), repeats)
    strided = array.reshape(-1, 2)[:, 0]
    strided_seconds = median_seconds(lambda: content_hash(strided), max(1, repeats // 2))
    return {
        "array_mib": mib,
        "array_s": seconds,
        "array_gb_per_s": array.nbytes / seconds / 1e9,
        "strided_gb_per_s": strided.nbytes / strided_seconds / 1e9,
    }


def time_cell_hooks(rounds: int, reps: int) -> dict[str, Any]:
    """The capture's per-cell hook cost on cells assigning nothing and plain values, each
    against a bare ``run_cell`` of the same cells (``bench_tracking.bench_cells``)."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_tracking as tracking

    saved = {k: os.environ.get(k) for k in ("JUPYTER_MLOPS_DIR", "IPYTHONDIR")}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-hashing-") as name:
        os.environ["JUPYTER_MLOPS_DIR"] = str(Path(name) / ".mlops")
        os.environ["IPYTHONDIR"] = str(Path(name) / "ipython")
        shell = tracking._make_shell("memory")
        try:
            for label, cells in (
                ("assigns_nothing", CELLS_ASSIGNING_NOTHING),
                ("assigns_plain_values", CELLS_ASSIGNING_PLAIN_VALUES),
            ):
                measured = tracking.bench_cells(shell, rounds, reps, cells=cells, time_parse=False)
                bare = measured["bare"]["median_us"]
                results[label] = {
                    "cells": list(cells),
                    "hook_median_us": measured["hooks"]["median_us"],
                    "hook_p99_us": measured["hooks"]["p99_us"],
                    "bare_run_cell_median_us": bare,
                    "hook_pct_of_bare_run_cell": measured["hooks"]["pct_of_bare_run_cell"],
                    "target_us_scaled": tracking._scaled_target(bare),
                }
        finally:
            shell.history_manager.end_session()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return results


def typical_values() -> list[tuple[str, Any]]:
    """Values cells write, from the cheapest to the largest compared and beyond."""
    values: list[tuple[str, Any]] = [
        ("int", 3),
        ("str", "baseline"),
        ("list of 5 floats", [0.91, 0.93, 0.9, 0.88, 0.95]),
        ("config dict (nested, a set)", {"lr": 0.01, "layers": [64, 32], "tags": {"a", "b"}}),
        ("list of 10,000 floats", [i / 7 for i in range(10_000)]),
        ("dict of 10,000 str -> float", {f"k{i}": i / 7 for i in range(10_000)}),
        (f"list of {MAX_ITEMS + 1:,} ints (too large)", list(range(MAX_ITEMS + 1))),
        ("ndarray 1M float64", np.arange(1_000_000, dtype=np.float64)),
    ]
    try:
        from sklearn.datasets import load_iris
        from sklearn.ensemble import RandomForestClassifier

        X, y = load_iris(return_X_y=True)
        forest = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
        values.append(("fitted RandomForest, 100 trees", forest))
    except ImportError:
        pass
    try:
        from matplotlib.figure import Figure

        figure = Figure()
        figure.subplots(2, 2)
        values.append(("matplotlib Figure, 2x2 (not compared)", figure))
    except ImportError:
        pass
    return values


def time_values(repeats: int) -> dict[str, Any]:
    """Median time of ``value_hash`` on each typical value, and what it decided."""
    results: dict[str, Any] = {}
    for label, value in typical_values():
        digest, reason = value_hash(value)
        calls = max(3, repeats * (20 if label in ("int", "str") else 1))
        results[label] = {
            "us": median_seconds(lambda value=value: value_hash(value), calls) * 1e6,
            "compared": digest is not None,
            "reason": reason,
        }
    return results


def print_table(results: dict[str, Any]) -> None:
    """Print the results as a small aligned table."""
    rows = [
        (f"content_hash(df) {results['rows']:,} x {results['columns']}", results["content_hash_s"]),
        ("pd.util.hash_pandas_object(df)", results["hash_pandas_object_s"]),
        ("profile(df)", results["profile_s"]),
        (f"content_hash(ndarray {results['array_mib']} MiB)", results["array_s"]),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"{'measurement':<{width}}  {'median':>10}")
    for label, seconds in rows:
        print(f"{label:<{width}}  {seconds * 1e3:>7.1f} ms")
    print(f"{'speedup over hash_pandas_object':<{width}}  {results['speedup']:>8.1f}x")
    print(f"{'ndarray throughput':<{width}}  {results['array_gb_per_s']:>6.2f} GB/s")
    print(f"{'strided ndarray throughput':<{width}}  {results['strided_gb_per_s']:>6.2f} GB/s")
    hooks = results.get("cell_hooks")
    if hooks:
        print()
        print("per-cell hook (pre+post), median    hook      p99   bare run_cell  budget here")
        for label, row in hooks.items():
            print(
                f"{label.replace('_', ' '):<34} {row['hook_median_us']:>6.1f} us "
                f"{row['hook_p99_us']:>6.1f} us {row['bare_run_cell_median_us']:>9.1f} us "
                f"{row['target_us_scaled']:>8.1f} us"
            )
    timed = results.get("values")
    if timed:
        print()
        width = max(len(label) for label in timed)
        print(f"{'value_hash of':<{width}}  {'median':>11}  compared")
        for label, row in timed.items():
            verdict = "yes" if row["compared"] else row["reason"]
            print(f"{label:<{width}}  {row['us']:>8.1f} us  {verdict}")


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the benchmark and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print a JSON dict instead")
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows of the frame")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement")
    parser.add_argument("--array-mib", type=int, default=512, help="size of the numpy array")
    parser.add_argument(
        "--cell-rounds", type=int, default=4, help="interleaved rounds per cell set"
    )
    parser.add_argument("--cell-reps", type=int, default=400, help="calls of each cell per block")
    args = parser.parse_args(argv)
    results = {**time_frame(args.rows, args.repeats), **time_array(args.array_mib, args.repeats)}
    results["cell_hooks"] = time_cell_hooks(args.cell_rounds, args.cell_reps)
    results["values"] = time_values(args.repeats)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
