"""The tracking store: one SQLite file plus content-addressed blobs. The only package with SQL.

Every write is one short ``BEGIN IMMEDIATE`` transaction, so several kernels, workers and the
server can write at once. Hot rows (metrics, cell executions) are buffered and written in
bounded batches by a background thread (writer.py); any read in this process flushes that
buffer first. Faults of the file (read-only, full, locked, damaged, deleted) are raised as
one-line ``StoreError``s; a store without write access opens read-only (connection.py).
sqlite-utils defines and migrates the schema (migrations.py); rows are written with plain
parameterized SQL, which keeps pandas out of a process that never asked for it.

``Store`` combines the queries of each concern: runs, params, metrics, cells, datasets and
artifacts, replays, the model registry. Copying runs between stores and to and from MLflow are
functions on a store (transfer.py).
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..errors import StoreNotFoundError
from .cells import CellQueries
from .connection import (
    BUSY_TIMEOUT_MS,
    DB_NAME,
    creating,
    find_store_dir,
    fold_log,
    store_fault,
)
from .data import DataQueries
from .filters import compile_where
from .metrics import metric_points
from .migrations import MIGRATIONS, SCHEMA_VERSION, migrate
from .models import ModelQueries
from .runs import RunQueries
from .schema import CELL_COLUMNS, CELL_JSON_COLUMNS, RUN_CHILD_TABLES, RUN_COLUMNS
from .transfer import import_runs, insert_imported_run, mlflow_links, set_mlflow_link
from .writer import CELL_LATE_S, CELL_MAX_AGE_S, FLUSH_INTERVAL_S, CellCompletion

__all__ = [
    "BUSY_TIMEOUT_MS",
    "CELL_COLUMNS",
    "CELL_JSON_COLUMNS",
    "CELL_LATE_S",
    "CELL_MAX_AGE_S",
    "DB_NAME",
    "FLUSH_INTERVAL_S",
    "MIGRATIONS",
    "RUN_CHILD_TABLES",
    "RUN_COLUMNS",
    "SCHEMA_VERSION",
    "CellCompletion",
    "Store",
    "close_all",
    "compile_where",
    "find_store_dir",
    "fold_log",
    "import_runs",
    "insert_imported_run",
    "metric_points",
    "mlflow_links",
    "open_store",
    "set_mlflow_link",
    "store_fault",
]


class Store(RunQueries, CellQueries, DataQueries, ModelQueries):
    """One tracking store: ``tracking.db`` and ``blobs/`` in a folder."""

    def __init__(self, directory: Path) -> None:
        with creating(directory):
            super().__init__(directory)
            migrate(self)


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
