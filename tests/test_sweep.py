"""Sweeps in real kernels: grids, workers, failing points."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import InvalidValueError
from jupyter_mlops.sweeps import expand_grid, load_grid, parse_value, sweep

from .conftest import PYTHON, child_env
from .test_replay import START, run_original, write_notebook


def mlops_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``jupyter mlops ARGS`` in a child process on this test's store."""
    return subprocess.run(
        [PYTHON, "-m", "jupyter_mlops.cli", *args],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=300,
    )


# A notebook that never mentions the tracker: the sweep tracks it by itself.
PLAIN = [
    "import jupyter_mlops as mlops\n"
    "score = lr * depth\n"
    "if depth == 0:\n"
    "    raise ZeroDivisionError('depth must not be 0')\n"
    "mlops.log_metric('score', score)\n"
    "print(score)",
]


def test_expand_grid_is_the_cartesian_product_in_order() -> None:
    assert expand_grid({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
    ]
    with pytest.raises(InvalidValueError, match="identifier"):
        expand_grid({"not a name": [1]})
    with pytest.raises(InvalidValueError, match="has no values"):
        expand_grid({"a": []})


def test_values_and_grid_files_are_read_as_yaml(tmp_path: Path) -> None:
    assert [parse_value(v) for v in ["0.1", "3", "true", "rf", "-2", "[1, 2]"]] == [
        0.1,
        3,
        True,
        "rf",
        -2,
        [1, 2],
    ]
    grid = tmp_path / "grid.yaml"
    grid.write_text("lr: [0.1, 0.01]\nmodel: rf\n")
    assert load_grid(grid) == {"lr": [0.1, 0.01], "model": ["rf"]}
    grid.write_text("- just a list\n")
    with pytest.raises(InvalidValueError, match="maps param names"):
        load_grid(grid)


@pytest.mark.slow
def test_a_two_by_two_sweep_on_two_workers_records_four_runs(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "plain.ipynb", PLAIN, parameters="lr = 0.1\ndepth = 1")
    grid = tmp_path / "grid.yaml"
    grid.write_text("lr: [0.1, 0.2]\n")
    result = mlops_cli(
        "sweep",
        str(notebook),
        "-f",
        str(grid),
        "-p",
        "depth",
        "1",
        "-3",
        "--workers",
        "2",
        "--format",
        "json",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["failed"] == 0
    runs = mlops.runs()
    assert len(runs) == 4
    assert set(runs["kind"]) == {"sweep"}
    assert len({mlops.get_run(r).row["sweep_id"] for r in runs["run_id"]}) == 1
    assert set(runs["notebook"]) == {"plain.ipynb"}
    got = sorted(zip(runs["params.lr"], runs["params.depth"], runs["metrics.score"], strict=True))
    assert got == [
        (0.1, -3, pytest.approx(-0.3)),
        (0.1, 1, 0.1),
        (0.2, -3, pytest.approx(-0.6)),
        (0.2, 1, 0.2),
    ]
    for point in summary["points"]:
        assert Path(point["output"]).is_file()


@pytest.mark.slow
def test_one_failing_point_does_not_stop_the_others(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "plain.ipynb", PLAIN, parameters="lr = 0.1\ndepth = 1")
    seen: list[tuple[int, int]] = []
    result = sweep(
        notebook,
        {"lr": [0.5], "depth": [0, 2]},
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(1, 2), (2, 2)]
    assert result["failed"] == 1
    failed, passed = result["points"]
    assert failed["status"] == "failed"
    assert failed["failure"]["error"] == "ZeroDivisionError"
    assert passed["status"] == "finished"
    assert passed["metrics"] == {"score": 1.0}
    from jupyter_mlops.text import sweep_table

    text = sweep_table(result)
    # Named as the saved notebook numbers it: Papermill's injected cell is not counted.
    assert "point 1 failed at cell 2 [3]: ZeroDivisionError: depth must not be 0" in text


def test_sweep_cli_errors_are_one_line(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "plain.ipynb", PLAIN)
    for args, message in [
        (["-p"], "-p needs a NAME and at least one VALUE"),
        (["-p", "lr", "--workers", "2"], "-p lr needs at least one VALUE"),
        ([], "give the grid with -p NAME VALUE ... or -f grid.yaml"),
        (["-p", "bad name", "1"], "a param name must be a Python identifier"),
    ]:
        result = mlops_cli("sweep", str(notebook), *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr


@pytest.mark.slow
def test_a_papermill_run_and_the_sweep_point_with_its_params_are_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = write_notebook(
        tmp_path / "same.ipynb",
        [
            START.format(name="by-hand"),
            "import numpy as np\nvalues = np.arange(5.0) * lr",
            "total = float(values.sum())\n%track metric total\nprint(total)",
            "%track end",
        ],
        parameters="lr = 0.1",
    )
    run_original(notebook, monkeypatch, lr=0.5)
    point = sweep(notebook, {"lr": [0.5]}, progress=False)["points"][0]
    result = mlops_cli("diff", "by-hand", point["run_id"], "--format", "json")
    assert result.returncode == 0, result.stderr
    diff = json.loads(result.stdout)
    assert diff["cells"]["differences"] == []
    assert diff["same"] is True, diff
