"""Replays: a row for each replay of a run (its state, verdict and report), and a summary of
how often each run was replayed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .rows import dicts, insert, update
from .schema import REPLAY_JSON_COLUMNS
from .writer import BufferedWrites


class ReplayQueries(BufferedWrites):
    """The replays of runs."""

    def insert_replay(self, row: dict[str, Any]) -> None:
        """Create a replay row (``report`` and ``options`` given as plain data)."""
        with self.transaction():
            insert(self.conn, "replays", _encode_replay(row))

    def update_replay(self, replay_id: str, **fields: Any) -> None:
        """Set some columns of a replay."""
        encoded = _encode_replay(fields)
        if not encoded:
            return
        with self.transaction() as conn:
            update(conn, "replays", replay_id, encoded)

    def get_replay(self, replay_id: str) -> dict[str, Any] | None:
        """One replay's row, or None."""
        rows = dicts(self.conn.execute("SELECT * FROM replays WHERE id = ?", (replay_id,)))
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
        return [_decode_replay(row) for row in dicts(cursor)]

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


def _encode_replay(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in REPLAY_JSON_COLUMNS:
        if key in out and out[key] is not None:
            out[key] = json.dumps(out[key], allow_nan=True)
    return out


def _decode_replay(row: dict[str, Any]) -> dict[str, Any]:
    for key in REPLAY_JSON_COLUMNS:
        if row.get(key):
            row[key] = json.loads(row[key])
    return row
