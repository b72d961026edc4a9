"""The schema's migrations on real SQLite files: a store of any older version comes forward to
the schema a new store has, keeping its rows, and the columns the store reads are there."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from jupyter_mlops.store import (
    CELL_COLUMNS,
    MIGRATIONS,
    RUN_COLUMNS,
    SCHEMA_VERSION,
    Store,
    close_all,
    open_store,
)


def _schema(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """Every table and index of a store's file, with the SQL that makes it now."""
    return sorted(
        conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        ).fetchall()
    )


def _store_of_version(folder: Path, version: int) -> None:
    """A store's file as a jupyter-mlops of schema ``version`` left it, holding one run."""
    folder.mkdir()
    conn = sqlite3.connect(folder / "tracking.db")
    database = Database(conn)
    for step in MIGRATIONS[:version]:
        step(database)
    conn.execute(
        "INSERT INTO runs (id, name, status, kind, start_time) VALUES ('r1', 'old', 'finished',"
        " 'script', 1.0)"
    )
    conn.execute("INSERT INTO params (run_id, key, value) VALUES ('r1', 'lr', '0.1')")
    conn.execute(
        "INSERT INTO metrics (run_id, key, step, value, time) VALUES ('r1', 'acc', 0, 0.5, 2.0)"
    )
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_an_older_store_comes_forward_to_the_schema_of_a_new_one(
    tmp_path: Path, store: Store, version: int
) -> None:
    _store_of_version(tmp_path / "old", version)
    old = open_store(tmp_path / "old")
    assert old.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert _schema(old.conn) == _schema(store.conn)
    run = old.get_run("r1")
    assert (run["name"], run["status"]) == ("old", "finished")
    assert old.params(["r1"]) == {"r1": {"lr": 0.1}}
    assert [point["value"] for point in old.metric_series("r1", "acc")] == [0.5]


def test_a_migrated_store_opens_again_unchanged(tmp_path: Path) -> None:
    _store_of_version(tmp_path / "old", 1)
    before = _schema(open_store(tmp_path / "old").conn)
    close_all()
    assert _schema(open_store(tmp_path / "old").conn) == before


def test_the_columns_the_store_reads_are_the_tables_columns(store: Store) -> None:
    def columns(table: str) -> tuple[str, ...]:
        return tuple(row[1] for row in store.conn.execute(f"PRAGMA table_info({table})"))

    assert columns("runs") == RUN_COLUMNS
    assert columns("cells") == CELL_COLUMNS
