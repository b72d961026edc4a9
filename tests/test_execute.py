"""execute_notebook in real kernels: any notebook becomes one run, and what happens inside the
kernel (an error, a timeout, its death, a kernel that never starts) comes back as a Failure,
with the run's status to match."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from jupyter_mlops.execute import Execution, Failure, execute_notebook, store_notebook_artifact
from jupyter_mlops.records import get_run
from jupyter_mlops.store import Store

from .test_replay import write_notebook


def execute(path: Path, store: Store, **options: object) -> Execution:
    """The notebook at ``path`` run once, tracked as a script run named after the file."""
    return execute_notebook(
        nbformat.read(path, as_version=4),
        path.with_suffix(".out.ipynb"),
        store=store,
        kind="script",
        run_name=path.stem,
        cwd=path.parent,
        notebook_path=path,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.slow
def test_a_notebook_that_never_mentions_the_tracker_becomes_one_finished_run(
    tmp_path: Path, store: Store
) -> None:
    path = write_notebook(
        tmp_path / "plain.ipynb",
        ["total = alpha * 2", "print(total)"],
        parameters="alpha = 1",
    )
    seen: list[tuple[int, int]] = []
    execution = execute(
        path, store, parameters={"alpha": 3}, on_cell=lambda done, total: seen.append((done, total))
    )
    assert execution.failure is None, execution.failure
    record = get_run(execution.run_id, store=store)
    assert (record.row["status"], record.row["kind"]) == ("finished", "script")
    assert record.name == "plain"
    assert record.params == {"alpha": 3}
    sources = [cell["source"] for cell in record.cells()]
    assert "total = alpha * 2" in sources and "print(total)" in sources
    # The executed notebook holds Papermill's injected parameters and what the cells printed.
    printed = [
        output.get("text", "")
        for cell in execution.notebook.cells
        for output in cell.get("outputs", [])
    ]
    assert "6\n" in printed
    assert execution.output_path.is_file()
    # Every cell reported as done, the injected parameters cell among them.
    assert seen[-1] == (execution.cells_total, execution.cells_total)
    assert execution.cells_total == len(execution.notebook.cells) == 4

    store_notebook_artifact(store, execution.run_id, execution.output_path, "executed.ipynb")
    [artifact] = record.artifacts()
    assert artifact["name"] == "executed.ipynb" and artifact["size_bytes"] > 0


@pytest.mark.slow
def test_a_cell_that_raises_stops_the_notebook_and_fails_the_run(
    tmp_path: Path, store: Store
) -> None:
    path = write_notebook(
        tmp_path / "broken.ipynb",
        ["x = 1", "y = x / 0", "z = 'never run'"],
    )
    execution = execute(path, store)
    failure = execution.failure
    assert failure is not None
    assert (failure.kind, failure.error, failure.cell_index) == ("error", "ZeroDivisionError", 1)
    assert failure.line == "y = x / 0"
    assert failure.cell_label is not None and failure.cell_label.startswith("cell 2")
    assert str(failure).startswith(f"failed at {failure.cell_label}: ZeroDivisionError: ")
    row = store.get_run(execution.run_id)
    assert row["status"] == "failed"
    assert row["error"].startswith("ZeroDivisionError: ")
    sources = [cell["source"] for cell in get_run(execution.run_id, store=store).cells()]
    assert "z = 'never run'" not in sources


@pytest.mark.slow
def test_a_cell_tagged_raises_exception_does_not_stop_the_notebook(
    tmp_path: Path, store: Store
) -> None:
    path = write_notebook(tmp_path / "tagged.ipynb", ["raise ValueError('shown')", "done = 1"])
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[0].metadata["tags"] = ["raises-exception"]
    nbformat.write(notebook, path)
    execution = execute(path, store)
    assert execution.failure is None
    assert store.get_run(execution.run_id)["status"] == "finished"


@pytest.mark.slow
def test_a_cell_past_the_timeout_fails_the_run_as_timed_out(tmp_path: Path, store: Store) -> None:
    path = write_notebook(tmp_path / "slow.ipynb", ["import time\ntime.sleep(60)"])
    execution = execute(path, store, timeout=3)
    assert execution.failure is not None and execution.failure.kind == "timeout"
    row = store.get_run(execution.run_id)
    assert row["status"] == "failed" and row["error"].startswith("timed out: ")


@pytest.mark.slow
def test_a_kernel_that_dies_leaves_a_crashed_run(tmp_path: Path, store: Store) -> None:
    path = write_notebook(tmp_path / "dies.ipynb", ["x = 1", "import os\nos._exit(1)"])
    execution = execute(path, store)
    assert execution.failure is not None and execution.failure.kind == "kernel died"
    assert store.get_run(execution.run_id)["status"] == "crashed"


@pytest.mark.slow
def test_a_kernel_that_never_starts_still_leaves_a_failed_run(tmp_path: Path, store: Store) -> None:
    path = write_notebook(tmp_path / "nowhere.ipynb", ["x = 1"])
    execution = execute(path, store, kernel_name="no-such-kernel")
    failure = execution.failure
    assert failure is not None and failure.kind == "kernel did not start"
    assert str(failure).startswith("the kernel did not start: ")
    assert failure.to_dict()["kind"] == "kernel did not start"
    row = store.get_run(execution.run_id)
    assert (row["status"], row["name"], row["kernel"]) == ("failed", "nowhere", "no-such-kernel")
    assert row["end_time"] is not None


def test_a_failure_is_said_where_it_happened() -> None:
    in_cell = Failure("error", 3, "KeyError", "'lr'", cell_label="cell 4 [7]", line="lr = p['lr']")
    assert str(in_cell) == "failed at cell 4 [7]: KeyError: 'lr'"
    unlabelled = Failure("timeout", 0, message="cell took over 3 s")
    assert str(unlabelled) == "failed at notebook cell 1: timeout: cell took over 3 s"
    assert Failure("kernel died", None).to_dict() == {
        "kind": "kernel died",
        "cell_index": None,
        "error": None,
        "message": "",
        "cell_label": None,
        "line": None,
    }
