"""What each REST endpoint answers, as plain functions over the store (no tornado here).

The handlers parse a request into arguments, call one of these and write the result; these
call the same run, compare and replay functions as the command line. Paths a request names
are resolved and checked to lie inside the server's root folder.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import MlopsError, StoreNotFoundError
from ..store import Store, find_store_dir, open_store

__all__ = [
    "MAX_COMPARE",
    "MAX_PAGE",
    "RUN_ID",
    "ApiError",
    "compare_runs",
    "delete_run",
    "downsample",
    "metric_series",
    "replay_state",
    "run_detail",
    "runs_page",
    "start_replay",
    "update_run",
]

RUN_ID = re.compile(r"[0-9a-f]{32}")
REPLAY_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
DEFAULT_PAGE = 50
MAX_PAGE = 500
MAX_COMPARE = 10
# A filtered total is counted up to here ("1,000+"): an exact count reads the whole store.
COUNT_CAP = 1_000
DEFAULT_POINTS = 1_000
MAX_POINTS = 100_000


class ApiError(MlopsError):
    """A request the API cannot answer as asked: an HTTP status, an error code, a message."""

    def __init__(self, status: int, error: str, message: str) -> None:
        self.status = status
        self.error = error
        super().__init__(message)


# -- the store and paths -----------------------------------------------------------------------


def store_for(root: Path) -> Store:
    """The store the server's root folder uses (as a kernel started there would find it)."""
    return open_store(find_store_dir(root), create=False)


def _store_or_none(root: Path) -> Store | None:
    try:
        return store_for(root)
    except StoreNotFoundError:
        return None


def contained_path(root: Path, relative: str, what: str) -> Path:
    """``relative`` resolved under ``root``, or a 400 when it points outside it."""
    base = root.resolve()
    candidate = (base / relative).resolve()
    if not candidate.is_relative_to(base):
        raise ApiError(400, "invalid_value", f"{what}: {relative!r} is outside the server's root")
    return candidate


def lab_path(root: Path, store: Store, notebook: str | None) -> str | None:
    """A run's notebook as a path under the server's root (what JupyterLab opens), or None."""
    if not notebook:
        return None
    return _lab_path(str(root), str(store.directory.parent), notebook)


