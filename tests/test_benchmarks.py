"""The benchmark scripts keep working (a smoke run; timings are read, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import child_env

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

pytestmark = pytest.mark.slow


def run_script(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, *args, "--json"],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=BENCHMARKS.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert isinstance(result, dict) and result
    return result


def test_tracking_benchmark_quick_run() -> None:
    result = run_script(str(BENCHMARKS / "bench_tracking.py"), "--quick")
    assert "log_metric" in json.dumps(result)


def test_hashing_benchmark_small_run() -> None:
    result = run_script(
        str(BENCHMARKS / "bench_hashing.py"),
        "--rows",
        "20000",
        "--repeats",
        "1",
        "--array-mib",
        "4",
    )
    assert result["speedup"] > 0 and result["array_gb_per_s"] > 0


def test_replay_benchmark_quick_run() -> None:
    result = run_script(str(BENCHMARKS / "bench_replay.py"), "--quick")
    assert result["replay"]["verdicts"] == ["reproduced"]
    assert [s["notebook"] for s in result["sweeps"]] == ["quickstart.ipynb", "tiny.ipynb"]


def test_datachecks_benchmark_small_run() -> None:
    result = run_script(
        str(BENCHMARKS / "bench_datachecks.py"),
        "--rows",
        "20000",
        "--profile-rows",
        "20000",
        "--repeats",
        "1",
    )
    assert result["ours"]["drifted_columns"] == ["cat_0", "num_0", "num_1"]
    assert result["ours"]["check_s"] > 0 and result["profile"]["before_s"] > 0
