"""Rows to and from SQL: checked column names, inserts and updates of a dict, rows as dicts, and
the run row's JSON and boolean columns."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .schema import RUN_JSON_COLUMNS


def json_or_null(value: Any) -> str | None:
    """``value`` as JSON text, or None for None (SQL NULL)."""
    return None if value is None else json.dumps(value)


def checked_name(name: str) -> str:
    """A table or column name, checked before it is written into SQL."""
    if not name.isidentifier():
        raise ValueError(f"not a column name: {name!r}")
    return name


def insert(
    conn: sqlite3.Connection, table: str, row: dict[str, Any], *, replace: bool = False
) -> None:
    """Insert (or replace) one row given as a dict of columns."""
    columns = [checked_name(name) for name in row]
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    conn.execute(
        f"{verb} INTO {checked_name(table)} ({', '.join(columns)})"
        f" VALUES ({', '.join('?' * len(columns))})",
        list(row.values()),
    )


def update(conn: sqlite3.Connection, table: str, row_id: str, fields: dict[str, Any]) -> None:
    """Set some columns of the row of a table whose ``id`` is ``row_id``."""
    assignments = ", ".join(f"{checked_name(name)} = ?" for name in fields)
    conn.execute(
        f"UPDATE {checked_name(table)} SET {assignments} WHERE id = ?", [*fields.values(), row_id]
    )


def dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    """The rows of a cursor as dicts by column name."""
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def encode_run(row: dict[str, Any]) -> dict[str, Any]:
    """A run row (or some of its columns) as stored."""
    out = dict(row)
    for column in RUN_JSON_COLUMNS:
        if column in out and out[column] is not None:
            out[column] = json.dumps(out[column])
    if "linear" in out and out["linear"] is not None:
        out["linear"] = int(bool(out["linear"]))
    return out


def decode_run(row: dict[str, Any]) -> dict[str, Any]:
    """A stored run row as the rest of the package reads it."""
    for column in RUN_JSON_COLUMNS:
        if row.get(column):
            row[column] = json.loads(row[column])
    if row.get("linear") is not None:
        row["linear"] = bool(row["linear"])
    return row
