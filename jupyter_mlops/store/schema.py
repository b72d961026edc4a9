"""The columns of the store's tables as this version reads and writes them (migrations.py
creates them), and which of them hold JSON text."""

from __future__ import annotations

RUN_COLUMNS = (
    "id",
    "name",
    "status",
    "kind",
    "notebook",
    "notebook_hash_start",
    "notebook_hash_end",
    "parent_id",
    "sweep_id",
    "start_time",
    "end_time",
    "heartbeat",
    "pid",
    "host",
    "cwd",
    "env_id",
    "linear",
    "linear_reasons",
    "error",
    "note",
    "kernel",
    "process_start",
    "origin",
)
RUN_JSON_COLUMNS = ("linear_reasons",)
# Tables whose rows belong to one run (``run_id``), children first for deletes.
RUN_CHILD_TABLES = (
    "metrics",
    "latest_metrics",
    "cells",
    "datasets",
    "artifacts",
    "data_checks",
    "params",
    "param_history",
    "tags",
)
CELL_COLUMNS = (
    "run_id",
    "seq",
    "execution_count",
    "cell_id",
    "source",
    "source_hash",
    "start_time",
    "duration",
    "error",
    "error_value",
    "reads",
    "writes",
    "data_hashes",
    "seeds",
    "output_hash",
    "uncompared",
    "figure_hashes",
    "files_read",
    "files_written",
    "cell_number",
    "cpu_time",
    "peak_rss",
)
# Cell columns holding JSON.
CELL_JSON_COLUMNS = (
    "reads",
    "writes",
    "data_hashes",
    "seeds",
    "uncompared",
    "figure_hashes",
    "files_read",
    "files_written",
)

# Tables whose rows belong to one run and are copied with it (besides its metric points); their
# keys make a second copy of a row a duplicate, which is ignored.
COPIED_WITH_RUN = (
    "params",
    "param_history",
    "tags",
    "latest_metrics",
    "cells",
    "datasets",
    "artifacts",
    "data_checks",
)
# Columns of other tables holding JSON text.
DATASET_JSON_COLUMNS = ("shape", "schema", "profile")
REPLAY_JSON_COLUMNS = ("report", "options")
