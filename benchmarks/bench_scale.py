"""Benchmark team scale: sweeps on a Dask cluster, and export to an MLflow server.

Run ``python benchmarks/bench_scale.py`` (``--json`` for one JSON object, ``--quick`` for a
smoke run). Side by side in one run, each a ratio of medians over interleaved rounds:

- cluster sweep: ``sweep(notebook, grid, cluster=ADDRESS)`` of the quickstart notebook (8
  points) on a running 2-worker ``LocalCluster`` (started and warmed up before, its start-up
  reported apart) against the local pool with 2 workers (target: within 10%) and with 1
  worker (target: at least 1.7x faster).
- MLflow export: ``export_mlflow`` of 200 runs x 1,000 metric points to a real
  ``mlflow server`` (sqlite backend, on 127.0.0.1) against MLflow's own client logging the
  same data one call at a time (``create_run``, ``log_param`` and ``log_metric`` per value,
  ``set_terminated``). The one-at-a-time side logs a few of the runs (``--serial-runs``) and
  is extrapolated from its time per run to all of them, since 200,000 calls take long.
  Target: export at least 10x faster.

Everything goes to a temporary folder removed at the end. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jupyter_mlops import kernel_env  # noqa: E402 - the checkout's, put on the path above

QUICKSTART = ROOT / "notebooks" / "quickstart.ipynb"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def bench_sweeps(work: Path, points: int, rounds: int) -> dict[str, Any]:
    """Median seconds of the same sweep on a 2-worker cluster and on the local pool."""
    from jupyter_mlops.cluster import local_cluster
    from jupyter_mlops.store import open_store
    from jupyter_mlops.sweeps import sweep

    notebook = work / "quickstart.ipynb"
    shutil.copy(QUICKSTART, notebook)
    grid = {"n_estimators": [10 + 10 * i for i in range(points)]}
    store = open_store(work / ".mlops")
    started = time.perf_counter()
    with local_cluster(2) as client:
        client.run(_warm_up)
        start_up = time.perf_counter() - started
        sides: dict[str, Callable[[], Any]] = {
            "cluster_2": lambda: sweep(
                notebook, grid, cluster=client.scheduler.address, progress=False, store=store
            ),
            "pool_2": lambda: sweep(notebook, grid, workers=2, progress=False, store=store),
            "pool_1": lambda: sweep(notebook, grid, workers=1, progress=False, store=store),
        }
        times: dict[str, list[float]] = {name: [] for name in sides}
        for index in range(rounds):
            order = list(sides) if index % 2 == 0 else list(reversed(sides))
            for name in order:
                began = time.perf_counter()
                result = sides[name]()
                times[name].append(time.perf_counter() - began)
                assert result["failed"] == 0, result
            log("  round " + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()))
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "points": points,
        "rounds": rounds,
        "cluster_start_s": round(start_up, 3),
        **{f"{name}_s": round(value, 3) for name, value in medians.items()},
        "cluster_vs_pool_2": round(medians["cluster_2"] / medians["pool_2"], 3),
        "speedup_vs_pool_1": round(medians["pool_1"] / medians["cluster_2"], 3),
    }


def _warm_up() -> None:
    """What a sweep's worker imports once, done before the clock starts (the local pool's
    second process pays it within the timing, the calling process has it already)."""
    from jupyter_mlops.execute import skip_slow_optional_imports

    skip_slow_optional_imports()
    import papermill  # noqa: F401


def stop(server: subprocess.Popen[bytes]) -> None:
    """Stop the server and its workers: asked first, then killed."""
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=15)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def mlflow_server(folder: Path) -> Iterator[str]:
    """A real MLflow tracking server (sqlite backend) on a free port, stopped after."""
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            "--default-artifact-root",
            str(folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "server.log").open("w"),
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(uri + "/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log_text = (folder / "server.log").read_text()[-2000:]
                    raise RuntimeError(f"the MLflow server did not start: {log_text}") from None
                time.sleep(0.5)
        yield uri
    finally:
        stop(server)


def make_runs(work: Path, runs: int, points: int) -> Any:
    """A store of ``runs`` finished runs, each with a few params and ``points`` loss points."""
    import jupyter_mlops as mlops
    from jupyter_mlops.store import open_store

    store = open_store(work / "export" / ".mlops")
    for number in range(runs):
        with mlops.start_run(name=f"run-{number}", store=store, kind="script") as run:
            run.log_params({"lr": 0.001 * (number + 1), "depth": number % 7, "model": "rf"})
            for step in range(points):
                run.log_metric("loss", 1.0 / (step + 1 + number), step=step)
    store.flush()
    return store


def bench_export(work: Path, runs: int, points: int, serial_runs: int) -> dict[str, Any]:
    """Seconds to export the runs with batching, and to log some one call at a time."""
    from mlflow.tracking import MlflowClient

    from jupyter_mlops.mlflow_bridge import export_mlflow
    from jupyter_mlops.store import metric_points

    log(f"  making {runs} runs x {points} points")
    store = make_runs(work, runs, points)
    folder = work / "mlflow"
    folder.mkdir()
    with mlflow_server(folder) as uri:
        began = time.perf_counter()
        exported = export_mlflow(uri, experiment="batched", store=store)
        export_s = time.perf_counter() - began
        log(f"  export: {export_s:.2f} s, {exported['calls']} calls")
        client = MlflowClient(tracking_uri=uri)
        experiment = client.create_experiment("one-at-a-time")
        chosen = store.list_runs(limit=serial_runs)
        calls = 0
        began = time.perf_counter()
        for run in chosen:
            made = client.create_run(experiment, run_name=run["name"])
            run_id = made.info.run_id
            for key, value in run["params"].items():
                client.log_param(run_id, key, str(value))
            for key, series in metric_points(store, run["id"]).items():
                for step, value, at in series:
                    client.log_metric(run_id, key, value, timestamp=int(at * 1000), step=step)
                    calls += 1
            client.set_terminated(run_id)
            calls += 2 + len(run["params"])
        serial_s = time.perf_counter() - began
    per_run = serial_s / len(chosen)
    return {
        "runs": runs,
        "points": points,
        "export_s": round(export_s, 3),
        "export_calls": exported["calls"],
        "serial_runs_logged": len(chosen),
        "serial_logged_s": round(serial_s, 3),
        "serial_per_call_ms": round(1000 * serial_s / calls, 3),
        "serial_extrapolated_s": round(per_run * runs, 3),
        "speedup": round(per_run * runs / export_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small and once")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the three sweeps")
    parser.add_argument("--serial-runs", type=int, default=5, help="runs logged one by one")
    parser.add_argument("--skip-sweeps", action="store_true")
    parser.add_argument("--skip-export", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    os.environ[kernel_env.STORE_DIR] = str(work / ".mlops")
    result: dict[str, Any] = {}
    try:
        if not args.skip_sweeps:
            log("sweep of the quickstart notebook: 2-worker cluster, pool of 2, pool of 1")
            points = 2 if args.quick else 8
            result["sweeps"] = bench_sweeps(work, points, 1 if args.quick else args.rounds)
        if not args.skip_export:
            log("export to MLflow: batched against one call at a time")
            runs, points = (10, 100) if args.quick else (200, 1_000)
            serial = 2 if args.quick else args.serial_runs
            result["export"] = bench_export(work, runs, points, serial)
    finally:
        from jupyter_mlops.store import close_all

        close_all()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
        return
    if "sweeps" in result:
        s = result["sweeps"]
        print(
            f"sweep x{s['points']}: cluster of 2 {s['cluster_2_s']:.2f} s, pool of 2 "
            f"{s['pool_2_s']:.2f} s, pool of 1 {s['pool_1_s']:.2f} s"
        )
        print(
            f"  cluster / pool of 2: {s['cluster_vs_pool_2']:.2f}x the time; pool of 1 / "
            f"cluster: {s['speedup_vs_pool_1']:.2f}x (cluster start-up "
            f"{s['cluster_start_s']:.1f} s, not counted)"
        )
    if "export" in result:
        e = result["export"]
        print(
            f"export {e['runs']} runs x {e['points']} points: {e['export_s']:.2f} s in "
            f"{e['export_calls']} calls; one call at a time {e['serial_per_call_ms']:.2f} ms a "
            f"call, {e['serial_extrapolated_s']:.1f} s extrapolated from "
            f"{e['serial_runs_logged']} runs: {e['speedup']:.1f}x"
        )


if __name__ == "__main__":
    main()
