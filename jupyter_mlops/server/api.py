"""What each REST endpoint answers, as plain functions over the store (no tornado here).

The handlers parse a request into arguments, call one of these and write the result; these
call the same run, compare and replay functions as the command line. Paths a request names
are resolved and checked to lie inside the server's root folder.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ApiError, StoreNotFoundError
from ..notebooks import notebook_file
from ..records import RunRecord
from ..store import Store, find_store_dir, open_store
from ..vocabulary import MAX_PAGE

__all__ = [
    "MAX_COMPARE",
    "MAX_OFFSET",
    "MAX_POINTS",
    "MAX_REPLAYS",
    "MAX_TAGS",
    "RUN_ID",
    "artifact_file",
    "compare_runs",
    "delete_run",
    "metric_series",
    "replay_state",
    "run_detail",
    "run_view",
    "runs_page",
    "start_replay",
    "update_run",
]

RUN_ID = re.compile(r"[0-9a-f]{32}")
REPLAY_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
DEFAULT_PAGE = 50
# Far beyond any store, far below SQLite's 64-bit integers.
MAX_OFFSET = 1_000_000_000
MAX_COMPARE = 10
# A filtered total is counted up to here ("1,000+"): an exact count reads the whole store.
COUNT_CAP = 1_000
DEFAULT_POINTS = 1_000
# A thinned series keeps four points a stretch (first, last, lowest, highest).
MIN_POINTS = 4
MAX_POINTS = 100_000
# Compare diffs series point by point up to this length; longer ones by their latest value.
COMPARE_POINTS = 10_000
MAX_TAGS = 1_000
# The worker answers one request at a time: a filter stops here rather than hold up the rest.
FILTER_SECONDS = 2.0
# Replays this server has started that may run at once (each is a kernel).
MAX_REPLAYS = 2


# -- the store and paths -----------------------------------------------------------------------


def store_for(root: Path) -> Store:
    """The store the server's root folder uses (as a kernel started there would find it)."""
    return open_store(find_store_dir(root), create=False)


def _store_or_none(root: Path) -> Store | None:
    try:
        return store_for(root)
    except StoreNotFoundError:
        return None


def inside_root(root: Path, path: Path) -> Path | None:
    """``path`` resolved (links followed) when it lies inside ``root``, else None."""
    try:
        resolved = path.resolve()
        base = root.resolve()
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a name too long, a link loop
        return None
    return resolved if resolved.is_relative_to(base) else None


def contained_path(root: Path, relative: str, what: str) -> Path:
    """``relative`` resolved under ``root``, or a 400 when it points outside it."""
    candidate = inside_root(root, root / relative)
    if candidate is None:
        raise ApiError(
            400, "invalid_value", f"{what}: {relative[:200]!r} is outside the server's root"
        )
    return candidate


def lab_path(root: Path, store: Store, notebook: str | None) -> str | None:
    """A run's notebook as a path under the server's root (what JupyterLab opens), or None."""
    if not notebook:
        return None
    return _lab_path(str(root), str(store.directory.parent), notebook)


# A page of runs names few notebooks: resolving each once keeps the first page fast.
@functools.lru_cache(maxsize=4096)
def _lab_path(root: str, project: str, notebook: str) -> str | None:
    resolved = inside_root(Path(root), notebook_file(Path(project), notebook))
    if resolved is None:
        return None
    return resolved.relative_to(Path(root).resolve()).as_posix()


def check_run_id(run_id: str) -> str:
    """A run id as the API takes it: 32 hex characters (an id, never a name or a path)."""
    if not RUN_ID.fullmatch(run_id):
        raise ApiError(400, "bad_run_id", f"{run_id[:80]!r} is not a run id (32 hex characters)")
    return run_id


def _with_lab_path(root: Path, store: Store, run: dict[str, Any]) -> dict[str, Any]:
    run["lab_path"] = lab_path(root, store, run.get("notebook"))
    return run


# -- reading -----------------------------------------------------------------------------------


