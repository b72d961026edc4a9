"""Benchmark content hashing and profiling against pandas' own row hash.

Run ``python benchmarks/bench_hashing.py`` (add ``--json`` for a JSON dict). It builds a
5M-row x 5-column DataFrame (4 numeric columns, 1 string column), times ``content_hash`` and
``profile`` against ``pd.util.hash_pandas_object`` in the same process (median of a few
repeats), and measures hashing throughput on a 512 MiB numpy array. Nothing here asserts a
time: the numbers are for reading and for comparing commits.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_mlops.hashing import content_hash, profile


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


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the benchmark and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print a JSON dict instead")
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows of the frame")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement")
    parser.add_argument("--array-mib", type=int, default=512, help="size of the numpy array")
    args = parser.parse_args(argv)
    results = {**time_frame(args.rows, args.repeats), **time_array(args.array_mib, args.repeats)}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
