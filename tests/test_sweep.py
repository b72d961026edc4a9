"""Sweeps and the CI gate, in real kernels: grids, workers, failing points, thresholds."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import InvalidValueError
from jupyter_mlops.gate import check, parse_threshold, write_junit
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


def test_thresholds_parse_and_judge() -> None:
    assert str(parse_threshold("acc>=0.9")) == "acc >= 0.9"
    assert parse_threshold(" loss < 0.5 ").passes(0.4)
    assert not parse_threshold("acc>=0.9").passes(float("nan"))
    assert parse_threshold("metrics.f1!=0").op == "!="
    for bad in ["acc", "acc>=high", ">=0.9", "acc=>0.9"]:
        with pytest.raises(InvalidValueError):
            parse_threshold(bad)


@pytest.mark.slow
def test_the_gate_passes_and_fails_on_thresholds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = write_notebook(
        tmp_path / "gate.ipynb",
        [START.format(name="gate"), "acc = 0.93\n%track metric acc"],
    )
    run_original(notebook, monkeypatch)
    passed = mlops_cli(
        "check",
        "gate",
        "--metric",
        "acc>=0.9",
        "--junit",
        str(tmp_path / "ok.xml"),
        "--no-progress",
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "PASS  metric acc >= 0.9: acc = 0.93" in passed.stdout
    assert "all checks passed" in passed.stdout

    failed = mlops_cli(
        "check",
        "gate",
        "--metric",
        "acc>=0.95",
        "--metric",
        "f1>0.5",
        "--junit",
        str(tmp_path / "bad.xml"),
        "--no-progress",
    )
    assert failed.returncode == 1
    assert "FAIL  metric acc >= 0.95: acc = 0.93, needs acc >= 0.95" in failed.stdout
    assert "FAIL  metric f1 > 0.5: metric 'f1' was not logged" in failed.stdout
    suite = ElementTree.parse(tmp_path / "bad.xml").getroot().find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "3" and suite.get("failures") == "2"
    names = [case.get("name") for case in suite.iter("testcase")]
    assert names == ["reproduces: gate", "metric acc >= 0.95", "metric f1 > 0.5"]


@pytest.mark.slow
def test_the_gate_runs_a_notebook_against_its_newest_earlier_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = write_notebook(
        tmp_path / "nb.ipynb", [START.format(name="nb"), "value = 2\n%track metric value"]
    )
    first = check(str(notebook), ["value==2"], progress=False)
    assert first["passed"], first["checks"]
    assert [c["name"] for c in first["checks"]] == ["runs: nb.ipynb", "metric value == 2"]
    second = check(str(notebook), ["value==2"], progress=False)
    assert second["passed"], second["checks"]
    assert second["replay"]["mode"] == "file"
    assert second["replay"]["verdict"] == "reproduced"
    notebook.write_text(notebook.read_text().replace("value = 2", "value = 3"))
    third = check(str(notebook), ["value==2"], progress=False)
    assert not third["passed"]
    assert third["replay"]["verdict"] == "diverged"
    write_junit(third, tmp_path / "junit.xml")
    assert (tmp_path / "junit.xml").read_text().count("<failure") == 2


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
