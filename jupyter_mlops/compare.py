"""The diff of two recorded runs: params, metrics, datasets, cells, packages.

One diff for every door: the CLI's ``diff``, ``%track compare``, the sidebar and replays all
use it. Metrics are compared with tolerances, so floating-point noise can be told from a
real change; everything else is compared exactly (cell outputs were sanitized when hashed).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from difflib import SequenceMatcher
from typing import Any

from .clock_metrics import is_clock_metric
from .environment import package_changes
from .linearity import cell_label, looks_injected
from .vocabulary import PARTIAL_OUTPUT

__all__ = ["DEFAULT_ATOL", "DEFAULT_RTOL", "diff_runs", "metric_close", "telling_line"]

# Relative noise from summation order or threads is around 1e-12..1e-8; a real change of a
# metric people look at is far above 1e-6.
DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 1e-9

Tolerance = tuple[float, float]


def metric_close(a: float | None, b: float | None, rtol: float, atol: float) -> bool:
    """Whether two metric values agree within ``atol + rtol * |a|`` (NaN equals NaN)."""
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * abs(a)


def diff_runs(
    a: dict[str, Any],
    b: dict[str, Any],
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    tolerances: Mapping[str, float | Tolerance] | None = None,
) -> dict[str, Any]:
    """What differs between two runs given as ``RunRecord.to_dict(full=True)``.

    ``tolerances`` overrides ``rtol`` (a number) or ``(rtol, atol)`` for single metrics.
    """
    overrides = {key: _tolerance(value, atol) for key, value in (tolerances or {}).items()}
    params = _diff_mapping(a["params"], b["params"])
    metrics = _diff_metrics(a, b, (rtol, atol), overrides)
    datasets_a = {d["name"]: d for d in a.get("datasets") or []}
    datasets_b = {d["name"]: d for d in b.get("datasets") or []}
    datasets = _diff_mapping(
        {name: d["hash"] for name, d in datasets_a.items()},
        {name: d["hash"] for name, d in datasets_b.items()},
    )
    dataset_paths = {
        name: (datasets_a.get(name) or datasets_b.get(name) or {}).get("path") for name in datasets
    }
    cells = _diff_cells(
        a.get("cells") or [], b.get("cells") or [], a.get("prelude"), b.get("prelude")
    )
    env_a, env_b = a.get("environment") or {}, b.get("environment") or {}
    packages = {name: list(versions) for name, versions in package_changes(env_a, env_b).items()}
    python = (
        [env_a.get("python"), env_b.get("python")]
        if env_a.get("python") != env_b.get("python")
        else None
    )
    env_vars = _diff_mapping(env_a.get("env_vars") or {}, env_b.get("env_vars") or {})
    same = not (params or metrics or datasets or cells["differences"] or packages or python)
    metrics_close = all(m["within_tolerance"] for m in metrics.values())
    return {
        "a": {"id": a["id"], "name": a["name"]},
        "b": {"id": b["id"], "name": b["name"]},
        "same": same,
        "params": params,
        "metrics": metrics,
        "metrics_within_tolerance": metrics_close,
        "tolerance": {
            "rtol": rtol,
            "atol": atol,
            "metrics": {k: list(v) for k, v in overrides.items()},
        },
        "datasets": datasets,
        "dataset_paths": dataset_paths,
        "cells": cells,
        "packages": packages,
        "python": python,
        "env_vars": env_vars,
    }


def _tolerance(value: float | Tolerance | Any, atol: float) -> Tolerance:
    if isinstance(value, (int, float)):
        return float(value), atol
    rtol_value, atol_value = value
    return float(rtol_value), float(atol_value)


def _diff_mapping(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Keys whose values differ, as ``key: [value in a, value in b]`` (None when missing)."""
    return {
        key: [a.get(key), b.get(key)]
        for key in sorted(set(a) | set(b))
        if key not in a or key not in b or a[key] != b[key]
    }


def _diff_metrics(
    a: dict[str, Any], b: dict[str, Any], default: Tolerance, overrides: dict[str, Tolerance]
) -> dict[str, dict[str, Any]]:
    """Metrics whose latest value or step series is not exactly equal, each judged against
    its tolerance point by point."""
    latest_a, latest_b = a["metrics"], b["metrics"]
    series_a, series_b = a.get("metric_series") or {}, b.get("metric_series") or {}
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(set(latest_a) | set(latest_b)):
        if is_clock_metric(key):
            continue  # fit times and system load differ in every run: a clock, not a result
        va, vb = latest_a.get(key), latest_b.get(key)
        rtol, atol = overrides.get(key, default)
        points_a = {p["step"]: p["value"] for p in series_a.get(key) or []}
        points_b = {p["step"]: p["value"] for p in series_b.get(key) or []}
        exact = _same_value(va, vb) and all(
            _same_value(points_a.get(step), points_b.get(step))
            for step in set(points_a) | set(points_b)
        )
        if exact:
            continue
        close = metric_close(va, vb, rtol, atol)
        worst: dict[str, Any] | None = None
        if points_a.keys() != points_b.keys():
            close = False
            worst = {"steps": [len(points_a), len(points_b)]}
        else:
            for step in sorted(points_a):
                pa, pb = points_a[step], points_b[step]
                if not metric_close(pa, pb, rtol, atol):
                    close = False
                    worst = {"step": step, "a": pa, "b": pb}
                    break
        delta = vb - va if va is not None and vb is not None else None
        out[key] = {
            "a": va,
            "b": vb,
            "delta": delta,
            "within_tolerance": close,
            "tolerance": [rtol, atol],
            "series": worst,
        }
    return out


