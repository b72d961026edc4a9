"""The diff of two recorded runs: params, metrics, datasets, cells, packages.

One diff for every door: the CLI's ``diff``, ``%track compare``, the sidebar and replays all
use it. Metrics are compared with tolerances, so floating-point noise can be told from a
real change; everything else is compared exactly (cell outputs were sanitized when hashed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .environment import package_changes

# Written by capture for a cell in which the run started: what it showed before is unknown.
PARTIAL_OUTPUT = "partial"

__all__ = ["DEFAULT_ATOL", "DEFAULT_RTOL", "diff_runs", "metric_close"]

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
    cells = _diff_cells(a.get("cells") or [], b.get("cells") or [])
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


def _diff_cells(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    """Cells compared in run order; each difference says in which ways the cells differ."""
    differences: list[dict[str, Any]] = []
    for index in range(max(len(a), len(b))):
        ca = a[index] if index < len(a) else None
        cb = b[index] if index < len(b) else None
        reasons, names = _cell_reasons(ca, cb)
        if reasons:
            differences.append(
                {
                    "position": index + 1,
                    "reasons": reasons,
                    "data": names,
                    "a": _cell_summary(ca),
                    "b": _cell_summary(cb),
                }
            )
    return {"count": [len(a), len(b)], "differences": differences}


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
    hashes_a, hashes_b = a.get("data_hashes") or {}, b.get("data_hashes") or {}
    names = sorted(
        name for name in set(hashes_a) | set(hashes_b) if hashes_a.get(name) != hashes_b.get(name)
    )
    if names:
        reasons.append("data")
    outputs = a.get("output_hash"), b.get("output_hash")
    if outputs[0] != outputs[1] and PARTIAL_OUTPUT not in outputs:
        reasons.append("output")
    return reasons, names


def _cell_summary(cell: dict[str, Any] | None) -> dict[str, Any] | None:
    if cell is None:
        return None
    first_line = (cell.get("source") or "").strip().splitlines()
    return {
        "seq": cell["seq"],
        "execution_count": cell.get("execution_count"),
        "first_line": first_line[0][:80] if first_line else "",
        "error": cell.get("error"),
        "error_value": cell.get("error_value"),
    }
