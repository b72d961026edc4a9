"""Cell capture in a real IPython shell: what each executed cell leaves in the store."""

from __future__ import annotations

from typing import Any

import pytest

import jupyter_mlops as mlops
from jupyter_mlops import hashing
from jupyter_mlops.capture import CellCapture
from jupyter_mlops.outputs import sanitize_output


def cells_of(run_name: str) -> list[dict[str, Any]]:
    return mlops.get_run(run_name).cells()


def test_cells_are_recorded_in_order_with_timing_errors_and_names(shell: Any) -> None:
    shell.run_cell("%track start --name cap", store_history=True)
    shell.run_cell("import numpy as np\nrows = 5", store_history=True)
    shell.run_cell(
        "data = np.ones(rows)\ntotal = data.sum()\nprint('total', total)", store_history=True
    )
    shell.run_cell("missing_name + 1", store_history=True)
    shell.run_cell("total", store_history=True)
    shell.run_cell("total", store_history=True)
    shell.run_cell("total + 1", store_history=True)
    shell.run_cell("%track end", store_history=True)
    cells = cells_of("cap")
    assert [c["seq"] for c in cells] == [1, 2, 3, 4, 5, 6, 7, 8]
    counts = [c["execution_count"] for c in cells]
    assert counts == list(range(counts[0], counts[0] + 8))
    start, imports, compute, broken, shown, shown_again, other, _end = cells
    assert start["source"] == "%track start --name cap"
    assert imports["writes"] == ["np", "rows"]
    assert compute["reads"] == ["np", "rows"]
    assert compute["writes"] == ["data", "total"]
    assert compute["data_hashes"]["data"] == mlops.content_hash(shell.user_ns["data"])
    assert compute["source_hash"] == hashing.hash_bytes(compute["source"])
    assert compute["output_hash"] == hashing.hash_bytes(sanitize_output("total 5.0\n"))
    assert broken["error"] == "NameError"
    assert "missing_name" in broken["error_value"]
    # The same result shown under another execution count hashes the same; another does not.
    assert shown["output_hash"] is not None
    assert shown_again["output_hash"] == shown["output_hash"]
    assert other["output_hash"] != shown["output_hash"]
    assert all(c["duration"] >= 0 for c in cells)
    assert cells[0]["start_time"] <= cells[-1]["start_time"]
    assert mlops.get_run("cap").row["linear"] is True


def test_cells_outside_a_run_are_not_recorded(shell: Any) -> None:
    shell.run_cell("before = 1", store_history=True)
    shell.run_cell("%track start --name later", store_history=True)
    shell.run_cell("after = 2", store_history=True)
    shell.run_cell("%track end", store_history=True)
    shell.run_cell("afterwards = 3", store_history=True)
    sources = [c["source"] for c in cells_of("later")]
    assert sources == ["%track start --name later", "after = 2", "%track end"]


def test_metrics_know_the_cell_that_logged_them(shell: Any) -> None:
    shell.run_cell("%track start --name which", store_history=True)
    shell.run_cell("x = 1", store_history=True)
    shell.run_cell("%track metric acc=0.5", store_history=True)
    series = mlops.get_run("which").metric_series("acc")
    assert series[0]["cell"] == 3


def test_a_rerun_cell_makes_the_run_non_linear(shell: Any) -> None:
    shell.run_cell("%track start --name rerun", store_history=True)
    shell.run_cell("x = 1", store_history=True)
    shell.run_cell("y = 2", store_history=True, cell_id="cell-b")
    shell.run_cell("y = 2", store_history=True, cell_id="cell-b")
    shell.run_cell("%track end", store_history=True)
    record = mlops.get_run("rerun")
    assert record.row["linear"] is False
    assert any("more than once" in reason for reason in record.row["linear_reasons"])


def test_papermill_injected_parameters_become_params(shell: Any) -> None:
    shell.run_cell("# Parameters\nalpha = 0.5\nname = 'ridge'\nn = 3\n", store_history=True)
    shell.run_cell("%track start --name injected", store_history=True)
    shell.run_cell("# Parameters\nalpha = 0.7\n", store_history=True)
    shell.run_cell("%track end", store_history=True)
    assert mlops.get_run("injected").params == {"alpha": 0.7, "n": 3, "name": "ridge"}


def test_a_failing_hook_warns_once_and_cells_run_on(
    shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: CellCapture, module: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(CellCapture, "_hash_written_data", broken)
    with pytest.warns(RuntimeWarning, match="cell capture failed .*disk on fire") as caught:
        shell.run_cell("%track start --name hurt", store_history=True)
        first = shell.run_cell("a = 1", store_history=True)
        second = shell.run_cell("b = a + 1", store_history=True)
    assert first.success and second.success
    assert shell.user_ns["b"] == 2
    assert len([w for w in caught if "cell capture failed" in str(w.message)]) == 1


def test_the_trackers_own_messages_leave_output_hashes_alone(shell: Any) -> None:
    shell.run_cell("%track start --name quiet-a", store_history=True)
    shell.run_cell("%track metric m=1\nprint('result')", store_history=True)
    shell.run_cell("%track status\nprint('result')", store_history=True)
    shell.run_cell("%track end", store_history=True)
    start, metric_cell, status_cell, end = cells_of("quiet-a")
    plain = hashing.hash_bytes(sanitize_output("result\n"))
    assert metric_cell["output_hash"] == plain
    assert status_cell["output_hash"] == plain
    assert start["output_hash"] == "partial"  # the run began inside it
    assert end["output_hash"] is None


def test_facts_of_a_running_run_are_worked_out_when_read(shell: Any) -> None:
    shell.run_cell("%track start --name live", store_history=True)
    shell.run_cell("a = 1\nb = a + c", store_history=True)
    cells = mlops.active_run().record().cells()
    assert cells[1]["reads"] == ["c"]
    assert cells[1]["writes"] == ["a", "b"]


def test_cells_before_the_run_are_kept_as_its_prelude(shell: Any) -> None:
    shell.run_cell("setup = 41", store_history=True)
    shell.run_cell("# Parameters\nalpha = 0.5\n", store_history=True)
    shell.run_cell("print('starting')\n%track start --name with-prelude", store_history=True)
    shell.run_cell("answer = setup + 1", store_history=True)
    shell.run_cell("%track end", store_history=True)
    record = mlops.get_run("with-prelude")
    prelude = record.prelude()
    assert [c["source"] for c in prelude[-2:]] == ["setup = 41", "# Parameters\nalpha = 0.5"]
    assert all(c["seq"] <= 0 for c in prelude)
    counts = [c["execution_count"] for c in prelude]
    assert counts == list(range(counts[0], counts[0] + len(prelude)))
    cells = record.cells()
    assert [c["seq"] for c in cells] == [1, 2, 3]
    assert cells[0]["execution_count"] == prelude[-1]["execution_count"] + 1
    # The cell that started the run printed before it was watched: its output is unknown.
    assert cells[0]["output_hash"] == "partial"
    assert record.params == {"alpha": 0.5}


def test_a_run_started_where_cells_are_captured_is_interactive(shell: Any) -> None:
    shell.run_cell("%track start --name in-shell", store_history=True)
    shell.run_cell("%track end", store_history=True)
    assert mlops.get_run("in-shell").row["kind"] == "interactive"
