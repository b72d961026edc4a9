"""One cell numbering in every door: the linear verdict, a sweep's failure, ``show`` and the
replay verdict call the same cell of a notebook with markdown and an injected parameters
cell by the same number (its place among the saved notebook's code cells)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.gate import check
from jupyter_mlops.replays import replay
from jupyter_mlops.sweeps import sweep
from jupyter_mlops.text import sweep_table

from .conftest import PYTHON, child_env
from .test_kernels import copy_fixture, execute, kernel  # noqa: F401 - the kernel fixture

pytestmark = pytest.mark.slow

# numbering.ipynb: markdown, the parameters cell (cell 1), markdown, imports (cell 2),
# markdown, the unseeded noise that rejects a large alpha (cell 3), the fit (cell 4).
NOISE = "noise = np.random.normal(size=10)"


def test_a_sweep_failure_show_and_a_replay_name_cell_3(tmp_path: Path) -> None:
    notebook = copy_fixture("numbering.ipynb", tmp_path)
    # Papermill injects its parameters cell after cell 1: it is not counted.
    result = sweep(notebook, {"alpha": [2.0]}, progress=False)
    assert "point 1 failed at cell 3 [4]: ValueError: alpha=2.0 is too strong" in sweep_table(
        result
    )
    # The line that raised, from the kernel's traceback (not the comment the cell starts with).
    failure = result["points"][0]["failure"]
    assert failure["line"] == "raise ValueError(f'alpha={alpha} is too strong for this data')"

    ran = check(str(notebook), progress=False)
    assert ran["passed"], ran["checks"]
    record = mlops.get_run(ran["run"])
    assert [c["cell_number"] for c in record.cells()] == [1, 2, 3, 4]
    shown = subprocess.run(
        [PYTHON, "-m", "jupyter_mlops.cli", "show", ran["run"]],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    row = next(line for line in shown.stdout.splitlines() if line.startswith("cell 3 [3]"))
    # Its first line of code, not the comment above it.
    assert row.endswith("if alpha > 1:") and "#" not in row

    report = replay(ran["run"], progress=False)
    assert report["verdict"] == "diverged"
    assert report["summary"].startswith(f"Diverged at cell 3 [3] (`{NOISE}`)"), report["summary"]
    replayed = mlops.get_run(report["replay_run"]["id"])
    assert [c["cell_number"] for c in replayed.cells()] == [1, 2, 3, 4]


def test_the_linear_verdict_names_cell_3(
    kernel: Any,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    import nbformat

    _, client = kernel
    notebook = copy_fixture("numbering.ipynb", tmp_path, as_name="analysis.ipynb")
    code = [c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    execute(client, "%load_ext jupyter_mlops")
    execute(client, "%track start --name by-hand")
    for number in [1, 2, 3, 4, 3]:
        execute(client, code[number - 1])
    execute(client, "%track end")
    reasons = mlops.get_run("by-hand").row["linear_reasons"]
    assert "1 cell(s) ran more than once: cell 3 ([5], [7])" in reasons
    assert "cells ran out of notebook order: cell 3 [7] ran after cell 4 [6]" in reasons
