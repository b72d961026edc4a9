"""Metric points: the latest of each key, whole series, series thinned for a chart, and the
points logged since a position (a live plot)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

from .writer import BufferedWrites

# Every point of one metric (run, key) in logging order.
_SERIES = (
    "SELECT step, value, time, cell_seq FROM metrics WHERE run_id = ? AND key = ? ORDER BY rowid"
)


class MetricQueries(BufferedWrites):
    """The metric points of runs, read."""

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
        return [_metric_point(row) for row in self.conn.execute(_SERIES, (run_id, key))]

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
        cursor = self.conn.execute(_SERIES, (run_id, key))
        try:
            while rows := cursor.fetchmany(1_000):
                yield from map(_metric_point, rows)
        finally:
            cursor.close()

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


def metric_points(store: BufferedWrites, run_id: str) -> dict[str, list[tuple[int, float, float]]]:
    """Every point of every metric of a run, in logging order: key -> [(step, value, time)]."""
    store.flush()
    out: dict[str, list[tuple[int, float, float]]] = {}
    cursor = store.conn.execute(
        "SELECT key, step, value, time FROM metrics WHERE run_id = ? ORDER BY rowid", (run_id,)
    )
    for key, step, value, at in cursor:
        out.setdefault(key, []).append((step, _metric_value(value), at))
    return out


def _metric_point(row: tuple[Any, ...]) -> dict[str, Any]:
    step, value, at, cell = row
    return {"step": step, "value": _metric_value(value), "time": at, "cell": cell}


def _metric_value(value: float | None) -> float:
    # SQLite stores NaN as NULL; a metric point always has a value, so NULL means NaN.
    return float("nan") if value is None else value
