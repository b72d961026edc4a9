"""The filter language (query.py parses it) compiled to parameterized SQL over ``runs r``, the
order runs are listed in, and id prefixes in a filter made whole."""

from __future__ import annotations

import sqlite3
from typing import Any

from ..errors import AmbiguousRunError, InvalidValueError
from ..query import BoolOp, Comparison, Node, Not

# Fields of the filter language that are plain columns of the runs table.
_RUN_FIELDS = {
    "id": "r.id",
    "name": "r.name",
    # Unary + keeps SQLite off the status index: with it, a status filter reads every match
    # and sorts them all; without it, the start_time index gives the newest page at once.
    "status": "+r.status",
    "notebook": "r.notebook",
    "kind": "r.kind",
    "parent": "r.parent_id",
    "sweep": "r.sweep_id",
}
_SQL_OPS = {"=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
# Filter fields that hold ids: a unique prefix this long stands for the whole id, as it does
# for RUN arguments (tables print 12 characters).
_ID_FIELDS = {"id": "id", "parent": "parent_id", "sweep": "sweep_id"}
MIN_ID_PREFIX = 6
ID_LENGTH = 32


def full_ids(conn: sqlite3.Connection, where: Node | None) -> Node | None:
    """The filter with each ``id``, ``parent`` or ``sweep`` given as a unique prefix of at
    least ``MIN_ID_PREFIX`` characters compared by its full id; an ambiguous one raises."""
    return None if where is None else _full_ids(conn, where)


def _full_ids(conn: sqlite3.Connection, where: Node) -> Node:
    if isinstance(where, BoolOp):
        return BoolOp(where.op, _full_ids(conn, where.left), _full_ids(conn, where.right))
    if isinstance(where, Not):
        return Not(_full_ids(conn, where.operand))
    if not (
        isinstance(where, Comparison)
        and where.field in _ID_FIELDS
        and where.op in ("=", "!=")
        and isinstance(where.value, str)
        and MIN_ID_PREFIX <= len(where.value) < ID_LENGTH
        and all(c in "0123456789abcdef" for c in where.value.lower())
    ):
        return where
    prefix = where.value.lower()
    column = _ID_FIELDS[where.field]
    # The id column is the key; the others are read run by run only when a prefix is given.
    found = [
        row[0]
        for row in conn.execute(
            f"SELECT DISTINCT {column} FROM runs WHERE {column} >= ? AND {column} < ?"
            f" ORDER BY {column} LIMIT 6",
            (prefix, prefix + "g"),
        )
    ]
    if len(found) > 1:
        raise AmbiguousRunError(where.value, found, what=where.field)
    if not found:
        return where
    return Comparison(where.field, where.key, where.op, found[0], where.position)


def compile_where(node: Node) -> tuple[str, list[Any]]:
    """SQL for a parsed filter expression over ``runs r``, with its bound values."""
    if isinstance(node, BoolOp):
        left, left_args = compile_where(node.left)
        right, right_args = compile_where(node.right)
        return f"({left} {node.op.upper()} {right})", left_args + right_args
    if isinstance(node, Not):
        inner, args = compile_where(node.operand)
        return f"(NOT {inner})", args
    if not isinstance(node, Comparison):
        raise TypeError(f"not a filter expression node: {node!r}")
    if node.field in _RUN_FIELDS:
        return _compare(_RUN_FIELDS[node.field], node.op, node.value)
    if node.field == "params":
        test, args = _compare("json_extract(p.value, '$')", node.op, node.value)
        return (
            f"EXISTS (SELECT 1 FROM params p WHERE p.run_id = r.id AND p.key = ? AND {test})",
            [node.key, *args],
        )
    if node.field == "metrics":
        test, args = _compare("m.value", node.op, node.value)
        return (
            "EXISTS (SELECT 1 FROM latest_metrics m WHERE m.run_id = r.id AND m.key = ?"
            f" AND {test})",
            [node.key, *args],
        )
    if node.field == "tags":
        test, args = _compare("t.value", node.op, node.value)
        return (
            f"EXISTS (SELECT 1 FROM tags t WHERE t.run_id = r.id AND t.key = ? AND {test})",
            [node.key, *args],
        )
    raise TypeError(f"unknown field {node.field!r}")


def run_filter(where: Node | None, notebook: str | None) -> tuple[str, list[Any]]:
    """A ``WHERE`` clause (or nothing) over ``runs r`` for the list and count of runs."""
    clauses: list[str] = []
    args: list[Any] = []
    if notebook is not None:
        clauses.append("r.notebook = ?")
        args.append(notebook)
    if where is not None:
        sql, where_args = compile_where(where)
        clauses.append(sql)
        args.extend(where_args)
    if not clauses:
        return "", args
    return " WHERE " + " AND ".join(f"({c})" for c in clauses), args


# What runs can be ordered by besides ``params.K`` and ``metrics.K``.
_ORDER_FIELDS = {
    "start_time": "r.start_time",
    "end_time": "r.end_time",
    "duration": "r.end_time - r.start_time",
    "name": "r.name",
    "status": "r.status",
    "kind": "r.kind",
    "notebook": "r.notebook",
    "id": "r.id",
}


def run_order(order_by: str | None, descending: bool) -> tuple[str, list[Any]]:
    """An ``ORDER BY`` over ``runs r`` (missing values last, newest first on ties)."""
    direction = "DESC" if descending else "ASC"
    args: list[Any] = []
    if order_by is None or order_by == "start_time":
        return f" ORDER BY r.start_time {direction}, r.id", args
    if order_by in _ORDER_FIELDS:
        expression = _ORDER_FIELDS[order_by]
    else:
        field, _, key = order_by.partition(".")
        if field == "params" and key:
            expression = (
                "(SELECT json_extract(p.value, '$') FROM params p"
                " WHERE p.run_id = r.id AND p.key = ?)"
            )
        elif field == "metrics" and key:
            expression = (
                "(SELECT m.value FROM latest_metrics m WHERE m.run_id = r.id AND m.key = ?)"
            )
        else:
            known = ", ".join(_ORDER_FIELDS)
            raise InvalidValueError(
                "order_by", f"{order_by!r} is not one of {known}, params.KEY or metrics.KEY"
            )
        args.append(key)
    return f" ORDER BY {expression} {direction} NULLS LAST, r.start_time DESC, r.id", args


def _compare(column: str, op: str, value: Any) -> tuple[str, list[Any]]:
    if op == "~":
        return f"instr(lower(CAST({column} AS TEXT)), lower(?)) > 0", [str(value)]
    if value is None:
        return (f"{column} IS NULL" if op == "=" else f"{column} IS NOT NULL"), []
    if isinstance(value, bool):
        value = int(value)
    return f"{column} {_SQL_OPS[op]} ?", [value]
