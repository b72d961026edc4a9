"""Verdicts: whether a replay reproduced its original run, where it diverged and why.

The replay (``replays.py``) runs the notebook again; this module judges the two runs:
``reproduced``, ``reproduced within tolerance``, ``diverged`` (the first cell that differs
and the causes that explain it, most likely first) or ``failed`` (the cell and its error),
and writes the report's summary for people.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import run as runs
from .cellcode import Nondeterminism, Site, cell_names, parse_cell
from .compare import DEFAULT_ATOL, DEFAULT_RTOL, Tolerance, diff_runs
from .linearity import cell_label
from .text import cell_where, number_text

__all__ = [
    "REPRODUCED",
    "VERDICTS",
    "judge",
    "likely_causes",
    "verdict_exit_code",
]

VERDICTS = ("reproduced", "reproduced within tolerance", "diverged", "failed")
REPRODUCED = frozenset(VERDICTS[:2])
_LINE = 70


def judge(
    original: dict[str, Any],
    replayed: dict[str, Any],
    *,
    record: runs.RunRecord,
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
        report["causes"] = _failure_causes(failure, diff, cells, record)
        return _finish(report)
    evidence = _Evidence(original, replayed, record)
    expected = [d for d in diff["cells"]["differences"] if evidence.clock_only(d)]
    cell_diffs = [d for d in diff["cells"]["differences"] if d not in expected]
    report["expected"] = [
        {"position": d["position"], "clock": evidence.clocks(d["position"])} for d in expected
    ]
    first = next(iter(cell_diffs), None)
    metrics_out = [k for k, m in diff["metrics"].items() if not m["within_tolerance"]]
    noise = bool(diff["metrics"]) and diff["metrics_within_tolerance"]
    hard = (
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
    if diff["same"] or (not hard and not diff["metrics"] and not cell_diffs):
        summary = _reproduced_summary(original, diff) + _expected_note(report["expected"])
        report.update(verdict="reproduced", summary=summary)
        return _finish(report)
    if not hard:
        worst = max(diff["metrics"].items(), key=lambda kv: abs(kv[1]["delta"] or 0.0))
        key, values = worst
        report.update(
            verdict="reproduced within tolerance",
            summary=(
                f"Reproduced within tolerance: {key} differs by {number_text(values['delta'])} "
                f"(rtol {values['tolerance'][0]:g}, atol {values['tolerance'][1]:g})"
                + (f"; {len(cell_diffs)} cell output(s) differ with it" if cell_diffs else "")
                + "."
            ),
        )
        return _finish(report)
    if first is not None:
        report["first_cell"] = first
    elif metrics_out:
        report["first_cell"] = _metric_cell(original, metrics_out[0], cells)
    report["causes"] = likely_causes(
        original, replayed, diff, report["first_cell"], record, mode, evidence=evidence
    )
    report.update(verdict="diverged", summary=_divergence_summary(report, diff, metrics_out))
    return _finish(report)


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


def likely_causes(
    original: dict[str, Any],
    replayed: dict[str, Any],
    diff: dict[str, Any],
    first_cell: dict[str, Any] | None,
    record: runs.RunRecord,
    mode: str,
    *,
    evidence: _Evidence | None = None,
) -> list[str]:
    """Why a replay likely diverged, in words a data scientist uses; the cause that explains
    the first divergent value first (a changed input file, then the unseeded call that wrote
    the differing name), what changed around the run after."""
    evidence = evidence or _Evidence(original, replayed, record)
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
    for package, (before, after) in diff["packages"].items():
        ranked.append(
            (
                30,
                f"package {package} changed: "
                f"{before or 'not installed'} → {after or 'not installed'}",
            )
        )
    if diff["python"]:
        ranked.append((30, f"Python changed: {diff['python'][0]} → {diff['python'][1]}"))
    for name, (before, after) in diff["env_vars"].items():
        if name == "PYTHONHASHSEED" and {before, after} <= {None, "random"}:
            continue  # unset in the original, left random in the replay: the same thing
        ranked.append((30, f"{name} changed: {before or 'unset'} → {after or 'unset'}"))
    if original.get("linear") is False:
        reasons = "; ".join(original.get("linear_reasons") or []) or "cells ran out of order"
        ranked.append((20, f"the original run was not linear ({reasons})"))
    order = sorted(range(len(ranked)), key=lambda i: (-ranked[i][0], i))
    return list(dict.fromkeys(ranked[i][1] for i in order))


class _Evidence:
    """What the two runs' cells say about nondeterminism and inputs: the call sites of each
    original cell (``cellcode.Nondeterminism``) and the files whose content changed."""

    def __init__(
        self, original: dict[str, Any], replayed: dict[str, Any], record: runs.RunRecord
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


def _failure_causes(
    failure: dict[str, Any],
    diff: dict[str, Any],
    cells: list[dict[str, Any]],
    record: runs.RunRecord,
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
    for package, (before, after) in diff["packages"].items():
        causes.append(
            f"package {package} changed: {before or 'not installed'} → {after or 'not installed'}"
        )
    return causes


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
        "first_line": _first_line(cell),
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
                "a": {"seq": seq, "first_line": _first_line(cell), "label": cell_label(cell)},
                "b": None,
            }
    return None


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
    cells: list[dict[str, Any]], evidence: _Evidence, first_cell: dict[str, Any] | None
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
    original: dict[str, Any], first_cell: dict[str, Any] | None, record: runs.RunRecord
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


def _display_path(path: str | None, record: runs.RunRecord) -> str | None:
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


def _first_line(cell: dict[str, Any] | None) -> str:
    lines = ((cell or {}).get("source") or "").strip().splitlines()
    return lines[0][:_LINE] if lines else ""
