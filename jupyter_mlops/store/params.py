"""A run's params (values as JSON text), and the history of the values a param was logged with
before the one it has."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from .connection import for_run
from .writer import BufferedWrites


class ParamQueries(BufferedWrites):
    """Params of runs, and their earlier values."""

    @for_run
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