def runs_page(
    root: Path,
    *,
    notebook: str | None = None,
    where: str | None = None,
    statuses: Sequence[str] = (),
    limit: int = DEFAULT_PAGE,
    offset: int = 0,
    kinds: Sequence[str] = (),
    replays: bool = True,
) -> dict[str, Any]:
    """A page of runs newest first, with the total; no store yet is an empty list. With
    ``replays`` false, replay runs are left out (each run carries its ``replay_summary``)."""
    if not 1 <= limit <= MAX_PAGE:
        raise ApiError(400, "invalid_value", f"limit: must be between 1 and {MAX_PAGE}")
    if not 0 <= offset <= MAX_OFFSET:
        raise ApiError(400, "invalid_value", f"offset: must be between 0 and {MAX_OFFSET}")
    notebook_path = contained_path(root, notebook, "notebook") if notebook else None
    page = {"limit": limit, "offset": offset}
    store = _store_or_none(root)
    if store is None:
        if where:  # a bad expression is still an error, with or without runs to filter
            from ..query import parse_expression

            parse_expression(where)
        return {"runs": [], "total": 0, "total_capped": False, **page, "store": None}
    filters: dict[str, Any] = {
        "where": where,
        "notebook": notebook_path,
        "statuses": statuses,
        "kinds": kinds,
        "replays": replays,
    }
    runs, total, capped = _filtered_runs(store, filters, limit, offset)
    return {
        "runs": [_with_lab_path(root, store, run) for run in runs],
        "total": total,
        "total_capped": capped,
        **page,
        "store": str(store.directory),
    }


def _filtered_runs(
    store: Store, filters: dict[str, Any], limit: int, offset: int
) -> tuple[list[dict[str, Any]], int, bool]:
    """A page of the runs ``filters`` select, their total, and whether the total stopped at
    ``COUNT_CAP``; a filter that takes over ``FILTER_SECONDS`` is a 400."""
    from ..records import count_runs, list_runs

    too_slow = ApiError(
        400,
        "filter_too_slow",
        f"where: the filter took too long (over {FILTER_SECONDS:g} s); narrow it",
    )
    with store.time_limit(FILTER_SECONDS, too_slow):
        runs = list_runs(limit=limit, offset=offset, store=store, **filters)
        # An expression is tested run by run: its count stops at the cap. Statuses and kinds
        # (replays left out) are columns of the runs table, counted whole.
        filtered = bool(filters["where"] or filters["statuses"])
        capped_count = COUNT_CAP + 1 if filtered else None
        total = count_runs(upto=capped_count, store=store, **filters)
    capped = filtered and total > COUNT_CAP
    return runs, COUNT_CAP if capped else total, capped


class _SeriesView(RunRecord):
    """A recorded run whose metric series are read bounded: thinned in SQL, or (``thin``
    false) whole up to ``max_points`` and left out beyond; the full lengths are noted."""

    def __init__(self, record: RunRecord, max_points: int, *, thin: bool) -> None:
        super().__init__(record.store, record.row)
        self.max_points = max_points
        self.thin = thin
        self.lengths: dict[str, int] = {}

    def metric_series(self, key: str) -> list[dict[str, Any]]:
        """The series of ``key`` as this view reads it (see the class)."""
        if self.thin:
            points, self.lengths[key] = self.store.metric_series_thinned(
                self.id, key, self.max_points
            )
            return points
        if not self.lengths:
            self.lengths = self.store.metric_lengths(self.id)
        if self.lengths.get(key, 0) > self.max_points:
            return []
        return self.store.metric_series(self.id, key)


def run_view(record: RunRecord, max_points: int, *, thin: bool = True) -> dict[str, Any]:
    """A run whole (as ``to_dict(full=True)``) reading at most about ``max_points`` points a
    metric (see ``_SeriesView``), with ``metric_series_length``: each series' full length."""
    view = _SeriesView(record, max_points, thin=thin)
    detail = view.to_dict(full=True)
    detail["metric_series_length"] = {key: view.lengths.get(key, 0) for key in detail["metrics"]}
    return detail


