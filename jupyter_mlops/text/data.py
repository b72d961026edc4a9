"""Text for people about a data check: its verdict, its problems, and drift per column."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tabulate import tabulate

from .words import yes_no

__all__ = ["data_check_text"]


def data_check_text(report: Mapping[str, Any]) -> str:
    """A data check's report for people: the verdict, the problems, then drift per column."""
    base = report.get("baseline") or {}
    subject = (report.get("subject") or {}).get("name", "data")
    verdict = "PASSED" if report["passed"] else "FAILED"
    lines = [
        f"{verdict}: {subject} ({report.get('rows')} rows) against "
        f"{base.get('run_name') or base.get('run', '')[:12]}:{base.get('dataset')}"
    ]
    if report["problems"]:
        rows = [[p["severity"], p["column"], p["kind"], p["detail"]] for p in report["problems"]]
        lines += ["", tabulate(rows, ["severity", "column", "kind", "detail"], "simple")]
    else:
        lines.append("no problems")
    drift_rows = []
    for name, facts in report["columns"].items():
        measure = facts.get("psi") if facts.get("psi") is not None else facts.get("distance")
        if measure is None:
            continue
        label = "psi" if facts.get("psi") is not None else "distance"
        drift_rows.append(
            [name, label, f"{measure:.4f}", f"{facts['threshold']:g}", yes_no(facts["drift"])]
        )
    if drift_rows:
        headers = ["column", "measure", "value", "threshold", "drift"]
        lines += ["", tabulate(drift_rows, headers, "simple", disable_numparse=True)]
    return "\n".join(lines)
