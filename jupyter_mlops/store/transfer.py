"""Runs that come from elsewhere or go there: copying the runs of another store's file into
this one (merge.py adds their blobs), runs brought from an MLflow server, and which MLflow run
each run is on at a tracking server."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import StoreError, StoreNotFoundError, StoreReadOnlyError
from .connection import store_fault
from .migrations import SCHEMA_VERSION, newer_schema
from .rows import checked_name, encode_run, insert
from .runs import RunQueries
from .schema import COPIED_WITH_RUN
from .writer import INSERT_METRIC, BufferedWrites, MetricRow, upsert_latest


def import_runs(
    store: BufferedWrites, source: Path, origin: str, run_ids: Sequence[str] | None = None
) -> dict[str, Any]:
    """Copy the runs of another store's file that this store does not have, with every row
    that belongs to them, their environments and replays, in one transaction; returns the
    ids copied, how many were already here, and the artifact hashes whose blobs to copy."""
    if store.read_only:
        raise StoreReadOnlyError(str(store.path))
    if not source.is_file():
        raise StoreNotFoundError(str(source.parent))
    store.flush()
    uri = "file:" + urllib.parse.quote(str(source.resolve())) + "?mode=ro"
    with store._lock:
        conn = store.conn
        try:
            conn.execute("ATTACH DATABASE ? AS source", (uri,))
        except (sqlite3.Error, StoreError) as exc:
            raise _source_fault(exc, source) from exc
        try:
            try:
                version = conn.execute("PRAGMA source.user_version").fetchone()[0]
                tables = {
                    row[0]
                    for row in conn.execute(
                        "SELECT name FROM source.sqlite_master WHERE type = 'table'"
                    )
                }
            except (sqlite3.DatabaseError, StoreError) as exc:
                raise _source_fault(exc, source) from exc
            if version > SCHEMA_VERSION:
                raise newer_schema(source, version, " to import it")
            if "runs" not in tables:
                raise StoreError(
                    str(source), f"{source} is not a jupyter-mlops store (it has no runs)"
                )
            return _copy_runs(store, conn, tables, origin, run_ids)
        finally:
            conn.execute("DETACH DATABASE source")


def _source_fault(exc: BaseException, source: Path) -> StoreError:
    """A fault met reading another store's file, naming that file (the connection names its
    own store in the errors it translates)."""
    cause = exc.__cause__ if isinstance(exc, StoreError) and exc.__cause__ else exc
    return store_fault(cause, source) or StoreError(
        str(source), f"cannot read the store {source}: {cause}"
    )


# The runs being copied, as SQL (a temporary table filled by _choose_runs).
_IMPORTED = "(SELECT id FROM temp.imported)"


def _copy_runs(
    store: BufferedWrites,
    conn: sqlite3.Connection,
    tables: set[str],
    origin: str,
    run_ids: Sequence[str] | None,
) -> dict[str, Any]:
    with store.transaction():
        copied, offered = _choose_runs(conn, run_ids)
        counts: dict[str, int] = {}
        if copied:
            counts = _copy_run_rows(conn, tables, origin)
        if "replays" in tables:
            # Replays of a copied run, or that made one.
            counts["replays"] = _copy_rows(
                conn, "replays", f"original_id IN {_IMPORTED} OR replay_run_id IN {_IMPORTED}"
            )
        hashes = [
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT hash FROM source.artifacts"
                " WHERE run_id IN (SELECT id FROM temp.imported) AND hash IS NOT NULL"
            )
        ]
    return {
        "runs": copied,
        "already_here": offered - len(copied),
        "rows": counts,
        "blobs": hashes,
    }


def _choose_runs(conn: sqlite3.Connection, run_ids: Sequence[str] | None) -> tuple[list[str], int]:
    """Fill ``temp.imported`` with the runs to copy (of ``run_ids``, or all, that this store
    lacks); those ids, and how many runs were offered."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS imported (id TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM temp.imported")
    wanted = ""
    if run_ids is not None:
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (id TEXT PRIMARY KEY)")
        conn.execute("DELETE FROM temp.wanted")
        conn.executemany("INSERT OR IGNORE INTO temp.wanted VALUES (?)", [(i,) for i in run_ids])
        wanted = " AND id IN (SELECT id FROM temp.wanted)"
    conn.execute(
        "INSERT INTO temp.imported SELECT id FROM source.runs"
        f" WHERE id NOT IN (SELECT id FROM main.runs){wanted}"
    )
    copied = [row[0] for row in conn.execute("SELECT id FROM temp.imported ORDER BY id")]
    offered = conn.execute(f"SELECT count(*) FROM source.runs WHERE 1{wanted}").fetchone()[0]
    return copied, int(offered)