def check_points(max_points: int) -> int:
    """``max_points`` as the API takes it, or a 400."""
    if not MIN_POINTS <= max_points <= MAX_POINTS:
        raise ApiError(
            400, "invalid_value", f"max_points: must be between {MIN_POINTS} and {MAX_POINTS}"
        )
    return max_points


def run_detail(root: Path, run_id: str, *, max_points: int = DEFAULT_POINTS) -> dict[str, Any]:
    """One run whole (as ``show --format json``), its metric series thinned for charts."""
    from ..records import get_run

    check_points(max_points)
    store = store_for(root)
    detail = run_view(get_run(check_run_id(run_id), store=store), max_points)
    return _with_lab_path(root, store, detail)


def metric_series(
    root: Path, run_id: str, key: str, *, max_points: int = DEFAULT_POINTS
) -> dict[str, Any]:
    """One metric's step series of a run, thinned to ``max_points`` keeping the extremes."""
    from ..records import get_run

    check_points(max_points)
    record = get_run(check_run_id(run_id), store=store_for(root))
    points, length = record.store.metric_series_thinned(record.id, key, max_points)
    if not length and key not in record.metrics:
        raise ApiError(404, "metric_not_found", f"run {run_id[:12]} has no metric {key[:200]!r}")
    return {
        "run_id": record.id,
        "key": key,
        "length": length,
        "downsampled": len(points) < length,
        "points": points,
    }


def artifact_file(root: Path, run_id: str, name: str) -> dict[str, Any]:
    """A run's artifact to download: its stored copy (checked to lie in the store's blobs),
    a content type by its name, its file name and size."""
    import mimetypes

    from ..records import get_run

    store = store_for(root)
    artifact = get_run(check_run_id(run_id), store=store).artifact(name)
    path = inside_root(store.blobs, artifact.path)
    if path is None or not path.is_file():
        raise ApiError(404, "not_found", f"artifact {name[:200]!r}: its stored copy is missing")
    if artifact.kind == "file" or artifact.kind == "table":
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    else:  # models and pickles: bytes only Python reads back
        content_type = "application/octet-stream"
    return {
        "path": path,
        "content_type": content_type,
        "filename": Path(name).name or "artifact",
        "size": path.stat().st_size,
    }


def compare_runs(root: Path, ids: Sequence[str]) -> dict[str, Any]:
    """Two or more runs side by side: each run, and the diff of the first with each other
    (series longer than ``COMPARE_POINTS`` are compared by their latest value)."""
    from ..compare import diff_runs
    from ..records import get_run

    unique = list(dict.fromkeys(ids))
    if not 2 <= len(unique) <= MAX_COMPARE:
        raise ApiError(
            400, "invalid_value", f"ids: give between 2 and {MAX_COMPARE} different run ids"
        )
    store = store_for(root)
    records = [get_run(check_run_id(run_id), store=store) for run_id in unique]
    full = [run_view(record, COMPARE_POINTS, thin=False) for record in records]
    runs = []
    for run in full:
        summary = {k: v for k, v in run.items() if k not in _HEAVY}
        summary["metric_keys"] = sorted(run["metric_series"])
        runs.append(_with_lab_path(root, store, summary))
    return {"runs": runs, "diffs": [diff_runs(full[0], other) for other in full[1:]]}


_HEAVY = frozenset({"metric_series", "cells", "datasets", "artifacts", "environment"})


# -- changing ----------------------------------------------------------------------------------


