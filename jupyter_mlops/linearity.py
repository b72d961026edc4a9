"""Whether a run executed linearly (cells once each, top to bottom, matching the saved file),
and the one way every door names a cell: its number in the saved notebook.

A cell's number is its place among the saved notebook's code cells (1-based; markdown and
Papermill's injected parameters cell are not counted), shown with its execution count:
``cell 4 [7]``. Executed cells are matched to the saved notebook by cell id when the kernel
got one (JupyterLab sends it), else by source: the executed sources are aligned with the
saved ones, so a kernel driven without cell ids (Papermill, ``jupyter_client``, VS Code)
gets the same precise reasons and marks. A cell that matches no saved cell is named by its
place in the run's order instead: ``cell ?#12 [7]`` is the twelfth cell the run executed.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from itertools import pairwise
from pathlib import Path
from typing import Any

__all__ = [
    "INJECTED_TAG",
    "SavedCell",
    "annotate_cells",
    "assess_linearity",
    "cell_label",
    "cell_marks",
    "cell_numbers",
    "is_injected_parameters",
    "looks_injected",
    "notebook_cell_number",
    "notebook_code_cells",
    "saved_cell_ids",
    "saved_cells",
]

# Papermill's Python translator starts the cell it injects with this comment line, and tags
# the cell with INJECTED_TAG in the notebook it writes.
INJECTED_HEADER = "# Parameters"
INJECTED_TAG = "injected-parameters"
_LISTED = 5


@dataclass(frozen=True)
class SavedCell:
    """A code cell of a saved notebook: its id, source and number (None: injected)."""

    cell_id: str | None
    source: str | None
    number: int | None
    injected: bool = False


def looks_injected(source: str) -> bool:
    """True for a cell shaped like Papermill's injected one: the header line, then only
    assignments of literal values."""
    if not (source.startswith(INJECTED_HEADER + "\n") or source.strip() == INJECTED_HEADER):
        return False
    import ast

    from .cellcode import parse_cell

    module = parse_cell(source)
    if module is None:
        return False
    for statement in module.body:
        if not (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
        ):
            return False
        try:
            ast.literal_eval(statement.value)
        except (ValueError, SyntaxError, TypeError):
            return False
    return True


def is_injected_parameters(source: str, saved: Sequence[SavedCell] | None = None) -> bool:
    """True for the cell Papermill injects with the run's parameters.

    A cell whose source is in the saved notebook is the user's, unless the saved notebook
    tags it as injected (a notebook saved from Papermill's output).
    """
    if not looks_injected(source):
        return False
    if saved:
        key = source.strip()
        for cell in saved:
            if cell.source is not None and cell.source.strip() == key:
                return cell.injected
    return True


def saved_cells(path: Path | None) -> list[SavedCell] | None:
    """The code cells of a saved notebook in file order, numbered (None if unreadable)."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as file:
            notebook = json.load(file)
        cells = notebook["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    out: list[SavedCell] = []
    number = 0
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        metadata = cell.get("metadata")
        tags = (metadata.get("tags") if isinstance(metadata, dict) else None) or []
        injected = INJECTED_TAG in tags
        if not injected:
            number += 1
        out.append(SavedCell(cell.get("id"), source, None if injected else number, injected))
    return out


def notebook_code_cells(path: Path) -> list[tuple[str | None, str]] | None:
    """(cell id, source) of each code cell of a saved notebook, or None if it cannot be read."""
    cells = saved_cells(path)
    return None if cells is None else [(c.cell_id, c.source or "") for c in cells]


def saved_cell_ids(path: Path | None) -> list[str | None] | None:
    """The saved notebook's code-cell ids in file order (None when there is no such file)."""
    if path is None or not path.is_file():
        return None
    cells = saved_cells(path)
    return [cell.cell_id for cell in cells] if cells is not None else None


def notebook_cell_number(cells: Sequence[Mapping[str, Any]], index: int) -> int | None:
    """The number of the cell at ``index`` of a notebook's cells (markdown included), as
    ``cell_label`` counts: code cells only, the injected parameters cell not counted."""
    if not 0 <= index < len(cells) or cells[index].get("cell_type") != "code":
        return None
    number = 0
    for cell in cells[: index + 1]:
        tags = (cell.get("metadata") or {}).get("tags") or []
        if cell.get("cell_type") == "code" and INJECTED_TAG not in tags:
            number += 1
    tags = (cells[index].get("metadata") or {}).get("tags") or []
    return None if INJECTED_TAG in tags else number


def cell_label(cell: Mapping[str, Any]) -> str:
    """How every door names a cell: ``cell 4 [7]`` (its number in the saved notebook and its
    execution count), else ``cell ?#12 [7]`` (the twelfth cell the run executed)."""
    count = cell.get("execution_count")
    suffix = f" [{count}]" if count is not None else ""
    number = cell.get("cell_number")
    if number is not None:
        return f"cell {number}{suffix}"
    seq = cell.get("seq")
    if cell.get("prelude") or (isinstance(seq, int) and seq <= 0):
        return f"a cell run before the run started{suffix}"
    if cell.get("injected") or looks_injected(cell.get("source") or ""):
        return f"the injected parameters cell{suffix}"
    if seq is not None:
        return f"cell ?#{seq}{suffix}"
    return f"a cell{suffix}"


# -- matching executed cells to the saved notebook --------------------------------------------


@dataclass
class _Placement:
    """Where each executed cell sits in the saved notebook (index into its code cells)."""

    index: list[int | None]
    changed: list[bool]
    skipped: list[bool]


def _key(source: str | None) -> str:
    return (source or "").strip()


def _skipped(cell: Mapping[str, Any], saved: Sequence[SavedCell] | None) -> bool:
    """Empty cells and Papermill's injected cell are not the user's steps."""
    source = cell.get("source")
    if source is None:
        return False
    return not source.strip() or is_injected_parameters(source, saved)


def _place(cells: Sequence[Mapping[str, Any]], saved: Sequence[SavedCell]) -> _Placement:
    """Match executed cells to saved ones: by id, then by aligning sources, then by source
    alone (a cell run again or out of order), then an edited cell by its slot."""
    placed: list[int | None] = [None] * len(cells)
    changed = [False] * len(cells)
    skipped = [_skipped(cell, saved) for cell in cells]
    by_id = {c.cell_id: j for j, c in enumerate(saved) if c.cell_id and not c.injected}
    rest: list[int] = []
    for i, cell in enumerate(cells):
        if skipped[i]:
            continue
        cell_id = cell.get("cell_id")
        j = by_id.get(cell_id) if isinstance(cell_id, str) else None
        if j is None:
            rest.append(i)
            continue
        placed[i] = j
        source = cell.get("source")
        changed[i] = source is not None and _key(saved[j].source) != _key(source)
    candidates = [
        j for j, c in enumerate(saved) if not c.injected and c.source is not None and _key(c.source)
    ]
    where: dict[str, list[int]] = defaultdict(list)
    for j in candidates:
        where[_key(saved[j].source)].append(j)
    rest = [i for i in rest if cells[i].get("source") is not None]
    matcher = SequenceMatcher(
        None,
        [_key(cells[i].get("source")) for i in rest],
        [_key(saved[j].source) for j in candidates],
        autojunk=False,
    )
    edits: list[tuple[int, int]] = []
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            for k in range(a1 - a0):
                placed[rest[a0 + k]] = candidates[b0 + k]
        elif tag == "replace" and a1 - a0 == b1 - b0:
            edits += [(rest[a0 + k], candidates[b0 + k]) for k in range(a1 - a0)]
    taken = {j for j in placed if j is not None}
    previous = -1
    for i in rest:
        if placed[i] is None:
            options = where.get(_key(cells[i].get("source"))) or []
            later = [j for j in options if j > previous]
            choice = later or options
            placed[i] = choice[0] if choice else None
        found = placed[i]
        if found is not None:
            previous = found
    for i, j in edits:
        # An executed cell in the slot of a saved cell nothing else matched: edited there.
        if placed[i] is None and j not in taken:
            placed[i], changed[i] = j, True
            taken.add(j)
    return _Placement(placed, changed, skipped)


def _saved_list(saved: Sequence[SavedCell] | Sequence[str | None] | None) -> list[SavedCell]:
    """Saved cells from either whole cells or only their ids (numbered in file order)."""
    out: list[SavedCell] = []
    for number, item in enumerate(saved or [], start=1):
        out.append(item if isinstance(item, SavedCell) else SavedCell(item, None, number))
    return out


def cell_numbers(
    cells: Sequence[Mapping[str, Any]],
    notebook: Path | None,
    original: Sequence[Mapping[str, Any]] | None = None,
) -> list[int | None]:
    """Each executed cell's number in the saved notebook (None where it matches none).

    ``original``: the cells of the run a replay replays; their numbers carry over to the
    replay's cells that match them, so a replay names cells as its original does.
    """
    saved = saved_cells(notebook) if notebook is not None else None
    numbers: list[int | None] = [None] * len(cells)
    if saved is not None:
        placement = _place(cells, saved)
        numbers = [saved[j].number if j is not None else None for j in placement.index]
    if original:
        keys = [_key(c.get("source")) for c in original]
        matcher = SequenceMatcher(
            None, [_key(c.get("source")) for c in cells], keys, autojunk=False
        )
        for a0, b0, size in matcher.get_matching_blocks():
            for k in range(size):
                number = original[b0 + k].get("cell_number")
                if number is not None:
                    numbers[a0 + k] = number
    return numbers


def _labelled(cell: Mapping[str, Any], number: int | None) -> str:
    return cell_label({**cell, "cell_number": number})


def assess_linearity(
    cells: Sequence[Mapping[str, Any]], notebook: Path | None
) -> tuple[bool, list[str]]:
    """(linear, reasons): reasons name each way the executed cells break a clean top-down run."""
    reasons: list[str] = []
    counts = [c.get("execution_count") for c in cells]
    for previous, current in pairwise(counts):
        if previous is not None and current is not None and current != previous + 1:
            reasons.append(f"execution counts jump from [{previous}] to [{current}]")
            break
    saved = saved_cells(notebook) if notebook is not None else None
    placement = _place(cells, saved or [])
    numbers = [
        saved[j].number if saved is not None and j is not None else None for j in placement.index
    ]
    keys = _rerun_keys(cells, placement, known=saved is not None)
    repeated = [key for key, n in Counter(k for k in keys if k is not None).items() if n > 1]
    if repeated:
        named = []
        for key in repeated[:_LISTED]:
            ran = [i for i, k in enumerate(keys) if k == key]
            counts_run = ", ".join(f"[{cells[i].get('execution_count')}]" for i in ran)
            first = {**cells[ran[0]], "execution_count": None}
            named.append(f"{_labelled(first, numbers[ran[0]])} ({counts_run})")
        reasons.append(f"{len(repeated)} cell(s) ran more than once: {'; '.join(named)}")
    if saved is None:
        return not reasons, reasons
    mine = [i for i, skip in enumerate(placement.skipped) if not skip]
    missing = [i for i in mine if placement.index[i] is None]
    if missing:
        listed = ", ".join(_labelled(cells[i], None) for i in missing[:_LISTED])
        reasons.append(
            f"{len(missing)} cell(s) that ran are not in the saved notebook ({listed}; "
            "deleted, edited, or the notebook was not saved)"
        )
    order = [i for i in mine if placement.index[i] is not None]
    for earlier, later in pairwise(order):
        if placement.index[later] < placement.index[earlier]:  # type: ignore[operator]
            reasons.append(
                f"cells ran out of notebook order: {_labelled(cells[later], numbers[later])} "
                f"ran after {_labelled(cells[earlier], numbers[earlier])}"
            )
            break
    changed = sorted({n for i in mine if placement.changed[i] and (n := numbers[i]) is not None})
    if changed:
        listed = ", ".join(str(n) for n in changed[:_LISTED])
        reasons.append(
            f"the saved notebook differs from what ran in cell {listed} "
            "(edited after running, or not saved)"
        )
    return not reasons, reasons


def _rerun_keys(
    cells: Sequence[Mapping[str, Any]], placement: _Placement, *, known: bool
) -> list[Any]:
    """What tells two executions of one cell: its saved place, else its id (no key without
    either: two cells with the same source may well be two cells)."""
    keys: list[Any] = []
    for i, cell in enumerate(cells):
        if placement.skipped[i]:
            keys.append(None)
        elif known and placement.index[i] is not None:
            keys.append(("saved", placement.index[i]))
        else:
            keys.append(("id", cell["cell_id"]) if cell.get("cell_id") else None)
    return keys


def cell_marks(
    cells: Sequence[Mapping[str, Any]],
    saved: Sequence[SavedCell] | Sequence[str | None] | None,
) -> list[list[str]]:
    """For each executed cell, how it broke top-to-bottom order (empty when it did not).

    ``saved`` is the saved notebook's code cells (``saved_cells``) or only their ids, in file
    order (None when unknown).
    """
    listed = _saved_list(saved)
    return _marks(cells, listed, _place(cells, listed), known=saved is not None)


def _marks(
    cells: Sequence[Mapping[str, Any]],
    listed: Sequence[SavedCell],
    placement: _Placement,
    *,
    known: bool,
) -> list[list[str]]:
    keys = _rerun_keys(cells, placement, known=known)
    seen: set[Any] = set()
    marks: list[list[str]] = []
    previous_count: int | None = None
    previous: int | None = None
    for i, cell in enumerate(cells):
        found: list[str] = []
        count = cell.get("execution_count")
        if previous_count is not None and count is not None and count != previous_count + 1:
            found.append(f"count jumped from [{previous_count}]")
        previous_count = count if count is not None else previous_count
        if keys[i] is not None:
            if keys[i] in seen:
                found.append("ran again")
            seen.add(keys[i])
        here = placement.index[i]
        if known and not placement.skipped[i]:
            if here is None:
                found.append("not in the saved notebook")
            else:
                if previous is not None and here < previous:
                    found.append(
                        f"out of order: cell {listed[here].number} after cell "
                        f"{listed[previous].number}"
                    )
                previous = here
        marks.append(found)
    return marks


def annotate_cells(cells: Sequence[dict[str, Any]], notebook: Path | None, *, ended: bool) -> None:
    """Give each executed cell its ``marks``, its ``cell_number`` where none was stored (a run
    still going, or one recorded before cells were numbered) and its ``label``."""
    saved = saved_cells(notebook)
    placement = _place(cells, saved or [])
    marks = _marks(cells, saved or [], placement, known=saved is not None)
    for cell, marked in zip(cells, marks, strict=True):
        cell["marks"] = marked
    if saved is not None and not (ended and any(c.get("cell_number") is not None for c in cells)):
        for cell, j in zip(cells, placement.index, strict=True):
            if cell.get("cell_number") is None and j is not None:
                cell["cell_number"] = saved[j].number
    for cell in cells:
        cell["label"] = cell_label(cell)