def _same_value(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def _diff_cells(
    a: list[dict[str, Any]],
    b: list[dict[str, Any]],
    prelude_a: list[dict[str, Any]] | None = None,
    prelude_b: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Cells aligned by source, so that runs that did the same work line up even when one
    ran some cells before it started (its prelude) or has Papermill's parameters cell among
    its own; those are set apart (params are compared as params). Each difference says in
    which ways the cells differ and names them as every door does (``cell 4 [7]``);
    ``position`` is the cell's place among run a's cells (1-based)."""
    side_a = _comparable(prelude_a or [], a)
    side_b = _comparable(prelude_b or [], b)
    matcher = SequenceMatcher(
        None,
        [_source_key(c) for c, _ in side_a],
        [_source_key(c) for c, _ in side_b],
        autojunk=False,
    )
    differences: list[dict[str, Any]] = []
    next_a = 1  # where a cell found only in b would sit among a's cells
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        pairs: list[tuple[int | None, int | None]] = []
        if tag in ("equal", "replace"):
            width = min(a1 - a0, b1 - b0)
            pairs += [(a0 + k, b0 + k) for k in range(width)]
            pairs += [(i, None) for i in range(a0 + width, a1)]
            pairs += [(None, j) for j in range(b0 + width, b1)]
        else:
            pairs += [(i, None) for i in range(a0, a1)]
            pairs += [(None, j) for j in range(b0, b1)]
        for i, j in pairs:
            ca, position_a = side_a[i] if i is not None else (None, None)
            cb, position_b = side_b[j] if j is not None else (None, None)
            if position_a is not None:
                next_a = position_a + 1
            both = i is not None and j is not None
            if both and (position_a is None or position_b is None) and tag == "equal":
                continue  # one run ran this cell before it started (its prelude)
            if position_a is None:
                ca = None  # prelude cells are not compared: what ran before a run is not its
            if position_b is None:
                cb = None
            if ca is None and cb is None:
                continue
            reasons, names = _cell_reasons(ca, cb)
            if reasons:
                side = ca if ca is not None else cb
                differences.append(
                    {
                        "position": position_a if position_a is not None else next_a,
                        "position_b": position_b,
                        "label": cell_label(side or {}),
                        "reasons": reasons,
                        "data": names,
                        "a": _cell_summary(ca, names),
                        "b": _cell_summary(cb, names),
                    }
                )
    return {"count": [len(a), len(b)], "differences": differences}


def _comparable(
    prelude: list[dict[str, Any]], cells: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], int | None]]:
    """A run's cells to align, each with its position among the run's cells (None for the
    prelude); empty cells and Papermill's parameters cell are left out."""
    out: list[tuple[dict[str, Any], int | None]] = []
    for position, cell in [(None, c) for c in prelude] + list(enumerate(cells, start=1)):
        source = cell.get("source")
        if source is not None and not source.strip():
            continue
        if source and cell.get("cell_number") is None and looks_injected(source):
            continue
        out.append((cell, position))
    return out


def _source_key(cell: dict[str, Any]) -> str:
    source = cell.get("source")
    return source.strip() if source is not None else str(cell.get("source_hash") or "")


def _cell_reasons(
    a: dict[str, Any] | None, b: dict[str, Any] | None
) -> tuple[list[str], list[str]]:
    if a is None or b is None:
        return ["only in a" if b is None else "only in b"], []
    reasons = []
    if a.get("source_hash") != b.get("source_hash"):
        reasons.append("source")
    if a.get("error") != b.get("error"):
        reasons.append("error")
    names = _differing_values(a, b)
    if names:
        reasons.append("data")
    outputs = a.get("output_hash"), b.get("output_hash")
    if outputs[0] != outputs[1] and PARTIAL_OUTPUT not in outputs:
        reasons.append("output")
    figures = a.get("figure_hashes"), b.get("figure_hashes")
    # None: not known (a cell the run started in, or recorded before figures were hashed).
    if None not in figures and figures[0] != figures[1]:
        reasons.append("figure")
    return reasons, names


def _differing_values(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Names whose values differ; a name not compared on either side (``uncompared``) is not."""
    hashes_a, hashes_b = a.get("data_hashes") or {}, b.get("data_hashes") or {}
    names = set(hashes_a) | set(hashes_b)
    if a.get("figure_hashes") is None or b.get("figure_hashes") is None:
        # A side recorded before every value was compared hashed only arrays and frames:
        # a name hashed on one side only tells nothing.
        names = set(hashes_a) & set(hashes_b)
    names -= set(a.get("uncompared") or ()) | set(b.get("uncompared") or ())
    return sorted(name for name in names if hashes_a.get(name) != hashes_b.get(name))


def _cell_summary(
    cell: dict[str, Any] | None, names: list[str] | None = None
) -> dict[str, Any] | None:
    if cell is None:
        return None
    source = cell.get("source") or ""
    first_line = source.strip().splitlines()
    return {
        "seq": cell["seq"],
        "execution_count": cell.get("execution_count"),
        "cell_number": cell.get("cell_number"),
        "label": cell_label(cell),
        "first_line": first_line[0][:80] if first_line else "",
        "line": telling_line(source, names or ())[:80],
        "error": cell.get("error"),
        "error_value": cell.get("error_value"),
    }


def telling_line(source: str, names: Sequence[str] = ()) -> str:
    """The line of a cell worth quoting: the one that assigns ``names`` when given, else the
    first that is not a comment, an import or a magic (else the first line)."""
    lines = [line.strip() for line in source.strip().splitlines() if line.strip()]
    for name in names:
        assigns = re.compile(rf"^(?:[\w.\[\]'\"]+\s*,\s*)*\(?{re.escape(name)}\b[^=]*=(?!=)")
        for line in lines:
            if assigns.match(line):
                return line
    for line in lines:
        if not line.startswith(("#", "import ", "from ", "%", "!")):
            return line
    return lines[0] if lines else ""
