"""A run's cell executions read back, and the facts about them worked out after they ran."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .connection import for_run
from .rows import dicts, json_or_null
from .schema import CELL_COLUMNS, CELL_JSON_COLUMNS
from .writer import BufferedWrites


class CellQueries(BufferedWrites):
    """The cell executions of runs (written through the buffer: see writer.py)."""

    def cells(self, run_id: str, *, prelude: bool = False) -> list[dict[str, Any]]:
        """A run's cell executions in the order they ran; ``prelude``: only the cells its
        kernel ran before it started (their ``seq`` is below 1)."""
        self.flush()
        cursor = self.conn.execute(
            f"SELECT {', '.join(CELL_COLUMNS[1:])}"
            f" FROM cells WHERE run_id = ? AND seq {'<= 0' if prelude else '> 0'} ORDER BY seq",
            (run_id,),
        )
        rows = dicts(cursor)
        for row in rows:
            for column in CELL_JSON_COLUMNS:
                row[column] = json.loads(row[column]) if row[column] else None
        return rows

    @for_run
    def set_cell_facts(self, run_id: str, facts: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Store what cells read, wrote and seeded (worked out from their source later)."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE cells SET reads = ?, writes = ?, seeds = ? WHERE run_id = ? AND seq = ?",
                [
                    (
                        json_or_null(fact.get("reads")),
                        json_or_null(fact.get("writes")),
                        json_or_null(fact.get("seeds")),
                        run_id,
                        seq,
                    )
                    for seq, fact in facts
                ],
            )

    def set_cell_numbers(self, run_id: str, numbers: Sequence[tuple[int, int | None]]) -> None:
        """Store each cell's number in the saved notebook (worked out when the run ends)."""
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE cells SET cell_number = ? WHERE run_id = ? AND seq = ?",
                [(number, run_id, seq) for seq, number in numbers],
            )
