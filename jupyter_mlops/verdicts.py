"""Verdicts: whether a replay reproduced its original run, where it diverged and why.

The replay (``replays.py``) runs the notebook again; this module judges the two runs:
``reproduced``, ``reproduced within tolerance``, ``diverged`` (the first cell that differs
and the causes that explain it, most likely first, found by ``causes``) or ``failed`` (the
cell and its error), and writes the report's summary for people.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .causes import Evidence, failure_causes, likely_causes
from .compare import DEFAULT_ATOL, DEFAULT_RTOL, Tolerance, diff_runs
from .linearity import cell_label
from .records import RunRecord
from .text.words import cell_where, number_text
from .vocabulary import REPRODUCED

__all__ = ["confirm_verdict", "first_source_line", "judge", "verdict_exit_code"]

_LINE = 70


def judge(
    original: dict[str, Any],
    replayed: dict[str, Any],
    *,
    record: RunRecord,
    mode: str,
    layout: dict[str, Any],
    failure: dict[str, Any] | None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    tolerances: Mapping[str, float | Tolerance] | None = None,
) -> dict[str, Any]:
    """The verdict on a replay, with where it went wrong and why it likely did."""
    diff = diff_runs(original, replayed, rtol=rtol, atol=atol, tolerances=tolerances)
    report: dict[str, Any] = {
        "original": {"id": original["id"], "name": original["name"]},
        "replay_run": {"id": replayed["id"], "name": replayed["name"]},
        "mode": mode,
        "failure": None,
        "first_cell": None,
        "causes": [],
        "nondeterministic": None,
        "comparison": diff,
    }
    cells = original.get("cells") or []
    if failure is not None:
        cell = _failed_cell(failure, layout, cells)
        failure = {**failure, "cell": cell}
        report.update(verdict="failed", failure=failure, summary=_failure_summary(failure))
        report["causes"] = failure_causes(failure, diff, cells, record)
        return _finish(report)
    evidence = Evidence(original, replayed, record)
    expected = [d for d in diff["cells"]["differences"] if evidence.clock_only(d)]
    cell_diffs = [d for d in diff["cells"]["differences"] if d not in expected]
    report["expected"] = [
        {"position": d["position"], "clock": evidence.clocks(d["position"])} for d in expected
    ]
    metrics_out = [k for k, m in diff["metrics"].items() if not m["within_tolerance"]]
    hard = _beyond_noise(diff, cell_diffs, metrics_out, evidence)
    if diff["same"] or (not hard and not diff["metrics"] and not cell_diffs):
        summary = _reproduced_summary(original, diff) + _expected_note(report["expected"])
        report.update(verdict="reproduced", summary=summary)
    elif not hard:
        summary = _within_tolerance_summary(diff, cell_diffs)
        report.update(verdict="reproduced within tolerance", summary=summary)
    else:
        first = next(iter(cell_diffs), None)
        if first is None and metrics_out:
            first = _metric_cell(original, metrics_out[0], cells)
        report["first_cell"] = first
        report["causes"] = likely_causes(
            original, replayed, diff, first, record, mode, evidence=evidence
        )
        report.update(verdict="diverged", summary=_divergence_summary(report, diff, metrics_out))
    return _finish(report)


def _beyond_noise(
    diff: dict[str, Any],
    cell_diffs: list[dict[str, Any]],
    metrics_out: list[str],
    evidence: Evidence,
) -> bool:
    """Whether the runs differ in more than metrics within tolerance (and the cell outputs
    that show those metrics) can explain."""
    noise = bool(diff["metrics"]) and diff["metrics_within_tolerance"]
    return bool(
        diff["params"]
        or metrics_out
        or diff["datasets"]
        or any(
            {"error", "source", "only in a", "only in b"} & set(d["reasons"]) for d in cell_diffs
        )
        or (cell_diffs and not noise)
        # Metric noise explains a cell's difference only where nothing in the cell draws at
        # random: shuffled folds can give a mean equal to the last bit and other scores.
        or any(evidence.draws(d["position"]) for d in cell_diffs)
    )


def _within_tolerance_summary(diff: dict[str, Any], cell_diffs: list[dict[str, Any]]) -> str:
    key, values = max(diff["metrics"].items(), key=lambda kv: abs(kv[1]["delta"] or 0.0))
    return (
        f"Reproduced within tolerance: {key} differs by {number_text(values['delta'])} "
        f"(rtol {values['tolerance'][0]:g}, atol {values['tolerance'][1]:g})"
        + (f"; {len(cell_diffs)} cell output(s) differ with it" if cell_diffs else "")
        + "."
    )


# What two replays say, when they differ from each other and when they agree: the summary's
# sentence, and the cause when nothing else was found.
_CONFIRMATIONS = {
    True: (
        "A second replay differs from the first at {where} too: "
        "the cell is nondeterministic in itself.",
        "{where} gives a different result in every process (two replays differ there), "
        "from a source its code does not show",
    ),
    False: (
        "A second replay matches the first at {where}: it repeats itself, so something "
        "changed since the original run (its environment or inputs).",
        "something the run depends on changed since the original run (two replays agree "
        "with each other, not with it), outside what was recorded",
    ),
}


def confirm_verdict(
    report: dict[str, Any],
    first: dict[str, Any],
    second: dict[str, Any],
    *,
    failed: bool = False,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    tolerances: Mapping[str, float | Tolerance] | None = None,
) -> None:
    """Add what a second replay says to a diverged report: replays that differ from each other
    where the original and the first replay differ mean the cell is nondeterministic in
    itself; replays that agree mean something changed since the original run."""
    diff = diff_runs(first, second, rtol=rtol, atol=atol, tolerances=tolerances)
    cell = report.get("first_cell")
    position = cell["position"] if cell else None
    differs = any(
        position is None or d["position"] <= position for d in diff["cells"]["differences"]
    ) or any(not m["within_tolerance"] for m in diff["metrics"].values())
    where = cell_where(cell) if cell else "the metrics"
    report["confirmation"] = {
        "replay_run": {"id": second["id"], "name": second["name"]},
        "agree": not differs and not failed,
    }
    fallback = None
    if failed:
        report["nondeterministic"] = None
        note = "A second replay failed, so whether the cell is nondeterministic is not known."
    else:
        report["nondeterministic"] = differs
        note, fallback = (part.format(where=where) for part in _CONFIRMATIONS[differs])
    if fallback and not report["causes"]:
        report["causes"].append(fallback)
    summary = report["summary"].replace(" No likely cause was found.", "")
    if report["causes"] and "Likely cause:" not in summary:
        summary += f" Likely cause: {report['causes'][0]}."
    report["summary"] = f"{summary} {note}"


def _finish(report: dict[str, Any]) -> dict[str, Any]:
    report["reproduced"] = report["verdict"] in REPRODUCED
    return report


def _reproduced_summary(original: dict[str, Any], diff: dict[str, Any]) -> str:
    cells = len(original.get("cells") or [])
    metrics = len(original.get("metrics") or {})
    datasets = len(original.get("datasets") or [])
    text = (
        f"Reproduced: {cells} cell(s), {metrics} metric(s) and {datasets} dataset(s) "
        "match the original exactly."
    )
    if diff["packages"]:
        text += f" ({len(diff['packages'])} package version(s) differ, without effect.)"
    return text


def _expected_note(expected: list[dict[str, Any]]) -> str:
    if not expected:
        return ""
    cells = ", ".join(str(e["position"]) for e in expected)
    clocks = ", ".join(f"`{c}`" for e in expected for c in e["clock"][:1])
    return (
        f" Cell(s) {cells} show a different output only because they read the clock "
        f"({clocks}), as expected."
    )


def _divergence_summary(
    report: dict[str, Any], diff: dict[str, Any], metrics_out: list[str]
) -> str:
    first = report["first_cell"]
    parts = []
    if first is not None:
        parts.append(f"Diverged at {cell_where(first)} ({_quote(first)}): {_what(first)}.")
    else:
        parts.append("Diverged.")
    if metrics_out:
        details = []
        for key in metrics_out[:3]:
            m = diff["metrics"][key]
            details.append(f"{key} {number_text(m['a'])} → {number_text(m['b'])}")
        parts.append("Metrics differ: " + ", ".join(details) + ".")
    if diff["params"]:
        parts.append("Params differ: " + ", ".join(sorted(diff["params"])) + ".")
    causes = report["causes"]
    parts.append(f"Likely cause: {causes[0]}." if causes else "No likely cause was found.")
    return " ".join(parts)


def _what(first: dict[str, Any]) -> str:
    reasons = first["reasons"]
    if "only in a" in reasons:
        return "the replay did not run this cell"
    if "only in b" in reasons:
        return "the replay ran a cell the original did not"
    said = []
    if "source" in reasons:
        said.append("its source differs")
    if "error" in reasons:
        a, b = first["a"].get("error"), first["b"].get("error")
        said.append(f"it raised {b}" if b and not a else f"it raised {a} originally, now {b}")
    if "data" in reasons:
        names = ", ".join(first.get("data") or [])
        said.append(f"the data it wrote differs ({names})" if names else "its data differs")
    if "output" in reasons:
        said.append("its output differs")
    if "figure" in reasons:
        said.append("the figure it showed differs")
    return " and ".join(said)


def _failure_summary(failure: dict[str, Any]) -> str:
    cell = failure.get("cell")
    where = f"{cell_where(cell)} ({_quote(cell)})" if cell else "a cell"
    if failure["kind"] == "error":
        return f"Failed at {where}: {failure['error']}: {failure['message']}".rstrip(": ")
    if failure["kind"] == "timeout":
        return f"Failed: {where} timed out ({failure['message']})."
    if failure["kind"] == "kernel died":
        return f"Failed: the kernel died while running {where}."
    return f"Failed: the kernel did not start: {failure['message']}."


def _failed_cell(
    failure: dict[str, Any], layout: dict[str, Any], cells: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The original cell (position in run order) a notebook cell index stands for."""
    index = failure.get("cell_index")
    if index is None:
        return None
    first_lines = layout.get("first_lines") or []
    first_line = first_lines[index] if index < len(first_lines) else ""
    if layout["mode"] == "file":
        return {
            "position": index + 1,
            "first_line": first_line,
            "notebook_cell": index + 1,
            "label": failure.get("cell_label"),
            "line": failure.get("line"),
        }
    prelude = layout["prelude"]
    if index < prelude:
        return {"position": index + 1, "prelude": True, "first_line": first_line}
    positions = layout["cells"]
    position = positions[index - prelude] if index - prelude < len(positions) else None
    if position is None:
        return None
    cell = cells[position - 1]
    return {
        "position": position,
        "seq": cell["seq"],
        "first_line": first_source_line(cell),
        "label": cell_label(cell),
        "line": failure.get("line"),
    }


