"""The diff of two recorded runs: params, metrics, datasets, cells, packages.

One diff for every door: the CLI's ``diff``, ``%track compare`` and replays all use it.
"""

from __future__ import annotations

import math
from typing import Any

from .environment import package_changes

__all__ = ["diff_runs"]


def diff_runs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """What differs between two runs given as ``RunRecord.to_dict(full=True)``."""
    params = _diff_mapping(a["params"], b["params"])
    metrics = _diff_metrics(a["metrics"], b["metrics"])
    datasets = _diff_mapping(
        {d["name"]: d["hash"] for d in a.get("datasets") or []},
        {d["name"]: d["hash"] for d in b.get("datasets") or []},
    )
    cells = _diff_cells(a.get("cells") or [], b.get("cells") or [])
    env_a, env_b = a.get("environment") or {}, b.get("environment") or {}
    packages = {name: list(versions) for name, versions in package_changes(env_a, env_b).items()}
    python = (
        [env_a.get("python"), env_b.get("python")]
        if env_a.get("python") != env_b.get("python")
        else None
    )
    same = not (params or metrics or datasets or cells["differences"] or packages or python)
    return {
        "a": {"id": a["id"], "name": a["name"]},
        "b": {"id": b["id"], "name": b["name"]},
        "same": same,
        "params": params,
        "metrics": metrics,
        "datasets": datasets,
        "cells": cells,
        "packages": packages,
        "python": python,
    }


def _diff_mapping(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[Any]]:
    """Keys whose values differ, as ``key: [value in a, value in b]`` (None when missing)."""
    return {
        key: [a.get(key), b.get(key)]
        for key in sorted(set(a) | set(b))
        if key not in a or key not in b or a[key] != b[key]
    }


def _diff_metrics(a: dict[str, float], b: dict[str, float]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if va is not None and vb is not None and (va == vb or (math.isnan(va) and math.isnan(vb))):
            continue
        delta = vb - va if va is not None and vb is not None else None
        out[key] = {"a": va, "b": vb, "delta": delta}
    return out


def _diff_cells(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    """Cells compared in run order; the first difference says in which way they differ."""
    differences: list[dict[str, Any]] = []
    for index in range(max(len(a), len(b))):
        ca = a[index] if index < len(a) else None
        cb = b[index] if index < len(b) else None
        reasons = _cell_reasons(ca, cb)
        if reasons:
            differences.append(
                {
                    "position": index + 1,
                    "reasons": reasons,
                    "a": _cell_summary(ca),
                    "b": _cell_summary(cb),
                }
            )
    return {"count": [len(a), len(b)], "differences": differences}


def _cell_reasons(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[str]:
    if a is None or b is None:
        return ["only in a" if b is None else "only in b"]
    reasons = []
    if a.get("source_hash") != b.get("source_hash"):
        reasons.append("source")
    if a.get("error") != b.get("error"):
        reasons.append("error")
    if (a.get("data_hashes") or {}) != (b.get("data_hashes") or {}):
        reasons.append("data")
    if a.get("output_hash") != b.get("output_hash"):
        reasons.append("output")
    return reasons


def _cell_summary(cell: dict[str, Any] | None) -> dict[str, Any] | None:
    if cell is None:
        return None
    first_line = (cell.get("source") or "").strip().splitlines()
    return {
        "seq": cell["seq"],
        "execution_count": cell.get("execution_count"),
        "first_line": first_line[0][:80] if first_line else "",
        "error": cell.get("error"),
    }
