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
    assert "out of notebook order: cell 2 ran after cell 3" in reasons
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
    monkeypatch.setenv("JUPYTER_MLOPS_NOTEBOOK", str(source))
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
