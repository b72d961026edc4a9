"""Runs: creating and ending them, their tags and environment, finding one by id, prefix or
name, and listing, counting and deleting them."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import AmbiguousRunError, RunNotFoundError
from ..validate import storable_text
from ..vocabulary import STATUSES
from .connection import for_run
from .filters import full_ids, run_filter, run_order
from .metrics import MetricQueries
from .params import ParamQueries
from .replays import ReplayQueries
from .rows import decode_run, dicts, encode_run, insert, update
from .schema import RUN_CHILD_TABLES, RUN_COLUMNS

if TYPE_CHECKING:
    from ..query import Node

# The statuses the store tests for itself: a run still going, and one whose process died.
RUNNING, CRASHED = STATUSES[0], STATUSES[-1]


class RunQueries(ParamQueries, MetricQueries, ReplayQueries):
    """Runs, with what a listing shows of each: params, latest metrics, tags, replays."""

    def insert_run(self, row: dict[str, Any], tags: dict[str, str] | None = None) -> None:
        """Create a run row (and its tags) in one transaction."""
        with self.transaction():
            insert(self.conn, "runs", encode_run(row))
            if tags:
                self._put_tags(row["id"], tags)

    @for_run
    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set some columns of a run."""
        with self.transaction():
            encoded = encode_run(fields)
            if encoded:
                update(self.conn, "runs", run_id, encoded)

    def finish_run(self, run_id: str, **fields: Any) -> None:
        """Flush the run's buffered rows, then set its final columns."""
        self.flush()
        self.update_run(run_id, **fields)

    @for_run
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
                "UPDATE runs SET heartbeat = ?, status = ?, end_time = NULL, error = NULL"
                " WHERE id = ? AND status IN (?, ?)",
                (at, RUNNING, run_id, RUNNING, CRASHED),
            )
            if self.run_exists(run_id):
                return True
        self._vanish(run_id)
        return False

    def mark_runs(self, run_ids: Sequence[str], status: str, error: str) -> None:
        """End runs that are still ``running`` with a status (used for crashed runs); each ends
        at its last heartbeat (or its start)."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE runs SET status = ?, end_time = COALESCE(heartbeat, start_time),"
                " error = ? WHERE id = ? AND status = ?",
                [(status, error, run_id, RUNNING) for run_id in run_ids],
            )

    def end_running(self, run_id: str, status: str, at: float, error: str) -> None:
        """End a run with a status at a time, if it is still ``running``."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, end_time = ?, error = ? WHERE id = ? AND status = ?",
                (status, at, error, run_id, RUNNING),
            )

    def running_runs(self) -> list[dict[str, Any]]:
        """Runs whose status says ``running``: id, pid, host, heartbeat, process start."""
        self.flush()
        cursor = self.conn.execute(
            "SELECT id, pid, host, heartbeat, start_time, process_start FROM runs WHERE status = ?",
            (RUNNING,),
        )
        return dicts(cursor)

    def get_run(self, run_id: str) -> dict[str, Any]:
        """One run's row with its tags; raises RunNotFoundError."""
        self.flush()
        cursor = self.conn.execute(
            f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE id = ?", (run_id,)
        )
        rows = dicts(cursor)
        if not rows:
            raise RunNotFoundError(run_id)
        run = decode_run(rows[0])
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
        condition, args = run_filter(full_ids(self.conn, where), notebook)
        query = f"SELECT {', '.join('r.' + c for c in RUN_COLUMNS)} FROM runs r{condition}"
        order, order_args = run_order(order_by, descending)
        query += order
        args.extend(order_args)
        if limit is not None:
            query += " LIMIT ? OFFSET ?"
            args.extend([limit, offset])
        runs = [decode_run(row) for row in dicts(self.conn.execute(query, args))]
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

    def count_runs(
        self, *, where: Node | None = None, notebook: str | None = None, upto: int | None = None
    ) -> int:
        """How many runs match the same filters as ``list_runs``; with ``upto``, counting stops
        there (an expression is tested run by run, so an exact count reads the whole store)."""
        self.flush()
        condition, args = run_filter(full_ids(self.conn, where), notebook)
        if upto is None:
            sql = f"SELECT count(*) FROM runs r{condition}"
        else:
            sql = f"SELECT count(*) FROM (SELECT 1 FROM runs r{condition} LIMIT ?)"
            args.append(upto)
        return int(self.conn.execute(sql, args).fetchone()[0])

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

    def tags(self, run_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """Tags of each run."""
        out: dict[str, dict[str, str]] = {run_id: {} for run_id in run_ids}
        for run_id, key, value in self._select_for_runs(
            "SELECT run_id, key, value FROM tags WHERE run_id IN ({}) ORDER BY key", run_ids
        ):
            out[run_id][key] = value
        return out

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
