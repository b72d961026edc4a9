"""Buffered writes of the hot rows: metric points and cell executions.

They wait in memory and a background thread writes them in bounded batches (cell rows in the
pauses between cells, and about ``CELL_MAX_AGE_S`` after a cell ends when there is no pause);
any read in this process flushes them first. A row the writer cannot store is set aside
(``rejected``) rather than allowed to hold up the rows behind it.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import StoreError, StoreLockedError
from ..threads import start_background
from ..validate import storable_text
from .connection import BUSY_TIMEOUT_MS, StoreFile
from .schema import CELL_COLUMNS, CELL_JSON_COLUMNS

CellCompletion = Callable[[dict[str, Any]], None]
# A metric point as buffered and written: run, key, step, value, time, cell.
MetricRow = tuple[str, str, int, float | None, float, int | None]

FLUSH_INTERVAL_S = 0.25
FLUSH_THRESHOLD = 2_000
MAX_BACKLOG = 200_000
METRIC_BATCH = 5_000
CELL_BATCH = 200
# Cell rows wait for a pause between cells, so the writer never competes with running cells
# for the GIL. In a stretch of back-to-back cells ("Run All") the cell that ends once the
# oldest row has waited CELL_MAX_AGE_S stores them as they are (no GIL to hand over: one short
# statement), and while one long cell runs the writer does it after CELL_LATE_S: a kernel that
# dies loses at most about a second of cells. Their hashes are stored at the next pause.
CELL_IDLE_S = 0.1
CELL_MAX_AGE_S = 0.5
CELL_LATE_S = 1.0
# Early writes of cell rows: up to CELL_EARLY_MAX at a time, CELL_SLICE rows a statement.
CELL_SLICE = 500
CELL_EARLY_MAX = 20_000
# A cell that ends stores at most this many waiting rows (a fraction of a millisecond), so no
# cell stalls on a backlog of tiny cells; the cells after it store the rest the same way.
CELL_END_MAX = 20
# How often the writer checkpoints the write-ahead log (commits never do: see _start_writer).
CHECKPOINT_INTERVAL_S = 1.0
# Rows the writer could not store, kept for inspection (the newest ones).
MAX_REJECTED = 100
# What a row itself can get wrong: no retry of it would succeed, the rows beside it can.
_ROW_ERRORS = (
    ValueError,
    TypeError,
    OverflowError,
    sqlite3.InterfaceError,
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.ProgrammingError,
)
INSERT_METRIC = (
    "INSERT INTO metrics (run_id, key, step, value, time, cell_seq) VALUES (?, ?, ?, ?, ?, ?)"
)
_UPSERT_LATEST = (
    "INSERT INTO latest_metrics (run_id, key, step, value, time)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, key) DO UPDATE SET"
    " step = excluded.step, value = excluded.value, time = excluded.time"
)

_JSON_CELL_COLUMNS = frozenset(CELL_JSON_COLUMNS)
_INSERT_CELL = (
    f"INSERT OR REPLACE INTO cells ({', '.join(CELL_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(CELL_COLUMNS))})"
)


def _json_cell_column(column: str) -> str:
    """The SQL that reads one column of a cell row given as a JSON object (``value``)."""
    if column not in CELL_JSON_COLUMNS:
        return f"value ->> '$.{column}'"
    # JSON columns hold JSON text: an object or list as written, text as it is, null as NULL.
    return (
        f"CASE json_type(value, '$.{column}') WHEN 'null' THEN NULL"
        f" WHEN 'text' THEN value ->> '$.{column}' ELSE value -> '$.{column}' END"
    )


# Many cell rows at once, given as one JSON array of the rows as captured: the columns known
# when a cell ends (the rest are worked out later, and stored with the complete row).
_EARLY_CELL_COLUMNS = tuple(
    c
    for c in CELL_COLUMNS
    if c
    not in {"source_hash", "output_hash", "reads", "writes", "seeds", "cell_number"}
    | {"figure_hashes", "files_read", "files_written"}
)
_INSERT_CELLS_JSON = (
    f"INSERT OR REPLACE INTO cells ({', '.join(_EARLY_CELL_COLUMNS)})"
    f" SELECT {', '.join(_json_cell_column(c) for c in _EARLY_CELL_COLUMNS)} FROM json_each(?)"
)


class BufferedWrites(StoreFile):
    """A store whose metric points and cell rows are written in batches by a thread."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self._pending_metrics: deque[MetricRow] = deque()
        self._pending_cells: deque[tuple[dict[str, Any], CellCompletion | None]] = deque()
        # Cell rows stored before their hashes were worked out (stored again, complete).
        self._unhashed_cells: deque[tuple[dict[str, Any], CellCompletion | None]] = deque()
        self._wake = threading.Event()
        self._idle_since: float | None = time.monotonic()
        self._cells_waiting_since = 0.0
        self._closed = False
        self._writer: threading.Thread | None = None
        self._writer_error: BaseException | None = None
        # Rows the writer could not store (newest last).
        self.rejected: deque[dict[str, Any]] = deque(maxlen=MAX_REJECTED)
        self._rejected_warned = False

    def enqueue_metric(
        self, run_id: str, key: str, step: int, value: float | None, at: float, cell: int | None
    ) -> None:
        """Buffer one metric point; the writer thread stores it within a fraction of a second."""
        pending = self._pending_metrics
        pending.append((run_id, key, step, value, at, cell))
        if len(pending) >= FLUSH_THRESHOLD:
            self._wake.set()
            if len(pending) >= MAX_BACKLOG:
                self.flush()  # the writer cannot keep up: write here rather than grow
        if self._writer is None:
            self._start_writer()

    def enqueue_cell(self, row: dict[str, Any], complete: CellCompletion | None = None) -> None:
        """Buffer one cell execution row; ``complete`` fills in its costly columns later."""
        if not self._pending_cells:
            self._cells_waiting_since = time.monotonic()
        self._pending_cells.append((row, complete))
        if self._writer is None:
            self._start_writer()

    def _start_writer(self) -> None:
        with self._lock:
            if self._writer is None and not self._closed:
                # From now on the writer thread checkpoints (see _write_loop), with the GIL
                # released, so a commit in a cell's thread never runs a checkpoint of
                # milliseconds.
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("PRAGMA wal_autocheckpoint = 0")
                self._writer = start_background(self._write_loop, "jupyter-mlops-writer")

    def cell_running(self, running: bool) -> None:
        """Told by cell capture when a cell starts and ends (cell rows wait for a pause)."""
        if running:
            self._idle_since = None
            return
        now = self._idle_since = time.monotonic()
        if self._pending_cells and now - self._cells_waiting_since >= CELL_MAX_AGE_S:
            self._write_due_cells()

    def _write_due_cells(self) -> None:
        """In the cell's thread, at the end of a cell: store the waiting cell rows as they are,
        never waiting for a lock (the writer is at it, or another process writes: the writer
        tries later) and never failing the cell."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            self.conn.execute("PRAGMA busy_timeout = 0")
            try:
                self._write_early(_drain(self._pending_cells, CELL_END_MAX))
            finally:
                self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except StoreLockedError:
            pass  # another process is writing: the writer stores them in a moment
        except Exception as exc:
            self._writer_error = exc
        finally:
            self._lock.release()

    def _paused(self) -> bool:
        """Whether no cell has run for CELL_IDLE_S: the writer may hash cells now."""
        idle_since = self._idle_since
        return idle_since is not None and time.monotonic() - idle_since >= CELL_IDLE_S

    def _cells_due(self) -> bool:
        if self._paused():
            return bool(self._pending_cells or self._unhashed_cells)
        # A long cell is running: the rows before it are the writer's to store.
        waited = time.monotonic() - self._cells_waiting_since
        return bool(self._pending_cells) and waited >= CELL_LATE_S

    def _write_loop(self) -> None:
        checkpointed = time.monotonic()
        while not self._closed:
            self._wake.wait(FLUSH_INTERVAL_S)
            self._wake.clear()
            try:
                self.flush(cells=self._cells_due())
                if time.monotonic() - checkpointed >= CHECKPOINT_INTERVAL_S:
                    checkpointed = time.monotonic()
                    self._checkpoint()
            except Exception as exc:
                self._writer_error = exc

    def _checkpoint(self) -> None:
        """Copy the write-ahead log into the database file, as far as readers allow."""
        if self.read_only:
            return
        with self._lock:
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def flush(self, *, cells: bool = True) -> None:
        """Write the buffered rows now (the cell rows too unless told not to), in short batches."""
        in_writer = threading.current_thread() is self._writer
        if cells and in_writer and not self._paused():
            # Cells are running back to back: store the due rows as they are, once, and
            # leave hashing them to the next pause (see _write_early).
            with self._lock:
                self._write_early(_drain(self._pending_cells, CELL_EARLY_MAX))
            cells = False
        while self._pending_metrics or (cells and (self._pending_cells or self._unhashed_cells)):
            with self._lock:
                metric_rows = _drain(self._pending_metrics, METRIC_BATCH)
                cell_rows = []
                if cells:
                    cell_rows = _drain(self._unhashed_cells, CELL_BATCH) or _drain(
                        self._pending_cells, CELL_BATCH
                    )
                if metric_rows or cell_rows:
                    self._write_batch(metric_rows, cell_rows)
            if in_writer:
                time.sleep(0)  # hand the GIL to the notebook's thread between batches

    def _write_batch(
        self,
        metrics: list[MetricRow],
        cells: list[tuple[dict[str, Any], CellCompletion | None]],
    ) -> None:
        if self.vanished:
            metrics = [row for row in metrics if row[0] not in self.vanished]
            cells = [item for item in cells if item[0].get("run_id") not in self.vanished]
        try:
            cell_rows = [_cell_values(row, complete) for row, complete in cells]
            with self.transaction() as conn:
                conn.execute("SAVEPOINT batch")
                try:
                    if cell_rows:
                        conn.executemany(_INSERT_CELL, cell_rows)
                    if metrics:
                        conn.executemany(INSERT_METRIC, metrics)
                        upsert_latest(conn, metrics)
                except _ROW_ERRORS:
                    # A bad row fails its whole statement: store the others one by one.
                    conn.execute("ROLLBACK TO batch")
                    self._write_each(conn, metrics, cell_rows)
                conn.execute("RELEASE batch")
        except BaseException:
            # A fault of the store, not of a row: keep the rows for the next try.
            self._pending_metrics.extendleft(reversed(metrics))
            self._pending_cells.extendleft(reversed(cells))
            raise

    def _write_early(self, cells: list[tuple[dict[str, Any], CellCompletion | None]]) -> None:
        """Store cell rows before their costly columns are worked out, in one statement: the
        running cell hands the GIL over twice for the batch, not twice a row. They are
        written again, complete, at the next pause (or the next flush from a read)."""
        if self.vanished:
            cells = [item for item in cells if item[0].get("run_id") not in self.vanished]
        rows = [row for row, _ in cells]
        try:
            with self.transaction() as conn:
                for start in range(0, len(rows), CELL_SLICE):
                    # One C call makes a slice's text: no Python work a row. Text SQLite
                    # cannot store (lone surrogates) fails to bind; the complete write takes it.
                    payload = json.dumps(
                        rows[start : start + CELL_SLICE],
                        ensure_ascii=False,
                        allow_nan=False,
                        check_circular=False,
                        default=_not_stored,
                    )
                    conn.execute(_INSERT_CELLS_JSON, (payload,))
        except _ROW_ERRORS:
            pass  # the complete write stores the row, or sets it aside
        except BaseException:
            self._pending_cells.extendleft(reversed(cells))
            raise
        self._unhashed_cells.extend(cells)

    def _write_each(
        self,
        conn: sqlite3.Connection,
        metrics: list[MetricRow],
        cell_rows: list[tuple[Any, ...]],
    ) -> None:
        stored = []
        for row in metrics:
            try:
                conn.execute(INSERT_METRIC, row)
            except _ROW_ERRORS as exc:
                self._set_aside("metric", row, exc)
                continue
            stored.append(row)
        if stored:
            upsert_latest(conn, stored)
        for values in cell_rows:
            try:
                conn.execute(_INSERT_CELL, values)
            except _ROW_ERRORS as exc:
                self._set_aside("cell", values, exc)

    def _set_aside(self, kind: str, row: tuple[Any, ...], exc: BaseException) -> None:
        """Drop a row no retry can store: keep it in ``rejected`` and warn once."""
        run_id = row[0]
        if isinstance(exc, sqlite3.IntegrityError) and not self.run_exists(run_id):
            self._vanish(run_id)
            return
        self.rejected.append(
            {"kind": kind, "run_id": run_id, "row": row, "error": f"{type(exc).__name__}: {exc}"}
        )
        if not self._rejected_warned:
            self._rejected_warned = True
            warnings.warn(
                f"jupyter-mlops: a {kind} row of run {str(run_id)[:12]} could not be stored "
                f"({type(exc).__name__}: {exc}) and was set aside; the rest is recorded",
                RuntimeWarning,
                stacklevel=2,
            )

    def writer_error(self) -> BaseException | None:
        """The last error the background writer met, once (then cleared)."""
        error, self._writer_error = self._writer_error, None
        return error

    def close(self) -> None:
        """Flush buffered rows, stop the writer and close the connection."""
        if self._closed:
            return
        try:
            self.flush()
        except StoreError as fault:
            lost = len(self._pending_metrics) + len(self._pending_cells)
            warnings.warn(
                f"jupyter-mlops: {fault}; {lost} buffered row(s) could not be written",
                RuntimeWarning,
                stacklevel=2,
            )
        finally:
            self._closed = True
            self._wake.set()
            if self._writer is not None and self._writer is not threading.current_thread():
                self._writer.join(timeout=5)
            with self._lock:
                self.conn.close()


def _not_stored(value: Any) -> None:
    """What a captured cell row holds besides its columns (working state) is not stored."""
    return None


def upsert_latest(conn: sqlite3.Connection, metrics: list[MetricRow]) -> None:
    """Set each (run, key)'s latest point to the last of ``metrics`` for it."""
    latest = {(row[0], row[1]): row[:5] for row in metrics}
    conn.executemany(_UPSERT_LATEST, latest.values())


def _cell_values(row: dict[str, Any], complete: CellCompletion | None) -> tuple[Any, ...]:
    for column in ("source", "error_value"):
        if isinstance(row.get(column), str):
            row[column] = storable_text(row[column])
    if complete is not None and not row.get("_completed"):
        # Keep the cell with what is known rather than lose it.
        with contextlib.suppress(Exception):
            complete(row)
        row["_completed"] = True
    values = []
    for column in CELL_COLUMNS:
        value = row.get(column)
        if column in _JSON_CELL_COLUMNS and value is not None and not isinstance(value, str):
            value = json.dumps(value)
        values.append(value)
    return tuple(values)


def _drain(queue: deque[Any], limit: int) -> list[Any]:
    pop = queue.popleft
    return [pop() for _ in range(min(len(queue), limit))]
