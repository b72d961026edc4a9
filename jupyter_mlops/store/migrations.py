"""The schema's history: one migration a version, and the runner that brings a store's file up
to ``SCHEMA_VERSION`` (safe when several processes open an old store at once).

A migration is never changed once released: a store made by it may be anywhere. Its SQL spells
the words of the record as they were then.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StoreError

if TYPE_CHECKING:
    from sqlite_utils import Database

    from .connection import StoreFile


def _migration_1(db: Database) -> None:
    # The first schema, a table (or two that go together) at a time.
    _create_runs(db)
    _create_tags_and_params(db)
    _create_metrics(db)
    _create_cells(db)
    _create_datasets_and_artifacts(db)
    db.table("environments").create({"id": str, "data": str, "captured_at": float}, pk="id")


def _create_runs(db: Database) -> None:
    db.table("runs").create(
        {
            "id": str,
            "name": str,
            "status": str,
            "kind": str,
            "notebook": str,
            "notebook_hash_start": str,
            "notebook_hash_end": str,
            "parent_id": str,
            "sweep_id": str,
            "start_time": float,
            "end_time": float,
            "heartbeat": float,
            "pid": int,
            "host": str,
            "cwd": str,
            "env_id": str,
            "linear": int,
            "linear_reasons": str,
            "error": str,
            "note": str,
        },
        pk="id",
        not_null={"status", "kind", "start_time"},
    )
    db.table("runs").create_index(["start_time"])
    db.table("runs").create_index(["notebook", "start_time"])
    db.table("runs").create_index(["name", "start_time"])
    db.table("runs").create_index(["status"])
    db.table("runs").create_index(["parent_id"])


def _create_tags_and_params(db: Database) -> None:
    db.table("tags").create(
        {"run_id": str, "key": str, "value": str},
        pk=("run_id", "key"),
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.table("params").create(
        {"run_id": str, "key": str, "value": str},
        pk=("run_id", "key"),
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.table("params").create_index(["key"])


def _create_metrics(db: Database) -> None:
    db.execute(
        "CREATE TABLE metrics (run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL,"
        " step INTEGER NOT NULL, value REAL, time REAL NOT NULL, cell_seq INTEGER)"
    )
    db.table("metrics").create_index(["run_id", "key", "step"])
    db.table("latest_metrics").create(
        {"run_id": str, "key": str, "step": int, "value": float, "time": float},
        pk=("run_id", "key"),
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.table("latest_metrics").create_index(["key", "value"])


def _create_cells(db: Database) -> None:
    db.table("cells").create(
        {
            "run_id": str,
            "seq": int,
            "execution_count": int,
            "cell_id": str,
            "source": str,
            "source_hash": str,
            "start_time": float,
            "duration": float,
            "error": str,
            "error_value": str,
            "reads": str,
            "writes": str,
            "data_hashes": str,
            "seeds": str,
            "output_hash": str,
        },
        pk=("run_id", "seq"),
        foreign_keys=[("run_id", "runs", "id")],
    )


def _create_datasets_and_artifacts(db: Database) -> None:
    db.table("datasets").create(
        {
            "run_id": str,
            "name": str,
            "hash": str,
            "kind": str,
            "shape": str,
            "schema": str,
            "profile": str,
            "path": str,
            "size_bytes": int,
            "cell_seq": int,
            "time": float,
        },
        pk=("run_id", "name"),
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.table("datasets").create_index(["hash"])
    db.table("artifacts").create(
        {
            "run_id": str,
            "name": str,
            "hash": str,
            "kind": str,
            "size_bytes": int,
            "source": str,
            "cell_seq": int,
            "time": float,
        },
        pk=("run_id", "name"),
        foreign_keys=[("run_id", "runs", "id")],
    )


def _migration_2(db: Database) -> None:
    db.table("replays").create(
        {
            "id": str,
            "original_id": str,
            "replay_run_id": str,
            "mode": str,
            "state": str,
            "cells_done": int,
            "cells_total": int,
            "verdict": str,
            "summary": str,
            "report": str,
            "options": str,
            "pid": int,
            "host": str,
            "start_time": float,
            "end_time": float,
        },
        pk="id",
        not_null={"original_id", "mode", "state", "start_time"},
    )
    db.table("replays").create_index(["original_id", "start_time"])
    db.table("replays").create_index(["replay_run_id"])


def _migration_3(db: Database) -> None:
    # Cells: what a cell wrote that could not be compared (name -> reason), content hashes of
    # the figures it showed, the files it read and wrote (path, size, hash), its number in the
    # saved notebook, and its CPU time and peak memory. Runs: the kernel that ran them and the
    # start time of their process (liveness without wall-clock arithmetic).
    cells = db.table("cells")
    for column, kind in (
        ("uncompared", str),
        ("figure_hashes", str),
        ("files_read", str),
        ("files_written", str),
        ("cell_number", int),
        ("cpu_time", float),
        ("peak_rss", int),
    ):
        cells.add_column(column, kind)
    runs = db.table("runs")
    runs.add_column("kernel", str)
    runs.add_column("process_start", float)


def _migration_4(db: Database) -> None:
    # Runs: where a run copied from another store or an MLflow server came from. MLflow: which
    # MLflow run each of our runs is on each tracking server (and what of it was sent there),
    # so exporting again updates that run instead of making another.
    db.table("runs").add_column("origin", str)
    db.table("mlflow_runs").create(
        {
            "run_id": str,
            "tracking_uri": str,
            "mlflow_run_id": str,
            "experiment_id": str,
            "direction": str,
            "sent": str,
            "time": float,
        },
        pk=("run_id", "tracking_uri"),
    )
    db.table("mlflow_runs").create_index(["tracking_uri", "mlflow_run_id"], unique=True)


def _migration_5(db: Database) -> None:
    # Datasets gain a context: a serving sample is recorded beside the training data of the
    # same name, so the key becomes (run, name, context); SQLite changes a key only by
    # rebuilding the table. Data checks: each check of new data against a recorded dataset,
    # with the run it was made in (none when made outside a run) and its whole report.
    db.execute(
        "CREATE TABLE datasets_keyed (run_id TEXT REFERENCES runs(id), name TEXT,"
        " context TEXT NOT NULL DEFAULT 'training', hash TEXT, kind TEXT, shape TEXT,"
        " schema TEXT, profile TEXT, path TEXT, size_bytes INTEGER, cell_seq INTEGER,"
        " time FLOAT, PRIMARY KEY (run_id, name, context))"
    )
    columns = "run_id, name, hash, kind, shape, schema, profile, path, size_bytes, cell_seq, time"
    db.execute(f"INSERT INTO datasets_keyed ({columns}) SELECT {columns} FROM datasets")
    db.execute("DROP TABLE datasets")
    db.execute("ALTER TABLE datasets_keyed RENAME TO datasets")
    db.execute("CREATE INDEX idx_datasets_hash ON datasets (hash)")
    db.table("data_checks").create(
        {
            "id": str,
            "run_id": str,
            "time": float,
            "subject": str,
            "subject_hash": str,
            "context": str,
            "baseline_run": str,
            "baseline_dataset": str,
            "baseline_hash": str,
            "passed": int,
            "problems": int,
            "report": str,
        },
        pk="id",
        not_null={"time", "passed"},
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.table("data_checks").create_index(["run_id", "time"])
    db.table("data_checks").create_index(["baseline_run", "time"])


def _migration_6(db: Database) -> None:
    # Params: each value a param had before it was logged again with another, so none is lost.
    # The model registry: numbered versions of a run's model under a name (with the content
    # hash of the model, the run's data hashes and its replay verdict when registered), and
    # aliases naming one version each.
    db.table("param_history").create(
        {"run_id": str, "key": str, "value": str, "time": float},
        pk=("run_id", "key", "time"),
        not_null={"value", "time"},
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.table("model_versions").create(
        {
            "name": str,
            "version": int,
            "run_id": str,
            "artifact": str,
            "hash": str,
            "kind": str,
            "verdict": str,
            "data_hashes": str,
            "created": float,
        },
        pk=("name", "version"),
        not_null={"run_id", "artifact", "hash", "created"},
    )
    db.table("model_versions").create_index(["run_id"])
    db.table("model_aliases").create(
        {"name": str, "alias": str, "version": int, "time": float},
        pk=("name", "alias"),
        not_null={"version", "time"},
    )


MIGRATIONS = [
    _migration_1,
    _migration_2,
    _migration_3,
    _migration_4,
    _migration_5,
    _migration_6,
]
SCHEMA_VERSION = len(MIGRATIONS)


def newer_schema(path: Path, version: int, to_do: str = "") -> StoreError:
    """The error for a store made by a newer jupyter-mlops than this one."""
    return StoreError(
        str(path),
        f"the store {path} has schema version {version}, newer than this "
        f"jupyter-mlops understands ({SCHEMA_VERSION}); upgrade jupyter-mlops{to_do}",
    )


def migrate(store: StoreFile) -> None:
    """Bring the schema up to ``SCHEMA_VERSION``; safe when several processes start at once."""
    conn = store.conn
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise newer_schema(store.path, version)
    if store.read_only:
        raise StoreError(
            str(store.path),
            f"the store {store.path} is read-only and has schema version {version}, older than "
            f"this jupyter-mlops reads ({SCHEMA_VERSION}); open it once with write access",
        )
    # sqlite-utils defines the schema; imported only here, as it pulls in pandas and numpy
    # when they are installed, which the per-cell and logging paths have no use for.
    from sqlite_utils import Database

    with store.transaction():
        # Read again under the write lock: another process may have migrated meanwhile.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        database = Database(conn)
        for step in MIGRATIONS[version:]:
            step(database)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