def _copy_run_rows(conn: sqlite3.Connection, tables: set[str], origin: str) -> dict[str, int]:
    """Copy the chosen runs, the rows that belong to them and their environments; how many
    rows of each table were copied."""
    runs_columns = _shared_columns(conn, "runs")
    listed = ", ".join(c for c in runs_columns if c != "origin")
    # A run keeps the first origin it was given: copied on, it still names where it ran.
    first_origin = "COALESCE(origin, ?)" if "origin" in runs_columns else "?"
    conn.execute(
        f"INSERT INTO main.runs ({listed}, origin) SELECT {listed}, {first_origin}"
        " FROM source.runs WHERE id IN (SELECT id FROM temp.imported)",
        (origin,),
    )
    counts: dict[str, int] = {}
    for table in ("metrics", *COPIED_WITH_RUN):
        if table in tables:
            # Metric points keep their logging order (rowid), which series are read in.
            order = " ORDER BY rowid" if table == "metrics" else ""
            counts[table] = _copy_rows(conn, table, f"run_id IN {_IMPORTED}{order}")
    counts["environments"] = _copy_rows(
        conn, "environments", f"id IN (SELECT env_id FROM source.runs WHERE id IN {_IMPORTED})"
    )
    return counts


def _shared_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """The columns of a table that both stores have, in this store's order."""
    theirs = {row[1] for row in conn.execute(f"PRAGMA source.table_info({checked_name(table)})")}
    ours = [row[1] for row in conn.execute(f"PRAGMA main.table_info({checked_name(table)})")]
    return [name for name in ours if name in theirs]


def _copy_rows(conn: sqlite3.Connection, table: str, condition: str) -> int:
    """Copy the rows of a table that meet a condition and are not here yet."""
    listed = ", ".join(_shared_columns(conn, table))
    return int(
        conn.execute(
            f"INSERT OR IGNORE INTO main.{table} ({listed}) SELECT {listed}"
            f" FROM source.{table} WHERE {condition}"
        ).rowcount
    )


def mlflow_links(store: BufferedWrites, tracking_uri: str) -> dict[str, dict[str, Any]]:
    """The MLflow run each run is on at a tracking server: run id -> mlflow_run_id,
    experiment_id, direction (export or import) and what was sent (decoded)."""
    store.flush()
    sql = (
        "SELECT run_id, mlflow_run_id, experiment_id, direction, sent FROM mlflow_runs"
        " WHERE tracking_uri = ?"
    )
    rows = store.conn.execute(sql, (tracking_uri,))
    return {
        run_id: {
            "mlflow_run_id": mlflow_id,
            "experiment_id": experiment,
            "direction": direction,
            "sent": json.loads(sent) if sent else {},
        }
        for run_id, mlflow_id, experiment, direction, sent in rows
    }


def set_mlflow_link(
    store: BufferedWrites,
    run_id: str,
    tracking_uri: str,
    mlflow_run_id: str,
    experiment_id: str,
    direction: str,
    sent: dict[str, Any],
) -> None:
    """Remember which MLflow run a run is on at a tracking server, and what was sent there."""
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO mlflow_runs (run_id, tracking_uri, mlflow_run_id,"
            " experiment_id, direction, sent, time) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                tracking_uri,
                mlflow_run_id,
                experiment_id,
                direction,
                json.dumps(sent),
                time.time(),
            ),
        )


def insert_imported_run(
    store: RunQueries,
    row: dict[str, Any],
    params: dict[str, str],
    tags: dict[str, str],
    metrics: Sequence[tuple[str, int, float | None, float]],
) -> None:
    """Create a run brought from elsewhere, with its params (JSON text), tags and metric
    points (key, step, value, time), in one transaction."""
    with store.transaction() as conn:
        insert(conn, "runs", encode_run(row))
        run_id = row["id"]
        if tags:
            store._put_tags(run_id, tags)
        conn.executemany(
            "INSERT OR REPLACE INTO params (run_id, key, value) VALUES (?, ?, ?)",
            [(run_id, key, value) for key, value in params.items()],
        )
        points: list[MetricRow] = [
            (run_id, key, step, value, at, None) for key, step, value, at in metrics
        ]
        if points:
            conn.executemany(INSERT_METRIC, points)
            upsert_latest(conn, points)
