"""Sweeps on a real Dask cluster: a LocalCluster of two worker processes, driven by address."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.cluster import local_cluster, pack_folder
from jupyter_mlops.errors import InvalidValueError, MlopsError
from jupyter_mlops.store import open_store
from jupyter_mlops.sweeps import sweep

from .conftest import PYTHON, child_env

pytestmark = pytest.mark.slow

# A notebook that reads a file beside it, scores, and (for one point) kills the worker
# process running it on its first attempt, as an out-of-memory kill would.
CELLS = [
    "import os, pathlib, signal, time\n"
    "import jupyter_mlops as mlops\n"
    "weights = [float(w) for w in open('weights.txt').read().split()]",
    "if x == kill_at and not pathlib.Path(marker).exists():\n"
    "    pathlib.Path(marker).write_text(str(os.getppid()))\n"
    "    os.kill(os.getppid(), signal.SIGKILL)\n"
    "    time.sleep(60)",
    "score = sum(w * x for w in weights)\nmlops.log_metric('score', score)\nprint(score)",
]


@pytest.fixture
def notebook(tmp_path: Path) -> Path:
    """The notebook with its parameters cell, in a project folder with its input file."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "weights.txt").write_text("0.5 1.5\n")
    nb = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell("x = 1\nkill_at = 0\nmarker = ''")
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters, *(nbformat.v4.new_code_cell(c) for c in CELLS)]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    path = folder / "score.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def scheduler() -> Iterator[tuple[str, Any]]:
    """A real LocalCluster of two single-threaded worker processes on 127.0.0.1."""
    with local_cluster(2) as client:
        yield client.scheduler.address, client


def test_an_eight_point_sweep_lands_in_the_main_store(
    notebook: Path, scheduler: tuple[str, Any], tmp_path: Path
) -> None:
    address, client = scheduler
    folders = client.run(os.getcwd)
    result = sweep(notebook, {"x": list(range(1, 9))}, cluster=address, progress=False)

    assert result["failed"] == 0 and result["workers"] == 2
    store = open_store()
    runs = store.list_runs(where=None)
    assert sorted(r["params"]["x"] for r in runs) == list(range(1, 9))
    for run in runs:
        assert run["status"] == "finished" and run["kind"] == "sweep"
        assert run["sweep_id"] == result["sweep_id"]
        assert run["metrics"]["score"] == pytest.approx(2.0 * run["params"]["x"])
        assert run["notebook"] == "project/score.ipynb"
        assert "Dask worker tcp://127.0.0.1:" in run["origin"]
        record = mlops.get_run(run["id"])
        assert [c["source"] for c in record.cells()][-1].startswith("score = ")
        assert record.artifact("sweep.ipynb").path.is_file()
    for point in result["points"]:
        executed = nbformat.read(point["output"], as_version=4)
        assert executed.cells[-1].outputs[0]["text"].strip() == str(2.0 * point["params"]["x"])
    # The workers ran every point without leaving their own folders.
    assert client.run(os.getcwd) == folders


def test_a_worker_killed_mid_point_leaves_it_crashed_and_the_others_go_on(
    notebook: Path, scheduler: tuple[str, Any], tmp_path: Path
) -> None:
    address, _ = scheduler
    grid = {"x": [1, 2, 3, 4], "kill_at": [3], "marker": [str(tmp_path / "killed")]}
    result = sweep(notebook, grid, cluster=address, progress=False)

    statuses = {p["params"]["x"]: p["status"] for p in result["points"]}
    assert statuses == {1: "finished", 2: "finished", 3: "crashed", 4: "finished"}
    assert result["failed"] == 1
    crashed = result["points"][2]
    assert crashed["failure"]["kind"] == "worker died"
    row = open_store().get_run(crashed["run_id"])
    assert "worker" in row["error"] and row["sweep_id"] == result["sweep_id"]
    assert mlops.get_run(crashed["run_id"]).params["x"] == 3
    assert len(open_store().list_runs()) == 4


def test_with_retries_the_point_runs_again_on_a_live_worker(
    notebook: Path, scheduler: tuple[str, Any], tmp_path: Path
) -> None:
    address, _ = scheduler
    grid = {"x": [2, 3], "kill_at": [3], "marker": [str(tmp_path / "killed")]}
    result = sweep(notebook, grid, cluster=address, progress=False, retries=1, upload=True)

    assert [p["status"] for p in result["points"]] == ["finished", "finished"]
    assert result["points"][1]["attempts"] == 2
    store = open_store()
    runs = store.list_runs()
    crashed = [r for r in runs if r["status"] == "crashed"]
    assert len(runs) == 3 and len(crashed) == 1
    assert crashed[0]["tags"]["sweep.attempt"] == "1" and crashed[0]["params"]["x"] == 3
    assert (tmp_path / "killed").is_file()


def test_a_local_cluster_is_started_and_stopped_by_the_sweep(notebook: Path) -> None:
    result = sweep(notebook, {"x": [5]}, cluster="local:1", progress=False, upload=True)
    assert result["workers"] == 1 and result["points"][0]["status"] == "finished"
    assert json.loads(open_store().conn.execute("SELECT value FROM params").fetchone()[0]) == 5


def test_a_folder_too_big_to_send_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jupyter_mlops.cluster as cluster

    (tmp_path / "big.bin").write_bytes(b"\0" * 2048)
    monkeypatch.setattr(cluster, "MAX_UPLOAD_BYTES", 1024)
    with pytest.raises(InvalidValueError, match="a path the workers share"):
        pack_folder(tmp_path)


def test_without_the_extra_one_line_says_what_to_install(
    notebook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MlopsError, match=r'pip install "jupyter-mlops\[dask\]"') as caught:
        sweep(notebook, {"x": [1]}, cluster="local:1", progress=False)
    assert "\n" not in str(caught.value)
    assert open_store().list_runs() == []


def test_the_sweep_command_runs_on_a_cluster_it_starts(notebook: Path) -> None:
    command = [PYTHON, "-m", "jupyter_mlops.cli", "sweep", str(notebook), "-p", "x", "1", "2"]
    done = subprocess.run(
        [*command, "--cluster", "local:1", "--upload", "--no-progress"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 run(s), 0 failed" in done.stdout and "on 1 worker(s)" in done.stdout
    assert sorted(r["params"]["x"] for r in open_store().list_runs()) == [1, 2]
