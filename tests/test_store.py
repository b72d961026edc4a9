"""The store on real SQLite files: schema, migrations, buffered writes, concurrency, queries."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from jupyter_mlops.errors import AmbiguousRunError, MlopsError, RunNotFoundError, StoreNotFoundError
from jupyter_mlops.query import parse_expression
from jupyter_mlops.store import (
    SCHEMA_VERSION,
    Store,
    close_all,
    find_store_dir,
    fold_log,
    open_store,
)

from .conftest import PYTHON, child_env, python_child


def _run_row(run_id: str, name: str = "r", start: float | None = None, **extra: object) -> dict:
    row = {"id": run_id, "name": name, "status": "finished", "kind": "script"}
    row["start_time"] = start if start is not None else time.time()
    row.update(extra)
    return row


def test_fresh_store_is_wal_with_current_schema(store: Store) -> None:
    assert store.path.is_file()
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    tables = {
        row[0] for row in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    assert {"runs", "params", "metrics", "latest_metrics", "cells", "datasets"} <= tables
    assert {"artifacts", "environments", "tags"} <= tables


def test_store_from_a_newer_version_is_refused(store_dir: Path) -> None:
    store = open_store(store_dir)
    store.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    close_all()
    with pytest.raises(MlopsError, match="newer than this jupyter-mlops"):
        open_store(store_dir)


def test_reading_a_missing_store_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="no tracking store found"):
        open_store(tmp_path / "nowhere" / ".mlops", create=False)


def test_store_location_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUPYTER_MLOPS_DIR")
    project = tmp_path / "project"
    deep = project / "a" / "b"
    deep.mkdir(parents=True)
    assert find_store_dir(deep) == deep.resolve() / ".mlops"
    (project / ".git").mkdir()
    assert find_store_dir(deep) == project.resolve() / ".mlops"
    (project / "a" / ".mlops").mkdir()
    assert find_store_dir(deep) == (project / "a" / ".mlops").resolve()
    monkeypatch.setenv("JUPYTER_MLOPS_DIR", str(tmp_path / "elsewhere"))
    assert find_store_dir(deep) == (tmp_path / "elsewhere").resolve()


def test_buffered_metrics_are_flushed_before_reads(store: Store) -> None:
    store.insert_run(_run_row("a" * 32))
    for step in range(1000):
        store.enqueue_metric("a" * 32, "loss", step, 1 / (step + 1), time.time(), None)
    series = store.metric_series("a" * 32, "loss")
    assert [p["step"] for p in series] == list(range(1000))
    latest = store.latest_metrics(["a" * 32])["a" * 32]["loss"]
    assert latest["step"] == 999
    assert latest["value"] == pytest.approx(1 / 1000)


def test_nan_metric_reads_back_as_nan(store: Store) -> None:
    store.insert_run(_run_row("b" * 32))
    store.enqueue_metric("b" * 32, "loss", 0, float("nan"), time.time(), None)
    store.enqueue_metric("b" * 32, "loss", 1, float("inf"), time.time(), None)
    values = [p["value"] for p in store.metric_series("b" * 32, "loss")]
    assert values[0] != values[0]
    assert values[1] == float("inf")


def test_resolve_run_by_id_prefix_and_name(store: Store) -> None:
    store.insert_run(_run_row("abc1" + "0" * 28, name="baseline", start=1.0))
    store.insert_run(_run_row("abc2" + "0" * 28, name="baseline", start=2.0))
    store.insert_run(_run_row("ffff" + "0" * 28, name="other", start=3.0))
    assert store.resolve_run("abc1" + "0" * 28) == "abc1" + "0" * 28
    assert store.resolve_run("abc2") == "abc2" + "0" * 28
    assert store.resolve_run("baseline") == "abc2" + "0" * 28  # the newest of that name
    assert store.resolve_run("FFFF") == "ffff" + "0" * 28
    with pytest.raises(AmbiguousRunError, match="ambiguous") as info:
        store.resolve_run("abc")
    assert len(info.value.candidates) == 2
    with pytest.raises(RunNotFoundError):
        store.resolve_run("nothing-like-this")


def _seed_for_queries(store: Store) -> None:
    for index, (status, lr, acc, team) in enumerate(
        [
            ("finished", 0.01, 0.95, "vision"),
            ("finished", 0.1, 0.80, "nlp"),
            ("failed", 0.001, 0.5, "vision"),
        ]
    ):
        run_id = f"{index:032x}"
        store.insert_run(
            _run_row(run_id, name=f"run-{index}", status=status, start=float(index)),
            {"team": team},
        )
        store.set_params(run_id, {"lr": json.dumps(lr), "model": json.dumps("rf")})
        store.enqueue_metric(run_id, "acc", 0, acc, time.time(), None)


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ("status = finished", ["run-1", "run-0"]),
        ("metrics.acc > 0.9", ["run-0"]),
        ("metrics.acc > 0.6 and params.lr <= 0.01", ["run-0"]),
        ("params.lr >= 0.1 or status = failed", ["run-2", "run-1"]),
        ("tags.team = vision and not status = failed", ["run-0"]),
        ("name ~ 'RUN-1'", ["run-1"]),
        ("params.model = rf and (metrics.acc < 0.6 or metrics.acc > 0.9)", ["run-2", "run-0"]),
        ("params.missing = 1", []),
    ],
)
def test_where_expressions_select_runs(store: Store, expression: str, names: list[str]) -> None:
    _seed_for_queries(store)
    found = store.list_runs(where=parse_expression(expression))
    assert [r["name"] for r in found] == names
    assert store.count_runs(where=parse_expression(expression)) == len(names)


def test_where_values_are_bound_not_pasted(store: Store) -> None:
    _seed_for_queries(store)
    hostile = 'name = "x\' OR 1=1 --"'
    assert store.list_runs(where=parse_expression(hostile)) == []
    assert store.count_runs() == 3


def test_list_runs_pages_newest_first(store: Store) -> None:
    _seed_for_queries(store)
    first = store.list_runs(limit=2)
    rest = store.list_runs(limit=2, offset=2)
    assert [r["name"] for r in first + rest] == ["run-2", "run-1", "run-0"]
    assert first[0]["params"] == {"lr": 0.001, "model": "rf"}
    assert first[0]["metrics"] == {"acc": 0.5}
    assert first[0]["tags"] == {"team": "vision"}


def test_blobs_are_stored_once_by_hash(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights")
    first = store.put_blob("ab" * 16, source)
    second = store.put_blob("ab" * 16, b"ignored: the hash is already stored")
    assert first == second
    assert first.read_bytes() == b"weights"
    assert first.relative_to(store.blobs).parts[0] == "ab"


def test_a_folded_store_file_holds_its_runs_alone(store: Store, tmp_path: Path) -> None:
    store.insert_run(_run_row("c" * 32, name="kept"))
    fold_log(store.directory)
    assert store.path.with_name("tracking.db-wal").stat().st_size == 0
    copy = tmp_path / "copy.db"
    copy.write_bytes(store.path.read_bytes())
    conn = sqlite3.connect(copy)
    assert conn.execute("SELECT name FROM runs").fetchall() == [("kept",)]
    conn.close()


_WRITER = """
import sys, time
from pathlib import Path
from jupyter_mlops.store import open_store
worker, runs, points = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
store = open_store(Path(sys.argv[4]))
for r in range(runs):
    run_id = f"{worker:04d}{r:028d}"
    store.insert_run({"id": run_id, "name": f"w{worker}", "status": "running",
                      "kind": "script", "start_time": time.time()})
    store.set_params(run_id, {"worker": str(worker), "r": str(r)})
    for step in range(points):
        store.enqueue_metric(run_id, "m", step, float(step), time.time(), None)
        if step % 50 == 0:
            store.flush()
    store.update_run(run_id, status="finished", end_time=time.time())
