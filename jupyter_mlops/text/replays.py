"""Text for people about running notebooks again: a replay's report, a check, a sweep."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..vocabulary import VERDICTS
from .words import cell_where, number_text

__all__ = ["check_text", "failure_text", "report_text", "sweep_table"]

_FAILED = VERDICTS[-1]


def report_text(report: Mapping[str, Any]) -> str:
    """A replay's report for people: the verdict first, then what differs."""
    original, replayed = report["original"], report.get("replay_run") or {}
    lines = [
        f"replay of {original['name']} ({original['id'][:12]}) as run "
        f"{(replayed.get('id') or '?')[:12]}, {report['mode']} mode"
        + (f", {report['duration_s']:.1f} s" if report.get("duration_s") is not None else ""),
        f"verdict: {report['verdict']}",
        report["summary"],
    ]
    causes = report.get("causes") or []
    if len(causes) > 1 or (causes and report["verdict"] == _FAILED):
        lines.append("likely causes:")
        lines.extend(f"  - {cause}" for cause in causes)
    failure = report.get("failure") or {}
    # A kernel that never started ran nothing: the comparison would list every difference.
    started = failure.get("kind") != "kernel did not start"
    diff = (report.get("comparison") or {}) if started else {}
    metrics = diff.get("metrics") or {}
    if metrics:
        lines.append("metrics that differ:")
        for key, m in metrics.items():
            judged = "within" if m["within_tolerance"] else "outside"
            lines.append(
                f"  {key}: {number_text(m['a'])} → {number_text(m['b'])} "
                f"(delta {number_text(m['delta'])}, {judged} tolerance)"
            )
    if diff.get("params"):
        lines.append("params that differ:")
        for key, (a, b) in diff["params"].items():
            lines.append(f"  {key}: {json.dumps(a)} → {json.dumps(b)}")
    if diff.get("datasets"):
        lines.append("datasets that differ:")
        for name, (a, b) in diff["datasets"].items():
            path = (diff.get("dataset_paths") or {}).get(name)
            lines.append(f"  {name}{f' ({path})' if path else ''}: {a or '-'} → {b or '-'}")
    lines += _cells_that_differ(diff.get("cells") or {})
    if diff.get("packages"):
        lines.append("packages that differ:")
        for name, (a, b) in diff["packages"].items():
            lines.append(f"  {name}: {a or '-'} → {b or '-'}")
    if report.get("notebook"):
        lines.append(f"executed notebook: {report['notebook']}")
    return "\n".join(lines)


def _cells_that_differ(cells: Mapping[str, Any], shown: int = 5) -> list[str]:
    """The report's lines on cells: how many differ, and the first few with their reasons."""
    differing = cells.get("differences") or []
    if not differing:
        return []
    count = (cells.get("count") or [0, 0])[0]
    lines = [f"cells that differ: {len(differing)} of {count}"]
    for d in differing[:shown]:
        first = (d.get("a") or d.get("b") or {}).get("first_line", "")
        lines.append(f"  {cell_where(d)}: {', '.join(d['reasons'])}  `{first}`")
    if len(differing) > shown:
        lines.append(f"  … and {len(differing) - shown} more")
    return lines


def check_text(result: Mapping[str, Any]) -> str:
    """A check's result for people: a line a check, then the verdict of the whole."""
    lines = []
    for case in result["checks"]:
        mark = "PASS" if case["passed"] else "FAIL"
        lines.append(f"{mark}  {case['name']}: {case['message']}")
    failed = sum(1 for case in result["checks"] if not case["passed"])
    lines.append(
        "all checks passed"
        if not failed
        else f"{failed} of {len(result['checks'])} check(s) failed"
    )
    return "\n".join(lines)


def sweep_table(result: Mapping[str, Any]) -> str:
    """The summary of a sweep for people: a row a point, its params and final metrics
    (not fit times and system load, which are no result; ``--format json`` has them)."""
    from ..clock_metrics import is_clock_metric

    points = result["points"]
    params = list(dict.fromkeys(k for p in points for k in p["params"]))
    metrics = list(
        dict.fromkeys(k for p in points for k in p.get("metrics") or {} if not is_clock_metric(k))
    )
    header = ["#", "run", "status", *params, *metrics]
    rows = []
    for point in points:
        row = [str(point["index"] + 1), point["run_id"][:8], point.get("status", "?")]
        row += [_sweep_cell(point["params"].get(k)) for k in params]
        row += [_sweep_cell((point.get("metrics") or {}).get(k)) for k in metrics]
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    failed = [p for p in points if p["failure"]]
    lines.append(
        f"{len(points)} run(s), {len(failed)} failed, sweep {result['sweep_id'][:12]}, "
        f"{result['duration_s']:.1f} s on {result['workers']} worker(s); "
        f"notebooks in {result['output_dir']}"
    )
    for point in failed:
        lines.append(f"  point {point['index'] + 1} {failure_text(point['failure'])}")
    return "\n".join(lines)


def _sweep_cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def failure_text(failure: Mapping[str, Any]) -> str:
    """Why an execution stopped early, in one line (a failure as ``Failure.to_dict`` gives it)."""
    if failure["kind"] == "kernel did not start":
        return f"the kernel did not start: {failure['message']}"
    index = failure.get("cell_index")
    where = failure.get("cell_label") or (
        f"notebook cell {index + 1}" if index is not None else "the kernel"
    )
    return f"failed at {where}: {failure.get('error') or failure['kind']}: {failure['message']}"
