"""``jupyter mlops`` at a shell: runs, show, diff; JSON shapes; one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

import jupyter_mlops as mlops
from jupyter_mlops.cli import cli

from .conftest import child_env


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[str, str]:
    data = tmp_path / "data.csv"
    ids = []
    for lr, acc, rows in [(0.1, 0.8, [1, 2, 3]), (0.01, 0.9, [1, 2, 4])]:
        pd.DataFrame({"x": rows}).to_csv(data, index=False)
        with mlops.start_run(name=f"lr-{lr}", tags={"team": "cv"}) as run:
            run.log_params({"lr": lr, "model": "rf"})
            for step in range(3):
                run.log_metric("loss", 1.0 / (step + 1) + lr)
            run.log_metric("acc", acc)
            run.log_data("train", data)
            ids.append(run.id)
    return ids[0], ids[1]


def test_runs_table_and_json(two_runs: tuple[str, str]) -> None:
    table = invoke("runs")
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert "params.lr" in lines[0] and "metrics.acc" in lines[0]
    assert lines[2].split()[1] == "lr-0.01"  # newest first
    shape = json.loads(invoke("runs", "--format", "json").output)
    assert shape["count"] == 2
    first = shape["runs"][0]
    assert first["id"] == two_runs[1]
    assert first["params"] == {"lr": 0.01, "model": "rf"}
    assert first["metrics"] == {"acc": 0.9, "loss": pytest.approx(1 / 3 + 0.01)}
    assert first["tags"] == {"team": "cv"}
    for key in (
        "name",
        "status",
        "kind",
        "notebook",
        "start_time",
        "end_time",
        "linear",
        "parent_id",
    ):
        assert key in first


def test_runs_where_and_limit(two_runs: tuple[str, str]) -> None:
    found = json.loads(invoke("runs", "--where", "metrics.acc > 0.85", "--format", "json").output)
    assert [r["name"] for r in found["runs"]] == ["lr-0.01"]
    limited = json.loads(invoke("runs", "--limit", "1", "--format", "json").output)
    assert limited["count"] == 1


def test_show_by_prefix_and_name(two_runs: tuple[str, str]) -> None:
    text = invoke("show", two_runs[0][:8])
    assert text.exit_code == 0
    assert "lr-0.1" in text.output and "loss" in text.output and "train" in text.output
    detail = json.loads(invoke("show", "lr-0.01", "--format", "json").output)
    assert detail["id"] == two_runs[1]
    assert [p["step"] for p in detail["metric_series"]["loss"]] == [0, 1, 2]
    assert detail["datasets"][0]["name"] == "train"
    assert detail["environment"]["python"]


def test_diff_names_what_differs(two_runs: tuple[str, str]) -> None:
    diff = json.loads(invoke("diff", "lr-0.1", "lr-0.01", "--format", "json").output)
    assert diff["same"] is False
    assert diff["params"] == {"lr": [0.1, 0.01]}
    assert diff["metrics"]["acc"]["delta"] == pytest.approx(0.1)
    assert list(diff["datasets"]) == ["train"]
    text = invoke("diff", "lr-0.1", "lr-0.01").output
    assert "params" in text and "datasets" in text


def test_nan_metrics_stay_valid_json() -> None:
    with mlops.start_run(name="nan") as run:
        run.log_metric("loss", float("nan"))
    out = invoke("show", "nan", "--format", "json").output
    assert json.loads(out)["metrics"] == {"loss": "nan"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "nope"], "Error: no run matches 'nope'"),
        (["diff", "lr-0.1", "nope"], "Error: no run matches 'nope'"),
        (["runs", "--where", "metrics.acc >"], "Error: bad expression at column"),
        (["runs", "--where", "colour = red"], "unknown field 'colour'"),
    ],
)
def test_errors_are_one_line(two_runs: tuple[str, str], args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_missing_store_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--store", str(tmp_path / "empty"), "runs"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: no tracking store found")


def test_bad_flag_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["runs", "--limit", "zero"])
    assert result.exit_code == 2
    assert "Invalid value for '--limit'" in result.output


def test_jupyter_mlops_entry_point(two_runs: tuple[str, str]) -> None:
    """``jupyter mlops`` (the jupyter command finding our script) and the script itself."""
    for command in (["jupyter", "mlops"], ["jupyter-mlops"]):
        if shutil.which(command[0]) is None:
            pytest.skip(f"{command[0]} is not on PATH (the package is not installed)")
        done = subprocess.run(
            [*command, "runs", "--format", "json"],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["count"] == 2


def test_help_lists_every_subcommand() -> None:
    out = invoke("--help").output
    for command in ("runs", "show", "diff"):
        assert command in out


def test_a_corrupt_store_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "broken" / ".mlops"
    folder.mkdir(parents=True)
    (folder / "tracking.db").write_bytes(b"this is not a database" * 100)
    result = CliRunner().invoke(cli, ["--store", str(folder), "runs"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: the store ")
    assert "file is not a database" in result.output
    assert len(result.output.strip().splitlines()) == 1
