"""The model registry: numbered versions of a run's model under a name, and aliases that
name one version each."""

from __future__ import annotations

import json
import time
from typing import Any

from .rows import dicts, insert, json_or_null
from .writer import BufferedWrites


class ModelQueries(BufferedWrites):
    """Registered model versions and their aliases."""

    def add_model_version(self, row: dict[str, Any]) -> int:
        """Register the next version of a model name (``row`` without ``version``); its number."""
        with self.transaction() as conn:
            latest = conn.execute(
                "SELECT max(version) FROM model_versions WHERE name = ?", (row["name"],)
            ).fetchone()[0]
            version = int(latest or 0) + 1
            encoded = dict(row, version=version, data_hashes=json_or_null(row["data_hashes"]))
            insert(conn, "model_versions", encoded)
        return version

    def model_versions(
        self, name: str | None = None, *, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Registered versions (of one name, or of one run's models), by name then version,
        each with the ``aliases`` that name it."""
        clauses, args = [], []
        if name is not None:
            clauses.append("v.name = ?")
            args.append(name)
        if run_id is not None:
            clauses.append("v.run_id = ?")
            args.append(run_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = dicts(
            self.conn.execute(
                "SELECT v.*, (SELECT json_group_array(a.alias) FROM model_aliases a"
                " WHERE a.name = v.name AND a.version = v.version) AS aliases"
                f" FROM model_versions v{where} ORDER BY v.name, v.version",
                args,
            )
        )
        for row in rows:
            row["data_hashes"] = json.loads(row["data_hashes"]) if row["data_hashes"] else {}
            row["aliases"] = sorted(json.loads(row["aliases"]))
        return rows

    def model_alias(self, name: str, alias: str) -> int | None:
        """The version an alias of a model name points at, if any."""
        row = self.conn.execute(
            "SELECT version FROM model_aliases WHERE name = ? AND alias = ?", (name, alias)
        ).fetchone()
        return int(row[0]) if row else None

    def set_model_alias(self, name: str, alias: str, version: int | None) -> bool:
        """Point an alias at a version of a name (moving it from another), or remove it with
        ``None``; False when that version is not registered."""
        with self.transaction() as conn:
            if version is None:
                conn.execute(
                    "DELETE FROM model_aliases WHERE name = ? AND alias = ?", (name, alias)
                )
                return True
            if not conn.execute(
                "SELECT 1 FROM model_versions WHERE name = ? AND version = ?", (name, version)
            ).fetchone():
                return False
            conn.execute(
                "INSERT OR REPLACE INTO model_aliases (name, alias, version, time)"
                " VALUES (?, ?, ?, ?)",
                (name, alias, version, time.time()),
            )
        return True