# A page of runs names few notebooks: resolving each once keeps the first page fast.
@functools.lru_cache(maxsize=4096)
def _lab_path(root: str, project: str, notebook: str) -> str | None:
    stored = Path(notebook)
    absolute = stored if stored.is_absolute() else Path(project) / stored
    resolved = absolute.resolve()
    base = Path(root).resolve()
    if not resolved.is_relative_to(base):
        return None
    return resolved.relative_to(base).as_posix()


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
) -> dict[str, Any]:
    """A page of runs newest first, with the total; no store yet is an empty list."""
    from ..run import count_runs, list_runs

    if not 1 <= limit <= MAX_PAGE:
        raise ApiError(400, "invalid_value", f"limit: must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise ApiError(400, "invalid_value", "offset: must be zero or more")
    notebook_path = contained_path(root, notebook, "notebook") if notebook else None
    store = _store_or_none(root)
    if store is None:
        if where:  # a bad expression is still an error, with or without runs to filter
            from ..query import parse_expression

            parse_expression(where)
        return {
            "runs": [],
            "total": 0,
            "total_capped": False,
            "limit": limit,
            "offset": offset,
            "store": None,
        }
    filters: dict[str, Any] = {"where": where, "notebook": notebook_path, "statuses": statuses}
    runs = list_runs(limit=limit, offset=offset, store=store, **filters)
    capped_count = COUNT_CAP + 1 if where or statuses else None
    total = count_runs(upto=capped_count, store=store, **filters)
    capped = bool(where or statuses) and total > COUNT_CAP
    return {
        "runs": [_with_lab_path(root, store, run) for run in runs],
        "total": COUNT_CAP if capped else total,
        "total_capped": capped,
        "limit": limit,
        "offset": offset,
        "store": str(store.directory),
    }


def run_detail(root: Path, run_id: str, *, max_points: int = DEFAULT_POINTS) -> dict[str, Any]:
    """One run whole (as ``show --format json``), its metric series thinned for charts."""
    from ..run import get_run

    store = store_for(root)
    detail = get_run(check_run_id(run_id), store=store).to_dict(full=True)
    lengths = {key: len(points) for key, points in detail["metric_series"].items()}
    detail["metric_series"] = {
        key: downsample(points, max_points) for key, points in detail["metric_series"].items()
    }
    detail["metric_series_length"] = lengths
    return _with_lab_path(root, store, detail)


def metric_series(
    root: Path, run_id: str, key: str, *, max_points: int = DEFAULT_POINTS
) -> dict[str, Any]:
    """One metric's step series of a run, thinned to ``max_points`` keeping the extremes."""
    from ..run import get_run

    record = get_run(check_run_id(run_id), store=store_for(root))
    points = record.metric_series(key)
    if not points and key not in record.metrics:
        raise ApiError(404, "metric_not_found", f"run {run_id[:12]} has no metric {key!r}")
    thinned = downsample(points, max_points)
    return {
        "run_id": record.id,
        "key": key,
        "length": len(points),
        "downsampled": len(thinned) < len(points),
        "points": thinned,
    }


def compare_runs(root: Path, ids: Sequence[str]) -> dict[str, Any]:
    """Two or more runs side by side: each run, and the diff of the first with each other."""
    from ..compare import diff_runs
    from ..run import get_run

    unique = list(dict.fromkeys(ids))
    if not 2 <= len(unique) <= MAX_COMPARE:
        raise ApiError(
            400, "invalid_value", f"ids: give between 2 and {MAX_COMPARE} different run ids"
        )
    store = store_for(root)
    full = [get_run(check_run_id(run_id), store=store).to_dict(full=True) for run_id in unique]
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
    from ..run import update_run as update

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
    from ..run import delete_run as delete

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
        options[name] = value
    from .. import replays as replay

    row = replay.start_replay(run_id, mode=mode, store=store_for(root), **options)
    return _replay_answer(row)


def replay_state(root: Path, replay_id: str) -> dict[str, Any]:
    """A replay's progress and, once done, its verdict and report."""
    if not REPLAY_ID.fullmatch(replay_id):
        raise ApiError(400, "bad_replay_id", f"{replay_id[:80]!r} is not a replay id")
    from .. import replays as replay

    return _replay_answer(replay.get_replay(replay_id, store=store_for(root)))


def _replay_answer(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("pid", "host")}


# -- series ------------------------------------------------------------------------------------


def downsample(points: Sequence[dict[str, Any]], max_points: int) -> list[dict[str, Any]]:
    """At most about ``max_points`` points in step order, keeping each stretch's min and max.

    The series is cut into equal stretches; each keeps its lowest and highest value, so
    spikes and dips survive, and the first and last points are always kept.
    """
    count = len(points)
    if max_points <= 0 or count <= max_points:
        return list(points)
    buckets = max(1, (max_points - 2) // 2)
    size = (count - 2) / buckets
    keep = {0, count - 1}
    for bucket in range(buckets):
        start = 1 + int(bucket * size)
        stop = min(count - 1, 1 + int((bucket + 1) * size))
        if start >= stop:
            continue
        lowest = highest = -1
        for index in range(start, stop):
            value = points[index]["value"]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            if lowest < 0 or value < points[lowest]["value"]:
                lowest = index
            if highest < 0 or value > points[highest]["value"]:
                highest = index
        if lowest < 0:
            keep.add(start)  # a stretch of NaN only: keep one, so the gap shows
        else:
            keep.update((lowest, highest))
    return [points[index] for index in sorted(keep)]
