"""Benchmark the tracker's hot paths, each against a baseline measured in the same run.

Run ``python benchmarks/bench_tracking.py`` (``--json`` prints one JSON object instead of the
table, ``--quick`` shrinks every size for a smoke run of a few seconds and skips MLflow).

1. ``log_metric`` per call (``Run.log_metric`` and the module-level ``jupyter_mlops.log_metric``),
   alone and amortized with the final ``store.flush()``, against ``mlflow.log_metric`` on
   MLflow's sqlite store. Target: ours at least 50x faster.
2. Per-cell capture overhead: IPython ``run_cell`` with ``%load_ext jupyter_mlops`` and an
   active run against a bare ``run_cell``, in interleaved blocks long enough for the store's
   background writer to flush during them. Target: median overhead <= 20 us, no
   multi-millisecond stalls beyond what the bare shell has.
3. ``import jupyter_mlops`` in fresh interpreters against ``python -c pass``, and
   ``%load_ext jupyter_mlops`` timed inside a fresh interpreter that already imported IPython.
   Target: <= 100 ms. ``import mlflow`` is measured the same way when it is installed.
4. ``start_run`` + ``end_run`` round trip against MLflow's (no target; for reference).

The machine this runs on may be shared and noisy: every number is a median over repeats, and
ours and the baseline alternate so that a slow moment hits both. Nothing here asserts a time.
MLflow is optional (``pip install -e '.[bench]'``); without it its rows are skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STALL_NS = 2_000_000  # a cell call slower than 2 ms counts as a stall
LOG_METRIC_TARGET_RATIO = 50.0
CELL_OVERHEAD_TARGET_US = 20.0
IMPORT_TARGET_MS = 100.0

CELLS = (
    "x = 1",
    "y = x + 2\nz = [y] * 3",
    "total = sum(range(100))",
)

SIZES = {
    # name: (full, quick)
    "metric_calls": (100_000, 5_000),
    "metric_rounds": (5, 2),
    "mlflow_calls": (200, 0),
    "cell_rounds": (8, 2),
    "cell_reps": (1_500, 200),
    "import_repeats": (7, 3),
    "roundtrip_repeats": (7, 2),
}


def log(message: str) -> None:
    """Progress goes to stderr so that ``--json`` output stays one clean object."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank, or nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class NullStream(io.TextIOBase):
    """A stdout that drops what it is given; a Python object, like ipykernel's OutStream."""

    def write(self, text: str) -> int:
        return len(text)

    def writable(self) -> bool:
        return True


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    saved = sys.stdout
    sys.stdout = NullStream()
    try:
        yield
    finally:
        sys.stdout = saved


# -- MLflow ------------------------------------------------------------------------------------


def load_mlflow(tmp: Path, wanted: bool) -> tuple[Any, str | None]:
    """(the mlflow module set up on a sqlite store in ``tmp``, or None; why it is missing)."""
    if not wanted:
        return None, "skipped (--quick or --no-mlflow)"
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    try:
        import mlflow
    except ImportError:
        return None, "not installed (pip install mlflow, or pip install -e '.[bench]')"
    import logging

    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")
    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
    experiment = mlflow.create_experiment(
        "bench", artifact_location=(tmp / "mlflow-artifacts").as_uri()
    )
    mlflow.set_experiment(experiment_id=experiment)
    return mlflow, None


# -- 1. log_metric -----------------------------------------------------------------------------


