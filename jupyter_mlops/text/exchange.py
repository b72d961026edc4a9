"""Text for people about runs copied in or out: an import from another store, an MLflow export
or import."""

from __future__ import annotations

from typing import Any

__all__ = ["import_text", "mlflow_text"]


def import_text(result: dict[str, Any]) -> str:
    """One line for people: what an import from another store copied."""
    rows = result["rows"]
    parts = [
        f"{result['runs']} run(s) imported from {result['source']}",
        f"{result['already_here']} already here",
        f"{rows.get('metrics', 0)} metric point(s), {rows.get('cells', 0)} cell(s)",
        f"{result['blobs']} blob(s)",
    ]
    if result["blobs_missing"]:
        parts.append(f"{result['blobs_missing']} blob(s) missing in the source")
    return "; ".join(parts)


def mlflow_text(result: dict[str, Any]) -> str:
    """One line for people: what an MLflow export or import did."""
    if result["direction"] == "export":
        return (
            f"{result['runs']} run(s) exported to {result['tracking_uri']} "
            f"({result['created']} new, {result['updated']} updated), "
            f"{result['metric_points']} new metric point(s) in {result['calls']} call(s)"
        )
    return (
        f"{result['runs']} run(s) imported from {result['tracking_uri']} "
        f"({result['already_here']} already here), {result['metric_points']} metric point(s)"
    )
