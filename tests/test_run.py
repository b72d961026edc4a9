"""The Python API: run lifecycle, logging, values that cannot be stored, reading back."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import jupyter_mlops as mlops
from jupyter_mlops import liveness
from jupyter_mlops.errors import InvalidValueError, NoActiveRunError, RunNotFoundError
from jupyter_mlops.store import Store, open_store

from .conftest import PYTHON, python_child, run_child


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


def test_runs_dataframe_has_params_and_metrics_columns() -> None:
    for lr, acc in [(0.1, 0.7), (0.01, 0.9)]:
        with mlops.start_run(name=f"lr{lr}", tags={"sweep": "a"}):
            mlops.log_param("lr", lr)
            mlops.log_metric("acc", acc)
    frame = mlops.runs()
    assert list(frame["name"]) == ["lr0.01", "lr0.1"]
    assert {"run_id", "status", "params.lr", "metrics.acc", "tags.sweep"} <= set(frame.columns)
    best = mlops.runs("metrics.acc > 0.8")
    assert list(best["params.lr"]) == [0.01]
    assert mlops.runs("metrics.acc > 5").empty


def test_unknown_run_reference() -> None:
    mlops.start_run().end()
    with pytest.raises(RunNotFoundError, match="no run matches 'nope'"):
        mlops.get_run("nope")


_CHILD = """
import os, signal, sys, time
import jupyter_mlops as mlops
run = mlops.start_run(name=sys.argv[1])
mlops.log_metric("step", 1)
mode = sys.argv[2]
if mode == "kill":
    mlops.active_run().store.flush()
    os.kill(os.getpid(), signal.SIGKILL)
elif mode == "term":
    print("ready", flush=True)
    # Short sleeps: a signal the system hands to another thread (numpy's and pyarrow's
    # pools take them too) runs its Python handler only when the main thread next wakes.
    for _ in range(1200):
        time.sleep(0.05)
elif mode == "exit":
    sys.exit(0)
