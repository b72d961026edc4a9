"""Why a replay likely diverged or failed, in words a data scientist uses.

The evidence is in the original's cells: the call sites that are not repeatable (unseeded
draws, hash order, clock reads; ``nondeterminism``) and the input files whose content
changed between the runs. Causes are ranked by how directly they explain the first divergent
value; what changed around the run (packages, Python, environment variables) comes after.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from .cellcode import cell_names, parse_cell
from .linearity import cell_label
from .nondeterminism import Nondeterminism, Site
from .records import RunRecord
from .text.words import cell_where

__all__ = ["Evidence", "failure_causes", "likely_causes"]


def likely_causes(
    original: dict[str, Any],
    replayed: dict[str, Any],
    diff: dict[str, Any],
    first_cell: dict[str, Any] | None,
    record: RunRecord,
    mode: str,
    *,
    evidence: Evidence | None = None,
) -> list[str]:
    """Why a replay likely diverged, in words a data scientist uses; the cause that explains
    the first divergent value first (a changed input file, then the unseeded call that wrote
    the differing name), what changed around the run after."""
    evidence = evidence or Evidence(original, replayed, record)
    ranked = _input_causes(original, diff, first_cell, record, evidence)
    if mode == "file" and first_cell is not None and "source" in first_cell.get("reasons", []):
        ranked.append(
            (
                92,
                "the saved notebook differs from what the original run executed "
                f"({cell_where(first_cell)})",
            )
        )
    ranked.extend(_randomness_causes(original.get("cells") or [], evidence, first_cell))
    if not diff["datasets"]:
        ranked.extend((40, text) for text in _unrecorded_files(original, first_cell, record))
    ranked.extend(_environment_causes(diff))
    if original.get("linear") is False:
        reasons = "; ".join(original.get("linear_reasons") or []) or "cells ran out of order"
        ranked.append((20, f"the original run was not linear ({reasons})"))
    order = sorted(range(len(ranked)), key=lambda i: (-ranked[i][0], i))
    return list(dict.fromkeys(ranked[i][1] for i in order))


def _input_causes(
    original: dict[str, Any],
    diff: dict[str, Any],
    first_cell: dict[str, Any] | None,
    record: RunRecord,
    evidence: Evidence,
) -> list[tuple[int, str]]:
    """Input files a cell read and datasets whose content changed, scored: a file read by the
    first divergent cell first, by a cell before it next, datasets after those."""
    last = first_cell["position"] if first_cell else len(original.get("cells") or [])
    ranked: list[tuple[int, str]] = []
    changed = set()
    for position, path, before, after in evidence.changed_files():
        changed.add(str(Path(path).resolve()))
        score = 100 if position == last else 95 if position < last else 45
        shown = _display_path(path, record)
        ranked.append(
            (
                score,
                f"the input file {shown} changed since the original run "
                f"({before[:8]}… → {after[:8]}…); "
                f"{_label_at(original.get('cells') or [], position)} reads it",
            )
        )
    for name, (hash_a, hash_b) in diff["datasets"].items():
        full = diff["dataset_paths"].get(name)
        if full and str(Path(full).resolve()) in changed:
            continue  # said above, as the file the cell read
        shown = _display_path(full, record)
        what = f"the data file {shown}" if shown else f"the dataset {name!r}"
        if hash_a and hash_b:
            text = f"{what} changed since the original run ({hash_a[:8]} → {hash_b[:8]})"
        elif hash_a:
            text = f"{what} was not recorded by the replay"
        else:
            text = f"{what} was recorded only by the replay"
        ranked.append((90, text))
    return ranked


def _environment_causes(diff: dict[str, Any]) -> list[tuple[int, str]]:
    """Packages, Python and environment variables that changed around the run, scored."""
    packages = diff["packages"].items()
    ranked = [(30, _package_change(package, *change)) for package, change in packages]
    if diff["python"]:
        ranked.append((30, f"Python changed: {diff['python'][0]} → {diff['python'][1]}"))
    for name, (before, after) in diff["env_vars"].items():
        if name == "PYTHONHASHSEED" and {before, after} <= {None, "random"}:
            continue  # unset in the original, left random in the replay: the same thing
        ranked.append((30, f"{name} changed: {before or 'unset'} → {after or 'unset'}"))
    return ranked


class Evidence:
    """What the two runs' cells say about nondeterminism and inputs: the call sites of each
    original cell (``nondeterminism.Nondeterminism``) and the files whose content changed."""

    def __init__(
        self, original: dict[str, Any], replayed: dict[str, Any], record: RunRecord
    ) -> None:
        self.original = original.get("cells") or []
        self.replayed = replayed.get("cells") or []
        self.record = record
        environment = original.get("environment") or {}
        seed = (environment.get("env_vars") or {}).get("PYTHONHASHSEED")
        self.hash_seeded = seed is not None and seed != "random"
        self._sites: list[list[Site]] | None = None
        self._changed: list[tuple[int, str, str, str]] | None = None

    def sites(self, position: int) -> list[Site]:
        """The call sites of the original's cell at a position (1-based)."""
        if self._sites is None:
            walker = Nondeterminism(hash_seeded=self.hash_seeded)
            for cell in self.record.prelude():
                _read_sites(walker, cell)
            self._sites = [_read_sites(walker, cell) for cell in self.original]
        return self._sites[position - 1] if 0 < position <= len(self._sites) else []

    def clocks(self, position: int) -> list[str]:
        """The clock reads of a cell, as written."""
        return [site.text for site in self.sites(position) if site.kind == "clock"]

    def draws(self, position: int) -> bool:
        """Whether a cell has a call site that is not repeatable, other than a clock read."""
        return any(site.kind != "clock" for site in self.sites(position))

    def clock_only(self, difference: dict[str, Any]) -> bool:
        """Whether a cell differs only in output, and in values it computed from the clock
        (``start = time.time()``), that its clock reads explain."""
        if not difference["reasons"] or not set(difference["reasons"]) <= {"output", "data"}:
            return False
        position = difference["position"]
        sites = self.sites(position)
        timed = {name for site in sites for name in site.names}
        if not set(difference.get("data") or []) <= timed:
            return False
        changed = any(p == position for p, *_ in self.changed_files())
        return {site.kind for site in sites} == {"clock"} and not changed

    def changed_files(self) -> list[tuple[int, str, str, str]]:
        """(position, path, hash before, hash after) of files a cell read whose content
        differs between the original and the replay, in cell order."""
        if self._changed is not None:
            return self._changed
        found: list[tuple[int, str, str, str]] = []
        seen: set[str] = set()
        # A replay's cells line up with the original's by source, as the comparison has them.
        replayed: dict[Any, list[dict[str, Any]]] = {}
        for cell in self.replayed:
            replayed.setdefault(cell.get("source_hash") or cell.get("source"), []).append(cell)
        # A file the run wrote itself is no input: it differs because a cell before it did.
        written: set[str] = set()
        for position, a in enumerate(self.original, start=1):
            twins = replayed.get(a.get("source_hash") or a.get("source")) or []
            twin = twins.pop(0) if twins else {}
            after = {f["path"]: f["hash"] for f in twin.get("files_read") or []}
            for entry in a.get("files_read") or []:
                path, before = entry["path"], entry["hash"]
                now = after.get(path)
                if now is not None and now != before and path not in seen and path not in written:
                    seen.add(path)
                    found.append((position, path, before, now))
            written.update(f["path"] for f in a.get("files_written") or [])
        self._changed = found
        return found