def _metric_cell(
    original: dict[str, Any], key: str, cells: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The cell that logged a metric last, when no cell's output tells a divergence."""
    series = (original.get("metric_series") or {}).get(key) or []
    seq = series[-1].get("cell_seq") if series else None
    for position, cell in enumerate(cells, start=1):
        if cell["seq"] == seq:
            return {
                "position": position,
                "reasons": ["metric"],
                "data": [],
                "a": {"seq": seq, "first_line": first_source_line(cell), "label": cell_label(cell)},
                "b": None,
            }
    return None


def _quote(cell: dict[str, Any]) -> str:
    side = cell.get("a") or {}
    line = cell.get("line") or cell.get("first_line") or side.get("line") or side.get("first_line")
    line = line or ""
    if cell.get("prelude"):
        return "run before the tracked run started"
    return f"`{line}`" if line else "an empty cell"


def verdict_exit_code(report: Mapping[str, Any]) -> int:
    """The exit code of ``replay``: 0 reproduced (within tolerance too), 1 not."""
    return 0 if report.get("verdict") in REPRODUCED else 1


def first_source_line(cell: dict[str, Any] | None) -> str:
    """The first line of a cell's source, cut short for a summary; empty for no source."""
    lines = ((cell or {}).get("source") or "").strip().splitlines()
    return lines[0][:_LINE] if lines else ""
