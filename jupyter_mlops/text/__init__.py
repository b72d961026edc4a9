"""Text for people: runs, one run, a diff, a series, a replay's report, a check, a sweep, a
data check, runs copied in or out.

What the command line and ``%track`` print, and the small words (a value, a time, a
duration, which keys to show) the notebook views use too, so every door says them alike:
``words`` the small words, ``runs`` many runs, ``run`` one run, ``replays`` replays, checks
and sweeps, ``data`` a data check, ``exchange`` imports and exports.
"""

from __future__ import annotations

from .data import data_check_text
from .exchange import import_text, mlflow_text
from .replays import check_text, failure_text, report_text, sweep_table
from .run import run_text
from .runs import (
    artifacts_table,
    diff_text,
    models_table,
    replay_count,
    runs_csv,
    runs_table,
    series_text,
)
from .words import (
    MAX_KEY_COLUMNS,
    MAX_SERIES_ROWS,
    cell_where,
    common_keys,
    format_duration,
    format_value,
    number_text,
    run_duration,
    when,
)

__all__ = [
    "MAX_KEY_COLUMNS",
    "MAX_SERIES_ROWS",
    "artifacts_table",
    "cell_where",
    "check_text",
    "common_keys",
    "data_check_text",
    "diff_text",
    "failure_text",
    "format_duration",
    "format_value",
    "import_text",
    "mlflow_text",
    "models_table",
    "number_text",
    "replay_count",
    "report_text",
    "run_duration",
    "run_text",
    "runs_csv",
    "runs_table",
    "series_text",
    "sweep_table",
    "when",
]
