"""The tracking store: one SQLite file plus content-addressed blobs. The only module with SQL.

Every write is one short ``BEGIN IMMEDIATE`` transaction, so several kernels, workers and the
server can write at once. Hot rows (metrics, cell executions) are buffered and written in
bounded batches by a background thread (cell rows in the pauses between cells, and about
``CELL_MAX_AGE_S`` after a cell ends when there is no pause); any read in this process flushes
that buffer first. A row the writer cannot store is set aside (``Store.rejected``) rather than
allowed to hold up the rows behind it. Faults of the file (read-only, full, locked, damaged,
deleted) are raised as one-line ``StoreError``s; a store without write access opens read-only.
sqlite-utils defines and migrates the schema; rows are written with plain parameterized SQL,
which keeps pandas out of a process that never asked for it.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import math
import os
import shutil
import sqlite3
import threading
import time
import urllib.parse
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .errors import (
    AmbiguousRunError,
    InvalidValueError,
    MlopsError,
    RunNotFoundError,
    RunVanishedError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreGoneError,
    StoreLockedError,
    StoreNotFoundError,
    StoreReadOnlyError,
)
from .threads import start_background
from .validate import storable_text

if TYPE_CHECKING:
    from sqlite_utils import Database

    from .query import Node

CellCompletion = Callable[[dict[str, Any]], None]
_Method = TypeVar("_Method", bound=Callable[..., Any])

__all__ = ["DB_NAME", "SCHEMA_VERSION", "Store", "find_store_dir", "open_store", "store_fault"]

DB_NAME = "tracking.db"
# How long a write waits for another process's write lock: a write from a cell's thread must
# not hold the cell up for long. The writer thread keeps its rows and tries again.
BUSY_TIMEOUT_MS = 2_000
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
# How often the writer checkpoints the write-ahead log (commits never do: see _connect).
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
_INSERT_METRIC = (
    "INSERT INTO metrics (run_id, key, step, value, time, cell_seq) VALUES (?, ?, ?, ?, ?, ?)"
)
_UPSERT_LATEST = (
    "INSERT INTO latest_metrics (run_id, key, step, value, time)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, key) DO UPDATE SET"
    " step = excluded.step, value = excluded.value, time = excluded.time"
)

RUN_COLUMNS = (
    "id",
    "name",
    "status",
    "kind",
    "notebook",
    "notebook_hash_start",
    "notebook_hash_end",
    "parent_id",
    "sweep_id",
    "start_time",
    "end_time",
    "heartbeat",
    "pid",
    "host",
    "cwd",
    "env_id",
    "linear",
    "linear_reasons",
    "error",
    "note",
    "kernel",
    "process_start",
    "origin",
)
_JSON_RUN_COLUMNS = ("linear_reasons",)
# Tables whose rows belong to one run (``run_id``), children first for deletes.
RUN_CHILD_TABLES = (
    "metrics",
    "latest_metrics",
    "cells",
    "datasets",
    "artifacts",
    "data_checks",
    "params",
    "param_history",
    "tags",
)
CELL_COLUMNS = (
    "run_id",
    "seq",
    "execution_count",
    "cell_id",
    "source",
    "source_hash",
    "start_time",
    "duration",
    "error",
    "error_value",
    "reads",
    "writes",
    "data_hashes",
    "seeds",
    "output_hash",
    "uncompared",
    "figure_hashes",
    "files_read",
    "files_written",
    "cell_number",
    "cpu_time",
    "peak_rss",
)
# Cell columns holding JSON.
CELL_JSON_COLUMNS = (
    "reads",
    "writes",
    "data_hashes",
    "seeds",
    "uncompared",
    "figure_hashes",
    "files_read",
    "files_written",
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


def find_store_dir(start: Path | None = None) -> Path:
    """Where the store lives: JUPYTER_MLOPS_DIR, the nearest .mlops/, the git root, or here."""
    configured = os.environ.get("JUPYTER_MLOPS_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    chain = (here, *here.parents)
    for folder in chain:
        if (folder / ".mlops").is_dir():
            return folder / ".mlops"
    for folder in chain:
        if (folder / ".git").exists():
            return folder / ".mlops"
    return here / ".mlops"


def store_fault(exc: BaseException, path: Path | str) -> StoreError | None:
    """The one-line error for a fault of the store's file, or None when ``exc`` is not one."""
    where = str(path)
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        text = str(exc)
        if primary in (5, 6) or "database is locked" in text:  # SQLITE_BUSY, SQLITE_LOCKED
            return StoreLockedError(where, BUSY_TIMEOUT_MS / 1000)
        if primary == 8 or "readonly database" in text:  # SQLITE_READONLY
            return StoreReadOnlyError(where)
        if primary == 13 or "disk is full" in text:  # SQLITE_FULL
            return StoreFullError(where)
        if primary in (11, 26) or "malformed" in text or "not a database" in text:
            return StoreCorruptError(where, text)
        if primary == 10:  # SQLITE_IOERR
            return StoreError(where, f"the store {where} could not be read or written ({text})")
        if primary == 14:  # SQLITE_CANTOPEN
            return StoreError(where, f"the store {where} cannot be opened ({text})")
        return None
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return StoreFullError(where)
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return StoreReadOnlyError(where)
    return None


class _Connection(sqlite3.Connection):
    """A connection whose faults of the file come out as one-line ``StoreError``s."""

    store_path = ""

    def execute(self, *args: Any) -> sqlite3.Cursor:
        return self._translated(super().execute, *args)

    def executemany(self, *args: Any) -> sqlite3.Cursor:
        return self._translated(super().executemany, *args)

    def _translated(self, call: Callable[..., sqlite3.Cursor], *args: Any) -> sqlite3.Cursor:
        try:
            return call(*args)
        except sqlite3.DatabaseError as exc:
            fault = store_fault(exc, self.store_path)
            if fault is None:
                raise
            raise fault from exc