def bench_log_metric(tmp: Path, mlflow: Any, n: int, rounds: int, m: int) -> dict[str, Any]:
    """Per-call cost of log_metric, ours (alone and with the final flush) and MLflow's."""
    import jupyter_mlops
    from jupyter_mlops.store import open_store

    store = open_store(tmp / "log-metric")
    run = jupyter_mlops.start_run(name="bench-log-metric", store=store)
    env_thread = getattr(run, "_env_thread", None)
    if env_thread is not None:
        env_thread.join()  # the run-start environment capture must not overlap the timing
    log_metric_module = jupyter_mlops.log_metric
    for i in range(1_000):  # warm-up
        run.log_metric("warmup", float(i))
    store.flush()

    def time_calls(call: Callable[[str, float], None], key: str) -> tuple[float, float]:
        """(seconds per call, seconds per call including the final flush)."""
        start = time.perf_counter_ns()
        for i in range(n):
            call(key, float(i))
        calls_done = time.perf_counter_ns()
        store.flush()
        flushed = time.perf_counter_ns()
        return (calls_done - start) / n / 1e9, (flushed - start) / n / 1e9

    ml_run = None
    if mlflow is not None:
        ml_run = mlflow.start_run(run_name="bench-log-metric")
        for i in range(20):  # warm-up: the first calls create rows and caches
            mlflow.log_metric("warmup", float(i), step=i)

    ours_run, ours_run_flush, ours_mod, ours_mod_flush, theirs, ratios = [], [], [], [], [], []
    for r in range(rounds):
        a, b = time_calls(run.log_metric, f"run_{r}")
        c, d = time_calls(log_metric_module, f"module_{r}")
        ours_run.append(a)
        ours_run_flush.append(b)
        ours_mod.append(c)
        ours_mod_flush.append(d)
        if mlflow is not None:
            start = time.perf_counter_ns()
            for i in range(m):
                mlflow.log_metric(f"loss_{r}", float(i), step=i)
            per_call = (time.perf_counter_ns() - start) / m / 1e9
            theirs.append(per_call)
            ratios.append(per_call / a)
        log(f"log_metric round {r + 1}/{rounds}: ours {a * 1e6:.2f} us/call"
            + (f", mlflow {theirs[-1] * 1e3:.2f} ms/call" if theirs else ""))

    # Everything logged must be in the store: a benchmark of lost rows would be meaningless.
    series = run.record().metric_series("run_0")
    run.end()
    if ml_run is not None:
        mlflow.end_run()
    out: dict[str, Any] = {
        "calls_per_round": n,
        "rounds": rounds,
        "ours_run_us": median(ours_run) * 1e6,
        "ours_run_with_flush_us": median(ours_run_flush) * 1e6,
        "ours_module_us": median(ours_mod) * 1e6,
        "ours_module_with_flush_us": median(ours_mod_flush) * 1e6,
        "rows_stored_check": len(series) == n,
        "mlflow_calls_per_round": m if mlflow is not None else 0,
        "mlflow_us": median(theirs) * 1e6 if theirs else None,
        "ratio": median(ratios) if ratios else None,
        "ratio_with_flush": (
            median([t / f for t, f in zip(theirs, ours_run_flush)]) if theirs else None
        ),
        "target_ratio": LOG_METRIC_TARGET_RATIO,
    }
    return out


# -- 2. per-cell capture overhead --------------------------------------------------------------


def _instrument_writer(store: Any, windows: list[tuple[int, int]]) -> bool:
    """Record when the store's background writer flushes (for lining stalls up with flushes).

    Wraps the flush of this one store object; uses the store's private writer attributes, so
    it quietly does nothing when they change.
    """
    if getattr(store, "_bench_instrumented", False):
        return True
    try:
        original = store.flush
        store._writer  # noqa: B018 - the attributes this relies on must exist
        store._pending_cells  # noqa: B018
        store._pending_metrics  # noqa: B018
    except AttributeError:
        return False

    def flush() -> None:
        if threading.current_thread() is store._writer and (
            store._pending_cells or store._pending_metrics
        ):
            start = time.perf_counter_ns()
            try:
                original()
            finally:
                windows.append((start, time.perf_counter_ns()))
        else:
            original()

    store.flush = flush
    store._bench_instrumented = True
    return True


def _cells_in_store(db_path: Path, run_id: str) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute("SELECT count(*) FROM cells WHERE run_id = ?", (run_id,)).fetchone()[0])
    finally:
        conn.close()


