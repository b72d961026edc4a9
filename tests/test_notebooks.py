"""The example notebooks run headless under Papermill and leave a complete tracked run."""

from __future__ import annotations

import shutil
from pathlib import Path

import papermill
import pytest

import jupyter_mlops as mlops
from jupyter_mlops import kernel_env

from .conftest import child_env

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

pytestmark = pytest.mark.slow


def test_quickstart_records_a_linear_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = tmp_path / "quickstart.ipynb"
    shutil.copy(NOTEBOOKS / "quickstart.ipynb", notebook)
    for name, value in child_env(**{kernel_env.NOTEBOOK: str(notebook)}).items():
        monkeypatch.setenv(name, value)
    papermill.execute_notebook(
        str(notebook),
        str(tmp_path / "quickstart.out.ipynb"),
        parameters={"n_estimators": 20, "max_depth": 4},
        cwd=str(tmp_path),
        progress_bar=False,
    )
    record = mlops.get_run("quickstart")
    assert record.status == "finished"
    assert record.row["linear"] is True, record.row["linear_reasons"]
    assert record.row["notebook"] == "quickstart.ipynb"
    assert record.params == {"max_depth": 4, "n_estimators": 20, "seed": 42}
    assert set(record.metrics) == {"acc", "f1", "val_acc"}
    assert 0.8 < record.metrics["acc"] <= 1.0
    assert [p["step"] for p in record.metric_series("val_acc")] == [10, 20]
    assert {d["name"] for d in record.datasets()} == {"X_train", "X_test"}
    assert [a["name"] for a in record.artifacts()] == ["model.joblib"]
    assert record.tags == {"dataset": "breast_cancer"}
    cells = record.cells()
    assert any(
        "injected" not in c["source"] and c["writes"] and "model" in c["writes"] for c in cells
    )
    assert record.environment()["packages"]["scikit-learn"]


def test_quickstart_reproduces_in_both_replay_modes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyter_mlops.replays import replay

    notebook = tmp_path / "quickstart.ipynb"
    shutil.copy(NOTEBOOKS / "quickstart.ipynb", notebook)
    for name, value in child_env(**{kernel_env.NOTEBOOK: str(notebook)}).items():
        monkeypatch.setenv(name, value)
    papermill.execute_notebook(
        str(notebook), str(tmp_path / "out.ipynb"), cwd=str(tmp_path), progress_bar=False
    )
    monkeypatch.delenv(kernel_env.NOTEBOOK)
    for mode in ("recorded", "file"):
        report = replay("quickstart", mode=mode, progress=False)
        assert report["verdict"] == "reproduced", (mode, report["summary"])
