"""The small words every door says alike: a value, a time, a duration, a cell, which keys to
show, and a titled table."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

from tabulate import tabulate

from ..vocabulary import STATUSES

__all__ = [
    "MAX_KEY_COLUMNS",
    "MAX_SERIES_ROWS",
    "cell_where",
    "common_keys",
    "format_duration",
    "format_value",
    "number_text",
    "run_duration",
    "section",
    "sections",
    "when",
    "yes_no",
]

MAX_KEY_COLUMNS = 6
MAX_SERIES_ROWS = 12

_RUNNING = STATUSES[0]


def format_value(value: Any, width: int = 40) -> str:
    """A param or metric value as short text."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        text = f"{value:.6g}"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def format_duration(seconds: float | None) -> str:
    """Seconds as ``850ms``, ``12.3s``, ``4m05s`` or ``2h03m``."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def when(epoch: float | None) -> str:
    """A time as local ``YYYY-MM-DD HH:MM:SS``; none as a dash."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch else "-"


def run_duration(run: Mapping[str, Any]) -> float | None:
    """How long a run took, or has run so far if it still runs; None when unknown."""
    end = run.get("end_time") or (time.time() if run.get("status") == _RUNNING else None)
    return end - run["start_time"] if end else None


def number_text(value: float | None) -> str:
    """A number in six significant digits, or ``none``."""
    return "none" if value is None else f"{value:.6g}"


def yes_no(value: bool | None) -> str:
    """A yes-or-no fact as ``yes`` or ``no``, or a dash when unknown."""
    return "-" if value is None else ("yes" if value else "no")


def cell_where(cell: Mapping[str, Any]) -> str:
    """A cell as every door names it (``cell 4 [7]``), from a difference or a failed cell."""
    label = cell.get("label") or (cell.get("a") or {}).get("label")
    return str(label) if label else f"cell {cell['position']}"


def common_keys(runs: list[dict[str, Any]], field: str, most: int = MAX_KEY_COLUMNS) -> list[str]:
    """The ``field`` keys (params, metrics) most of ``runs`` have, at most ``most``, by name."""
    seen: dict[str, int] = {}
    for run in runs:
        for key in run[field]:
            seen[key] = seen.get(key, 0) + 1
    ranked = sorted(seen, key=lambda k: (-seen[k], k))
    return sorted(ranked[:most])


def sections(title: str, rows: list[list[Any]], headers: list[str]) -> list[str]:
    """A titled table as a list of one part, or no part when there are no rows."""
    return [section(title, rows, headers)] if rows else []


def section(title: str, rows: list[list[Any]], headers: list[str] | None) -> str:
    """A table under its title; without headers, plain rows of a key and its value."""
    body = tabulate(
        rows,
        headers=headers or (),
        tablefmt="simple" if headers else "plain",
        disable_numparse=True,
    )
    return f"{title}\n{body}"
