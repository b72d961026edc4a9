"""Benchmark the in-notebook views, each against a baseline measured in the same run.

Run ``python benchmarks/bench_views.py`` (``--json`` prints one JSON object instead of the
table, ``--quick`` shrinks every size for a smoke run of a few seconds).

1. The first page of the runs table (``%track runs`` in a notebook builds exactly this:
   ``views.runs_view(page_size=20)`` and its widget mimebundle) over a store of 10,000 runs,
   newest first, sorted by a metric and filtered; against ``list_runs(limit=20)``, the bare
   read of the same page. ipywidgets is imported before timing (its one-off import is shown
   apart). Target: at most 300 ms.
2. A live plot's cost to a training loop: blocks of ``log_metric`` loops (10,000 calls each,
   back to back, so the chart's polls land inside them) with and without a
   ``LivePlot`` following the run, interleaved. Run in a real IPython kernel (``--where
   kernel``, the default) so that every chart update is serialized and sent to a client as in a
   notebook, or in this process (``--where process``). Target: at most 5% slower. Beside the
   wall-clock ratios (noisy on a shared machine), the time the chart itself spent reading and
   drawing as a share of the loops' time: the most it can have taken from them.

Nothing here asserts a time: numbers are medians over repeats, for reading and comparing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIRST_PAGE_TARGET_MS = 300.0
LIVE_OVERHEAD_TARGET = 0.05
PAGE = 20


def progress(message: str) -> None:
    """A progress line on stderr (stdout stays one clean JSON object with --json)."""
    print(message, file=sys.stderr, flush=True)


def fill_store(store: Any, count: int) -> None:
    """``count`` finished runs with 4 params, 3 metrics (a few points each) and a tag."""
    import random

    rng = random.Random(0)
    now = time.time() - count
    for index in range(count):
        run_id = uuid.uuid4().hex
        start = now + index
        store.insert_run(
            {
                "id": run_id,
                "name": f"sweep-{index % 97}",
                "status": rng.choice(["finished"] * 8 + ["failed", "killed"]),
                "kind": "sweep",
                "notebook": f"notebooks/train-{index % 5}.ipynb",
                "start_time": start,
                "end_time": start + rng.uniform(5, 500),
                "heartbeat": start,
                "pid": 1,
                "host": "bench",
                "cwd": "/",
            },
            {"team": rng.choice(["vision", "nlp"])},
        )
        store.set_params(
            run_id,
            {
                "lr": json.dumps(rng.choice([0.1, 0.03, 0.01, 0.003])),
                "depth": json.dumps(rng.randint(2, 12)),
                "model": json.dumps(rng.choice(["rf", "gbm", "mlp"])),
                "seed": json.dumps(index),
            },
        )
        for step in range(3):
            store.enqueue_metric(run_id, "loss", step, rng.random() / (step + 1), start, None)
        store.enqueue_metric(run_id, "acc", 0, rng.uniform(0.6, 0.99), start, None)
        store.enqueue_metric(run_id, "f1", 0, rng.uniform(0.5, 0.95), start, None)
    store.flush()


def first_page(runs_count: int, repeats: int) -> dict[str, Any]:
    """Time the runs table's first page against the bare read of the same page."""
    from jupyter_mlops import run as runs
    from jupyter_mlops.store import open_store

    store = open_store()
    started = time.perf_counter()
    fill_store(store, runs_count)
    progress(f"store of {runs_count} runs made in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    import ipywidgets  # noqa: F401  (its one-off import is reported apart)

    import_ms = (time.perf_counter() - started) * 1000
    from jupyter_mlops import views

    cases = {
        "newest first": {},
        "sorted by metrics.acc": {"order_by": "metrics.acc"},
        "filtered": {"where": "metrics.acc > 0.9 and params.model = rf"},
    }
    out: dict[str, Any] = {"runs": runs_count, "ipywidgets_import_ms": import_ms, "cases": {}}
    for label, options in cases.items():
        view_ms, bare_ms = [], []
        views.runs_view(page_size=PAGE, **options)  # warm the SQLite page cache
        for _ in range(repeats):
            started = time.perf_counter()
            runs.list_runs(limit=PAGE, **options)
            bare_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            table = views.runs_view(page_size=PAGE, **options)
            table._repr_mimebundle_()
            view_ms.append((time.perf_counter() - started) * 1000)
        out["cases"][label] = {
            "table_ms": statistics.median(view_ms),
            "table_max_ms": max(view_ms),
            "list_runs_ms": statistics.median(bare_ms),
            "rows": len(table.rows),
            "total": table.total,
        }
        progress(f"first page, {label}: {out['cases'][label]['table_ms']:.1f} ms")
    return out


def live_overhead(calls: int, loops: int, rounds: int) -> dict[str, Any]:
    """Per-loop time of ``calls`` log_metric calls with and without a live plot following."""
    from jupyter_mlops import run as runs
    from jupyter_mlops.views import LivePlot

    loop_s: dict[str, list[float]] = {"bare": [], "live": []}
    block_s: dict[str, list[float]] = {"bare": [], "live": []}
    polls = 0
    busy = 0.0
    for round_index in range(rounds):
        order = ("bare", "live") if round_index % 2 == 0 else ("live", "bare")
        for mode in order:
            run = runs.start_run(name=f"bench-{mode}")
            plot = LivePlot("loss") if mode == "live" else None
            log = run.log_metric
            block_start = time.perf_counter()
            value = 0.0
            for _ in range(loops):
                started = time.perf_counter()
                for _ in range(calls):
                    log("loss", value)
                    value += 1.0
                loop_s[mode].append(time.perf_counter() - started)
            block_s[mode].append(time.perf_counter() - block_start)
            run.end()
            if plot is not None:
                plot.wait(30)
                polls += plot.polls
                busy += plot.busy_seconds
                drawn = len(plot.figure.data[0].x) if plot.figure.data else 0
                if drawn == 0:
                    raise RuntimeError("the live plot drew nothing")
                plot.figure.close()
    bare = statistics.median(loop_s["bare"])
    live = statistics.median(loop_s["live"])
    bare_mean = statistics.fmean(loop_s["bare"])
    live_mean = statistics.fmean(loop_s["live"])
    return {
        "calls_per_loop": calls,
        "loops_per_block": loops,
        "rounds": rounds,
        "bare_loop_ms": bare * 1000,
        "live_loop_ms": live * 1000,
        "overhead_median": live / bare - 1,
        "bare_loop_mean_ms": bare_mean * 1000,
        "live_loop_mean_ms": live_mean * 1000,
        "overhead_mean": live_mean / bare_mean - 1,
        "overhead_blocks": statistics.median(block_s["live"]) / statistics.median(block_s["bare"])
        - 1,
        "polls": polls,
        # Time the chart spent reading and drawing, against the time the loops took: the
        # most it can have taken from them (it runs in its own thread), without the noise.
        "drawing_share": busy / sum(block_s["live"]),
    }


def live_overhead_in_kernel(calls: int, loops: int, rounds: int) -> dict[str, Any]:
    """``live_overhead`` run inside a real IPython kernel whose messages a client reads."""
    from jupyter_client.manager import KernelManager

    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=os.getcwd(), env=env)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        code = (
            "import json, runpy\n"
            f"bench = runpy.run_path({str(Path(__file__).resolve())!r})\n"
            f"print('RESULT ' + json.dumps(bench['live_overhead']({calls}, {loops}, {rounds})))"
        )
        result: dict[str, Any] = {}
        comm_messages = 0

        def on_output(message: dict[str, Any]) -> None:
            nonlocal comm_messages
            kind = message["msg_type"]
            if kind.startswith("comm_"):
                comm_messages += 1
            elif kind == "stream" and "RESULT " in message["content"]["text"]:
                line = message["content"]["text"].split("RESULT ", 1)[1]
                result.update(json.loads(line.splitlines()[0]))
            elif kind == "error":
                raise RuntimeError("\n".join(message["content"]["traceback"]))

        reply = client.execute_interactive(code, timeout=900, output_hook=on_output)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"the benchmark failed in the kernel: {reply['content']}")
        result["comm_messages_seen"] = comm_messages
        return result
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def main() -> None:
    """Run the benchmarks and print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument(
        "--where",
        choices=("kernel", "process"),
        default="kernel",
        help="run the live-plot loops in a real kernel (default) or in this process",
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-views-"))
    os.environ["JUPYTER_MLOPS_DIR"] = str(folder / ".mlops")
    os.chdir(folder)
    try:
        runs_count, repeats = (500, 3) if args.quick else (10_000, 15)
        calls, loops, rounds = (10_000, 3, 2) if args.quick else (10_000, 20, 12)
        results: dict[str, Any] = {"first_page": first_page(runs_count, repeats)}
        progress("live plot overhead ...")
        if args.where == "kernel":
            live = live_overhead_in_kernel(calls, loops, rounds)
        else:
            live = live_overhead(calls, loops, rounds)
        live["where"] = args.where
        results["live_plot"] = live
        from jupyter_mlops.store import close_all

        close_all()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=1))
        return
    page = results["first_page"]
    print(f"runs table, first page of {PAGE} over {page['runs']:,} runs (target <= 300 ms)")
    print(f"  (ipywidgets import, once: {page['ipywidgets_import_ms']:.0f} ms)")
    for label, case in page["cases"].items():
        print(
            f"  {label:<24} table {case['table_ms']:7.1f} ms (max {case['table_max_ms']:.1f})"
            f"   list_runs(limit={PAGE}) {case['list_runs_ms']:6.1f} ms"
            f"   {case['total']:,} match"
        )
    print(
        f"live plot, {live['calls_per_loop']:,} log_metric calls a loop, "
        f"{live['loops_per_block']} loops a block, {live['rounds']} rounds, in a {live['where']}"
        " (target <= 5%)"
    )
    print(
        f"  loop median: bare {live['bare_loop_ms']:.2f} ms, live {live['live_loop_ms']:.2f} ms"
        f" -> {live['overhead_median'] * 100:+.1f}%"
    )
    print(
        f"  loop mean:   bare {live['bare_loop_mean_ms']:.2f} ms,"
        f" live {live['live_loop_mean_ms']:.2f} ms -> {live['overhead_mean'] * 100:+.1f}%"
    )
    print(f"  whole blocks: {live['overhead_blocks'] * 100:+.1f}%; chart polls: {live['polls']}")
    print(
        f"  time the chart spent reading and drawing: {live['drawing_share'] * 100:.1f}%"
        " of the live blocks' time"
    )


if __name__ == "__main__":
    main()
