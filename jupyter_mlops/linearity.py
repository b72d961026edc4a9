"""Whether a run executed linearly: cells once each, top to bottom, matching the saved file."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

__all__ = [
    "assess_linearity",
    "cell_marks",
    "is_injected_parameters",
    "notebook_code_cells",
    "saved_cell_ids",
]

# Papermill's Python translator starts the cell it injects with this comment line.
INJECTED_HEADER = "# Parameters"


def is_injected_parameters(source: str) -> bool:
    """True for the cell Papermill injects with the run's parameters."""
    return source.startswith(INJECTED_HEADER + "\n") or source == INJECTED_HEADER


def notebook_code_cells(path: Path) -> list[tuple[str | None, str]] | None:
    """(cell id, source) of each code cell of a saved notebook, or None if it cannot be read."""
    try:
        with open(path, encoding="utf-8") as file:
            notebook = json.load(file)
        cells = notebook["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    out: list[tuple[str | None, str]] = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        out.append((cell.get("id"), source))
    return out


def assess_linearity(
    cells: Sequence[dict[str, Any]], notebook: Path | None
) -> tuple[bool, list[str]]:
    """(linear, reasons): reasons name each way the executed cells break a clean top-down run."""
    reasons: list[str] = []
    counts = [c.get("execution_count") for c in cells]
    for previous, current in pairwise(counts):
        if previous is not None and current is not None and current != previous + 1:
            reasons.append(f"execution counts jump from [{previous}] to [{current}]")
            break
    # Papermill's injected cell is not in the saved file; everything else that ran must be.
    ran = [c for c in cells if not is_injected_parameters(c.get("source") or "")]
    ids = [c.get("cell_id") for c in ran if c.get("cell_id")]
    repeated = [cell_id for cell_id, n in Counter(ids).items() if n > 1]
    if repeated:
        reasons.append(f"{len(repeated)} cell(s) ran more than once")
    saved = notebook_code_cells(notebook) if notebook is not None else None
    if saved is not None:
        reasons.extend(_against_saved(ran, saved))
    return not reasons, reasons


def _against_saved(ran: Sequence[dict[str, Any]], saved: list[tuple[str | None, str]]) -> list[str]:
    reasons: list[str] = []
    position = {cell_id: i for i, (cell_id, _) in enumerate(saved) if cell_id}
    with_ids = [c for c in ran if c.get("cell_id")]
    if with_ids:
        missing = [c for c in with_ids if c["cell_id"] not in position]
        if missing:
            reasons.append(
                f"{len(missing)} cell(s) that ran are not in the saved notebook "
                "(deleted, or the notebook was not saved)"
            )
        order = [position[c["cell_id"]] for c in with_ids if c["cell_id"] in position]
        for earlier, later in pairwise(order):
            if later < earlier:
                reasons.append(
                    f"cells ran out of notebook order: cell {later + 1} ran after cell "
                    f"{earlier + 1}"
                )
                break
        changed = [
            position[c["cell_id"]] + 1
            for c in with_ids
            if c["cell_id"] in position and saved[position[c["cell_id"]]][1] != c.get("source")
        ]
        if changed:
            listed = ", ".join(str(n) for n in sorted(set(changed))[:5])
            reasons.append(
                f"the saved notebook differs from what ran in cell {listed} "
                "(edited after running, or not saved)"
            )
        return reasons
    # No cell ids (Papermill, scripts): what ran must be a contiguous stretch of the file.
    sources = [c.get("source") or "" for c in ran]
    file_sources = [source for _, source in saved]
    if sources and not _is_contiguous_part(sources, file_sources):
        reasons.append("the cells that ran do not match the saved notebook, top to bottom")
    return reasons


def _is_contiguous_part(part: list[str], whole: list[str]) -> bool:
    width = len(part)
    stripped = [s.strip() for s in part]
    candidates = [s.strip() for s in whole]
    return any(candidates[i : i + width] == stripped for i in range(len(whole) - width + 1))


def cell_marks(
    cells: Sequence[dict[str, Any]], saved: Sequence[str | None] | None
) -> list[list[str]]:
    """For each executed cell, how it broke top-to-bottom order (empty when it did not).

    ``saved`` is the saved notebook's code-cell ids in file order (None when unknown).
    """
    position = {cell_id: i for i, cell_id in enumerate(saved or []) if cell_id}
    seen: set[str] = set()
    marks: list[list[str]] = []
    previous_count: int | None = None
    previous_position: int | None = None
    for cell in cells:
        found: list[str] = []
        count = cell.get("execution_count")
        if previous_count is not None and count is not None and count != previous_count + 1:
            found.append(f"count jumped from [{previous_count}]")
        previous_count = count if count is not None else previous_count
        cell_id = cell.get("cell_id")
        injected = is_injected_parameters(cell.get("source") or "")
        if cell_id and not injected:
            if cell_id in seen:
                found.append("ran again")
            seen.add(cell_id)
            if saved is not None:
                if cell_id not in position:
                    found.append("not in the saved notebook")
                else:
                    here = position[cell_id]
                    if previous_position is not None and here < previous_position:
                        found.append(
                            f"out of order: cell {here + 1} after cell {previous_position + 1}"
                        )
                    previous_position = here
        marks.append(found)
    return marks


def saved_cell_ids(path: Path | None) -> list[str | None] | None:
    """The saved notebook's code-cell ids in file order (None when there is no such file)."""
    if path is None or not path.is_file():
        return None
    code_cells = notebook_code_cells(path)
    return [cell_id for cell_id, _ in code_cells] if code_cells is not None else None
