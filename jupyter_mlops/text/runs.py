"""Text for people about many runs: the runs table and CSV, models, artifacts, a diff of two
runs, and a metric's series."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from tabulate import tabulate

from .words import (
    MAX_SERIES_ROWS,
    common_keys,
    format_duration,
    format_value,
    run_duration,
    section,
    when,
    yes_no,
)

__all__ = [
    "artifacts_table",
    "diff_text",
    "models_table",
    "replay_count",
    "runs_csv",
    "runs_table",
    "series_text",
]


def runs_table(runs: list[dict[str, Any]]) -> str:
    """Runs as a text table: id, name, status, start, duration, linear, params, metrics."""
    if not runs:
        return "no runs"
    param_keys = common_keys(runs, "params")
    metric_keys = common_keys(runs, "metrics")
    replayed = any((run.get("replay_summary") or {}).get("count") for run in runs)
    headers = ["id", "name", "status", "kind", "started", "duration", "linear"]
    headers += ["replays"] if replayed else []
    headers += [f"params.{k}" for k in param_keys] + [f"metrics.{k}" for k in metric_keys]
    rows = []
    for run in runs:
        row = [
            run["id"][:12],
            format_value(run["name"], 30),
            run["status"],
            run["kind"],
            when(run["start_time"]),
            format_duration(run_duration(run)),
            yes_no(run["linear"]),
        ]
        row += [replay_count(run.get("replay_summary"))] if replayed else []
        row += [format_value(run["params"].get(k, ""), 16) for k in param_keys]
        row += [format_value(run["metrics"].get(k, ""), 12) for k in metric_keys]
        rows.append(row)
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def replay_count(summary: dict[str, Any] | None) -> str:
    """How often a run was replayed and the latest verdict: ``2, reproduced`` (or ``-``)."""
    if not summary or not summary.get("count"):
        return "-"
    return f"{summary['count']}, {summary.get('verdict') or summary.get('state') or '?'}"


def runs_csv(runs: list[dict[str, Any]]) -> str:
    """Runs as CSV: a row a run, its columns, then every ``params.*``, ``metrics.*`` and
    ``tags.*`` any of them has (values as JSON when not text or numbers)."""
    columns = ["id", "name", "status", "kind", "notebook", "start_time", "end_time", "linear"]
    columns += ["parent_id", "sweep_id", "replays", "replay_verdict"]
    keyed = [
        f"{field}.{key}"
        for field in ("params", "metrics", "tags")
        for key in sorted({k for run in runs for k in run[field]})
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns + keyed)
    for run in runs:
        summary = run.get("replay_summary") or {}
        row = [run.get(column) for column in columns[:-2]]
        row += [summary.get("count", 0), summary.get("verdict")]
        for name in keyed:
            field, _, key = name.partition(".")
            row.append(run[field].get(key))
        writer.writerow(["" if v is None else _csv_value(v) for v in row])
    return out.getvalue()


def _csv_value(value: Any) -> Any:
    return value if isinstance(value, (str, int, float)) else json.dumps(value)


def models_table(versions: list[dict[str, Any]]) -> str:
    """Registered model versions as a text table: name, version, aliases, run, verdict."""
    if not versions:
        return "no registered models"
    rows = [
        [
            v["name"],
            v["version"],
            ", ".join(v["aliases"]) or "-",
            v["run_id"][:12],
            v["artifact"],
            v["verdict"] or "never replayed",
            when(v["created"]),
        ]
        for v in versions
    ]
    headers = ["model", "version", "aliases", "run", "artifact", "verdict", "registered"]
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def artifacts_table(artifacts: list[dict[str, Any]]) -> str:
    """A run's artifacts as a text table: name, kind, size and content hash."""
    if not artifacts:
        return "no artifacts"
    rows = [
        [
            a["name"],
            a["kind"],
            a["size_bytes"],
            a["hash"][:16] + ("" if a.get("present", True) else " (missing)"),
        ]
        for a in artifacts
    ]
    return tabulate(
        rows, headers=["name", "kind", "bytes", "hash"], tablefmt="simple", disable_numparse=True
    )


def diff_text(diff: dict[str, Any]) -> str:
    """A diff of two runs as text."""
    a, b = diff["a"], diff["b"]
    head = f"a: {a['name']} ({a['id'][:12]})\nb: {b['name']} ({b['id'][:12]})"
    if diff["same"]:
        return head + "\n\nno differences"
    parts = [head]
    if diff["params"]:
        rows = [[k, _side(v[0]), _side(v[1])] for k, v in diff["params"].items()]
        parts.append(section("params", rows, ["key", "a", "b"]))
    if diff["metrics"]:
        rows = [
            [k, _side(m["a"]), _side(m["b"]), _side(m["delta"])] for k, m in diff["metrics"].items()
        ]
        parts.append(section("metrics", rows, ["key", "a", "b", "b - a"]))
    if diff["datasets"]:
        rows = [[k, _short(v[0]), _short(v[1])] for k, v in diff["datasets"].items()]
        parts.append(section("datasets", rows, ["name", "a", "b"]))
    cells = diff["cells"]
    if cells["differences"]:
        rows = []
        for d in cells["differences"][:20]:
            side = d["a"] or d["b"]
            line = side.get("line") or side["first_line"]
            label = d.get("label") or f"cell {d['position']}"
            rows.append([label, ", ".join(d["reasons"]), format_value(line, 60)])
        count_a, count_b = cells["count"]
        parts.append(
            section(f"cells ({count_a} vs {count_b})", rows, ["cell", "differs in", "source"])
        )
    if diff["packages"]:
        rows = [[k, _side(v[0]), _side(v[1])] for k, v in diff["packages"].items()]
        parts.append(section("packages", rows, ["package", "a", "b"]))
    if diff.get("python"):
        parts.append(f"python: {diff['python'][0]} -> {diff['python'][1]}")
    return "\n\n".join(parts)


def _side(value: Any) -> str:
    return "(none)" if value is None else format_value(value)


def _short(digest: str | None) -> str:
    return "(none)" if digest is None else digest[:16]


def series_text(key: str, series: dict[str, list[dict[str, Any]]]) -> str:
    """A metric's step series per run as text: a summary line and evenly spaced points."""
    parts = []
    for label, points in series.items():
        if not points:
            parts.append(f"{key} of {label}: no points")
            continue
        values = [p["value"] for p in points]
        finite = [v for v in values if not (math.isnan(v) or math.isinf(v))]
        low = format_value(min(finite)) if finite else "-"
        high = format_value(max(finite)) if finite else "-"
        head = (
            f"{key} of {label}: {len(points)} point(s), last {format_value(values[-1])}"
            f" at step {points[-1]['step']}, min {low}, max {high}"
        )
        step = max(1, math.ceil(len(points) / MAX_SERIES_ROWS))
        shown = points[::step]
        if shown[-1] is not points[-1]:
            shown.append(points[-1])
        rows = [[p["step"], format_value(p["value"])] for p in shown]
        body = tabulate(rows, headers=["step", key], tablefmt="simple", disable_numparse=True)
        parts.append(f"{head}\n{body}")
    return "\n\n".join(parts)
