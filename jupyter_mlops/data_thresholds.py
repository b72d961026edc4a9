"""The thresholds of a data check: documented defaults, and overrides per column from a small
YAML file or ``COLUMN:KEY=VALUE`` options (``ignore`` leaves a column out)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import InvalidValueError

__all__ = [
    "DEFAULT_THRESHOLDS",
    "checked_thresholds",
    "load_thresholds",
    "parse_threshold_options",
]

DEFAULT_THRESHOLDS: dict[str, float] = {
    # PSI above this on a numeric column is drift (0.1-0.2 is commonly read as a moderate
    # shift, above 0.2 as a significant one).
    "psi": 0.2,
    # Jensen-Shannon distance (0 = same frequencies, 1 = disjoint) above this is drift.
    "category_distance": 0.1,
    # A missing rate this much above the baseline's is an error (any missing value is, when the
    # baseline had none).
    "missing": 0.05,
    # The share of values outside the baseline's range above which ``range`` is an error
    # (below it, a warning).
    "out_of_range": 0.01,
    # The share of values in categories the baseline never saw above which ``new_category``
    # is an error: by default any.
    "new_category": 0.0,
}


def load_thresholds(path: str | Path) -> dict[str, Any]:
    """Read thresholds from a YAML file: top-level keys, and ``columns: {NAME: {KEY: X}}``."""
    import yaml

    source = Path(path).expanduser()
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidValueError(str(path), f"cannot read thresholds: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InvalidValueError(str(path), f"not valid YAML{where}") from None
    return checked_thresholds(data or {}, str(path))


def parse_threshold_options(
    options: Iterable[str], ignore: Iterable[str] = (), base: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``KEY=X`` and ``COLUMN:KEY=X`` options (and columns to ignore) over ``base``."""
    result = checked_thresholds(dict(base or {}), "thresholds")
    columns: dict[str, dict[str, Any]] = result.setdefault("columns", {})
    for text in options:
        target, sep, value = text.rpartition("=")
        column, colon, key = target.rpartition(":")
        if not sep or not key:
            raise InvalidValueError(text, "a threshold looks like psi=0.3 or income:psi=0.3")
        number = _threshold_value(text, key, value)
        if colon:
            columns.setdefault(column, {})[key] = number
        else:
            result[key] = number
    for column in ignore:
        columns.setdefault(column, {})["ignore"] = True
    return result


def checked_thresholds(data: Any, source: str) -> dict[str, Any]:
    """Thresholds given as data (``KEY: X`` and ``columns: {NAME: {KEY: X}}``), checked."""
    if not isinstance(data, Mapping):
        raise InvalidValueError(source, "thresholds are a mapping of KEY: VALUE")
    result: dict[str, Any] = {}
    for key, value in data.items():
        if key == "columns":
            if not isinstance(value, Mapping):
                raise InvalidValueError(source, "columns: maps each column to its thresholds")
            result["columns"] = {
                str(column): _column_thresholds(source, str(column), limits)
                for column, limits in value.items()
            }
        else:
            result[str(key)] = _threshold_value(source, str(key), value)
    return result


def _column_thresholds(source: str, column: str, limits: Any) -> dict[str, Any]:
    if not isinstance(limits, Mapping):
        raise InvalidValueError(source, f"column {column!r}: give its thresholds as KEY: VALUE")
    checked: dict[str, Any] = {}
    for key, value in limits.items():
        if key == "ignore":
            checked["ignore"] = bool(value)
        else:
            checked[str(key)] = _threshold_value(source, f"{column}:{key}", value)
    return checked


def _threshold_value(source: str, key: str, value: Any) -> float:
    name = key.rpartition(":")[2]
    if name not in DEFAULT_THRESHOLDS:
        known = ", ".join(DEFAULT_THRESHOLDS)
        raise InvalidValueError(source, f"unknown threshold {name!r} (known: {known}, ignore)")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidValueError(source, f"{key}: {value!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise InvalidValueError(source, f"{key}: must be a number zero or more")
    return number