def _package_change(package: str, before: str | None, after: str | None) -> str:
    return f"package {package} changed: {before or 'not installed'} → {after or 'not installed'}"


def failure_causes(
    failure: dict[str, Any],
    diff: dict[str, Any],
    cells: list[dict[str, Any]],
    record: RunRecord,
) -> list[str]:
    if failure["kind"] == "kernel did not start":
        return []  # nothing ran: what differs from the original explains nothing
    causes = []
    if failure.get("error") in ("FileNotFoundError", "OSError", "IOError"):
        failed = failure.get("cell") or {}
        # A cell of the run (one with a seq) read files in the original: name those now gone.
        position = failed.get("position") or 0 if "seq" in failed else 0
        original = cells[position - 1] if 0 < position <= len(cells) else {}
        for entry in original.get("files_read") or []:
            if not Path(entry["path"]).exists():
                shown = _display_path(entry["path"], record)
                causes.append(f"the input file {shown} is gone ({cell_where(failed)} read it)")
        causes.append("a file the run read is gone or has moved")
    if failure.get("error") in ("ModuleNotFoundError", "ImportError"):
        causes.append("a package the run imported is not installed here")
    causes.extend(_package_change(package, *change) for package, change in diff["packages"].items())
    return causes


_SITE_WORDS = {
    "random_state": "has no random_state",
    "random_state_sometimes": "has no random_state (which it uses only in some settings)",
    "numpy": "draws from numpy's global generator, which nothing seeds before it (np.random.seed)",
    "random": "draws from the random module, which nothing seeds before it (random.seed)",
    "torch": "draws from torch's generator, which nothing seeds before it (torch.manual_seed)",
    "tensorflow": (
        "draws from tensorflow's generator, which nothing seeds before it (tf.random.set_seed)"
    ),
    "fresh": "makes a random generator without a seed",
    "set": (
        "depends on the order of a set, which for text changes from process to process "
        "(PYTHONHASHSEED was not fixed in the original run)"
    ),
    "hash": (
        "hashes a value whose hash, for text, changes from process to process "
        "(PYTHONHASHSEED was not fixed in the original run)"
    ),
}
_MAX_SITE_CAUSES = 3


