"""Real kernels: JupyterLab-style execution with cell ids, Papermill, and a killed kernel."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.manager import KernelManager

import jupyter_mlops as mlops
from jupyter_mlops import kernel_env

from .conftest import child_env

pytestmark = pytest.mark.slow

CELLS = {
    "c-start": "%load_ext jupyter_mlops\n%track start --name {name}",
    "c-load": "import numpy as np\nvalues = np.arange(10.0)",
    "c-scale": "scaled = values * 2\n%track metric total=scaled.sum()",
    "c-end": "%track end",
}


def write_notebook(path: Path, name: str) -> None:
    """A saved notebook whose code cells carry the ids in CELLS."""
    notebook = nbformat.v4.new_notebook()
    for cell_id, source in CELLS.items():
        cell = nbformat.v4.new_code_cell(source.format(name=name))
        cell.id = cell_id
        notebook.cells.append(cell)
    nbformat.write(notebook, path)


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[tuple[KernelManager, Any]]:
    """A real IPython kernel started the way JupyterLab starts one for a notebook."""
    notebook = tmp_path / "analysis.ipynb"
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(tmp_path), env=child_env(JPY_SESSION_NAME=str(notebook)))
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    try:
        yield manager, client
    finally:
        client.stop_channels()
        if manager.is_alive():
            manager.shutdown_kernel(now=False)


def execute(client: Any, source: str, cell_id: str | None = None) -> dict[str, Any]:
    """Send an execute request carrying the cell id as JupyterLab does; return the reply."""
    content = {
        "code": source,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }
    message = client.session.msg(
        "execute_request", content, metadata={"cellId": cell_id} if cell_id else {}
    )
    client.shell_channel.send(message)
    while True:
        reply = client.get_shell_msg(timeout=60)
        if reply["parent_header"].get("msg_id") == message["header"]["msg_id"]:
            break
    assert reply["content"]["status"] == "ok", reply["content"]
    return reply["content"]


def run_cells(client: Any, order: list[str], name: str) -> None:
    for cell_id in order:
        execute(client, CELLS[cell_id].format(name=name), cell_id)


def test_cells_run_top_to_bottom_are_linear(kernel: Any, tmp_path: Path) -> None:
    _, client = kernel
    write_notebook(tmp_path / "analysis.ipynb", "in-order")
    run_cells(client, ["c-start", "c-load", "c-scale", "c-end"], "in-order")
    record = mlops.get_run("in-order")
    assert record.row["notebook"] == "analysis.ipynb"
    assert record.row["kind"] == "interactive"
    assert record.row["linear"] is True, record.row["linear_reasons"]
    assert record.metrics == {"total": 90.0}
    cells = record.cells()
    assert [c["cell_id"] for c in cells] == ["c-start", "c-load", "c-scale", "c-end"]
    assert cells[1]["data_hashes"]["values"] == mlops.content_hash(__import__("numpy").arange(10.0))
    assert record.row["notebook_hash_start"] == record.row["notebook_hash_end"]


def test_cells_run_out_of_order_are_not_linear(kernel: Any, tmp_path: Path) -> None:
    _, client = kernel
    write_notebook(tmp_path / "analysis.ipynb", "shuffled")
    run_cells(client, ["c-start", "c-load", "c-scale", "c-load", "c-end"], "shuffled")
    record = mlops.get_run("shuffled")
    assert record.row["linear"] is False
    reasons = " | ".join(record.row["linear_reasons"])
    assert "ran more than once" in reasons
    assert "out of notebook order: cell 2 [4] ran after cell 3 [3]" in reasons
    # Every door (the views, the sidebar through the API) reads the same marks.
    marks = [c["marks"] for c in record.to_dict(full=True)["cells"]]
    assert marks == [[], [], [], ["ran again", "out of order: cell 2 after cell 3"], []]


def test_unsaved_edits_make_a_run_non_linear(kernel: Any, tmp_path: Path) -> None:
    _, client = kernel
    write_notebook(tmp_path / "analysis.ipynb", "edited")
    execute(client, CELLS["c-start"].format(name="edited"), "c-start")
    execute(client, "import numpy as np\nvalues = np.arange(99.0)", "c-load")
    execute(client, CELLS["c-end"], "c-end")
    reasons = mlops.get_run("edited").row["linear_reasons"]
    assert any("differs from what ran in cell 2" in r for r in reasons)


def test_a_killed_kernel_leaves_a_crashed_run(kernel: Any) -> None:
    manager, client = kernel
    execute(client, CELLS["c-start"].format(name="doomed"))
    execute(client, "%track metric progress=0.5")
    execute(client, "import jupyter_mlops\njupyter_mlops.active_run().store.flush()")
    pid = manager.provisioner.pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while manager.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    record = mlops.get_run("doomed")
    assert record.status == "crashed"
    assert record.metrics == {"progress": 0.5}


def test_papermill_run_records_injected_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import papermill

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    notebook.cells = [
        nbformat.v4.new_code_cell("%load_ext jupyter_mlops\n%track start --name pm"),
        nbformat.v4.new_code_cell(
            "alpha = 0.1\nlabel = 'default'", metadata={"tags": ["parameters"]}
        ),
        nbformat.v4.new_code_cell("%track metric doubled=alpha*2"),
        nbformat.v4.new_code_cell("%track end"),
    ]
    source = tmp_path / "param.ipynb"
    nbformat.write(notebook, source)
    monkeypatch.setenv(kernel_env.NOTEBOOK, str(source))
    for name, value in child_env().items():
        monkeypatch.setenv(name, value)
    papermill.execute_notebook(
        str(source),
        str(tmp_path / "param.out.ipynb"),
        parameters={"alpha": 0.25, "label": "swept"},
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
    )
    record = mlops.get_run("pm")
    assert record.params == {"alpha": 0.25, "label": "swept"}
    assert record.metrics == {"doubled": 0.5}
    assert record.row["notebook"] == "param.ipynb"
    assert record.row["linear"] is True, record.row["linear_reasons"]
    assert os.path.exists(tmp_path / "param.out.ipynb")


def test_a_kernel_shut_down_by_its_server_ends_the_run_finished(kernel: Any) -> None:
    manager, client = kernel
    execute(client, CELLS["c-start"].format(name="closed"))
    execute(client, "%track metric progress=1.0")
    client.stop_channels()
    manager.shutdown_kernel(now=False)
    record = mlops.get_run("closed")
    assert record.status == "finished"
    assert record.metrics == {"progress": 1.0}


def test_a_terminated_kernel_leaves_a_killed_run(kernel: Any) -> None:
    manager, client = kernel
    execute(client, CELLS["c-start"].format(name="terminated-kernel"))
    os.kill(manager.provisioner.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while manager.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mlops.get_run("terminated-kernel").status == "killed"


FIXTURES = Path(__file__).resolve().parent / "notebooks" / "verdicts"


def copy_fixture(name: str, folder: Path, as_name: str | None = None) -> Path:
    """A fixture notebook copied into the test's folder (runs write next to it)."""
    target = folder / (as_name or name)
    target.write_bytes((FIXTURES / name).read_bytes())
    return target