"""


def _child(name: str, mode: str) -> subprocess.Popen[str]:
    return python_child(_CHILD, name, mode)


def test_killed_process_reads_crashed() -> None:
    proc = _child("victim", "kill")
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    record = mlops.get_run("victim")
    assert record.status == "crashed"
    assert record.metrics == {"step": 1.0}


def test_sigterm_ends_the_run_killed() -> None:
    proc = _child("terminated", "term")
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM
    assert mlops.get_run("terminated").status == "killed"


def test_interpreter_exit_ends_the_run_finished() -> None:
    proc = _child("exited", "exit")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    record = mlops.get_run("exited")
    assert record.status == "finished"
    assert record.row["kind"] == "script"
    assert record.metrics == {"step": 1.0}


def test_stale_heartbeat_from_another_host_reads_crashed(store: Store) -> None:
    long_ago = time.time() - 10 * liveness.STALE_AFTER_S
    store.insert_run(
        {
            "id": "e" * 32,
            "name": "remote",
            "status": "running",
            "kind": "script",
            "start_time": long_ago,
            "heartbeat": long_ago,
            "pid": 1,
            "host": "another-host",
        }
    )
    store.insert_run(
        {
            "id": "f" * 32,
            "name": "remote-alive",
            "status": "running",
            "kind": "script",
            "start_time": long_ago,
            "heartbeat": time.time(),
            "pid": 1,
            "host": "another-host",
        }
    )
    assert mlops.get_run("remote").status == "crashed"
    assert mlops.get_run("remote-alive").status == "running"


def _running_row(run_id: str, name: str, pid: int, host: str, start: float, beat: float) -> dict:
    return {
        "id": run_id,
        "name": name,
        "status": "running",
        "kind": "script",
        "start_time": start,
        "heartbeat": beat,
        "pid": pid,
        "host": host,
    }


def test_a_live_process_on_this_host_is_running_however_quiet(store: Store) -> None:
    # pid 1 is alive; the clock says its run began a day ago and last beat a day ago (or in
    # the future, after a clock step back): only the process table counts on this host.
    day = 86_400.0
    for index, when in enumerate((time.time() - day, time.time() + day)):
        row = _running_row(str(index) * 32, f"busy{index}", 1, liveness.HOST, when, when)
        row["process_start"] = liveness.process_start(1)
        store.insert_run(row)
        assert mlops.get_run(f"busy{index}").status == "running"


def test_a_reused_pid_does_not_keep_a_dead_run_alive(store: Store) -> None:
    newcomer = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(30)"])
    try:
        row = _running_row(
            "2" * 32, "reused", newcomer.pid, liveness.HOST, time.time(), time.time()
        )
        # The pid is alive, but the process that recorded the run started at another time.
        started = liveness.process_start(newcomer.pid)
        assert started is not None
        row["process_start"] = started - 100
        store.insert_run(row)
        assert mlops.get_run("reused").status == "crashed"
    finally:
        newcomer.kill()
        newcomer.wait()


def test_a_heartbeat_revives_a_run_thought_crashed() -> None:
    run = mlops.start_run(name="sleeper")
    run.store.mark_runs([run.id], "crashed", "silent too long")
    assert mlops.get_run("sleeper").status == "crashed"
    run.store.heartbeat(run.id, time.time())
    assert mlops.get_run("sleeper").status == "running"
    run.end()
    run.store.heartbeat(run.id, time.time())
    assert mlops.get_run("sleeper").status == "finished"


def test_a_running_process_keeps_its_heartbeat_fresh() -> None:
    child = (
        "import time, jupyter_mlops as mlops, jupyter_mlops.liveness as r\n"
        "r.HEARTBEAT_S = 0.05\n"
        "run = mlops.start_run(name='beating')\n"
        "time.sleep(1.0)\n"
        "row = run.record().row\n"
        "print(row['heartbeat'] - row['start_time'])\n"
    )
    out = run_child(child)
    assert float(out) > 0.5


def test_an_environment_is_stored_once(store: Store) -> None:
    for name in ("one", "two"):
        with mlops.start_run(name=name):
            pass
    first, second = mlops.get_run("one"), mlops.get_run("two")
    assert first.row["env_id"] == second.row["env_id"] is not None
    assert store.conn.execute("SELECT count(*) FROM environments").fetchone()[0] == 1


def test_update_run_renames_tags_and_notes(tmp_path: Path) -> None:
    with mlops.start_run(name="first", tags={"a": "1", "b": "2"}) as run:
        mlops.log_metric("acc", 0.5)
    record = mlops.update_run(run.id, name="renamed", tags={"c": 3}, remove_tags=["a"], note="ok")
    assert record.name == "renamed"
    assert record.tags == {"b": "2", "c": "3"}
    assert record.note == "ok"
    assert mlops.get_run("renamed").id == run.id
    assert mlops.update_run(run.id, note="").note is None
    with pytest.raises(InvalidValueError, match="run name"):
        mlops.update_run(run.id, name="  ")


def test_delete_run_removes_everything_but_refuses_a_running_run() -> None:
    keep = mlops.start_run(name="keep")
    mlops.log_metric("loss", 1.0)
    with pytest.raises(InvalidValueError, match="still running"):
        mlops.delete_run(keep.id)
    keep.end()
    with mlops.start_run(name="gone") as gone:
        mlops.log_params({"lr": 0.1})
        mlops.log_metric("loss", 2.0, step=3)
    assert mlops.delete_run("gone") == gone.id
    with pytest.raises(RunNotFoundError):
        mlops.get_run(gone.id)
    assert [r["id"] for r in open_store().list_runs()] == [keep.id]
    assert mlops.get_run(keep.id).metrics == {"loss": 1.0}


def test_a_record_shows_as_the_card_the_views_registered() -> None:
    from jupyter_mlops.records import register_card
    from jupyter_mlops.views.card import run_html

    with mlops.start_run(name="carded"):
        pass
    try:
        register_card(lambda record: f"<p>{record.name}</p>")
        assert mlops.get_run("carded")._repr_html_() == "<p>carded</p>"
    finally:
        register_card(run_html)
    assert "carded" in mlops.get_run("carded")._repr_html_()


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
