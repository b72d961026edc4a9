"""``%track`` in a real IPython shell: every form, and bad input as one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.magics import split_arguments


def run_cell(shell: Any, source: str) -> Any:
    """Run a cell like a notebook does; return IPython's ExecutionResult."""
    return shell.run_cell(source, store_history=True)


def usage_error(shell: Any, source: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Run a cell that must fail with a one-line UsageError; return that line."""
    capsys.readouterr()
    result = run_cell(shell, source)
    assert result.error_in_exec is not None, f"{source!r} did not fail"
    message = str(result.error_in_exec)
    assert type(result.error_in_exec).__name__ == "UsageError"
    assert "\n" not in message
    assert "Traceback" not in capsys.readouterr().out
    return message


def test_split_arguments_keeps_brackets_and_quotes() -> None:
    assert split_arguments("loss=history[-1] acc=f(1, 2) --step epoch") == [
        "loss=history[-1]",
        "acc=f(1, 2)",
        "--step",
        "epoch",
    ]
    assert split_arguments("name='two words' x={'a': 1}") == ["name='two words'", "x={'a': 1}"]


def test_a_tracked_session(shell: Any, tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("a,b\n1,2\n3,4\n")
    cells = [
        "%track start --name demo --tag team=cv",
        "import numpy as np\nlr = 0.05\nhistory = [0.9, 0.5, 0.3]",
        "%track params lr depth=3 model='rf' layers=[64, 32]",
        "for epoch in range(3):\n    %track metric loss=history[epoch] --step epoch",
        "score = 0.875\n%track metric acc=score",
        "x = np.arange(12).reshape(3, 4)\n%track data x train.csv",
        "%track artifact train.csv",
        "%track end",
    ]
    for source in cells:
        result = run_cell(shell, source)
        assert result.success, (source, result.error_in_exec)
    record = mlops.get_run("demo")
    assert record.status == "finished"
    assert record.params == {"depth": 3, "layers": [64, 32], "lr": 0.05, "model": "rf"}
    assert record.metrics == {"acc": 0.875, "loss": 0.3}
    assert [p["step"] for p in record.metric_series("loss")] == [0, 1, 2]
    assert record.tags == {"team": "cv"}
    assert {d["name"] for d in record.datasets()} == {"x", "train.csv"}
    assert [a["name"] for a in record.artifacts()] == ["train.csv"]
    sources = [c["source"] for c in record.cells()]
    assert sources == cells


def test_logging_with_no_run_starts_one(shell: Any) -> None:
    assert run_cell(shell, "%track metric acc=0.5").success
    assert mlops.active_run() is not None
    assert mlops.active_run().record().metrics == {"acc": 0.5}


def test_cell_magic_is_one_whole_run(shell: Any) -> None:
    assert run_cell(
        shell, "%%track --name whole\nimport jupyter_mlops as m\nm.log_metric('a', 1)"
    ).success
    assert mlops.active_run() is None
    record = mlops.get_run("whole")
    assert record.status == "finished"
    assert record.metrics == {"a": 1.0}
    (cell,) = record.cells()
    assert cell["writes"] == ["m"]
    failed = run_cell(shell, "%%track --name broken\nraise ValueError('bad data')")
    assert isinstance(failed.error_in_exec, ValueError)
    broken = mlops.get_run("broken")
    assert broken.status == "failed"
    assert broken.row["error"] == "ValueError: bad data"


def test_status_and_views(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    run_cell(shell, "%track status")
    assert "no active run" in capsys.readouterr().out
    run_cell(shell, "%track start first")
    run_cell(shell, "%track params lr=0.1")
    run_cell(shell, "%track metric acc=0.7")
    run_cell(shell, "%track status")
    out = capsys.readouterr().out
    assert "run 'first'" in out and "lr=0.1" in out and "acc=0.7" in out
    run_cell(shell, "%track end")
    run_cell(shell, "%track start second")
    run_cell(shell, "%track params lr=0.2")
    run_cell(shell, "%track metric acc=0.9")
    run_cell(shell, "%track end")
    capsys.readouterr()
    run_cell(shell, "%track runs --where 'metrics.acc > 0.8'")
    out = capsys.readouterr().out
    assert "second" in out and "first" not in out
    run_cell(shell, "%track show first")
    assert "params" in capsys.readouterr().out
    run_cell(shell, "%track compare first second")
    out = capsys.readouterr().out
    assert "lr" in out and "0.1" in out and "0.2" in out


def test_help_documents_every_command(shell: Any) -> None:
    doc = shell.find_line_magic("track").__doc__
    for command in (
        "start",
        "params",
        "metric",
        "data",
        "artifact",
        "end",
        "status",
        "runs",
        "show",
        "compare",
        "%%track",
    ):
        assert command in doc


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("%track", "say what to track"),
        ("%track launch", "unknown command 'launch'"),
        ("%track start --colour red", "unknown option --colour"),
        ("%track start --tag novalue", "--tag wants KEY=VALUE"),
        ("%track params lr=undefined_name", "name 'undefined_name' is not defined; quote text"),
        ("%track params missing_var", "no variable named 'missing_var'"),
        ("%track metric acc='high'", "a metric must be a number, not str"),
        ("%track metric acc=1/0", "cannot evaluate '1/0': ZeroDivisionError"),
        ("%track metric acc=0.5 --step", "--step needs a value"),
        ("%track metric acc=0.5 --step 1.5", "step must be an integer"),
        ("%track data nothing_here.csv", "neither a variable nor an existing path"),
        ("%track artifact nothing_here.bin", "neither an existing file nor a variable"),
        ("%track end --status exploded", "'exploded' is not one of"),
        ("%track show no-such-run", "no run matches 'no-such-run'"),
        ("%track runs --where 'metrics.acc >'", "bad expression at column"),
        ("%track params name='unclosed", "unclosed quote"),
        ("%track params model=object()", "not a JSON value"),
        ("%track data fn=(lambda x: x)", "cannot hash a function"),
        ("%track params big='x'*100000", "over the 64 KB limit"),
    ],
)
def test_bad_input_is_a_one_line_error(
    shell: Any, capsys: pytest.CaptureFixture[str], source: str, expected: str
) -> None:
    if "show" not in source and "runs" not in source:
        run_cell(shell, "%track start")
    else:
        mlops.start_run().end()
    message = usage_error(shell, source, capsys)
    assert message.startswith("%track: ")
    assert expected in message


def test_end_without_a_run(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert "no run is active" in usage_error(shell, "%track end", capsys)


def test_magic_does_not_expand_variables(shell: Any) -> None:
    run_cell(shell, "%track start")
    run_cell(shell, "value = 3")
    assert run_cell(shell, "%track params text='$value {value}'").success
    assert mlops.active_run().record().params == {"text": "$value {value}"}