def test_an_empty_cell_in_a_notebook_without_cell_ids_is_not_a_mistake(tmp_path: Path) -> None:
    from jupyter_mlops.gate import check

    notebook = copy_fixture("empty_cell.ipynb", tmp_path)
    result = check(str(notebook), progress=False)
    assert result["passed"], result["checks"]
    record = mlops.get_run(result["run"])
    assert record.row["linear"] is True, record.row["linear_reasons"]
    assert record.metrics["r2"] > 0.9
    # The empty cells are not counted away: the fit is the saved notebook's fifth code cell.
    assert [c["cell_number"] for c in record.cells()] == [1, 2, 4, 5]


def test_a_parameters_comment_of_the_users_is_not_papermills(tmp_path: Path) -> None:
    from jupyter_mlops.gate import check

    notebook = copy_fixture("parameters_comment.ipynb", tmp_path)
    result = check(str(notebook), progress=False)
    assert result["passed"], result["checks"]
    record = mlops.get_run(result["run"])
    assert record.params == {}
    assert record.row["linear"] is True, record.row["linear_reasons"]
    assert [c["cell_number"] for c in record.cells()] == [1, 2, 3]


STEPS = {n: f"step_{n} = {n}\nprint('step', {n})" for n in range(1, 5)}


def write_steps(path: Path) -> None:
    """A saved notebook of four steps, without cell ids (an older Jupyter wrote it)."""
    notebook = nbformat.v4.new_notebook()
    notebook.nbformat_minor = 4
    notebook.cells = [nbformat.v4.new_code_cell(STEPS[n]) for n in range(1, 5)]
    for cell in notebook.cells:
        cell.pop("id", None)
    nbformat.write(notebook, path)


