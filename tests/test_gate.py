"""check NOTEBOOK in real kernels: it runs the saved notebook with its own parameters and
compares with the newest earlier run made with the same params; replay names never nest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.gate import check, notebook_parameters
from jupyter_mlops.replays import replay
from jupyter_mlops.sweeps import sweep

from .test_replay import write_notebook
from .test_sweep import mlops_cli

pytestmark = pytest.mark.slow

# A notebook that never mentions the tracker but for the metric it logs.
SCALED = ["import jupyter_mlops as mlops\nscore = alpha * 2\nmlops.log_metric('score', score)"]


def test_check_runs_the_saved_notebook_against_the_run_with_the_same_params(
    tmp_path: Path,
) -> None:
    notebook = write_notebook(tmp_path / "scaled.ipynb", SCALED, parameters="alpha = 0.5")
    assert notebook_parameters(notebook) == {"alpha": 0.5}
    first = check(str(notebook), progress=False)
    assert first["replay"] is None and first["passed"], first["checks"]
    plain = first["run"]
    assert mlops.get_run(plain).metrics == {"score": 1.0}
    tuned = check(str(notebook), progress=False, parameters={"alpha": 1.0})
    assert tuned["replay"] is None, "no earlier run had alpha 1.0"
    assert mlops.get_run(tuned["run"]).params == {"alpha": 1.0}
    sweep(notebook, {"alpha": [2.0, 3.0]}, progress=False)

    # Newer runs (the sweep, the -p run) have other params: the plain run is the one to match.
    again = mlops_cli("check", str(notebook), "--no-progress", "--format", "json")
    assert again.returncode == 0, again.stdout + again.stderr
    report = json.loads(again.stdout)["replay"]
    assert report["original"]["id"] == plain
    assert report["verdict"] == "reproduced", report["summary"]
    rerun = mlops.get_run(report["replay_run"]["id"])
    assert rerun.params == {} and rerun.metrics == {"score": 1.0}
    assert rerun.name == "replay of scaled"

    with_p = check(str(notebook), ["score==2"], progress=False, parameters={"alpha": 1.0})
    assert with_p["passed"], with_p["checks"]
    assert with_p["replay"]["original"]["id"] == tuned["run"]

    # Checked again: still compared with the plain run, never with a replay of it.
    third = check(str(notebook), progress=False)
    assert third["replay"]["original"]["id"] == plain
    # A replay of a replay is named after the run they all come from.
    nested = replay(third["replay"]["replay_run"]["id"], progress=False)
    assert mlops.get_run(nested["replay_run"]["id"]).name == "replay of scaled"
    names = {run for run in mlops.runs()["name"]}
    assert not any("replay of replay" in name for name in names), names


def test_params_are_for_notebooks_not_runs(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "scaled.ipynb", SCALED, parameters="alpha = 0.5")
    ran = check(str(notebook), progress=False)
    result = mlops_cli("check", ran["run"], "-p", "alpha", "2")
    assert result.returncode == 2
    assert "params are given to a notebook" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