def _writable(path: Path) -> bool:
    """Whether the store's file and folder can be written (a read-only mount cannot)."""
    folder = path.parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return False
    except OSError:
        return False
    return os.access(folder, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def _for_run(method: _Method) -> _Method:
    """A write to one run, skipped once the run was deleted under it (one warning says so)."""

    @functools.wraps(method)
    def write(self: Store, target: Any, *args: Any, **kwargs: Any) -> Any:
        run_id = target["run_id"] if isinstance(target, dict) else target
        if run_id in self.vanished:
            return None
        try:
            return method(self, target, *args, **kwargs)
        except sqlite3.IntegrityError:
            if self.run_exists(run_id):
                raise
            self._vanish(run_id)
            return None

    return cast("_Method", write)


_open_stores: dict[Path, Store] = {}
_open_lock = threading.Lock()


def open_store(directory: Path | None = None, *, create: bool = True) -> Store:
    """The process-wide store for a folder (found by ``find_store_dir`` when not given)."""
    folder = (directory or find_store_dir()).resolve()
    with _open_lock:
        store = _open_stores.get(folder)
        if store is None:
            if not create and not (folder / DB_NAME).is_file():
                raise StoreNotFoundError(str(folder))
            store = Store(folder)
            _open_stores[folder] = store
        return store


def close_all() -> None:
    """Flush and close every store this process opened (at exit, and between tests)."""
    with _open_lock:
        stores = list(_open_stores.values())
        _open_stores.clear()
    for store in stores:
        store.close()


class Store:
    """One tracking store: ``tracking.db`` and ``blobs/`` in a folder."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / DB_NAME
        self.blobs = directory / "blobs"
        existed = self.path.exists()
        if not existed:
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise MlopsError(f"cannot create the store folder {directory}: {exc}") from exc
        elif self.path.stat().st_size == 0:
            warnings.warn(
                f"jupyter-mlops: the store {self.path} was an empty file; a new store is made "
                "in it (any runs it held are gone)",
                RuntimeWarning,
                stacklevel=3,
            )
        # Without write access the store is still worth reading: an archived or shared copy.
        self.read_only = existed and not _writable(self.path)
        if self.read_only:
            self.conn = self._connect_read_only()
        else:
            try:
                self.conn = self._connect(str(self.path), uri=False)
            except StoreError as fault:
                if not existed or isinstance(fault, (StoreCorruptError, StoreLockedError)):
                    raise
                self.conn = self._connect_read_only()
                self.read_only = True
        stat = os.stat(self.path)
        self._identity = (stat.st_dev, stat.st_ino)
        self._lock = threading.RLock()
        self._pending_metrics: deque[tuple[str, str, int, float | None, float, int | None]] = (
            deque()
        )
        self._pending_cells: deque[tuple[dict[str, Any], CellCompletion | None]] = deque()
        # Cell rows stored before their hashes were worked out (stored again, complete).
        self._unhashed_cells: deque[tuple[dict[str, Any], CellCompletion | None]] = deque()
        self._wake = threading.Event()
        self._idle_since: float | None = time.monotonic()
        self._cells_waiting_since = 0.0
        self._closed = False
        self._writer: threading.Thread | None = None
        self._writer_error: BaseException | None = None
        # Rows the writer could not store (newest last), and runs deleted while they recorded.
        self.rejected: deque[dict[str, Any]] = deque(maxlen=MAX_REJECTED)
        self.vanished: set[str] = set()
        self._rejected_warned = False
        migrate(self)

    def _connect(self, target: str, *, uri: bool) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                target,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
                uri=uri,
                factory=_Connection,
            )
        except sqlite3.Error as exc:
            raise store_fault(exc, self.path) or MlopsError(
                f"cannot open the store {self.path}: {exc}"
            ) from exc
        conn.store_path = str(self.path)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not uri:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA user_version").fetchone()
        except sqlite3.Error as exc:  # not a fault of the file: still one line
            conn.close()
            raise MlopsError(f"cannot open the store {self.path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_read_only(self) -> sqlite3.Connection:
        """Open for reading only; ``immutable`` when SQLite cannot make its shared-memory file
        beside a store with no write-ahead log to read."""
        base = "file:" + urllib.parse.quote(str(self.path))
        try:
            return self._connect(base + "?mode=ro", uri=True)
        except StoreError:
            wal = self.path.with_name(self.path.name + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise
            return self._connect(base + "?mode=ro&immutable=1", uri=True)

    def check_file(self) -> None:
        """Raise StoreGoneError if the store's file was deleted, replaced or emptied."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            what = "was deleted"
        except OSError:
            return
        else:
            if (stat.st_dev, stat.st_ino) != self._identity:
                what = "was replaced by another file"
            elif stat.st_size == 0:
                what = "was emptied (0 bytes)"
            else:
                return
        raise StoreGoneError(str(self.path), what)

    # -- transactions and buffered writes ---------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: takes the write lock before reading."""
        with self._lock:
            if self.read_only:
                raise StoreReadOnlyError(str(self.path))
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    # SQLite may have rolled back by itself (a full disk): no second error.
                    with contextlib.suppress(sqlite3.Error, StoreError):
                        self.conn.execute("ROLLBACK")
                raise

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
        metrics: list[tuple[str, str, int, float | None, float, int | None]],
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
                        conn.executemany(_INSERT_METRIC, metrics)
                        _upsert_latest(conn, metrics)
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
        metrics: list[tuple[str, str, int, float | None, float, int | None]],
        cell_rows: list[tuple[Any, ...]],
    ) -> None:
        stored = []
        for row in metrics:
            try:
                conn.execute(_INSERT_METRIC, row)
            except _ROW_ERRORS as exc:
                self._set_aside("metric", row, exc)
                continue
            stored.append(row)
        if stored:
            _upsert_latest(conn, stored)
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

    def run_exists(self, run_id: str) -> bool:
        """Whether the store still has this run."""
        return (
            self.conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is not None
        )

    def _vanish(self, run_id: str) -> None:
        """A run was deleted while this process recorded it: stop writing it, say so once."""
        if run_id in self.vanished:
            return
        self.vanished.add(run_id)
        warnings.warn(f"jupyter-mlops: {RunVanishedError(run_id)}", RuntimeWarning, stacklevel=2)

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

    # -- runs ------------------------------------------------------------------------------

    def insert_run(self, row: dict[str, Any], tags: dict[str, str] | None = None) -> None:
        """Create a run row (and its tags) in one transaction."""
        with self.transaction():
            _insert(self.conn, "runs", _encode_run(row))
            if tags:
                self._put_tags(row["id"], tags)

    @_for_run
    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set some columns of a run."""
        with self.transaction():
            encoded = _encode_run(fields)
            if encoded:
                assignments = ", ".join(f"{_column(name)} = ?" for name in encoded)
                self.conn.execute(
                    f"UPDATE runs SET {assignments} WHERE id = ?", [*encoded.values(), run_id]
                )

    def finish_run(self, run_id: str, **fields: Any) -> None:
        """Flush the run's buffered rows, then set its final columns."""
        self.flush()
        self.update_run(run_id, **fields)

    @_for_run
    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        """Add or replace tags of a run."""
        with self.transaction():
            self._put_tags(run_id, tags)

    def _put_tags(self, run_id: str, tags: dict[str, str]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO tags (run_id, key, value) VALUES (?, ?, ?)",
            [(run_id, key, value) for key, value in tags.items()],
        )

    def heartbeat(self, run_id: str, at: float) -> bool:
        """Record that a run's process is alive (reviving a run wrongly thought crashed);
        False when the run is no longer in the store (it was deleted)."""
        if run_id in self.vanished:
            return False
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET heartbeat = ?, status = 'running', end_time = NULL, error = NULL"
                " WHERE id = ? AND status IN ('running', 'crashed')",
                (at, run_id),
            )
            if self.run_exists(run_id):
                return True
        self._vanish(run_id)
        return False

    def mark_runs(self, run_ids: Sequence[str], status: str, at: float, error: str) -> None:
        """End runs that are still ``running`` with a status (used for crashed runs)."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE runs SET status = ?, end_time = COALESCE(heartbeat, start_time),"
                " error = ? WHERE id = ? AND status = 'running'",
                [(status, error, run_id) for run_id in run_ids],
            )

    def end_running(self, run_id: str, status: str, at: float, error: str) -> None:
        """End a run with a status at a time, if it is still ``running``."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, end_time = ?, error = ? WHERE id = ?"
                " AND status = 'running'",
                (status, at, error, run_id),
            )

    def running_runs(self) -> list[dict[str, Any]]:
        """Runs whose status says ``running``: id, pid, host, heartbeat, process start."""
        self.flush()
        cursor = self.conn.execute(
            "SELECT id, pid, host, heartbeat, start_time, process_start FROM runs"
            " WHERE status = 'running'"
        )
        return _dicts(cursor)

    def get_run(self, run_id: str) -> dict[str, Any]:
        """One run's row with its tags; raises RunNotFoundError."""
        self.flush()
        cursor = self.conn.execute(
            f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE id = ?", (run_id,)
        )
        rows = _dicts(cursor)
        if not rows:
            raise RunNotFoundError(run_id)
        run = _decode_run(rows[0])
        run["tags"] = self.tags([run_id])[run_id]
        return run

    def resolve_run(self, ref: str) -> str:
        """A run id from a full id, a unique id prefix, or a name (the newest of that name)."""
        self.flush()
        ref = storable_text(ref.strip())  # no stored id or name holds a lone surrogate
        if not ref:
            raise RunNotFoundError(ref)
        conn = self.conn
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (ref,)).fetchone():
            return ref
        matches: list[str] = []
        if all(c in "0123456789abcdef" for c in ref.lower()):
            matches = [
                row[0]
                for row in conn.execute(
                    "SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 6",
                    (ref.lower(), ref.lower() + "g"),
                )
            ]
            if len(matches) == 1:
                return matches[0]
        named = conn.execute(
            "SELECT id FROM runs WHERE name = ? ORDER BY start_time DESC LIMIT 1", (ref,)
        ).fetchone()
        if named:
            return str(named[0])
        if matches:
            raise AmbiguousRunError(ref, matches)
        raise RunNotFoundError(ref)

    def list_runs(
        self,
        *,
        where: Node | None = None,
        notebook: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        order_by: str | None = None,
        descending: bool = True,
    ) -> list[dict[str, Any]]:
        """Runs newest first (or by ``order_by``: a run column, ``params.K`` or ``metrics.K``,
        missing values last), each with ``params``, ``metrics`` (latest) and ``tags``."""
        self.flush()
        condition, args = _run_filter(self.full_ids(where), notebook)
        query = f"SELECT {', '.join('r.' + c for c in RUN_COLUMNS)} FROM runs r{condition}"
        order, order_args = _run_order(order_by, descending)
        query += order
        args.extend(order_args)
        if limit is not None:
            query += " LIMIT ? OFFSET ?"
            args.extend([limit, offset])
        runs = [_decode_run(row) for row in _dicts(self.conn.execute(query, args))]
        ids = [run["id"] for run in runs]
        params = self.params(ids)
        metrics = self.latest_metrics(ids)
        tags = self.tags(ids)
        replayed = self.replay_summaries(ids)
        for run in runs:
            run["params"] = params[run["id"]]
            run["metrics"] = {k: v["value"] for k, v in metrics[run["id"]].items()}
            run["tags"] = tags[run["id"]]
            run["replay_summary"] = replayed[run["id"]]
        return runs

    def replay_summaries(self, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """For each run: how often it was replayed, and the latest replay's verdict, state and
        run (None when never)."""
        out: dict[str, dict[str, Any]] = {
            run_id: {"count": 0, "verdict": None, "state": None, "run_id": None}
            for run_id in run_ids
        }
        for original, verdict, state, replay_run in self._select_for_runs(
            "SELECT original_id, verdict, state, replay_run_id FROM replays"
            " WHERE original_id IN ({}) ORDER BY start_time, id",
            run_ids,
        ):
            summary = out[original]
            summary.update(count=summary["count"] + 1, verdict=verdict, state=state)
            summary["run_id"] = replay_run
        return out

    def count_runs(
        self, *, where: Node | None = None, notebook: str | None = None, upto: int | None = None
    ) -> int:
        """How many runs match the same filters as ``list_runs``; with ``upto``, counting stops
        there (an expression is tested run by run, so an exact count reads the whole store)."""
        self.flush()
        condition, args = _run_filter(self.full_ids(where), notebook)
        if upto is None:
            sql = f"SELECT count(*) FROM runs r{condition}"
        else:
            sql = f"SELECT count(*) FROM (SELECT 1 FROM runs r{condition} LIMIT ?)"
            args.append(upto)
        return int(self.conn.execute(sql, args).fetchone()[0])

    def full_ids(self, where: Node | None) -> Node | None:
        """The filter with each ``id``, ``parent`` or ``sweep`` given as a unique prefix of at
        least ``MIN_ID_PREFIX`` characters compared by its full id; an ambiguous one raises."""
        return None if where is None else self._full_ids(where)

    def _full_ids(self, where: Node) -> Node:
        from .query import BoolOp, Comparison, Not

        if isinstance(where, BoolOp):
            return BoolOp(where.op, self._full_ids(where.left), self._full_ids(where.right))
        if isinstance(where, Not):
            return Not(self._full_ids(where.operand))
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
            for row in self.conn.execute(
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

    def delete_run(self, run_id: str) -> None:
        """Delete a run and every row that belongs to it (blobs stay: others may share them)."""
        self.flush()
        with self.transaction() as conn:
            for table in RUN_CHILD_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            conn.execute(
                "DELETE FROM replays WHERE original_id = ? OR replay_run_id = ?", (run_id, run_id)
            )
            conn.execute("UPDATE runs SET parent_id = NULL WHERE parent_id = ?", (run_id,))
            if conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount == 0:
                raise RunNotFoundError(run_id)

    def delete_tags(self, run_id: str, keys: Sequence[str]) -> None:
        """Remove tags of a run by key."""
        with self.transaction() as conn:
            conn.executemany(
                "DELETE FROM tags WHERE run_id = ? AND key = ?", [(run_id, k) for k in keys]
            )

    # -- replays -----------------------------------------------------------------------------

    def insert_replay(self, row: dict[str, Any]) -> None:
        """Create a replay row (``report`` and ``options`` given as plain data)."""
        with self.transaction():
            _insert(self.conn, "replays", _encode_replay(row))

    def update_replay(self, replay_id: str, **fields: Any) -> None:
        """Set some columns of a replay."""
        encoded = _encode_replay(fields)
        if not encoded:
            return
        assignments = ", ".join(f"{_column(name)} = ?" for name in encoded)
        with self.transaction() as conn:
            conn.execute(
                f"UPDATE replays SET {assignments} WHERE id = ?", [*encoded.values(), replay_id]
            )

    def get_replay(self, replay_id: str) -> dict[str, Any] | None:
        """One replay's row, or None."""
        rows = _dicts(self.conn.execute("SELECT * FROM replays WHERE id = ?", (replay_id,)))
        return _decode_replay(rows[0]) if rows else None

    def replays(
        self, *, original_id: str | None = None, replay_run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Replays of an original run, or the replay that made a run; newest first."""
        if original_id is not None:
            sql, arg = "original_id = ?", original_id
        elif replay_run_id is not None:
            sql, arg = "replay_run_id = ?", replay_run_id
        else:
            raise ValueError("give original_id or replay_run_id")
        cursor = self.conn.execute(
            f"SELECT * FROM replays WHERE {sql} ORDER BY start_time DESC, id", (arg,)
        )
        return [_decode_replay(row) for row in _dicts(cursor)]

    # -- params, tags, metrics -------------------------------------------------------------

    @_for_run
    def set_params(self, run_id: str, params: dict[str, str]) -> list[tuple[str, str, str]]:
        """Store params (values already encoded as JSON text), replacing same keys; a value
        replaced by another goes to the param's history. The replaced ``(key, old, new)``."""
        now = time.time()
        with self.transaction() as conn:
            keys = list(params)
            # The keys given, by the (run_id, key) key; a dict larger than SQLite binds at once
            # is compared against every param of the run.
            earlier = (
                conn.execute(
                    "SELECT key, value FROM params WHERE run_id = ? AND key IN"
                    f" ({', '.join('?' * len(keys))})",
                    [run_id, *keys],
                )
                if len(keys) <= 500
                else conn.execute("SELECT key, value FROM params WHERE run_id = ?", (run_id,))
            )
            replaced = [
                (key, old, params[key])
                for key, old in earlier
                if key in params and old != params[key]
            ]
            conn.executemany(
                "INSERT OR IGNORE INTO param_history (run_id, key, value, time)"
                " VALUES (?, ?, ?, ?)",
                [(run_id, key, old, now) for key, old, _ in replaced],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO params (run_id, key, value) VALUES (?, ?, ?)",
                [(run_id, key, value) for key, value in params.items()],
            )
        return replaced

    def param_history(self, run_id: str) -> dict[str, list[dict[str, Any]]]:
        """Each re-logged param's earlier values, oldest first, with when they were replaced."""
        out: dict[str, list[dict[str, Any]]] = {}
        for key, value, at in self.conn.execute(
            "SELECT key, value, time FROM param_history WHERE run_id = ? ORDER BY key, time",
            (run_id,),
        ):
            out.setdefault(key, []).append({"value": json.loads(value), "replaced": at})
        return out

    def params(self, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Params of each run, decoded from JSON."""
        out: dict[str, dict[str, Any]] = {run_id: {} for run_id in run_ids}
        for run_id, key, value in self._select_for_runs(
            "SELECT run_id, key, value FROM params WHERE run_id IN ({}) ORDER BY key", run_ids
        ):
            out[run_id][key] = json.loads(value)
        return out

    def tags(self, run_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """Tags of each run."""
        out: dict[str, dict[str, str]] = {run_id: {} for run_id in run_ids}
        for run_id, key, value in self._select_for_runs(
            "SELECT run_id, key, value FROM tags WHERE run_id IN ({}) ORDER BY key", run_ids
        ):
            out[run_id][key] = value
        return out

    def latest_metrics(self, run_ids: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """The latest point of every metric of each run: key -> {step, value, time}."""
        self.flush()
        out: dict[str, dict[str, dict[str, Any]]] = {run_id: {} for run_id in run_ids}
        for run_id, key, step, value, at in self._select_for_runs(
            "SELECT run_id, key, step, value, time FROM latest_metrics WHERE run_id IN ({})"
            " ORDER BY key",
            run_ids,
        ):
            out[run_id][key] = {"step": step, "value": _metric_value(value), "time": at}
        return out

    def metric_series(self, run_id: str, key: str) -> list[dict[str, Any]]:
        """Every point of one metric in logging order: step, value, time, cell."""
        self.flush()
        cursor = self.conn.execute(
            "SELECT step, value, time, cell_seq FROM metrics WHERE run_id = ? AND key = ?"
            " ORDER BY rowid",
            (run_id, key),
        )
        return [
            {"step": step, "value": _metric_value(value), "time": at, "cell": cell}
            for step, value, at, cell in cursor
        ]

    def metric_lengths(self, run_id: str) -> dict[str, int]:
        """How many points each metric of a run has (counted in the index, not read)."""
        self.flush()
        cursor = self.conn.execute(
            "SELECT key, count(*) FROM metrics WHERE run_id = ? GROUP BY key", (run_id,)
        )
        return {key: int(count) for key, count in cursor}

    def metric_series_thinned(
        self, run_id: str, key: str, max_points: int
    ) -> tuple[list[dict[str, Any]], int]:
        """One metric's points in logging order, at most ``max_points`` of them, and how many
        there are: the whole series when it fits, else its first, last, lowest and highest
        point in each of ``max_points // 4`` equal stretches, picked in SQL."""
        self.flush()
        count, first, last = self.conn.execute(
            "SELECT count(*), min(rowid), max(rowid) FROM metrics WHERE run_id = ? AND key = ?",
            (run_id, key),
        ).fetchone()
        if count <= max_points:
            return self.metric_series(run_id, key), int(count)
        buckets = max(1, max_points // 4)
        width = math.ceil((last - first + 1) / buckets)
        # Stretches of logging positions (rowids); in each, four correlated lookups pick the
        # rows, so a scan of each stretch happens in SQLite and only the picks reach Python.
        # min() and max() alone in a SELECT give the bare rowid of the row they chose, and
        # skip NaN (stored as NULL); a stretch of NaN only still keeps its first and last.
        stretch = (
            "FROM metrics NOT INDEXED WHERE rowid >= b.lo AND rowid < b.hi"
            " AND run_id = :run AND key = :key"
        )
        cursor = self.conn.execute(
            "WITH RECURSIVE bucket(lo, hi) AS (SELECT :first, :first + :width"
            " UNION ALL SELECT hi, hi + :width FROM bucket WHERE hi <= :last)"
            " SELECT step, value, time, cell_seq FROM metrics WHERE rowid IN ("
            f" SELECT (SELECT rowid {stretch} ORDER BY rowid LIMIT 1) FROM bucket b"
            f" UNION ALL SELECT (SELECT rowid {stretch} ORDER BY rowid DESC LIMIT 1)"
            " FROM bucket b"
            f" UNION ALL SELECT (SELECT r FROM (SELECT rowid AS r, min(value) {stretch}))"
            " FROM bucket b"
            f" UNION ALL SELECT (SELECT r FROM (SELECT rowid AS r, max(value) {stretch}))"
            " FROM bucket b"
            ") ORDER BY rowid",
            {"first": first, "last": last, "width": width, "run": run_id, "key": key},
        )
        return [_metric_point(row) for row in cursor], int(count)

    def iter_metric_series(self, run_id: str, key: str) -> Iterator[dict[str, Any]]:
        """Every point of one metric in logging order, read from a cursor as they are used."""
        self.flush()
        cursor = self.conn.execute(
            "SELECT step, value, time, cell_seq FROM metrics WHERE run_id = ? AND key = ?"
            " ORDER BY rowid",
            (run_id, key),
        )
        try:
            while rows := cursor.fetchmany(1_000):
                yield from map(_metric_point, rows)
        finally:
            cursor.close()

    @contextlib.contextmanager
    def time_limit(self, seconds: float, error: MlopsError) -> Iterator[None]:
        """Queries in this block that run past ``seconds`` stop and raise ``error``."""
        deadline = time.monotonic() + seconds

        def past_deadline() -> int:
            return 1 if time.monotonic() > deadline else 0

        # Under the lock: the handler is the connection's, and no other thread's write
        # transaction may be interrupted by it.
        with self._lock:
            self.conn.set_progress_handler(past_deadline, 20_000)
            try:
                yield
            except sqlite3.OperationalError as exc:
                if "interrupt" in str(exc):
                    raise error from None
                raise
            finally:
                self.conn.set_progress_handler(None, 0)

    def metric_points_since(
        self,
        run_id: str,
        key: str,
        after: int = 0,
        every: int = 1,
        *,
        budget: int | None = None,
        flush: bool = True,
    ) -> tuple[list[tuple[int, float]], int, int]:
        """(step, value) of one metric's points logged after position ``after`` (0 for all),
        in logging order, about one in ``every`` of them (more sparsely if that would give
        over ``budget`` points) and the last; then the position to pass next time and the
        ``every`` used. ``flush=False`` reads what the writer has stored, without writing."""
        if flush:
            self.flush()
        # After the first read, the new points are at the end of the table: a rowid range scan
        # reads only them, where the (run_id, key, step) index would walk every point again.
        source = "metrics NOT INDEXED" if after else "metrics"
        match = "run_id = ? AND key = ?"
        last = self.conn.execute(
            f"SELECT rowid, step, value FROM {source} WHERE rowid > ? AND {match}"
            " ORDER BY rowid DESC LIMIT 1",
            (after, run_id, key),
        ).fetchone()
        if last is None:
            return [], after, every
        if budget is not None:
            start = after
            if not after:
                first = self.conn.execute(
                    f"SELECT min(rowid) FROM metrics WHERE {match}", (run_id, key)
                ).fetchone()
                start = int(first[0]) - 1
            # Rows since ``start``, of every run and key: at least as many as this metric's.
            every = max(every, math.ceil((last[0] - start) / max(budget, 1)))
        if every <= 1:
            rows = self.conn.execute(
                f"SELECT rowid, step, value FROM {source} WHERE rowid > ? AND rowid < ?"
                f" AND {match} ORDER BY rowid",
                (after, last[0], run_id, key),
            )
        else:
            # Thinned by a cheap test of the rowid, made before the row is decoded; its hash
            # keeps metrics logged in turn (rowids odd and even) from hiding one another.
            rows = self.conn.execute(
                f"SELECT rowid, step, value FROM {source} WHERE rowid > ? AND rowid < ?"
                " AND (((rowid % 4294967291) * 2654435761) >> 12) % ? = 0"
                f" AND {match} ORDER BY rowid",
                (after, last[0], every, run_id, key),
            )
        points = [(step, _metric_value(value)) for _, step, value in rows]
        points.append((last[1], _metric_value(last[2])))
        return points, int(last[0]), every

    def cells(self, run_id: str, *, prelude: bool = False) -> list[dict[str, Any]]:
        """A run's cell executions in the order they ran; ``prelude``: only the cells its
        kernel ran before it started (their ``seq`` is below 1)."""
        self.flush()
        cursor = self.conn.execute(
            f"SELECT {', '.join(CELL_COLUMNS[1:])}"
            f" FROM cells WHERE run_id = ? AND seq {'<= 0' if prelude else '> 0'} ORDER BY seq",
            (run_id,),
        )
        rows = _dicts(cursor)
        for row in rows:
            for column in CELL_JSON_COLUMNS:
                row[column] = json.loads(row[column]) if row[column] else None
        return rows

    @_for_run
    def set_cell_facts(self, run_id: str, facts: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Store what cells read, wrote and seeded (worked out from their source later)."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE cells SET reads = ?, writes = ?, seeds = ? WHERE run_id = ? AND seq = ?",
                [
                    (
                        _json_or_null(fact.get("reads")),
                        _json_or_null(fact.get("writes")),
                        _json_or_null(fact.get("seeds")),
                        run_id,
                        seq,
                    )
                    for seq, fact in facts
                ],
            )

    def set_cell_numbers(self, run_id: str, numbers: Sequence[tuple[int, int | None]]) -> None:
        """Store each cell's number in the saved notebook (worked out when the run ends)."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE cells SET cell_number = ? WHERE run_id = ? AND seq = ?",
                [(number, run_id, seq) for seq, number in numbers],
            )

    @_for_run
    def add_dataset(self, row: dict[str, Any]) -> None:
        """Record (or replace) a named dataset of a run."""
        encoded = dict(row)
        for column in ("shape", "schema", "profile"):
            if encoded.get(column) is not None:
                encoded[column] = json.dumps(encoded[column], allow_nan=False, default=str)
        with self.transaction():
            _insert(self.conn, "datasets", encoded, replace=True)

    def datasets(self, run_id: str, context: str = "training") -> list[dict[str, Any]]:
        """A run's datasets of one context (training data, or serving samples) in the order
        they were recorded."""
        self.flush()
        cursor = self.conn.execute(
            "SELECT name, hash, kind, shape, schema, profile, path, size_bytes, cell_seq, time,"
            " context FROM datasets WHERE run_id = ? AND context = ? ORDER BY time",
            (run_id, context),
        )
        rows = _dicts(cursor)
        for row in rows:
            for column in ("shape", "schema", "profile"):
                row[column] = json.loads(row[column]) if row[column] else None
        return rows

    def add_data_check(self, row: dict[str, Any]) -> None:
        """Record a data check (``report`` given as plain data)."""
        encoded = dict(row, report=json.dumps(row["report"], allow_nan=False, default=str))
        with self.transaction():
            _insert(self.conn, "data_checks", encoded)

    def data_checks(self, run_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """Data checks made in a run or against its datasets, newest first, reports decoded."""
        self.flush()
        cursor = self.conn.execute(
            "SELECT * FROM data_checks WHERE run_id = ? OR baseline_run = ?"
            " ORDER BY time DESC, id LIMIT ?",
            (run_id, run_id, limit),
        )
        rows = _dicts(cursor)
        for row in rows:
            row["passed"] = bool(row["passed"])
            row["report"] = json.loads(row["report"]) if row["report"] else None
        return rows

    def blob_path(self, digest: str) -> Path:
        """Where the blob of a content hash lives."""
        return self.blobs / digest[:2] / digest[2:]

    def put_blob(self, digest: str, source: Path | bytes) -> Path:
        """Store content under its hash once; a second put of the same hash is free."""
        target = self.blob_path(digest)
        if target.exists():
            return target
        if self.read_only:
            raise StoreReadOnlyError(str(self.path))
        partial = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(source, bytes):
                partial.write_bytes(source)
            else:
                shutil.copyfile(source, partial)
            os.replace(partial, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                partial.unlink()
            fault = store_fault(exc, self.blobs)
            if fault is None:
                raise
            raise fault from exc
        return target

    @_for_run
    def add_artifact(self, row: dict[str, Any]) -> None:
        """Record an artifact of a run (its blob must already be stored)."""
        with self.transaction():
            _insert(self.conn, "artifacts", row, replace=True)

    def artifacts(self, run_id: str) -> list[dict[str, Any]]:
        """A run's artifacts in the order they were recorded; ``present`` says whether the
        stored copy is still there (a blob deleted by hand is listed as missing)."""
        self.flush()
        cursor = self.conn.execute(
            "SELECT name, hash, kind, size_bytes, source, cell_seq, time FROM artifacts"
            " WHERE run_id = ? ORDER BY time",
            (run_id,),
        )
        rows = _dicts(cursor)
        for row in rows:
            row["present"] = self.blob_path(row["hash"]).is_file()
        return rows

    # -- the model registry --------------------------------------------------------------------

    def add_model_version(self, row: dict[str, Any]) -> int:
        """Register the next version of a model name (``row`` without ``version``); its number."""
        with self.transaction() as conn:
            latest = conn.execute(
                "SELECT max(version) FROM model_versions WHERE name = ?", (row["name"],)
            ).fetchone()[0]
            version = int(latest or 0) + 1
            encoded = dict(row, version=version, data_hashes=_json_or_null(row["data_hashes"]))
            _insert(conn, "model_versions", encoded)
        return version

    def model_versions(
        self, name: str | None = None, *, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Registered versions (of one name, or of one run's models), by name then version,
        each with the ``aliases`` that name it."""
        clauses, args = [], []
        if name is not None:
            clauses.append("v.name = ?")
            args.append(name)
        if run_id is not None:
            clauses.append("v.run_id = ?")
            args.append(run_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = _dicts(
            self.conn.execute(
                "SELECT v.*, (SELECT json_group_array(a.alias) FROM model_aliases a"
                " WHERE a.name = v.name AND a.version = v.version) AS aliases"
                f" FROM model_versions v{where} ORDER BY v.name, v.version",
                args,
            )
        )
        for row in rows:
            row["data_hashes"] = json.loads(row["data_hashes"]) if row["data_hashes"] else {}
            row["aliases"] = sorted(json.loads(row["aliases"]))
        return rows

    def model_alias(self, name: str, alias: str) -> int | None:
        """The version an alias of a model name points at, if any."""
        row = self.conn.execute(
            "SELECT version FROM model_aliases WHERE name = ? AND alias = ?", (name, alias)
        ).fetchone()
        return int(row[0]) if row else None

    def set_model_alias(self, name: str, alias: str, version: int | None) -> bool:
        """Point an alias at a version of a name (moving it from another), or remove it with
        ``None``; False when that version is not registered."""
        with self.transaction() as conn:
            if version is None:
                conn.execute(
                    "DELETE FROM model_aliases WHERE name = ? AND alias = ?", (name, alias)
                )
                return True
            if not conn.execute(
                "SELECT 1 FROM model_versions WHERE name = ? AND version = ?", (name, version)
            ).fetchone():
                return False
            conn.execute(
                "INSERT OR REPLACE INTO model_aliases (name, alias, version, time)"
                " VALUES (?, ?, ?, ?)",
                (name, alias, version, time.time()),
            )
        return True

    def put_environment(self, env_id: str, env: dict[str, Any]) -> None:
        """Store an environment once by its id."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO environments (id, data, captured_at) VALUES (?, ?, ?)",
                (env_id, json.dumps(env, sort_keys=True, default=str), time.time()),
            )

    def environment(self, env_id: str) -> dict[str, Any] | None:
        """An environment by id."""
        row = self.conn.execute("SELECT data FROM environments WHERE id = ?", (env_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def _select_for_runs(self, sql: str, run_ids: Sequence[str]) -> Iterable[tuple[Any, ...]]:
        # SQLite limits bound variables per statement; page through long id lists.
        for start in range(0, len(run_ids), 500):
            chunk = run_ids[start : start + 500]
            yield from self.conn.execute(sql.format(", ".join("?" * len(chunk))), chunk)


# -- copying runs between stores; the runs each run is on an MLflow server ---------------------

# Tables whose rows belong to one run and are copied with it (besides its metric points); their
# keys make a second copy of a row a duplicate, which is ignored.
_COPIED_WITH_RUN = (
    "params",
    "param_history",
    "tags",
    "latest_metrics",
    "cells",
    "datasets",
    "artifacts",
    "data_checks",
)


def import_runs(
    store: Store, source: Path, origin: str, run_ids: Sequence[str] | None = None
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
                raise StoreError(
                    str(source),
                    f"the store {source} has schema version {version}, newer than this "
                    f"jupyter-mlops understands ({SCHEMA_VERSION}); upgrade jupyter-mlops "
                    "to import it",
                )
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


def _copy_runs(
    store: Store,
    conn: sqlite3.Connection,
    tables: set[str],
    origin: str,
    run_ids: Sequence[str] | None,
) -> dict[str, Any]:
    def shared_columns(table: str) -> list[str]:
        theirs = {row[1] for row in conn.execute(f"PRAGMA source.table_info({_column(table)})")}
        ours = [row[1] for row in conn.execute(f"PRAGMA main.table_info({_column(table)})")]
        return [name for name in ours if name in theirs]

    imported = "(SELECT id FROM temp.imported)"

    def copy(table: str, condition: str) -> int:
        """Copy the rows of a table that meet a condition and are not here yet."""
        listed = ", ".join(shared_columns(table))
        return int(
            conn.execute(
                f"INSERT OR IGNORE INTO main.{table} ({listed}) SELECT {listed}"
                f" FROM source.{table} WHERE {condition}"
            ).rowcount
        )

    with store.transaction():
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS imported (id TEXT PRIMARY KEY)")
        conn.execute("DELETE FROM temp.imported")
        wanted = ""
        if run_ids is not None:
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (id TEXT PRIMARY KEY)")
            conn.execute("DELETE FROM temp.wanted")
            conn.executemany(
                "INSERT OR IGNORE INTO temp.wanted VALUES (?)", [(i,) for i in run_ids]
            )
            wanted = " AND id IN (SELECT id FROM temp.wanted)"
        conn.execute(
            "INSERT INTO temp.imported SELECT id FROM source.runs"
            f" WHERE id NOT IN (SELECT id FROM main.runs){wanted}"
        )
        copied = [row[0] for row in conn.execute("SELECT id FROM temp.imported ORDER BY id")]
        offered = conn.execute(f"SELECT count(*) FROM source.runs WHERE 1{wanted}").fetchone()[0]
        counts: dict[str, int] = {}
        if copied:
            columns = [c for c in shared_columns("runs") if c != "origin"]
            listed = ", ".join(columns)
            # A run keeps the first origin it was given: copied on, it still names where it ran.
            first_origin = "COALESCE(origin, ?)" if "origin" in shared_columns("runs") else "?"
            conn.execute(
                f"INSERT INTO main.runs ({listed}, origin) SELECT {listed}, {first_origin}"
                " FROM source.runs WHERE id IN (SELECT id FROM temp.imported)",
                (origin,),
            )
            for table in ("metrics", *_COPIED_WITH_RUN):
                if table in tables:
                    # Metric points keep their logging order (rowid), which series are read in.
                    order = " ORDER BY rowid" if table == "metrics" else ""
                    counts[table] = copy(table, f"run_id IN {imported}{order}")
            counts["environments"] = copy(
                "environments", f"id IN (SELECT env_id FROM source.runs WHERE id IN {imported})"
            )
        if "replays" in tables:
            # Replays of a copied run, or that made one.
            counts["replays"] = copy(
                "replays", f"original_id IN {imported} OR replay_run_id IN {imported}"
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


def mlflow_links(
    store: Store, tracking_uri: str, run_ids: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """The MLflow run each run is on at a tracking server: run id -> mlflow_run_id,
    experiment_id, direction (export or import) and what was sent (decoded)."""
    store.flush()
    sql = (
        "SELECT run_id, mlflow_run_id, experiment_id, direction, sent FROM mlflow_runs"
        " WHERE tracking_uri = ?"
    )
    rows = list(store.conn.execute(sql, (tracking_uri,)))
    wanted = None if run_ids is None else set(run_ids)
    return {
        run_id: {
            "mlflow_run_id": mlflow_id,
            "experiment_id": experiment,
            "direction": direction,
            "sent": json.loads(sent) if sent else {},
        }
        for run_id, mlflow_id, experiment, direction, sent in rows
        if wanted is None or run_id in wanted
    }


def set_mlflow_link(
    store: Store,
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


def metric_points(store: Store, run_id: str) -> dict[str, list[tuple[int, float, float]]]:
    """Every point of every metric of a run, in logging order: key -> [(step, value, time)]."""
    store.flush()
    out: dict[str, list[tuple[int, float, float]]] = {}
    cursor = store.conn.execute(
        "SELECT key, step, value, time FROM metrics WHERE run_id = ? ORDER BY rowid", (run_id,)
    )
    for key, step, value, at in cursor:
        out.setdefault(key, []).append((step, _metric_value(value), at))
    return out


def insert_imported_run(
    store: Store,
    row: dict[str, Any],
    params: dict[str, str],
    tags: dict[str, str],
    metrics: Sequence[tuple[str, int, float | None, float]],
) -> None:
    """Create a run brought from elsewhere, with its params (JSON text), tags and metric
    points (key, step, value, time), in one transaction."""
    with store.transaction() as conn:
        _insert(conn, "runs", _encode_run(row))
        run_id = row["id"]
        if tags:
            store._put_tags(run_id, tags)
        conn.executemany(
            "INSERT OR REPLACE INTO params (run_id, key, value) VALUES (?, ?, ?)",
            [(run_id, key, value) for key, value in params.items()],
        )
        points: list[tuple[str, str, int, float | None, float, int | None]] = [
            (run_id, key, step, value, at, None) for key, step, value, at in metrics
        ]
        if points:
            conn.executemany(_INSERT_METRIC, points)
            _upsert_latest(conn, points)


# -- schema ----------------------------------------------------------------------------------


def _migration_1(db: Database) -> None:
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
    db.table("environments").create({"id": str, "data": str, "captured_at": float}, pk="id")


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


def migrate(store: Store) -> None:
    """Bring the schema up to ``SCHEMA_VERSION``; safe when several processes start at once."""
    conn = store.conn
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise StoreError(
            str(store.path),
            f"the store {store.path} has schema version {version}, newer than this "
            f"jupyter-mlops understands ({SCHEMA_VERSION}); upgrade jupyter-mlops",
        )
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


# -- the filter language, compiled to parameterized SQL ------------------------------------


def compile_where(node: Node) -> tuple[str, list[Any]]:
    """SQL for a parsed filter expression over ``runs r``, with its bound values."""
    from .query import BoolOp, Comparison, Not

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


def _run_filter(where: Node | None, notebook: str | None) -> tuple[str, list[Any]]:
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


def _run_order(order_by: str | None, descending: bool) -> tuple[str, list[Any]]:
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


# -- row encoding ----------------------------------------------------------------------------


def _json_or_null(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _column(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"not a column name: {name!r}")
    return name


def _insert(
    conn: sqlite3.Connection, table: str, row: dict[str, Any], *, replace: bool = False
) -> None:
    columns = [_column(name) for name in row]
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    conn.execute(
        f"{verb} INTO {_column(table)} ({', '.join(columns)})"
        f" VALUES ({', '.join('?' * len(columns))})",
        list(row.values()),
    )


def _not_stored(value: Any) -> None:
    """What a captured cell row holds besides its columns (working state) is not stored."""
    return None


def _upsert_latest(
    conn: sqlite3.Connection, metrics: list[tuple[str, str, int, float | None, float, int | None]]
) -> None:
    # One row a (run, key): the last point logged.
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


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def _encode_run(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for column in _JSON_RUN_COLUMNS:
        if column in out and out[column] is not None:
            out[column] = json.dumps(out[column])
    if "linear" in out and out["linear"] is not None:
        out["linear"] = int(bool(out["linear"]))
    return out


def _decode_run(row: dict[str, Any]) -> dict[str, Any]:
    for column in _JSON_RUN_COLUMNS:
        if row.get(column):
            row[column] = json.loads(row[column])
    if row.get("linear") is not None:
        row["linear"] = bool(row["linear"])
    return row


def _encode_replay(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("report", "options"):
        if key in out and out[key] is not None:
            out[key] = json.dumps(out[key], allow_nan=True)
    return out


def _decode_replay(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("report", "options"):
        if row.get(key):
            row[key] = json.loads(row[key])
    return row


def _metric_point(row: tuple[Any, ...]) -> dict[str, Any]:
    step, value, at, cell = row
    return {"step": step, "value": _metric_value(value), "time": at, "cell": cell}


def _metric_value(value: float | None) -> float:
    # SQLite stores NaN as NULL; a metric point always has a value, so NULL means NaN.
    return float("nan") if value is None else value
