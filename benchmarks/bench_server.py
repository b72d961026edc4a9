"""Benchmark the sidebar's first request: ``GET runs`` (first page) over a large store.

Run ``python benchmarks/bench_server.py`` (``--runs N``, ``--quick``, ``--json``). It fills a
temporary store with N runs (default 100,000: ten notebooks, params, two metrics and a tag
each), then times, median over repeats, interleaved so a slow moment hits all alike:

- the server side of ``GET runs``: the function the handler calls (``api.runs_page``), for the
  first page of all runs and of one notebook's runs, with the total count;
- the same request end to end through a real ``jupyter server`` with the extension (HTTP);
- the baseline: the bare SQLite query for the first page of run rows, without params,
  metrics, tags or the total;
- a run of ``--points`` points of one metric (default 1,000,000): ``GET runs/{id}`` and
  ``GET runs/{id}/metrics/{key}`` on the server side (series thinned in SQL), against reading
  the whole series as dicts (what they did before) and the bare SQLite read of its rows.

The target: the server side of the first page at most 20 ms. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_mlops import kernel_env
from jupyter_mlops.server import api
from jupyter_mlops.store import Store, close_all, open_store

TARGET_MS = 20.0
NOTEBOOKS = 10


def log(message: str) -> None:
    """Progress on stderr, so ``--json`` output stays one object."""
    print(message, file=sys.stderr, flush=True)


def seed_store(store: Store, count: int, *, start: float | None = None) -> None:
    """Fill a store with ``count`` ended runs through the store's own API."""
    now = start if start is not None else time.time() - count
    statuses = ("finished",) * 8 + ("failed", "killed")
    for index in range(count):
        run_id = uuid.uuid4().hex
        at = now + index
        store.insert_run(
            {
                "id": run_id,
                "name": f"run-{index}",
                "status": statuses[index % len(statuses)],
                "kind": "interactive",
                "notebook": f"notebooks/nb{index % NOTEBOOKS}.ipynb",
                "start_time": at,
                "end_time": at + 30.0,
                "heartbeat": at + 30.0,
                "pid": 1,
                "host": "bench",
                "linear": index % 3 != 0,
            },
            {"team": "vision" if index % 2 else "text"},
        )
        store.set_params(
            run_id, {"lr": json.dumps(10 ** -(index % 4)), "depth": json.dumps(index % 9)}
        )
        store.enqueue_metric(run_id, "loss", 0, 1.0 / (index + 1), at, None)
        store.enqueue_metric(run_id, "acc", 0, (index % 1000) / 1000, at, None)
        if index % 5_000 == 4_999:
            store.flush()
            log(f"  seeded {index + 1:,} runs")
    store.flush()


def seed_series(store: Store, points: int) -> str:
    """One ended run with ``points`` points of ``loss`` (and one of ``acc``); its id."""
    from jupyter_mlops import run as runs

    run = runs.start_run(name="long-series", store=store)
    now = time.time()
    for step in range(points):
        store.enqueue_metric(run.id, "loss", step, 1.0 / (step + 1), now, None)
    run.log_metric("acc", 0.5)
    run.end()
    return run.id


