"""What a run used and made: its datasets (training data and serving samples), the checks of
new data against them, its artifacts, and the content-addressed blobs that hold them."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from ..errors import StoreReadOnlyError
from ..vocabulary import DATA_CONTEXTS
from .connection import for_run, store_fault
from .rows import dicts, insert
from .schema import DATASET_JSON_COLUMNS
from .writer import BufferedWrites

# How many of the data checks of a run are read back (a run checked in a loop has many).
CHECKS_SHOWN = 100


class DataQueries(BufferedWrites):
    """Datasets, data checks, artifacts and blobs of runs."""

    @for_run
    def add_dataset(self, row: dict[str, Any]) -> None:
        """Record (or replace) a named dataset of a run."""
        encoded = dict(row)
        for column in DATASET_JSON_COLUMNS:
            if encoded.get(column) is not None:
                encoded[column] = json.dumps(encoded[column], allow_nan=False, default=str)
        with self.transaction():
            insert(self.conn, "datasets", encoded, replace=True)

    def datasets(self, run_id: str, context: str = DATA_CONTEXTS[0]) -> list[dict[str, Any]]:
        """A run's datasets of one context (training data, or serving samples) in the order
        they were recorded."""
        self.flush()
        cursor = self.conn.execute(
            "SELECT name, hash, kind, shape, schema, profile, path, size_bytes, cell_seq, time,"
            " context FROM datasets WHERE run_id = ? AND context = ? ORDER BY time",
            (run_id, context),
        )
        rows = dicts(cursor)
        for row in rows:
            for column in DATASET_JSON_COLUMNS:
                row[column] = json.loads(row[column]) if row[column] else None
        return rows

    def add_data_check(self, row: dict[str, Any]) -> None:
        """Record a data check (``report`` given as plain data)."""
        encoded = dict(row, report=json.dumps(row["report"], allow_nan=False, default=str))
        with self.transaction():
            insert(self.conn, "data_checks", encoded)

    def data_checks(self, run_id: str) -> list[dict[str, Any]]:
        """Data checks made in a run or against its datasets, newest first (the latest
        ``CHECKS_SHOWN``), reports decoded."""
        self.flush()
        cursor = self.conn.execute(
            "SELECT * FROM data_checks WHERE run_id = ? OR baseline_run = ?"
            " ORDER BY time DESC, id LIMIT ?",
            (run_id, run_id, CHECKS_SHOWN),
        )
        rows = dicts(cursor)
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

    @for_run
    def add_artifact(self, row: dict[str, Any]) -> None:
        """Record an artifact of a run (its blob must already be stored)."""
        with self.transaction():
            insert(self.conn, "artifacts", row, replace=True)

    def artifacts(self, run_id: str) -> list[dict[str, Any]]:
        """A run's artifacts in the order they were recorded; ``present`` says whether the
        stored copy is still there (a blob deleted by hand is listed as missing)."""
        self.flush()
        cursor = self.conn.execute(
            "SELECT name, hash, kind, size_bytes, source, cell_seq, time FROM artifacts"
            " WHERE run_id = ? ORDER BY time",
            (run_id,),
        )
        rows = dicts(cursor)
        for row in rows:
            row["present"] = self.blob_path(row["hash"]).is_file()
        return rows