def update_run(root: Path, run_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Rename a run, set or remove tags, set its note; the run as it is now."""
    from ..records import update_run as update

    unknown = sorted(set(body) - {"name", "tags", "remove_tags", "note"})
    if unknown:
        raise ApiError(400, "invalid_value", f"unknown fields: {', '.join(unknown)}")
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise ApiError(400, "invalid_value", "name: must be text")
    tags = body.get("tags")
    if tags is not None and not (
        isinstance(tags, dict) and all(isinstance(v, str) for v in tags.values())
    ):
        raise ApiError(400, "invalid_value", "tags: must be an object of text values")
    remove = body.get("remove_tags") or []
    if not (isinstance(remove, list) and all(isinstance(k, str) for k in remove)):
        raise ApiError(400, "invalid_value", "remove_tags: must be a list of tag names")
    for field, given in (("tags", tags or ()), ("remove_tags", remove)):
        if len(given) > MAX_TAGS:
            raise ApiError(
                400,
                "invalid_value",
                f"{field}: at most {MAX_TAGS} in one request, not {len(given)}",
            )
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        raise ApiError(400, "invalid_value", "note: must be text")
    store = store_for(root)
    record = update(
        check_run_id(run_id), name=name, tags=tags, remove_tags=remove, note=note, store=store
    )
    return _with_lab_path(root, store, record.to_dict())


def delete_run(root: Path, run_id: str) -> dict[str, Any]:
    """Delete a run that is not running."""
    from ..records import delete_run as delete

    return {"deleted": delete(check_run_id(run_id), store=store_for(root))}


def start_replay(root: Path, run_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Start replaying a run in the background; the replay's row (state ``running``)."""
    check_run_id(run_id)
    unknown = sorted(set(body) - {"mode", "rtol", "atol", "timeout"})
    if unknown:
        raise ApiError(400, "invalid_value", f"unknown fields: {', '.join(unknown)}")
    mode = body.get("mode", "recorded")
    if not isinstance(mode, str):
        raise ApiError(400, "invalid_value", "mode: must be text")
    options: dict[str, float | None] = {}
    for name in ("rtol", "atol", "timeout"):
        value = body.get(name)
        # JSON types here; what a value may be is the replay's own check.
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ApiError(400, "invalid_value", f"{name}: must be a number")
        # JSON allows NaN, 1e999 (inf) and whole numbers of any size; a replay takes none.
        if value is not None and not (-1e300 < value < 1e300):
            raise ApiError(400, "invalid_value", f"{name}: must be a finite number")
        options[name] = None if value is None else float(value)
    from .. import replays as replay
    from ..records import get_run

    store = store_for(root)
    record = get_run(run_id, store=store)
    notebook = record.row.get("notebook")
    # A replay reads the run's notebook (file mode executes it): only one inside the root.
    # Checked afresh, not through the cached lab path: a file may have become a link.
    if notebook and inside_root(root, notebook_file(store.directory.parent, notebook)) is None:
        raise ApiError(
            403,
            "outside_root",
            "the run's notebook is outside the server's root; replay it from the command line",
        )
    with _replays_lock:
        running = _running_replays.setdefault(store.directory, set())
        running.difference_update([r for r in running if not _still_running(store, r)])
        if len(running) >= MAX_REPLAYS:
            raise ApiError(
                429,
                "too_many_replays",
                f"{len(running)} replays are running (at most {MAX_REPLAYS} at a time);"
                " start this one when one has finished",
            )
        row = replay.start_replay(run_id, mode=mode, store=store, **options)
        running.add(row["id"])
    return _replay_answer(row)


# Replays this server started and has not yet seen finish, by store folder.
_running_replays: dict[Path, set[str]] = {}
_replays_lock = threading.Lock()


def _still_running(store: Store, replay_id: str) -> bool:
    """Whether a replay this server started is running: its row says so and its process
    (started by this server, so on this host) is alive."""
    row = store.get_replay(replay_id)
    if row is None or row["state"] != "running":  # finished, or deleted with its run
        return False
    if not row.get("pid"):
        return True  # its process is being started
    try:
        os.kill(int(row["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def replay_state(root: Path, replay_id: str) -> dict[str, Any]:
    """A replay's progress and, once done, its verdict and report."""
    if not REPLAY_ID.fullmatch(replay_id):
        raise ApiError(400, "bad_replay_id", f"{replay_id[:80]!r} is not a replay id")
    from .. import replays as replay

    return _replay_answer(replay.get_replay(replay_id, store=store_for(root)))


def _replay_answer(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("pid", "host")}
