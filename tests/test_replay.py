"""Replays in real kernels: notebooks made to reproduce, diverge and fail in each way."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest

import jupyter_mlops as mlops
from jupyter_mlops import kernel_env
from jupyter_mlops.errors import InvalidValueError, ReplayNotFoundError
from jupyter_mlops.replays import get_replay, replay, start_replay

from .conftest import PYTHON, child_env
from .test_kernels import execute, kernel  # noqa: F401 - the kernel fixture

pytestmark = pytest.mark.slow

START = "%load_ext jupyter_mlops\n%track start --name {name}"


def write_notebook(path: Path, cells: list[str], *, parameters: str | None = None) -> Path:
    """A notebook file of code cells (the first one tagged ``parameters`` when given)."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        notebook.cells.append(cell)
    for index, source in enumerate(cells):
        cell = nbformat.v4.new_code_cell(source)
        cell.id = f"cell-{index}"
        notebook.cells.append(cell)
    nbformat.write(notebook, path)
    return path


def run_original(path: Path, monkeypatch: pytest.MonkeyPatch, **parameters: Any) -> None:
    """Run a notebook the way the README does: Papermill, told which notebook it runs."""
    for name, value in child_env(**{kernel_env.NOTEBOOK: str(path)}).items():
        monkeypatch.setenv(name, value)
    papermill.execute_notebook(
        str(path),
        str(path.with_suffix(".out.ipynb")),
        parameters=parameters or None,
        cwd=str(path.parent),
        progress_bar=False,
    )
    monkeypatch.delenv(kernel_env.NOTEBOOK)


SKLEARN = [
    START.format(name="seeded"),
    "import numpy as np\n"
    "from sklearn.datasets import load_iris\n"
    "from sklearn.ensemble import RandomForestClassifier\n"
    "from sklearn.model_selection import train_test_split\n"
    "X, y = load_iris(return_X_y=True)",
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=seed)\n"
    "model = RandomForestClassifier(n_estimators=n_estimators, random_state=seed)\n"
    "model.fit(X_train, y_train)\n"
    "proba = model.predict_proba(X_test)",
    "acc = float((model.predict(X_test) == y_test).mean())\n%track metric acc\nprint(acc)",
    "%track end",
]