@pytest.mark.parametrize(
    ("order", "marks", "reason"),
    [
        (
            [1, 2, 3, 2, 4],
            [[], [], [], ["ran again", "out of order: cell 2 after cell 3"], []],
            "cells ran out of notebook order: cell 2 [6] ran after cell 3 [5]",
        ),
        (
            [1, 3, 2],
            [[], [], ["out of order: cell 2 after cell 3"]],
            "cells ran out of notebook order: cell 2 [5] ran after cell 3 [4]",
        ),
    ],
)
def test_a_kernel_driven_without_cell_ids_gets_precise_marks(
    kernel: Any, tmp_path: Path, order: list[int], marks: list[list[str]], reason: str
) -> None:
    _, client = kernel
    write_steps(tmp_path / "analysis.ipynb")
    # No cell ids in the requests, as from jupyter_client or VS Code.
    execute(client, "%load_ext jupyter_mlops")
    execute(client, "%track start --name steps")
    for n in order:
        execute(client, STEPS[n])
    execute(client, "%track end")
    record = mlops.get_run("steps")
    assert record.row["linear"] is False
    assert reason in record.row["linear_reasons"]
    cells = record.to_dict(full=True)["cells"]
    # The start and end cells are not in the saved notebook; the steps are marked precisely.
    assert [c["marks"] for c in cells[1:-1]] == marks
    assert [c["cell_number"] for c in cells[1:-1]] == order
    assert cells[0]["label"] == "cell ?#1 [2]"  # `%track start` is not in the saved notebook


def test_a_replay_uses_the_kernel_its_run_recorded(tmp_path: Path) -> None:
    from jupyter_mlops.gate import check
    from jupyter_mlops.replays import replay

    notebook = copy_fixture("python2_kernelspec.ipynb", tmp_path)
    ran = check(str(notebook), progress=False, kernel_name="python3")
    assert ran["passed"], ran["checks"]
    assert mlops.get_run(ran["run"]).row["kernel"] == "python3"
    report = replay(ran["run"], progress=False)
    assert report["verdict"] == "reproduced", report["summary"]
    assert report["options"]["kernel"] == "python3"


def test_a_kernel_that_cannot_start_is_one_line(kernel: Any, tmp_path: Path) -> None:
    import json
    import subprocess

    from .conftest import PYTHON

    _, client = kernel
    notebook = copy_fixture("python2_kernelspec.ipynb", tmp_path, as_name="analysis.ipynb")
    # Run by hand in a kernel that does not say its name: the run records no kernel.
    execute(client, "%load_ext jupyter_mlops\n%track start --name words")
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "code":
            execute(client, cell.source)
    execute(client, "%track end")
    assert mlops.get_run("words").row["kernel"] is None

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "-m", "jupyter_mlops.cli", *args, "--no-progress"],
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=300,
        )

    replayed = cli("replay", "words", "--format", "json")
    assert replayed.returncode == 1
    report = json.loads(replayed.stdout)
    assert report["verdict"] == "failed" and report["causes"] == []
    assert report["summary"] == (
        "Failed: the kernel did not start: no kernel named 'python2' is installed here; "
        "choose one with --kernel NAME (installed: python3)."
    )
    checked = cli("check", str(notebook))
    assert checked.returncode == 1
    lines = checked.stdout.strip().splitlines()
    assert lines[0].startswith("FAIL  reproduces: words: Failed: the kernel did not start")
    assert "--kernel NAME" in lines[0] and len(lines) == 2
    picked = cli("check", "words", "--kernel", "python3")
    assert picked.returncode == 0, picked.stdout + picked.stderr