def bench_cells(rounds: int, reps: int) -> dict[str, Any]:
    """run_cell time bare and with capture on, in alternating blocks."""
    from IPython.core.interactiveshell import InteractiveShell

    from jupyter_mlops import run as runs

    shell = InteractiveShell.instance()
    clock = time.perf_counter_ns
    run_cell = shell.run_cell
    times: dict[str, list[int]] = {"bare": [], "tracked": []}
    spans: list[tuple[int, int]] = []  # (start, end) of each tracked call
    flush_windows: list[tuple[int, int]] = []
    instrumented = False
    written_in_block: list[tuple[int, int]] = []  # (cells written by the writer, cells run)
    block_seconds: dict[str, list[float]] = {"bare": [], "tracked": []}
    round_overheads: list[float] = []

    def block(mode: str) -> None:
        nonlocal instrumented
        run = None
        if mode == "tracked":
            shell.run_line_magic("load_ext", "jupyter_mlops")
            shell.run_line_magic("track", "start --name bench-cells")
            run = runs.active_run()
            assert run is not None
            env_thread = getattr(run, "_env_thread", None)
            if env_thread is not None:
                env_thread.join()
            instrumented = _instrument_writer(run.store, flush_windows)
        for source in CELLS:  # warm-up, untimed
            run_cell(source, store_history=True)
        samples = times[mode]
        began = clock()
        for _ in range(reps):
            for source in CELLS:
                start = clock()
                run_cell(source, store_history=True)
                end = clock()
                samples.append(end - start)
                if run is not None:
                    spans.append((start, end))
        block_seconds[mode].append((clock() - began) / 1e9)
        if run is not None:
            # Cells the writer thread stored while the block ran (before %track end flushes).
            run_cells = reps * len(CELLS) + len(CELLS)
            written_in_block.append((_cells_in_store(run.store.path, run.id), run_cells))
            shell.run_line_magic("track", "end")
            shell.run_line_magic("unload_ext", "jupyter_mlops")

    with quiet_stdout():
        for source in CELLS:
            run_cell(source, store_history=True)
        for r in range(rounds):
            order = ("bare", "tracked") if r % 2 == 0 else ("tracked", "bare")
            before = {mode: len(times[mode]) for mode in times}
            for mode in order:
                block(mode)
            round_overheads.append(
                (
                    median(times["tracked"][before["tracked"]:])
                    - median(times["bare"][before["bare"]:])
                )
                / 1e3
            )
            log(f"cells round {r + 1}/{rounds}: overhead {round_overheads[-1]:.1f} us")

    def summary(samples: list[int]) -> dict[str, Any]:
        us = [t / 1e3 for t in samples]
        return {
            "calls": len(us),
            "median_us": median(us),
            "p99_us": percentile(us, 0.99),
            "max_us": max(us),
            "over_2ms": sum(1 for t in samples if t > STALL_NS),
        }

    bare, tracked = summary(times["bare"]), summary(times["tracked"])
    stalls = [(s, e) for s, e in spans if e - s > STALL_NS]
    overlapping = sum(1 for s, e in stalls if any(fs < e and fe > s for fs, fe in flush_windows))
    flush_ms = [(fe - fs) / 1e6 for fs, fe in flush_windows]
    excess = tracked["over_2ms"] - bare["over_2ms"]
    allowance = max(2, round(0.0002 * tracked["calls"]))
    return {
        "rounds": rounds,
        "cells_per_block": reps * len(CELLS),
        "cells": list(CELLS),
        "bare": bare,
        "tracked": tracked,
        "overhead_us": tracked["median_us"] - bare["median_us"],
        "overhead_us_per_round": round_overheads,
        "block_seconds_median": {k: median(v) for k, v in block_seconds.items()},
        "target_overhead_us": CELL_OVERHEAD_TARGET_US,
        "excess_stalls": excess,
        "stall_allowance": allowance,
        "writer_instrumented": instrumented,
        "writer_flushes_during_tracked": len(flush_windows),
        "writer_flush_median_ms": median(flush_ms) if flush_ms else None,
        "writer_flush_max_ms": max(flush_ms) if flush_ms else None,
        "tracked_stalls_during_writer_flush": overlapping,
        "cells_written_by_writer_during_blocks": [w for w, _ in written_in_block],
        "cells_run_in_tracked_blocks": [n for _, n in written_in_block],
    }