def _randomness_causes(
    cells: list[dict[str, Any]], evidence: Evidence, first_cell: dict[str, Any] | None
) -> list[tuple[int, str]]:
    """Unseeded call sites (and hash order) up to the first divergent cell, each scored by
    how directly it explains the first divergent value: in that cell writing a name that
    differs, in that cell, in an earlier cell writing a name that cell reads, earlier."""
    last = first_cell["position"] if first_cell else len(cells)
    differing = set((first_cell or {}).get("data") or [])
    module = parse_cell(cells[last - 1].get("source") or "") if 0 < last <= len(cells) else None
    reads = set(cell_names(module)[0]) if module is not None else set()
    found: list[tuple[int, int, str]] = []
    for position in range(1, min(last, len(cells)) + 1):
        for site in evidence.sites(position):
            if site.kind == "clock":
                continue
            names = set(site.names)
            if position == last:
                score = 80 if names & differing else 70
            else:
                score = 60 if names & reads else 50
            if site.kind == "random_state_sometimes":
                score -= 15  # below any site that surely draws
            text = f"{_label_at(cells, position)}: `{site.text}` {_SITE_WORDS[site.kind]}"
            found.append((score, -position, text))
    found.sort(key=lambda item: (-item[0], item[1]))
    return [(score, text) for score, _, text in found[:_MAX_SITE_CAUSES]]


def _unrecorded_files(
    original: dict[str, Any], first_cell: dict[str, Any] | None, record: RunRecord
) -> list[str]:
    """Files the first divergent cell names that neither a dataset nor the files it was seen
    to read record (a library that opens files outside Python): they may have changed, and
    only a recorded hash could tell."""
    if first_cell is None or "position" not in first_cell:
        return []
    cells = original.get("cells") or []
    position = first_cell["position"]
    if not 0 < position <= len(cells):
        return []
    module = parse_cell(cells[position - 1].get("source") or "")
    if module is None:
        return []
    base = Path(record.row.get("cwd") or record.store.directory.parent)
    recorded = {
        str(Path(d["path"]).resolve()) for d in original.get("datasets") or [] if d.get("path")
    }
    # Files the run was seen to read have hashes: whether they changed is known.
    recorded.update(
        str(Path(f["path"]).resolve()) for c in cells for f in c.get("files_read") or []
    )
    named = []
    for node in ast.walk(module):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 300:
            path = base / node.value
            if "\n" not in node.value and path.is_file() and str(path.resolve()) not in recorded:
                named.append(node.value)
    return [
        f"{_label_at(cells, position)} reads {name}, which no dataset records, so whether it "
        "changed is not "
        f"known (record it with %track data {name})"
        for name in dict.fromkeys(named)
    ][:2]


def _display_path(path: str | None, record: RunRecord) -> str | None:
    """A data file's path as the user knows it: relative to the run's folder when inside."""
    if not path:
        return None
    resolved = Path(path)
    for base in (record.row.get("cwd"), str(record.store.directory.parent)):
        if base and resolved.is_absolute() and resolved.is_relative_to(base):
            return str(resolved.relative_to(base))
    return path


def _read_sites(walker: Nondeterminism, cell: dict[str, Any]) -> list[Site]:
    """A cell's call sites; code the analysis cannot follow has none, and the verdict stands."""
    try:
        return walker.cell(cell.get("source") or "")
    except Exception:
        return []


def _label_at(cells: list[dict[str, Any]], position: int) -> str:
    """The original's cell at a position in run order (1-based), as every door names it."""
    return cell_label(cells[position - 1]) if 0 < position <= len(cells) else f"cell {position}"