store.close()
"""


_OPENER = """
import sys, time, warnings
from pathlib import Path
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
warnings.simplefilter("error")
from jupyter_mlops.store import open_store
open_store(Path(sys.argv[1])).close()
"""


@pytest.mark.slow
def test_processes_that_open_a_new_store_at_once_all_open_it(tmp_path: Path) -> None:
    # Sweep workers and kernels may open the same new store together: one makes it, the
    # others wait for it; none is refused as locked or warned of an emptied store.
    for attempt in range(8):
        folder, go = tmp_path / f"s{attempt}" / ".mlops", tmp_path / f"go{attempt}"
        openers = [python_child(_OPENER, str(folder), str(go)) for _ in range(6)]
        time.sleep(0.5)  # every child imported and waiting: they start together
        go.touch()
        for opener in openers:
            _, err = opener.communicate(timeout=60)
            assert opener.returncode == 0, err
        tables = sqlite3.connect(folder / "tracking.db").execute("PRAGMA user_version")
        assert tables.fetchone()[0] == SCHEMA_VERSION


def test_concurrent_processes_lose_nothing(store_dir: Path) -> None:
    """Several processes create the store and write into it at once; every row arrives."""
    workers, runs_each, points = 5, 8, 200
    procs = [
        subprocess.Popen(
            [PYTHON, "-c", _WRITER, str(w), str(runs_each), str(points), str(store_dir)],
            env=child_env(),
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    conn = sqlite3.connect(store_dir / "tracking.db")
    assert conn.execute("SELECT count(*) FROM runs WHERE status = 'finished'").fetchone()[0] == (
        workers * runs_each
    )
    assert conn.execute("SELECT count(*) FROM params").fetchone()[0] == workers * runs_each * 2
    assert conn.execute("SELECT count(*) FROM metrics").fetchone()[0] == (
        workers * runs_each * points
    )
    assert (
        conn.execute(
            "SELECT count(*) FROM latest_metrics WHERE step = ?", (points - 1,)
        ).fetchone()[0]
        == workers * runs_each
    )
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_back_to_back_cells_are_stored_within_the_window_and_hashed_at_a_pause(
    store: Store,
) -> None:
    import jupyter_mlops as mlops

    run = mlops.start_run(name="run-all", store=store)
    reader = sqlite3.connect(store.path)

    def stored() -> list[tuple]:
        return reader.execute("SELECT seq, source, source_hash FROM cells").fetchall()

    def hashed(row: dict) -> None:
        row["source_hash"] = "hash-of-" + row["source"]

    store.cell_running(True)  # and never a pause: "Run All" of a long notebook
    run.record_cell({"seq": 1, "source": "x = 1", "execution_count": 1}, complete=hashed)
    for _ in range(200):
        if stored():
            break
        time.sleep(0.05)
    assert stored() == [(1, "x = 1", None)]  # durable, its hash still to come
    store.cell_running(False)
    for _ in range(200):
        if stored()[0][2]:
            break
        time.sleep(0.05)
    assert stored() == [(1, "x = 1", "hash-of-x = 1")]
    reader.close()
    run.end()
