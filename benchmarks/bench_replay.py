"""Benchmark replay and sweeps against bare Papermill, measured in the same run.

Run ``python benchmarks/bench_replay.py`` (``--json`` for one JSON object, ``--quick`` for a
smoke run). Two numbers, each a ratio of medians over interleaved rounds:

- replay overhead: ``replay(run)`` of the quickstart notebook (rebuild, fresh tracked kernel,
  comparison and verdict, the executed notebook stored) against a bare
  ``papermill.execute_notebook`` of the same notebook. Target: at most 1.15x.
- confirmed replay: ``replay(run, confirm=True)`` of a notebook whose unseeded forest diverges
  (so a second replay runs and the two are compared) against a bare Papermill run of it.
  Target: at most 2.2x.
- sweep speedup: ``jupyter mlops sweep`` of 8 points on 2 workers against the same command
  on 1 worker, for the quickstart notebook (a small model fit per point) and for a notebook
  whose points are nothing but a kernel's start-up. Target: at least 1.7x.

Everything goes to a temporary folder removed at the end. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jupyter_mlops import kernel_env  # noqa: E402 - the checkout's, put on the path above

QUICKSTART = ROOT / "notebooks" / "quickstart.ipynb"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _told_notebook(notebook: Path) -> Iterator[None]:
    """A bare Papermill run told which notebook it runs, as the README does."""
    os.environ[kernel_env.NOTEBOOK] = str(notebook)
    try:
        yield
    finally:
        os.environ.pop(kernel_env.NOTEBOOK)


def bench_replay(work: Path, rounds: int) -> dict[str, Any]:
    """Median seconds of a bare Papermill run and of a replay, alternating each round."""
    import papermill

    import jupyter_mlops as mlops
    from jupyter_mlops.replays import replay

    notebook = work / "quickstart.ipynb"
    shutil.copy(QUICKSTART, notebook)

    def bare() -> None:
        with _told_notebook(notebook):
            papermill.execute_notebook(
                str(notebook), str(work / "bare.ipynb"), cwd=str(work), progress_bar=False
            )

    bare()  # the original run, and a warm-up of the kernel's imports
    original = mlops.get_run("quickstart").id
    bare_times, replay_times, verdicts = [], [], []
    for index in range(rounds):
        for which in ("bare", "replay") if index % 2 == 0 else ("replay", "bare"):
            start = time.perf_counter()
            if which == "bare":
                bare()
                bare_times.append(time.perf_counter() - start)
            else:
                report = replay(original, progress=False)
                replay_times.append(time.perf_counter() - start)
                verdicts.append(report["verdict"])
        log(f"  round {index + 1}: bare {bare_times[-1]:.2f} s, replay {replay_times[-1]:.2f} s")
    bare_s, replay_s = statistics.median(bare_times), statistics.median(replay_times)
    return {
        "bare_papermill_s": round(bare_s, 3),
        "replay_s": round(replay_s, 3),
        "replay_overhead": round(replay_s / bare_s, 3),
        "verdicts": sorted(set(verdicts)),
    }


UNSEEDED_CELLS = [
    "%load_ext jupyter_mlops\n%track start --name unseeded",
    "from sklearn.datasets import load_breast_cancer\n"
    "from sklearn.ensemble import RandomForestClassifier\n"
    "X, y = load_breast_cancer(return_X_y=True)",
    "forest = RandomForestClassifier(n_estimators=50)\n"
    "forest.fit(X, y)\n"
    "proba = forest.predict_proba(X)",
    "%track metric mean_proba=float(proba[:, 1].mean())",
    "%track end",
]


def bench_confirm(work: Path, rounds: int) -> dict[str, Any]:
    """Median seconds of a bare Papermill run and of a confirmed replay of a diverging run."""
    import nbformat
    import papermill

    import jupyter_mlops as mlops
    from jupyter_mlops.replays import replay

    notebook = work / "unseeded.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in UNSEEDED_CELLS]
    nbformat.write(nb, notebook)

    def bare() -> None:
        with _told_notebook(notebook):
            papermill.execute_notebook(
                str(notebook), str(work / "unseeded.out.ipynb"), cwd=str(work), progress_bar=False
            )

    bare()  # the original run
    original = mlops.get_run("unseeded").id
    bare_times, confirm_times, found = [], [], []
    for index in range(rounds):
        for which in ("bare", "confirm") if index % 2 == 0 else ("confirm", "bare"):
            start = time.perf_counter()
            if which == "bare":
                bare()
                bare_times.append(time.perf_counter() - start)
            else:
                report = replay(original, confirm=True, progress=False)
                confirm_times.append(time.perf_counter() - start)
                found.append((report["verdict"], report.get("nondeterministic")))
        log(f"  round {index + 1}: bare {bare_times[-1]:.2f} s, confirm {confirm_times[-1]:.2f} s")
    bare_s, confirm_s = statistics.median(bare_times), statistics.median(confirm_times)
    return {
        "bare_papermill_s": round(bare_s, 3),
        "confirmed_replay_s": round(confirm_s, 3),
        "confirm_overhead": round(confirm_s / bare_s, 3),
        "verdicts": sorted({f"{verdict}, nondeterministic={flag}" for verdict, flag in found}),
    }


def tiny_notebook(work: Path) -> Path:
    """A notebook whose one cell takes milliseconds: a sweep of it is all kernel start-up."""
    import nbformat

    notebook = work / "tiny.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    parameters = nbformat.v4.new_code_cell("n_estimators = 1")
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [
        parameters,
        nbformat.v4.new_code_cell(
            "import jupyter_mlops as mlops\nmlops.log_metric('double', 2.0 * n_estimators)"
        ),
    ]
    nbformat.write(nb, notebook)
    return notebook


def bench_sweep(notebook: Path, points: int, rounds: int) -> dict[str, Any]:
    """Median seconds of ``jupyter mlops sweep`` on 1 worker and on 2, alternating."""
    values = [str(10 + 10 * i) for i in range(points)]
    one, two = [], []
    for index in range(rounds):
        for workers in (1, 2) if index % 2 == 0 else (2, 1):
            # The command a user types, so both sides pay the same start-up.
            command = [sys.executable, "-m", "jupyter_mlops.cli", "sweep", str(notebook)]
            command += ["-p", "n_estimators", *values, "--workers", str(workers)]
            command += ["--no-progress", "--cwd", str(notebook.parent)]
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            elapsed = time.perf_counter() - start
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
            (one if workers == 1 else two).append(elapsed)
        log(f"  round {index + 1}: 1 worker {one[-1]:.2f} s, 2 workers {two[-1]:.2f} s")
    one_s, two_s = statistics.median(one), statistics.median(two)
    return {
        "notebook": notebook.name,
        "points": points,
        "one_worker_s": round(one_s, 3),
        "two_workers_s": round(two_s, 3),
        "speedup": round(one_s / two_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="one round, a 2-point sweep")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    work = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    os.environ[kernel_env.STORE_DIR] = str(work / ".mlops")
    try:
        log("replay against bare papermill (quickstart notebook)")
        replay_result = bench_replay(work, rounds)
        log("replay --confirm of a diverging run against bare papermill")
        confirm_result = bench_confirm(work, rounds)
        points, sweep_rounds = (2, 1) if args.quick else (8, 3)
        log("sweep of the quickstart notebook, 2 workers against 1")
        sweeps = [bench_sweep(work / "quickstart.ipynb", points, sweep_rounds)]
        log("sweep of a notebook that is all kernel start-up, 2 workers against 1")
        sweeps.append(bench_sweep(tiny_notebook(work), points, sweep_rounds))
    finally:
        from jupyter_mlops.store import close_all

        close_all()
        shutil.rmtree(work, ignore_errors=True)
    result = {"replay": replay_result, "confirm": confirm_result, "sweeps": sweeps}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{'measure':<44}{'ours':>8}{'baseline':>10}{'ratio':>8}  target")
    print(
        f"{'replay vs bare papermill (s)':<44}{replay_result['replay_s']:>8.2f}"
        f"{replay_result['bare_papermill_s']:>10.2f}{replay_result['replay_overhead']:>7.2f}x"
        "  <= 1.15x"
    )
    print(
        f"{'replay --confirm vs bare papermill (s)':<44}"
        f"{confirm_result['confirmed_replay_s']:>8.2f}"
        f"{confirm_result['bare_papermill_s']:>10.2f}{confirm_result['confirm_overhead']:>7.2f}x"
        "  <= 2.2x"
    )
    for sweep_result in sweeps:
        label = f"sweep {sweep_result['notebook']} x{sweep_result['points']}, 2 vs 1 worker (s)"
        print(
            f"{label:<44}{sweep_result['two_workers_s']:>8.2f}"
            f"{sweep_result['one_worker_s']:>10.2f}{sweep_result['speedup']:>7.2f}x"
            "  >= 1.7x faster"
        )


if __name__ == "__main__":
    main()
