"""The store's file: where it lives, opening it (WAL, busy timeout, read-only when it must),
one-line errors for its faults, and short ``BEGIN IMMEDIATE`` transactions."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import sqlite3
import sys
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from ..errors import (
    MlopsError,
    RunVanishedError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreGoneError,
    StoreLockedError,
    StoreReadOnlyError,
)
from ..kernel_env import STORE_DIR

_Method = TypeVar("_Method", bound=Callable[..., Any])

DB_NAME = "tracking.db"
# Beside the database: held by the one process making a new store while others wait for it.
CREATION_LOCK = ".creation.lock"
# How long a write waits for another process's write lock: a write from a cell's thread must
# not hold the cell up for long. The writer thread keeps its rows and tries again.
BUSY_TIMEOUT_MS = 2_000


def find_store_dir(start: Path | None = None) -> Path:
    """Where the store lives: JUPYTER_MLOPS_DIR, the nearest .mlops/, the git root, or here."""
    configured = os.environ.get(STORE_DIR)
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


def fold_log(directory: Path) -> None:
    """Fold the write-ahead log of a closed store into its database file (before a copy)."""
    conn = sqlite3.connect(directory / DB_NAME)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


@contextlib.contextmanager
def creating(directory: Path) -> Iterator[None]:
    """Hold other processes off while this one makes a new store in ``directory`` (sweep
    workers or kernels may open the same new store at once); costs nothing once it exists."""
    path = directory / DB_NAME
    if path.is_file() and path.stat().st_size > 0:
        yield
        return
    lock = _creation_lock(directory)
    try:
        if lock is not None:
            _hold(lock)
        yield
    finally:
        if lock is not None:
            os.close(lock)  # which frees the lock


def _creation_lock(directory: Path) -> int | None:
    """The creation lock file, open; None where it cannot be made (then the store's own
    opening says what is wrong)."""
    if sys.platform == "win32":
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        return os.open(directory / CREATION_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None


def _hold(lock: int) -> None:
    if sys.platform != "win32":
        import fcntl

        fcntl.flock(lock, fcntl.LOCK_EX)


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


def for_run(method: _Method) -> _Method:
    """A write to one run, skipped once the run was deleted under it (one warning says so)."""

    @functools.wraps(method)
    def write(self: StoreFile, target: Any, *args: Any, **kwargs: Any) -> Any:
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


class StoreFile:
    """The open ``tracking.db`` of a store folder, and the ``blobs/`` folder beside it."""

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
                # Past the store's constructors and open_store: the line that opened it.
                stacklevel=5,
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
        # Runs deleted while this process recorded them.
        self.vanished: set[str] = set()

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
            # The file keeps the mode: only the process that makes the store switches it.
            if not uri and conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
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

    def _select_for_runs(self, sql: str, run_ids: Sequence[str]) -> Iterable[tuple[Any, ...]]:
        # SQLite limits bound variables per statement; page through long id lists.
        for start in range(0, len(run_ids), 500):
            chunk = run_ids[start : start + 500]
            yield from self.conn.execute(sql.format(", ".join("?" * len(chunk))), chunk)
