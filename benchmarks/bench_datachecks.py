"""Benchmark data checks: a 1M x 20 frame against a recorded profile, side by side with
Evidently's ``DataDriftPreset`` on the same two frames, and profiling a 5M x 5 frame against
the profile of an earlier commit (before the richer profiles) in the same process.

Evidently runs in its own interpreter (``--evidently-python``; its pins may clash with ours),
as a subprocess reading the same Parquet files; each side's time excludes reading them.
Medians of a few runs; never an assertion on time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jupyter_mlops.datachecks import compare_profiles
from jupyter_mlops.profiles import profile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hashing import build_frame  # noqa: E402

EVIDENTLY_SCRIPT = """
import json, statistics, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
reference = pd.read_parquet(sys.argv[1])
current = pd.read_parquet(sys.argv[2])
repeats = int(sys.argv[3])
times = []
for _ in range(repeats):
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    snapshot.dict()
    times.append(time.perf_counter() - start)
print(json.dumps({"median_s": statistics.median(times), "times": times}))
"""


def build_pair(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reference frame and a current one: 12 number and 8 category columns, three drifted."""
    rng = np.random.default_rng(seed)

    def frame(shift: float) -> pd.DataFrame:
        columns: dict[str, Any] = {}
        for i in range(12):
            columns[f"num_{i}"] = rng.normal(i, 1 + i / 10, rows) + (shift if i < 2 else 0.0)
        for i in range(8):
            levels = [f"level_{j}" for j in range(5 + 5 * i)]
            weights = np.linspace(1, 2 + 4 * shift * (i == 0), len(levels))
            columns[f"cat_{i}"] = rng.choice(levels, rows, p=weights / weights.sum())
        return pd.DataFrame(columns)

    return frame(0.0), frame(0.6)


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """The median wall time of ``repeats`` calls of ``fn``, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_check(reference: pd.DataFrame, current: pd.DataFrame, repeats: int) -> dict[str, Any]:
    """Profile the reference once (what ``log_data`` records), then time the check."""
    start = time.perf_counter()
    baseline = profile(reference)
    profile_s = time.perf_counter() - start

    def check() -> dict[str, Any]:
        return compare_profiles(baseline, profile(current, reference=baseline))

    report = check()
    return {
        "reference_profile_s": profile_s,
        "check_s": median_seconds(check, repeats),
        "drifted_columns": sorted(n for n, c in report["columns"].items() if c["drift"]),
    }


def time_evidently(python: str, reference: Path, current: Path, repeats: int) -> dict[str, Any]:
    """Evidently's DataDriftPreset on the same files, in its own interpreter."""
    done = subprocess.run(
        [python, "-c", EVIDENTLY_SCRIPT, str(reference), str(current), str(repeats)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def load_profile_of(rev: str) -> Callable[[Any], Any] | None:
    """``hashing.profile`` as it was at commit ``rev`` (loaded from git, not checked out)."""
    shown = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:jupyter_mlops/hashing.py"],
        capture_output=True,
        text=True,
        check=False,
    )
    if shown.returncode != 0 or "def profile(" not in shown.stdout:
        return None
    path = Path(tempfile.mkdtemp()) / "hashing_before.py"
    path.write_text(shown.stdout)
    spec = importlib.util.spec_from_file_location("hashing_before", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules["hashing_before"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.profile  # type: ignore[no-any-return]


def time_profiles(rows: int, rev: str, repeats: int) -> dict[str, Any]:
    """Today's profile and the one of ``rev`` on the same frame, interleaved."""
    before = load_profile_of(rev)
    frame = build_frame(rows)
    if before is None:
        return {"rows": rows, "profile_s": median_seconds(lambda: profile(frame), repeats)}
    ours: list[float] = []
    theirs: list[float] = []
    profile(frame)
    before(frame)
    for _ in range(repeats):
        for fn, times in ((profile, ours), (before, theirs)):
            start = time.perf_counter()
            fn(frame)
            times.append(time.perf_counter() - start)
    now, then = statistics.median(ours), statistics.median(theirs)
    return {"rows": rows, "rev": rev, "profile_s": now, "before_s": then, "ratio": now / then}


def default_rev() -> str:
    """The commit before ``profiles.py`` was added."""
    added = subprocess.run(
        [
            "git",
            "-C",
            str(ROOT),
            "log",
            "--diff-filter=A",
            "--format=%H",
            "--",
            "jupyter_mlops/profiles.py",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    return f"{added[-1]}^" if added else "HEAD"


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the checked frames")
    parser.add_argument(
        "--profile-rows", type=int, default=5_000_000, help="rows of the 5-column frame"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement")
    parser.add_argument("--evidently-python", help="an interpreter with evidently installed")
    parser.add_argument(
        "--evidently-repeats", type=int, default=1, help="timed Evidently runs (minutes each)"
    )
    parser.add_argument(
        "--before", help="the commit whose profile to compare (default: the one before profiles.py)"
    )
    args = parser.parse_args(argv)

    results: dict[str, Any] = {"rows": args.rows, "columns": 20}
    reference, current = build_pair(args.rows)
    print("checking the frames...", file=sys.stderr)
    with tempfile.TemporaryDirectory() as folder:
        ref_path, cur_path = Path(folder) / "reference.parquet", Path(folder) / "current.parquet"
        reference.to_parquet(ref_path)
        current.to_parquet(cur_path)
        # Both sides check the frames as read back from the same files.
        reference, current = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
        results["ours"] = time_check(reference, current, args.repeats)
        if args.evidently_python:
            print("running Evidently...", file=sys.stderr)
            evidently = time_evidently(
                args.evidently_python, ref_path, cur_path, args.evidently_repeats
            )
            results["evidently"] = evidently
            if "median_s" in evidently:
                results["speedup"] = evidently["median_s"] / results["ours"]["check_s"]
    print("profiling the 5-column frame...", file=sys.stderr)
    results["profile"] = time_profiles(
        args.profile_rows, args.before or default_rev(), args.repeats
    )
    if args.json:
        print(json.dumps(results, indent=2))
        return
    ours = results["ours"]
    print(f"data check of a {args.rows:,} x 20 frame against a profile")
    print(f"  profile of the reference (once, at log_data): {ours['reference_profile_s']:.3f} s")
    print(f"  check (profile on its bins + compare):        {ours['check_s']:.3f} s")
    print(f"  drifted columns: {', '.join(ours['drifted_columns'])}")
    evidently = results.get("evidently")
    if evidently is None:
        print("  Evidently: not run (give --evidently-python)")
    elif "error" in evidently:
        print(f"  Evidently: failed: {evidently['error']}")
    else:
        print(f"  Evidently DataDriftPreset:                   {evidently['median_s']:.3f} s")
        print(f"  speedup: {results['speedup']:.1f}x")
    prof = results["profile"]
    print(f"profile of a {prof['rows']:,} x 5 frame: {prof['profile_s']:.3f} s", end="")
    if "before_s" in prof:
        print(f"; before ({prof['rev']}): {prof['before_s']:.3f} s; ratio {prof['ratio']:.2f}x")
    else:
        print()


if __name__ == "__main__":
    main()
