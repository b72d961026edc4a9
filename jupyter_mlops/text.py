"""Text for people: runs, one run, a diff, a series, a replay's report, a check, a sweep.

What the command line and ``%track`` print, and the small words (a value, a time, a
duration, which keys to show) the notebook views use too, so every door says them alike.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from tabulate import tabulate

from .compare import telling_line
from .linearity import cell_label

__all__ = [
    "MAX_KEY_COLUMNS",
    "artifacts_table",
    "cell_where",
    "check_text",
    "common_keys",
    "diff_text",
    "format_duration",
    "format_value",
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

MAX_KEY_COLUMNS = 6
MAX_SERIES_ROWS = 12


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
    end = run.get("end_time") or (time.time() if run.get("status") == "running" else None)
    return end - run["start_time"] if end else None


def number_text(value: float | None) -> str:
    """A number in six significant digits, or ``none``."""
    return "none" if value is None else f"{value:.6g}"


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


def _linear(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


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
            _linear(run["linear"]),
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
    import csv
    import io

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


def run_text(run: dict[str, Any]) -> str:
    """One run whole, as text: overview, params, metrics, cells, datasets, environment."""
    parts = [tabulate(_overview(run), tablefmt="plain", disable_numparse=True)]
    for section in _RUN_SECTIONS:
        parts.extend(section(run))
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
        ["linear", _linear(run.get("linear"))],
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
    return _sections("replays", rows, ["started", "mode", "verdict", "run", "summary"])


def _params_section(run: dict[str, Any]) -> list[str]:
    history = run.get("param_history") or {}
    rows = [
        [k, format_value(v, 60), ", ".join(format_value(h["value"], 20) for h in history[k])]
        if k in history
        else [k, format_value(v, 60)]
        for k, v in run["params"].items()
    ]
    return _sections("params", rows, ["key", "value", "earlier"] if history else ["key", "value"])


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
    return _sections("metrics", rows, ["key", "latest", "points", "series (step: value)"])


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
    return _sections("cells", rows, ["cell", "took", "error", "order", "source"])


def _datasets_sections(run: dict[str, Any]) -> list[str]:
    parts = []
    for title, key in (("datasets", "datasets"), ("serving samples", "serving")):
        rows = [
            [d["name"], d["kind"], "x".join(map(str, d["shape"] or [])) or "-", d["hash"][:16]]
            for d in run.get(key) or []
        ]
        parts += _sections(title, rows, ["name", "kind", "shape", "hash"])
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
    return _sections("data checks", rows, ["checked", "data", "against", "result", "problems"])


def _artifacts_section(run: dict[str, Any]) -> list[str]:
    artifacts = run.get("artifacts") or []
    return [f"artifacts\n{artifacts_table(artifacts)}"] if artifacts else []


def _registered_section(run: dict[str, Any]) -> list[str]:
    rows = [
        [f"{v['name']}/{v['version']}", ", ".join(v["aliases"]) or "-", v["artifact"]]
        for v in run.get("registered") or []
    ]
    return _sections("registered as", rows, ["model", "aliases", "artifact"])


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
    return [_section("environment", rows, None)]


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


def _check_problems(report: dict[str, Any]) -> str:
    """A data check's problems in a few words: kind and column of each error first."""
    problems = sorted(report.get("problems") or [], key=lambda p: p["severity"] != "error")
    shown = [f"{p['kind']} {p['column']}" for p in problems[:3]]
    if len(problems) > 3:
        shown.append(f"+{len(problems) - 3} more")
    return ", ".join(shown) or "-"


def _sections(title: str, rows: list[list[Any]], headers: list[str]) -> list[str]:
    """A titled table as a list of one part, or no part when there are no rows."""
    return [_section(title, rows, headers)] if rows else []


def _section(title: str, rows: list[list[Any]], headers: list[str] | None) -> str:
    body = tabulate(
        rows,
        headers=headers or (),
        tablefmt="simple" if headers else "plain",
        disable_numparse=True,
    )
    return f"{title}\n{body}"


def diff_text(diff: dict[str, Any]) -> str:
    """A diff of two runs as text."""
    a, b = diff["a"], diff["b"]
    head = f"a: {a['name']} ({a['id'][:12]})\nb: {b['name']} ({b['id'][:12]})"
    if diff["same"]:
        return head + "\n\nno differences"
    parts = [head]
    if diff["params"]:
        rows = [[k, _side(v[0]), _side(v[1])] for k, v in diff["params"].items()]
        parts.append(_section("params", rows, ["key", "a", "b"]))
    if diff["metrics"]:
        rows = [
            [k, _side(m["a"]), _side(m["b"]), _side(m["delta"])] for k, m in diff["metrics"].items()
        ]
        parts.append(_section("metrics", rows, ["key", "a", "b", "b - a"]))
    if diff["datasets"]:
        rows = [[k, _short(v[0]), _short(v[1])] for k, v in diff["datasets"].items()]
        parts.append(_section("datasets", rows, ["name", "a", "b"]))
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
            _section(f"cells ({count_a} vs {count_b})", rows, ["cell", "differs in", "source"])
        )
    if diff["packages"]:
        rows = [[k, _side(v[0]), _side(v[1])] for k, v in diff["packages"].items()]
        parts.append(_section("packages", rows, ["package", "a", "b"]))
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


# -- a replay, a check, a sweep ----------------------------------------------------------------


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
    if len(causes) > 1 or (causes and report["verdict"] == "failed"):
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
    cells = diff.get("cells") or {}
    differing = cells.get("differences") or []
    if differing:
        count = (cells.get("count") or [0, 0])[0]
        lines.append(f"cells that differ: {len(differing)} of {count}")
        for d in differing[:5]:
            first = (d.get("a") or d.get("b") or {}).get("first_line", "")
            lines.append(f"  {cell_where(d)}: {', '.join(d['reasons'])}  `{first}`")
        if len(differing) > 5:
            lines.append(f"  … and {len(differing) - 5} more")
    if diff.get("packages"):
        lines.append("packages that differ:")
        for name, (a, b) in diff["packages"].items():
            lines.append(f"  {name}: {a or '-'} → {b or '-'}")
    if report.get("notebook"):
        lines.append(f"executed notebook: {report['notebook']}")
    return "\n".join(lines)


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
    from .clock_metrics import is_clock_metric
    from .execute import Failure

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
        lines.append(f"  point {point['index'] + 1} {Failure(**point['failure'])}")
    return "\n".join(lines)


def _sweep_cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