def series_timings(store: Store, root: Path, points: int, rounds: int) -> dict[str, float]:
    """Reading a run of ``points`` points: thinned through the API, whole, and bare."""
    log(f"seeding a run of {points:,} points")
    run_id = seed_series(store, points)
    raw = sqlite3.connect(store.path)

    def bare_rows() -> None:
        raw.execute(
            "SELECT step, value, time, cell_seq FROM metrics WHERE run_id = ? AND key = 'loss'",
            (run_id,),
        ).fetchall()

    log("timing the series reads")
    timings = interleaved(
        {
            "series_run_detail_ms": lambda: api.run_detail(root, run_id),
            "series_metric_ms": lambda: api.metric_series(root, run_id, "loss"),
            "series_whole_as_dicts_ms": lambda: store.metric_series(run_id, "loss"),
            "series_bare_sqlite_rows_ms": bare_rows,
        },
        rounds,
        1,
    )
    raw.close()
    return timings


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` in milliseconds, after a warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def interleaved(
    cases: dict[str, Callable[[], object]], rounds: int, repeats: int
) -> dict[str, float]:
    """Median milliseconds of each case, measured in alternating rounds."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        fn()
    for _ in range(rounds):
        for name, fn in cases.items():
            samples[name].append(median_ms(fn, repeats))
    return {name: statistics.median(values) for name, values in samples.items()}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_timings(root: Path, rounds: int, repeats: int) -> dict[str, float] | None:
    """``GET runs`` end to end through a real jupyter server with the extension."""
    port, token = _free_port(), secrets.token_hex(16)
    env = kernel_env.untouched_env()
    home = Path(tempfile.mkdtemp(prefix="bench-server-home-"))
    env.update(JUPYTER_CONFIG_DIR=str(home), JUPYTER_RUNTIME_DIR=str(home / "runtime"))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.token={token}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.jpserver_extensions={'jupyter_mlops.server': True}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/jupyter-mlops/api/runs"

    def fetch(query: str = "") -> None:
        request = urllib.request.Request(base + query, headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            json.loads(response.read())

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                fetch("?limit=1")
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    log("  the jupyter server did not start; skipping the HTTP timings")
                    return None
                time.sleep(0.25)
        return interleaved(
            {
                "http_first_page_ms": lambda: fetch(),
                "http_notebook_page_ms": lambda: fetch("?notebook=notebooks/nb3.ipynb"),
            },
            rounds,
            repeats,
        )
    finally:
        process.terminate()
        process.wait(timeout=15)
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    """Seed, time, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="2,000 runs, few repeats")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-http", action="store_true", help="skip the real server")
    parser.add_argument("--points", type=int, default=1_000_000, help="points of the long run")
    args = parser.parse_args()
    count = 2_000 if args.quick else args.runs
    points = 100_000 if args.quick else args.points
    rounds, repeats = (3, 5) if args.quick else (7, 15)

    root = Path(tempfile.mkdtemp(prefix="bench-server-"))
    os.environ.pop(kernel_env.STORE_DIR, None)
    try:
        store = open_store(root / ".mlops")
        log(f"seeding {count:,} runs into {store.directory}")
        started = time.perf_counter()
        seed_store(store, count)
        seed_s = time.perf_counter() - started
        raw = sqlite3.connect(store.path)

        def bare_query() -> None:
            raw.execute("SELECT * FROM runs ORDER BY start_time DESC, id LIMIT 50").fetchall()

        log("timing the server side and the bare query")
        timings = interleaved(
            {
                "server_first_page_ms": lambda: api.runs_page(root),
                "server_notebook_page_ms": lambda: api.runs_page(
                    root, notebook="notebooks/nb3.ipynb"
                ),
                "server_filtered_page_ms": lambda: api.runs_page(
                    root, where="metrics.acc > 0.5 and params.lr <= 0.01", statuses=["finished"]
                ),
                "bare_sqlite_page_ms": bare_query,
            },
            rounds,
            repeats,
        )
        raw.close()
        timings.update(series_timings(store, root, points, rounds))
        if not args.no_http:
            log("timing GET runs through a real jupyter server")
            timings.update(http_timings(root, rounds, max(3, repeats // 3)) or {})
        result: dict[str, Any] = {
            "runs": count,
            "seed_seconds": round(seed_s, 1),
            **{key: round(value, 2) for key, value in timings.items()},
            "target_server_first_page_ms": TARGET_MS,
            "ratio_to_bare_query": round(
                timings["server_first_page_ms"] / timings["bare_sqlite_page_ms"], 1
            ),
            "series_points": points,
            "series_detail_ratio_to_bare_rows": round(
                timings["series_run_detail_ms"] / timings["series_bare_sqlite_rows_ms"], 2
            ),
        }
    finally:
        close_all()
        shutil.rmtree(root, ignore_errors=True)

    if args.json:
        print(json.dumps(result))
        return
    print(f"GET runs over {count:,} runs (medians, ms)")
    for key, value in result.items():
        print(f"  {key:32} {value}")
    verdict = "within" if result["server_first_page_ms"] <= TARGET_MS else "OVER"
    print(f"server side of the first page: {verdict} the {TARGET_MS:.0f} ms target")


if __name__ == "__main__":
    main()