def test_a_seeded_sklearn_notebook_reproduces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = write_notebook(
        tmp_path / "seeded.ipynb", SKLEARN, parameters="seed = 0\nn_estimators = 10"
    )
    run_original(notebook, monkeypatch, seed=3, n_estimators=15)
    original = mlops.get_run("seeded")
    assert original.params == {"seed": 3, "n_estimators": 15}

    result = subprocess.run(
        [PYTHON, "-m", "jupyter_mlops.cli", "replay", "seeded", "--format", "json"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "reproduced", report["summary"]
    assert report["reproduced"] is True
    assert report["summary"].startswith("Reproduced: 5 cell(s), 1 metric(s)")

    replayed = mlops.get_run(report["replay_run"]["id"])
    assert replayed.row["kind"] == "replay"
    assert replayed.row["parent_id"] == original.id
    assert replayed.params == original.params
    assert replayed.metrics == original.metrics
    assert [a["name"] for a in replayed.artifacts()] == ["replay.ipynb"]
    # The prelude (the injected parameters) ran first and is kept apart from the run's cells.
    assert [c["source"] for c in replayed.cells()] == [c["source"] for c in original.cells()]
    assert [r["verdict"] for r in original.replays()] == ["reproduced"]
    assert replayed.replay_of()["report"]["verdict"] == "reproduced"

    shown = subprocess.run(
        [PYTHON, "-m", "jupyter_mlops.cli", "show", "seeded"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert "reproduced" in shown.stdout


def test_unseeded_random_numbers_diverge_and_the_verdict_names_the_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = write_notebook(
        tmp_path / "unseeded.ipynb",
        [
            START.format(name="unseeded"),
            "import numpy as np\nbase = np.arange(5.0)",
            "noise = np.random.rand(5)",
            "total = float((base + noise).sum())\n%track metric total",
        ],
    )
    run_original(notebook, monkeypatch)
    report = replay("unseeded", progress=False)
    assert report["verdict"] == "diverged"
    assert report["reproduced"] is False
    assert report["first_cell"]["position"] == 3
    assert report["first_cell"]["data"] == ["noise"]
    assert report["causes"][0] == (
        "cell 3 [3]: `np.random.rand(5)` draws from numpy's global generator, which nothing seeds "
        "before it (np.random.seed)"
    )
    assert report["summary"].startswith("Diverged at cell 3 [3] (`noise = np.random.rand(5)`)")
    assert "total" in report["comparison"]["metrics"]


def test_a_data_file_changed_after_the_run_diverges_and_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data.csv"
    data.write_text("x,y\n1,2\n3,4\n")
    notebook = write_notebook(
        tmp_path / "reads.ipynb",
        [
            START.format(name="reads"),
            "import pandas as pd\nframe = pd.read_csv('data.csv')\n%track data data.csv",
            "%track metric total=float(frame.values.sum())",
        ],
    )
    run_original(notebook, monkeypatch)
    data.write_text("x,y\n1,2\n3,5\n")
    report = replay("reads", progress=False)
    assert report["verdict"] == "diverged"
    assert report["first_cell"]["position"] == 2
    assert "frame" in report["first_cell"]["data"]
    # The file the cell read, with its hashes; the dataset recording the same file adds nothing.
    assert report["causes"][0].startswith("the input file data.csv changed since the original run")
    assert report["causes"][0].endswith("; cell 2 [2] reads it")
    assert not any("the data file" in cause for cause in report["causes"])
    assert "Likely cause: the input file data.csv changed" in report["summary"]


def test_a_file_read_outside_python_that_changed_is_named_as_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "values.txt"
    data.write_text("1 2 3")
    notebook = write_notebook(
        tmp_path / "unrecorded.ipynb",
        [
            START.format(name="unrecorded"),
            # Another process reads the file: no open in this one records it.
            "import subprocess\n"
            "numbers = [int(v) for v in subprocess.check_output(['cat', 'values.txt']).split()]\n"
            "print(numbers)",
            "%track metric total=sum(numbers)",
        ],
    )
    run_original(notebook, monkeypatch)
    data.write_text("1 2 4")
    report = replay("unrecorded", progress=False)
    assert report["verdict"] == "diverged"
    assert report["first_cell"]["position"] == 2
    assert report["causes"] == [
        "cell 2 [2] reads values.txt, which no dataset records, so whether it changed is not known"
        " (record it with %track data values.txt)"
    ]


def test_a_replay_whose_file_is_gone_fails_and_names_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data.csv"
    data.write_text("x\n1\n")
    notebook = write_notebook(
        tmp_path / "gone.ipynb",
        [
            START.format(name="gone"),
            "import pandas as pd",
            "frame = pd.read_csv('data.csv')",
            "%track metric rows=len(frame)",
        ],
    )
    run_original(notebook, monkeypatch)
    data.unlink()
    report = replay("gone", progress=False)
    assert report["verdict"] == "failed"
    assert report["failure"]["kind"] == "error"
    assert report["failure"]["error"] == "FileNotFoundError"
    assert report["failure"]["cell"]["position"] == 3
    assert report["summary"].startswith(
        "Failed at cell 3 [3] (`frame = pd.read_csv('data.csv')`): FileNotFoundError:"
    )
    assert "data.csv" in report["summary"]
    assert report["causes"][:2] == [
        "the input file data.csv is gone (cell 3 [3] read it)",
        "a file the run read is gone or has moved",
    ]
    assert mlops.get_run(report["replay_run"]["id"]).status == "failed"


def test_a_kernel_killed_mid_replay_is_reported_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = write_notebook(
        tmp_path / "dies.ipynb",
        [
            START.format(name="dies"),
            "import os, pathlib, signal\n"
            "if pathlib.Path('die').exists():\n"
            "    os.kill(os.getpid(), signal.SIGKILL)",
            "%track metric ok=1",
        ],
    )
    run_original(notebook, monkeypatch)
    (tmp_path / "die").touch()
    report = replay("dies", progress=False)
    assert report["verdict"] == "failed"
    assert report["failure"]["kind"] == "kernel died"
    assert report["summary"].startswith("Failed: the kernel died while running cell 2 [2]")
    assert mlops.get_run(report["replay_run"]["id"]).status == "crashed"


def test_a_cell_over_its_timeout_fails_as_a_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = write_notebook(
        tmp_path / "slow.ipynb",
        [
            START.format(name="slow"),
            "import pathlib, time\ntime.sleep(60 if pathlib.Path('slow').exists() else 0)",
        ],
    )
    run_original(notebook, monkeypatch)
    (tmp_path / "slow").touch()
    report = replay("slow", timeout=3, progress=False)
    assert report["verdict"] == "failed"
    assert report["failure"]["kind"] == "timeout"
    assert report["summary"].startswith("Failed: cell 2 [2] (`import pathlib, time`) timed out")


def test_an_out_of_order_session_reproduces_recorded_but_not_from_the_file(
    kernel: Any,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    _, client = kernel
    cells = {
        "c-start": START.format(name="ooo"),
        "c-set": "x = 1",
        "c-add": "x = x + 10",
        "c-log": "%track metric y=x",
    }
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for cell_id, source in cells.items():
        cell = nbformat.v4.new_code_cell(source)
        cell.id = cell_id
        notebook.cells.append(cell)
    nbformat.write(notebook, tmp_path / "analysis.ipynb")
    execute(client, "import math", "c-before")  # ran before the run started: its prelude
    for cell_id in ["c-start", "c-set", "c-add", "c-add", "c-log"]:
        execute(client, cells[cell_id], cell_id)
    execute(client, "%track end", None)
    original = mlops.get_run("ooo")
    assert original.metrics == {"y": 21.0}
    assert original.row["linear"] is False
    assert [c["source"] for c in original.prelude()] == ["import math"]

    recorded = replay("ooo", progress=False)
    assert recorded["verdict"] == "reproduced", recorded["summary"]

    from_file = replay("ooo", mode="file", progress=False)
    assert from_file["verdict"] == "diverged"
    assert from_file["comparison"]["metrics"]["y"]["b"] == 11.0
    assert any("the original run was not linear" in cause for cause in from_file["causes"])


# No tolerance at all, but one for the metric: the per-metric one decides.
TOLERANCE_FLAGS = ("--rtol", "0", "--atol", "0", "--tol", "value=1e-6", "--no-progress")


def test_metrics_within_tolerance_reproduce_within_tolerance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The metric carries noise far below any tolerance people care about: 1e-12 relative.
    notebook = write_notebook(
        tmp_path / "noise.ipynb",
        [
            START.format(name="noise"),
            "import time\nvalue = 0.5 * (1 + 1e-12 * (time.time_ns() % 1000))\n%track metric value",
        ],
    )
    run_original(notebook, monkeypatch)
    report = replay("noise", progress=False)
    assert report["verdict"] == "reproduced within tolerance", report["summary"]
    assert report["reproduced"] is True
    strict = replay("noise", rtol=0, atol=0, progress=False)
    assert strict["verdict"] == "diverged"
    per_metric = subprocess.run(
        [PYTHON, "-m", "jupyter_mlops.cli", "replay", "noise", *TOLERANCE_FLAGS],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=300,
    )
    assert per_metric.returncode == 0, per_metric.stdout + per_metric.stderr
    assert "verdict: reproduced within tolerance" in per_metric.stdout


def test_a_replay_in_the_background_reports_progress_and_its_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = write_notebook(
        tmp_path / "bg.ipynb", [START.format(name="bg"), "%track metric one=1"]
    )
    run_original(notebook, monkeypatch)
    started = start_replay("bg")
    assert started["state"] == "running"
    row = _wait_for(lambda: get_replay(started["id"]), lambda r: r["state"] != "running")
    assert row["state"] == "done", row
    assert row["verdict"] == "reproduced"
    assert row["cells_done"] == row["cells_total"] > 0
    assert row["report"]["verdict"] == "reproduced"
    with pytest.raises(ReplayNotFoundError):
        get_replay("0" * 32)
    with pytest.raises(InvalidValueError, match="mode"):
        start_replay("bg", mode="sideways")


def test_replay_errors_are_one_line(tmp_path: Path) -> None:
    with mlops.start_run(name="no-notebook"):
        mlops.log_metric("m", 1)
    with pytest.raises(InvalidValueError, match="no saved notebook file"):
        start_replay("no-notebook", mode="file")
    result = subprocess.run(
        [PYTHON, "-m", "jupyter_mlops.cli", "replay", "no-notebook", "--mode", "file"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: no-notebook: the run has no saved notebook file to replay in file mode"
    ]
    with pytest.raises(InvalidValueError, match="recorded no cells"):
        replay("no-notebook", progress=False)
    missing = subprocess.run(
        [PYTHON, "-m", "jupyter_mlops.cli", "replay", "nope"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert missing.returncode == 2
    assert "no run matches 'nope'" in missing.stderr


def test_a_background_replay_that_cannot_start_says_why_in_its_row_and_log(
    store_dir: Path,
) -> None:
    with mlops.start_run(name="no-cells"):
        mlops.log_metric("m", 1)
    started = start_replay("no-cells")
    row = _wait_for(lambda: get_replay(started["id"]), lambda r: r["state"] != "running")
    assert row["state"] == "error", row
    assert "recorded no cells" in row["summary"]
    log = (store_dir / "replays" / f"{started['id']}.log").read_text()
    assert log.strip().splitlines()[-1].startswith("Error: no-cells: the run recorded no cells")


def _wait_for(
    read: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    row = read()
    while not done(row) and time.monotonic() < deadline:
        time.sleep(0.5)
        row = read()
    return row


def test_a_cell_that_raised_in_the_original_may_raise_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = write_notebook(
        tmp_path / "raises.ipynb",
        [START.format(name="raises"), "1 / 0", "%track metric after=1"],
    )
    cells = nbformat.read(notebook, as_version=4)
    cells.cells[1].metadata["tags"] = ["raises-exception"]
    nbformat.write(cells, notebook)
    with pytest.raises(papermill.PapermillExecutionError):
        run_original(notebook, monkeypatch)
    original = mlops.get_run("raises")
    assert [c["error"] for c in original.cells()] == [None, "ZeroDivisionError", None]
    report = replay("raises", progress=False)
    assert report["verdict"] == "reproduced", report["summary"]