# -- 3. import time ----------------------------------------------------------------------------


def _child_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["JUPYTER_MLOPS_DIR"] = str(tmp / "child-store")
    env["IPYTHONDIR"] = str(tmp / "ipython")
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "true"
    return env


def _wall(code: str, env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _inside(code: str, env: dict[str, str], cwd: Path) -> float:
    """Seconds the child itself measured and printed as its last line."""
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, check=True,
                          capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


IMPORT_INSIDE = """
import time
start = time.perf_counter()
import {module}
print(time.perf_counter() - start)
"""

LOAD_EXT_INSIDE = """
import io, sys, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
start = time.perf_counter()
shell.run_line_magic("load_ext", "jupyter_mlops")
elapsed = time.perf_counter() - start
sys.stdout.write("\\n%r\\n" % elapsed)
"""


def bench_import(tmp: Path, repeats: int, with_mlflow: bool) -> dict[str, Any]:
    """Fresh-interpreter import times, as a difference from ``python -c pass``."""
    env = _child_env(tmp)
    cwd = tmp
    modules = ["jupyter_mlops"] + (["mlflow"] if with_mlflow else [])
    for module in modules:  # warm caches (.pyc, page cache) once, untimed
        _wall(f"import {module}", env, cwd)
    _inside(LOAD_EXT_INSIDE, env, cwd)
    walls: dict[str, list[float]] = {"pass": [], **{m: [] for m in modules}}
    inside: dict[str, list[float]] = {m: [] for m in modules}
    load_ext: list[float] = []
    for r in range(repeats):
        walls["pass"].append(_wall("pass", env, cwd))
        for module in modules:
            walls[module].append(_wall(f"import {module}", env, cwd))
            inside[module].append(_inside(IMPORT_INSIDE.format(module=module), env, cwd))
        load_ext.append(_inside(LOAD_EXT_INSIDE, env, cwd))
        log(f"import round {r + 1}/{repeats}")
    base = median(walls["pass"])
    out: dict[str, Any] = {
        "repeats": repeats,
        "python_pass_ms": base * 1e3,
        "target_ms": IMPORT_TARGET_MS,
        "load_ext_ms": median(load_ext) * 1e3,
    }
    for module in modules:
        short = "jupyter_mlops" if module == "jupyter_mlops" else module
        out[f"{short}_ms"] = (median(walls[module]) - base) * 1e3
        out[f"{short}_inside_ms"] = median(inside[module]) * 1e3
    return out


# -- 4. run round trip -------------------------------------------------------------------------


def bench_roundtrip(tmp: Path, mlflow: Any, repeats: int) -> dict[str, Any]:
    """start_run + end_run, ours and MLflow's, alternating."""
    import jupyter_mlops
    from jupyter_mlops.store import open_store

    store = open_store(tmp / "roundtrip")
    jupyter_mlops.start_run(name="warmup", store=store).end()
    if mlflow is not None:
        mlflow.start_run(run_name="warmup")
        mlflow.end_run()
    ours, ours_start, theirs = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        run = jupyter_mlops.start_run(name="rt", store=store)
        started = time.perf_counter()
        run.end()
        ours.append(time.perf_counter() - start)
        ours_start.append(started - start)
        if mlflow is not None:
            start = time.perf_counter()
            mlflow.start_run(run_name="rt")
            mlflow.end_run()
            theirs.append(time.perf_counter() - start)
    return {
        "repeats": repeats,
        "ours_ms": median(ours) * 1e3,
        "ours_start_only_ms": median(ours_start) * 1e3,
        "mlflow_ms": median(theirs) * 1e3 if theirs else None,
        "ratio": (median(theirs) / median(ours)) if theirs else None,
    }


# -- report ------------------------------------------------------------------------------------


def _fmt(value: float | None, unit: str, digits: int = 1) -> str:
    if value is None or value != value:
        return "n/a"
    return f"{value:.{digits}f} {unit}"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def print_table(results: dict[str, Any]) -> None:
    lm, cells, imp, rt = (results[k] for k in ("log_metric", "cells", "import", "roundtrip"))
    rows: list[tuple[str, str, str, str, str]] = []

    ratio = lm["ratio"]
    rows += [
        ("log_metric: Run.log_metric", _fmt(lm["ours_run_us"], "us", 2), "", "", ""),
        ("log_metric: Run.log_metric incl. flush", _fmt(lm["ours_run_with_flush_us"], "us", 2),
         "", "", ""),
        ("log_metric: jupyter_mlops.log_metric", _fmt(lm["ours_module_us"], "us", 2), "", "", ""),
        ("log_metric: module-level incl. flush", _fmt(lm["ours_module_with_flush_us"], "us", 2),
         "", "", ""),
        ("log_metric: ours vs mlflow (sqlite)", _fmt(lm["ours_run_us"], "us", 2),
         _fmt(lm["mlflow_us"], "us", 0),
         "n/a" if ratio is None else f"{ratio:,.0f}x faster",
         f">= {LOG_METRIC_TARGET_RATIO:.0f}x: " + _verdict(None if ratio is None
                                                         else ratio >= LOG_METRIC_TARGET_RATIO)),
    ]
    if lm["ratio_with_flush"] is not None:
        rows.append(("log_metric: incl. flush vs mlflow", _fmt(lm["ours_run_with_flush_us"], "us", 2),
                     _fmt(lm["mlflow_us"], "us", 0), f"{lm['ratio_with_flush']:,.0f}x faster",
                     f">= {LOG_METRIC_TARGET_RATIO:.0f}x: "
                     + _verdict(lm["ratio_with_flush"] >= LOG_METRIC_TARGET_RATIO)))
    b, t = cells["bare"], cells["tracked"]
    rows += [
        ("run_cell median (tracked | bare)", _fmt(t["median_us"], "us"), _fmt(b["median_us"], "us"),
         f"+{cells['overhead_us']:.1f} us",
         f"<= {CELL_OVERHEAD_TARGET_US:.0f} us: "
         + _verdict(cells["overhead_us"] <= CELL_OVERHEAD_TARGET_US)),
        ("run_cell p99 (tracked | bare)", _fmt(t["p99_us"], "us"), _fmt(b["p99_us"], "us"),
         f"+{t['p99_us'] - b['p99_us']:.1f} us", ""),
        ("run_cell max (tracked | bare)", _fmt(t["max_us"] / 1e3, "ms", 2),
         _fmt(b["max_us"] / 1e3, "ms", 2), "", ""),
        (f"run_cell calls > 2 ms (of {t['calls']} | {b['calls']})", str(t["over_2ms"]),
         str(b["over_2ms"]), f"{cells['excess_stalls']:+d}",
         f"excess <= {cells['stall_allowance']}: "
         + _verdict(cells["excess_stalls"] <= cells["stall_allowance"])),
        ("import jupyter_mlops (minus python -c pass)", _fmt(imp["jupyter_mlops_ms"], "ms"),
         _fmt(imp["python_pass_ms"], "ms"), "",
         f"<= {IMPORT_TARGET_MS:.0f} ms: " + _verdict(imp["jupyter_mlops_ms"] <= IMPORT_TARGET_MS)),
        ("import jupyter_mlops (timed inside child)", _fmt(imp["jupyter_mlops_inside_ms"], "ms"),
         "", "", ""),
        ("%load_ext jupyter_mlops (IPython imported)", _fmt(imp["load_ext_ms"], "ms"), "", "",
         f"<= {IMPORT_TARGET_MS:.0f} ms: " + _verdict(imp["load_ext_ms"] <= IMPORT_TARGET_MS)),
    ]
    if "mlflow_ms" in imp:
        rows.append(("import mlflow (minus python -c pass)", _fmt(imp["mlflow_ms"], "ms"),
                     "", f"{imp['mlflow_ms'] / imp['jupyter_mlops_ms']:.0f}x ours", ""))
    rows.append(("start_run + end_run", _fmt(rt["ours_ms"], "ms"), _fmt(rt["mlflow_ms"], "ms"),
                 "n/a" if rt["ratio"] is None else f"{rt['ratio']:.1f}x faster", "(no target)"))
    rows.append(("start_run alone (env capture in background)", _fmt(rt["ours_start_only_ms"], "ms"),
                 "", "", ""))

    header = ("measurement", "ours", "baseline", "ratio / diff", "target")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    line = "  ".join(f"{{:<{w}}}" if i in (0, 4) else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(line.format(*header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))
    print()
    print(f"baselines: mlflow = {results['mlflow']}; run_cell baseline = bare IPython "
          "run_cell in the same process; import baseline = python -c pass")
    print(f"log_metric: {lm['calls_per_round']:,} calls x {lm['rounds']} rounds; all rows stored: "
          f"{lm['rows_stored_check']}")
    print(f"cells: {cells['rounds']} rounds x {cells['cells_per_block']} calls per block; "
          f"overhead per round (us): "
          + ", ".join(f"{v:.1f}" for v in cells["overhead_us_per_round"]))
    print(f"writer during tracked blocks: {cells['writer_flushes_during_tracked']} flushes "
          f"(median {_fmt(cells['writer_flush_median_ms'], 'ms', 2)}, "
          f"max {_fmt(cells['writer_flush_max_ms'], 'ms', 2)}); cells already written when each "
          f"block ended: {cells['cells_written_by_writer_during_blocks']} of "
          f"{cells['cells_run_in_tracked_blocks']}; tracked stalls overlapping a flush: "
          f"{cells['tracked_stalls_during_writer_flush']} of {t['over_2ms']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes for a smoke run (a few seconds; skips MLflow)")
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow baselines")
    args = parser.parse_args(argv)
    size = {name: pair[1 if args.quick else 0] for name, pair in SIZES.items()}

    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as name:
        tmp = Path(name)
        # Before jupyter_mlops or IPython is imported: nothing may land in the user's folders.
        os.environ["JUPYTER_MLOPS_DIR"] = str(tmp / ".mlops")
        os.environ["IPYTHONDIR"] = str(tmp / "ipython")
        for key in ("JUPYTER_MLOPS_KIND", "JUPYTER_MLOPS_PARENT", "JUPYTER_MLOPS_SWEEP",
                    "JUPYTER_MLOPS_NOTEBOOK"):
            os.environ.pop(key, None)
        warnings.simplefilter("ignore")

        mlflow, why = load_mlflow(tmp, wanted=not (args.quick or args.no_mlflow))
        if mlflow is None:
            log(f"MLflow baselines: {why}")
            if not args.json and "not installed" in why:
                print(f"NOTE: MLflow is {why}; its ratios are skipped.", file=sys.stderr)

        results: dict[str, Any] = {
            "quick": args.quick,
            "python": sys.version.split()[0],
            "cpu_count": os.cpu_count(),
            "mlflow": f"mlflow {mlflow.__version__}" if mlflow is not None else why,
        }
        log("import time (fresh interpreters)")
        results["import"] = bench_import(tmp, size["import_repeats"], mlflow is not None)
        log("log_metric")
        results["log_metric"] = bench_log_metric(
            tmp, mlflow, size["metric_calls"], size["metric_rounds"], size["mlflow_calls"]
        )
        log("per-cell capture overhead")
        results["cells"] = bench_cells(size["cell_rounds"], size["cell_reps"])
        log("start_run + end_run")
        results["roundtrip"] = bench_roundtrip(tmp, mlflow, size["roundtrip_repeats"])

        from jupyter_mlops.store import close_all

        close_all()

    if args.json:
        print(json.dumps(results, indent=2, default=str))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
