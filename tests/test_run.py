"""The Python API: run lifecycle, logging, values that cannot be stored."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import InvalidValueError, NoActiveRunError
from jupyter_mlops.store import Store, open_store

from .conftest import run_child


def test_start_log_end_and_read_back() -> None:
    with mlops.start_run(name="baseline", tags={"team": "vision"}) as run:
        mlops.log_params({"lr": 0.01, "layers": [64, 32], "model": "rf"})
        for epoch in range(3):
            mlops.log_metric("loss", 1.0 / (epoch + 1))
        mlops.log_metric("acc", 0.9, step=10)
    record = mlops.get_run("baseline")
    assert record.id == run.id
    assert record.status == "finished"
    assert record.params == {"layers": [64, 32], "lr": 0.01, "model": "rf"}
    assert record.metrics == {"acc": 0.9, "loss": pytest.approx(1 / 3)}
    assert [p["step"] for p in record.metric_series("loss")] == [0, 1, 2]
    assert record.metric_series("acc")[0]["step"] == 10
    assert record.tags == {"team": "vision"}
    assert record.row["pid"] == os.getpid()
    assert record.environment()["python"]


def test_exception_in_with_block_ends_failed() -> None:
    with pytest.raises(ZeroDivisionError), mlops.start_run(name="boom"):
        mlops.log_metric("x", 1)
        1 / 0  # noqa: B018
    record = mlops.get_run("boom")
    assert record.status == "failed"
    assert "ZeroDivisionError" in record.row["error"]
    assert mlops.active_run() is None


def test_logging_without_a_run_starts_one() -> None:
    assert mlops.active_run() is None
    mlops.log_metric("acc", 0.5)
    run = mlops.active_run()
    assert run is not None
    mlops.end_run()
    assert mlops.get_run(run.id).status == "finished"


def test_starting_a_run_ends_the_active_one() -> None:
    first = mlops.start_run(name="first")
    with pytest.warns(UserWarning, match="ended the active run 'first'"):
        second = mlops.start_run(name="second")
    assert mlops.get_run(first.id).status == "finished"
    assert mlops.active_run() is second


def test_logging_to_an_ended_run_is_a_clear_error() -> None:
    run = mlops.start_run()
    run.end()
    with pytest.raises(NoActiveRunError, match="has finished"):
        run.log_metric("x", 1)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("high", "a metric must be a number, not str"),
        ([1, 2], "a metric must be a number, not list"),
        (None, "a metric must be a number, not NoneType"),
        (True, "a metric must be a number, not bool"),
    ],
)
def test_bad_metric_values_are_refused(value: object, message: str) -> None:
    with mlops.start_run(), pytest.raises(InvalidValueError, match=message):
        mlops.log_metric("acc", value)


def test_nan_inf_and_numpy_metrics_are_recorded() -> None:
    with mlops.start_run(name="odd") as run:
        run.log_metric("loss", float("nan"))
        run.log_metric("loss", float("inf"))
        run.log_metric("acc", np.float32(0.25))
        run.log_metric("count", np.int64(7))
        run.log_metric("loss", -math.inf)
    record = mlops.get_run("odd")
    values = [p["value"] for p in record.metric_series("loss")]
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf]
    assert record.metrics["acc"] == 0.25
    assert record.metrics["count"] == 7.0


def test_param_values_that_cannot_be_stored() -> None:
    with mlops.start_run(name="params") as run:
        run.log_params(
            {
                "np": np.float64(0.5),
                "arr": np.arange(3),
                "path": Path("data/x.csv"),
                "set": {3, 1, 2},
                "nan": float("nan"),
            }
        )
        with pytest.raises(InvalidValueError, match="model: a object is not a JSON value"):
            run.log_param("model", object())
        with pytest.raises(InvalidValueError, match="over the 64 KB limit"):
            run.log_param("blob", "x" * 1_000_000)
        with pytest.raises(InvalidValueError, match="non-empty"):
            run.log_param("", 1)
        with pytest.raises(InvalidValueError, match="at most 250 characters"):
            run.log_param("k" * 300, 1)
        with pytest.raises(InvalidValueError, match="must be text"):
            run.log_param(3, 1)  # type: ignore[arg-type]
    params = mlops.get_run("params").params
    assert params == {
        "arr": [0, 1, 2],
        "nan": "nan",
        "np": 0.5,
        "path": "data/x.csv",
        "set": [1, 2, 3],
    }


def test_log_data_records_hash_shape_schema_profile(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, None], "b": ["x", "y", "x"]})
    csv = tmp_path / "train.csv"
    frame.to_csv(csv, index=False)
    with mlops.start_run(name="data") as run:
        info = run.log_data("frame", frame)
        run.log_data("file", str(csv))
        with pytest.raises(InvalidValueError, match="no such file"):
            run.log_data("gone", tmp_path / "missing.csv")
    assert info["hash"] == mlops.content_hash(frame)
    datasets = {d["name"]: d for d in mlops.get_run("data").datasets()}
    assert datasets["frame"]["shape"] == [3, 2]
    assert datasets["frame"]["profile"]["columns"]["a"]["missing"] == 1
    assert datasets["file"]["kind"] == "file"
    assert datasets["file"]["path"] == str(csv.resolve())


def test_artifacts_file_object_and_unpicklable(tmp_path: Path, store_dir: Path) -> None:
    model = tmp_path / "model.txt"
    model.write_text("weights")
    with mlops.start_run(name="art") as run:
        file_row = run.log_artifact(model)
        obj_row = run.log_artifact({"coef": [1, 2]}, name="coef")
        with pytest.raises(InvalidValueError, match="cannot be pickled"):
            run.log_artifact(lambda x: x, name="fn")
        with pytest.raises(InvalidValueError, match="is a folder"):
            run.log_artifact(tmp_path)
    store = open_store(store_dir)
    assert store.blob_path(file_row["hash"]).read_text() == "weights"
    assert store.blob_path(obj_row["hash"]).is_file()
    names = [a["name"] for a in mlops.get_run("art").artifacts()]
    assert names == ["model.txt", "coef"]


def test_an_environment_is_stored_once(store: Store) -> None:
    for name in ("one", "two"):
        with mlops.start_run(name=name):
            pass
    first, second = mlops.get_run("one"), mlops.get_run("two")
    assert first.row["env_id"] == second.row["env_id"] is not None
    assert store.conn.execute("SELECT count(*) FROM environments").fetchone()[0] == 1


def test_a_shell_that_never_loaded_the_extension_still_runs_interactive_runs() -> None:
    # A notebook that calls start_run() without %load_ext: its run is the kernel's, the
    # kernel keeps its own excepthook, and a record still shows as a card.
    child = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "InteractiveShell.instance()\n"
        "hook = sys.excepthook\n"
        "import jupyter_mlops as mlops\n"
        "mlops.start_run(name='in-a-shell').end()\n"
        "record = mlops.get_run('in-a-shell')\n"
        "print(record.row['kind'], sys.excepthook is hook, 'in-a-shell' in record._repr_html_())\n"
    )
    out = run_child(child)
    assert out.split("\n")[0] == "interactive True True"


def test_runs_need_no_notebook_and_no_views() -> None:
    # Outside a kernel a run is a script's, and a record has no card until views are loaded.
    child = (
        "import sys, jupyter_mlops as mlops\n"
        "mlops.start_run(name='plain').end()\n"
        "record = mlops.get_run('plain')\n"
        "print(record.row['kind'], record._repr_html_())\n"
        "print(sorted({'IPython', 'jupyter_mlops.views'} & set(sys.modules)))\n"
    )
    out = run_child(child)
    assert out.split("\n")[:2] == ["script None", "[]"]
