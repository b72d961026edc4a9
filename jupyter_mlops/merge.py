"""Stores that merge: copy the runs of another store into this one.

A run is copied whole (params, tags, metric series, cells, datasets, data checks, artifacts and
their blobs, its environment, replays of it) and only once: importing the same store again
changes nothing. Each copied run keeps where it came from (``origin``: host and store folder).
A Dask sweep merges each finished point's store into the main store with the same function.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import InvalidValueError, StoreNotFoundError
from .store import DB_NAME, Store, import_runs, open_store

__all__ = ["import_store", "store_folder"]


def store_folder(path: str | Path) -> Path:
    """The store folder a user means: a store folder, a folder holding ``.mlops/``, or the
    ``tracking.db`` file itself."""
    given = Path(path).expanduser()
    candidates = [given.parent] if given.name == DB_NAME else [given, given / ".mlops"]
    for folder in candidates:
        if (folder / DB_NAME).is_file():
            return folder.resolve()
    raise StoreNotFoundError(str(given))


def import_store(
    path: str | Path,
    *,
    store: Store | None = None,
    run_ids: Sequence[str] | None = None,
    origin: str | None = None,
) -> dict[str, Any]:
    """Copy the runs of the store at ``path`` (all, or ``run_ids``) that this store lacks,
    with their rows, blobs, environments and replays; returns what was copied."""
    source = store_folder(path)
    store = store or open_store()
    if source == store.directory.resolve():
        raise InvalidValueError(str(path), "is this store itself; import another store")
    copied = import_runs(
        store, source / DB_NAME, origin or f"{socket.gethostname()}:{source}", run_ids
    )
    blobs = missing = 0
    for digest in copied["blobs"]:
        if store.blob_path(digest).exists():
            continue
        blob = source / "blobs" / digest[:2] / digest[2:]
        if blob.is_file():
            store.put_blob(digest, blob)
            blobs += 1
        else:
            missing += 1
    return {
        "source": str(source),
        "runs": len(copied["runs"]),
        "run_ids": copied["runs"],
        "already_here": copied["already_here"],
        "rows": copied["rows"],
        "blobs": blobs,
        "blobs_missing": missing,
    }
