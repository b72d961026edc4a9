"""Text for people about one run, whole: its overview, then a section for each kind of thing it
holds (replays, params, metrics, cells, datasets, data checks, artifacts, models, environment)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tabulate import tabulate

from ..compare import telling_line
from ..linearity import cell_label
from .runs import artifacts_table
from .words import format_duration, format_value, section, sections, when, yes_no

__all__ = ["run_text"]


def run_text(run: dict[str, Any]) -> str:
    """One run whole, as text: overview, params, metrics, cells, datasets, environment."""
    parts = [tabulate(_overview(run), tablefmt="plain", disable_numparse=True)]
    for part in _RUN_SECTIONS:
        parts.extend(part(run))
    return "\n\n".join(parts)


def _overview(run: dict[str, Any]) -> list[list[Any]]:
    overview = [
        ["id", run["id"]],
        ["name", run["name"]],
        ["status", run["status"] + (f" ({run['error']})" if run.get("error") else "")],
        ["kind", run["kind"]],
        ["notebook", run.get("notebook") or "-"],
        ["started", when(run["start_time"])],
        ["duration", format_duration((run["end_time"] or time.time()) - run["start_time"])],
        ["linear", yes_no(run.get("linear"))],
    ]
    if run.get("linear_reasons"):
        overview += [["", f"- {reason}"] for reason in run["linear_reasons"]]
    if run.get("parent_id"):
        overview.append(["parent", run["parent_id"]])
    if run.get("tags"):
        overview.append(["tags", ", ".join(f"{k}={v}" for k, v in run["tags"].items())])
    if run.get("note"):
        overview += [
            ["note" if i == 0 else "", line] for i, line in enumerate(run["note"].splitlines())
        ]
    replay_of = run.get("replay_of")
    if replay_of:
        overview.append(["verdict", f"{replay_of.get('verdict') or replay_of['state']}"])
        if replay_of.get("summary"):
            overview.append(["", replay_of["summary"]])
    return overview


def _replays_section(run: dict[str, Any]) -> list[str]:
    rows = [
        [
            when(r["start_time"]),
            r["mode"],
            r.get("verdict") or r["state"],
            (r.get("replay_run_id") or "")[:12],
            format_value(r.get("summary") or "", 70),
        ]
        for r in run.get("replays") or []
    ]
    return sections("replays", rows, ["started", "mode", "verdict", "run", "summary"])


def _params_section(run: dict[str, Any]) -> list[str]:
    history = run.get("param_history") or {}
    rows = [
        [k, format_value(v, 60), ", ".join(format_value(h["value"], 20) for h in history[k])]
        if k in history
        else [k, format_value(v, 60)]
        for k, v in run["params"].items()
    ]
    return sections("params", rows, ["key", "value", "earlier"] if history else ["key", "value"])


def _metrics_section(run: dict[str, Any]) -> list[str]:
    series = run.get("metric_series") or {}
    # A long series is thinned for the view; its full length is what was logged.
    lengths = run.get("metric_series_length") or {}
    rows = [
        [
            k,
            format_value(v),
            lengths.get(k) or len(series.get(k, [])) or "-",
            _series_values(series.get(k) or [], lengths.get(k)),
        ]
        for k, v in run["metrics"].items()
    ]
    return sections("metrics", rows, ["key", "latest", "points", "series (step: value)"])


def _cells_section(run: dict[str, Any]) -> list[str]:
    rows = [
        [
            cell_label(cell),
            format_duration(cell.get("duration")),
            cell.get("error") or "",
            ", ".join(cell.get("marks") or []),
            format_value(telling_line(cell.get("source") or ""), 60),
        ]
        for cell in run.get("cells") or []
    ]
    return sections("cells", rows, ["cell", "took", "error", "order", "source"])


def _datasets_sections(run: dict[str, Any]) -> list[str]:
    parts = []
    for title, key in (("datasets", "datasets"), ("serving samples", "serving")):
        rows = [
            [d["name"], d["kind"], "x".join(map(str, d["shape"] or [])) or "-", d["hash"][:16]]
            for d in run.get(key) or []
        ]
        parts += sections(title, rows, ["name", "kind", "shape", "hash"])
    return parts


def _checks_section(run: dict[str, Any]) -> list[str]:
    rows = [
        [
            when(c["time"]),
            format_value(c["subject"], 30),
            f"{(c['baseline_run'] or '')[:12]}:{c['baseline_dataset']}",
            "passed" if c["passed"] else "FAILED",
            _check_problems(c.get("report") or {}),
        ]
        for c in run.get("data_checks") or []
    ]
    return sections("data checks", rows, ["checked", "data", "against", "result", "problems"])


def _check_problems(report: dict[str, Any]) -> str:
    """A data check's problems in a few words: kind and column of each error first."""
    problems = sorted(report.get("problems") or [], key=lambda p: p["severity"] != "error")
    shown = [f"{p['kind']} {p['column']}" for p in problems[:3]]
    if len(problems) > 3:
        shown.append(f"+{len(problems) - 3} more")
    return ", ".join(shown) or "-"


def _artifacts_section(run: dict[str, Any]) -> list[str]:
    artifacts = run.get("artifacts") or []
    return [f"artifacts\n{artifacts_table(artifacts)}"] if artifacts else []


def _registered_section(run: dict[str, Any]) -> list[str]:
    rows = [
        [f"{v['name']}/{v['version']}", ", ".join(v["aliases"]) or "-", v["artifact"]]
        for v in run.get("registered") or []
    ]
    return sections("registered as", rows, ["model", "aliases", "artifact"])


def _environment_section(run: dict[str, Any]) -> list[str]:
    env = run.get("environment")
    if not env:
        return []
    git = env.get("git") or {}
    rows = [
        ["python", env.get("python")],
        ["platform", env.get("platform")],
        ["packages", len(env.get("packages") or {})],
    ]
    if git:
        rows.append(
            ["git", f"{git.get('commit', '')[:12]}{' (dirty)' if git.get('dirty') else ''}"]
        )
    return [section("environment", rows, None)]


# The parts of ``run_text`` after the overview, in the order they are shown; each gives
# nothing when the run has nothing of its kind.
_RUN_SECTIONS: tuple[Callable[[dict[str, Any]], list[str]], ...] = (
    _replays_section,
    _params_section,
    _metrics_section,
    _cells_section,
    _datasets_sections,
    _checks_section,
    _artifacts_section,
    _registered_section,
    _environment_section,
)


def _series_values(points: list[dict[str, Any]], length: int | None, shown: int = 3) -> str:
    """A series in a few words: its first and last points (``0: 1, 1: 0.6 … 9: 0.1``)."""
    if len(points) < 2:
        return ""

    def point(p: dict[str, Any]) -> str:
        return f"{p['step']}: {format_value(p['value'], 12)}"

    if len(points) <= 2 * shown:
        return ", ".join(map(point, points))
    head = ", ".join(map(point, points[:shown]))
    tail = ", ".join(map(point, points[-shown:]))
    thinned = " (thinned)" if length and length > len(points) else ""
    return f"{head} … {tail}{thinned}"
