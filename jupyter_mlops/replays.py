"""Replay: run a recorded run again in a fresh kernel and say whether it reproduced.

``recorded`` mode rebuilds the notebook the run actually executed (the cells its kernel ran
before the run started, then the run's cells in the order they ran); ``file`` mode runs the
saved notebook top to bottom with the run's params. Either way the replay is itself a run
(kind ``replay``, parent the original), compared with ``compare.diff_runs`` and judged:
``reproduced``, ``reproduced within tolerance``, ``diverged`` (the first cell that differs
and the likely cause) or ``failed`` (the cell and its error, a dead kernel, a timeout).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import run as runs
from .cellcode import draws_random, parse_cell, random_draws, seeds_in
from .compare import DEFAULT_ATOL, DEFAULT_RTOL, Tolerance, diff_runs
from .errors import InvalidValueError, ReplayNotFoundError
from .execute import RAISES_TAG
from .store import Store, open_store

__all__ = [
    "MODES",
    "VERDICTS",
    "build_notebook",
    "get_replay",
    "replay",
    "start_replay",
]

MODES = ("recorded", "file")
VERDICTS = ("reproduced", "reproduced within tolerance", "diverged", "failed")
REPRODUCED = frozenset(VERDICTS[:2])
DEFAULT_KERNEL = "python3"
_LINE = 70
# A background replay's process starts a moment after its row: not a reused pid.
_SPAWN_SLACK_S = 10.0


def replay(
    run: str | runs.RunRecord,
    *,
    mode: str = "recorded",
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    tolerances: Mapping[str, float | Tolerance] | None = None,
    timeout: float | None = None,
    kernel_name: str | None = None,
    notebook: str | Path | None = None,
    progress: bool | Callable[[int, int], None] = True,
    replay_id: str | None = None,
    store: Store | None = None,
) -> dict[str, Any]:
    """Replay a run in a fresh kernel and return the report (``report["verdict"]``).

    ``notebook`` (file mode) runs that notebook file instead of the run's own;
    ``progress`` shows a bar per cell, or is called with (cells done, cells in all).
    """
    if mode not in MODES:
        raise InvalidValueError("mode", f"{mode!r} is not one of {', '.join(MODES)}")
    _check_tolerance("rtol", rtol)
    _check_tolerance("atol", atol)
    from .execute import execute_notebook, store_notebook_artifact

    record = run if isinstance(run, runs.RunRecord) else runs.get_run(run, store=store)
    store = record.store
    if record.status == "running":
        raise InvalidValueError(
            record.name, "the run is still running; replay it once it has ended"
        )
    original = record.to_dict(full=True)
    try:
        notebook_file = _notebook_file(record, notebook)
        nb, layout = build_notebook(record, mode, notebook_file)
    except Exception as exc:
        if replay_id is not None and store.get_replay(replay_id) is not None:
            # Started in the background: say why there, not only in its log.
            store.update_replay(replay_id, state="error", summary=str(exc), end_time=time.time())
        raise
    kernel = kernel_name or _kernel_name(notebook_file)
    cwd = _working_directory(record, notebook_file)
    replay_id = replay_id or uuid.uuid4().hex
    out_dir = store.directory / "replays"
    output_path = out_dir / f"{replay_id}.ipynb"
    options = {
        "mode": mode,
        "rtol": rtol,
        "atol": atol,
        "tolerances": dict(tolerances or {}),
        "timeout": timeout,
        "kernel": kernel,
    }
    if store.get_replay(replay_id) is None:
        _insert_replay(
            store,
            replay_id,
            record.id,
            mode,
            pid=os.getpid(),
            options=options,
            cells_total=len(nb.cells),
        )
    else:
        store.update_replay(replay_id, state="running", cells_total=len(nb.cells))
    bar, on_cell = _progress(progress, len(nb.cells), f"replay {record.name}", store, replay_id)
    env = (original.get("environment") or {}).get("env_vars") or {}
    try:
        execution = execute_notebook(
            nb,
            output_path,
            store=store,
            kind="replay",
            run_name=f"replay of {record.name}",
            cwd=cwd,
            notebook_path=notebook_file if mode == "file" else _recorded_notebook(record),
            parent_id=record.id,
            prelude_cells=layout["prelude"],
            env_vars=env,
            parameters=layout["parameters"],
            kernel_name=kernel,
            timeout=timeout,
            on_cell=on_cell,
        )
    except BaseException as exc:
        store.update_replay(
            replay_id,
            state="error",
            summary=f"the replay could not run: {type(exc).__name__}: {exc}",
            end_time=time.time(),
        )
        raise
    finally:
        if bar is not None:
            bar.close()
    store_notebook_artifact(store, execution.run_id, output_path, "replay.ipynb")
    if mode == "file" and execution.notebook is not None:
        # Papermill added its parameters cell: name failing cells as they ran.
        layout["first_lines"] = [_first_line(dict(cell)) for cell in execution.notebook.cells]
    replayed = runs.get_run(execution.run_id, store=store)
    report = judge(
        original,
        replayed.to_dict(full=True),
        record=record,
        mode=mode,
        layout=layout,
        failure=execution.failure.to_dict() if execution.failure else None,
        rtol=rtol,
        atol=atol,
        tolerances=tolerances,
    )
    report.update(
        id=replay_id,
        notebook=str(output_path),
        duration_s=round(execution.duration, 3),
        options=options,
    )
    done: dict[str, Any] = {"cells_done": execution.cells_total} if not execution.failure else {}
    store.update_replay(
        replay_id,
        state="done",
        replay_run_id=execution.run_id,
        verdict=report["verdict"],
        summary=report["summary"],
        report=report,
        end_time=time.time(),
        **done,
    )
    return report


def build_notebook(
    record: runs.RunRecord, mode: str, notebook_file: Path | None
) -> tuple[Any, dict[str, Any]]:
    """The notebook to replay, and its layout: which notebook cell is which original cell."""
    import nbformat

    if mode == "file":
        if notebook_file is None:
            raise InvalidValueError(
                record.name, "the run has no saved notebook file to replay in file mode"
            )
        from papermill.iorw import load_notebook_node
        from papermill.parameterize import parameterize_notebook

        nb = load_notebook_node(str(notebook_file))  # with the metadata Papermill expects
        parameters = {k: v for k, v in record.params.items() if k.isidentifier()}
        if parameters:
            spec = nb.metadata.get("kernelspec") or {}
            nb = parameterize_notebook(
                nb,
                parameters,
                kernel_name=spec.get("name") or DEFAULT_KERNEL,
                language=spec.get("language") or "python",
            )
        layout = {"mode": mode, "prelude": _file_prelude(nb, record), "cells": None}
        layout.update(parameters=None, first_lines=[_first_line(dict(c)) for c in nb.cells])
        return nb, layout
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": DEFAULT_KERNEL, "display_name": "Python 3"}
    nb.metadata["jupyter_mlops"] = {"replay_of": record.id}
    if not record.cells():
        raise InvalidValueError(
            record.name,
            "the run recorded no cells (it did not run in a notebook with the extension "
            "loaded), so there is nothing to replay",
        )
    prelude = [c for c in record.prelude() if (c.get("source") or "").strip()]
    for cell in prelude:
        # The original does not say whether these raised: let them, as it may have.
        nb.cells.append(_code_cell(cell["source"], raises=True))
    cells = record.cells()
    positions = []
    for position, cell in enumerate(cells, start=1):
        if not (cell.get("source") or "").strip():
            continue
        nb.cells.append(_code_cell(cell["source"], raises=cell.get("error") is not None))
        positions.append(position)
    layout = {"mode": mode, "prelude": len(prelude), "cells": positions, "parameters": None}
    layout["first_lines"] = [_first_line(dict(cell)) for cell in nb.cells]
    return nb, layout


def _file_prelude(nb: Any, record: runs.RunRecord) -> int:
    """How many of the file's cells ran before the run's first cell (as its prelude did), so
    that the replay's cells line up with the original's."""
    cells = record.cells()
    if not cells:
        return 0
    first = cells[0].get("source") or ""
    executed = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    for index, cell in enumerate(executed):
        if cell.source == first:
            return index
    return 0


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
        "comparison": diff,
    }
    cells = original.get("cells") or []
    if failure is not None:
        cell = _failed_cell(failure, layout, cells)
        failure = {**failure, "cell": cell}
        report.update(verdict="failed", failure=failure, summary=_failure_summary(failure))
        report["causes"] = _failure_causes(failure, diff)
        return _finish(report)
    cell_diffs = diff["cells"]["differences"]
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
    )
    if diff["same"] or (not hard and not diff["metrics"] and not cell_diffs):
        report.update(verdict="reproduced", summary=_reproduced_summary(original, diff))
        return _finish(report)
    if not hard:
        worst = max(diff["metrics"].items(), key=lambda kv: abs(kv[1]["delta"] or 0.0))
        key, values = worst
        report.update(
            verdict="reproduced within tolerance",
            summary=(
                f"Reproduced within tolerance: {key} differs by {_number(values['delta'])} "
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
    report["causes"] = likely_causes(original, replayed, diff, report["first_cell"], record, mode)
    report.update(verdict="diverged", summary=_divergence_summary(report, diff, metrics_out))
    return _finish(report)


def likely_causes(
    original: dict[str, Any],
    replayed: dict[str, Any],
    diff: dict[str, Any],
    first_cell: dict[str, Any] | None,
    record: runs.RunRecord,
    mode: str,
) -> list[str]:
    """Why a replay likely diverged, most likely first, in words a data scientist uses."""
    causes: list[str] = []
    for name, (hash_a, hash_b) in diff["datasets"].items():
        path = _display_path(diff["dataset_paths"].get(name), record)
        what = f"the data file {path}" if path else f"the dataset {name!r}"
        if hash_a and hash_b:
            causes.append(f"{what} changed since the original run ({hash_a[:8]} → {hash_b[:8]})")
        elif hash_a:
            causes.append(f"{what} was not recorded by the replay")
        else:
            causes.append(f"{what} was recorded only by the replay")
    if mode == "file" and first_cell is not None and "source" in first_cell.get("reasons", []):
        causes.append(
            "the saved notebook differs from what the original run executed "
            f"(cell {first_cell['position']})"
        )
    causes.extend(_randomness_causes(original.get("cells") or [], record, first_cell))
    if not diff["datasets"]:
        causes.extend(_unrecorded_files(original, first_cell, record))
    for package, (before, after) in diff["packages"].items():
        causes.append(
            f"package {package} changed: {before or 'not installed'} → {after or 'not installed'}"
        )
    if diff["python"]:
        causes.append(f"Python changed: {diff['python'][0]} → {diff['python'][1]}")
    for name, (before, after) in diff["env_vars"].items():
        causes.append(f"{name} changed: {before or 'unset'} → {after or 'unset'}")
    if original.get("linear") is False:
        reasons = "; ".join(original.get("linear_reasons") or []) or "cells ran out of order"
        causes.append(f"the original run was not linear ({reasons})")
    return causes


def start_replay(
    run: str,
    *,
    mode: str = "recorded",
    rtol: float | None = None,
    atol: float | None = None,
    timeout: float | None = None,
    store: Store | None = None,
) -> dict[str, Any]:
    """Start a replay in a background process; returns its row (``id``, state ``running``)."""
    if mode not in MODES:
        raise InvalidValueError("mode", f"{mode!r} is not one of {', '.join(MODES)}")
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None:
            _check_tolerance(name, value)
    if timeout is not None and timeout <= 0:
        raise InvalidValueError("timeout", "must be a positive number of seconds")
    store = store or open_store(create=False)
    record = runs.get_run(run, store=store)
    if record.status == "running":
        raise InvalidValueError(
            record.name, "the run is still running; replay it once it has ended"
        )
    if mode == "file" and _notebook_file(record, None) is None:
        raise InvalidValueError(
            record.name, "the run has no saved notebook file to replay in file mode"
        )
    replay_id = uuid.uuid4().hex
    log_dir = store.directory / "replays"
    log_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "jupyter_mlops.cli", "replay", record.id]
    command += ["--mode", mode, "--replay-id", replay_id, "--no-progress", "--format", "json"]
    for flag, value in (("--rtol", rtol), ("--atol", atol), ("--timeout", timeout)):
        if value is not None:
            command += [flag, repr(value)]
    _insert_replay(store, replay_id, record.id, mode)
    env = {**os.environ, "JUPYTER_MLOPS_DIR": str(store.directory)}
    for name in (runs.ENV_AUTOSTART, runs.ENV_RUN_ID, runs.ENV_KIND, runs.ENV_PARENT):
        env.pop(name, None)
    with (log_dir / f"{replay_id}.log").open("wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(store.directory.parent),
            start_new_session=True,
        )
    store.update_replay(replay_id, pid=process.pid)
    # Reap it when it ends, so a long-lived caller (the server) keeps no zombies.
    threading.Thread(target=process.wait, name="jupyter-mlops-replay-wait", daemon=True).start()
    row = store.get_replay(replay_id)
    assert row is not None
    return row


def _insert_replay(
    store: Store, replay_id: str, original_id: str, mode: str, **fields: Any
) -> None:
    """The row of a replay that is starting."""
    row: dict[str, Any] = {"id": replay_id, "original_id": original_id, "mode": mode}
    row["state"] = "running"
    row.update(cells_done=0, host=runs._HOST, start_time=time.time(), **fields)
    store.insert_replay(row)


def get_replay(replay_id: str, *, store: Store | None = None) -> dict[str, Any]:
    """A replay's progress and, once done, its verdict, summary and report."""
    store = store or open_store(create=False)
    row = store.get_replay(replay_id) if _is_id(replay_id) else None
    if row is None:
        raise ReplayNotFoundError(replay_id)
    if (
        row["state"] == "running"
        and row.get("pid")
        and row.get("host") == runs._HOST
        and not runs._pid_alive(int(row["pid"]), (row.get("start_time") or 0) + _SPAWN_SLACK_S)
    ):
        log = store.directory / "replays" / f"{replay_id}.log"
        tail = _last_line(log)
        summary = "the replay process ended without a verdict" + (f": {tail}" if tail else "")
        store.update_replay(replay_id, state="error", summary=summary, end_time=time.time())
        row = store.get_replay(replay_id) or row
    return row


# -- the pieces of a verdict ---------------------------------------------------------------


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


def _divergence_summary(
    report: dict[str, Any], diff: dict[str, Any], metrics_out: list[str]
) -> str:
    first = report["first_cell"]
    parts = []
    if first is not None:
        parts.append(f"Diverged at cell {first['position']} ({_quote(first)}): {_what(first)}.")
    else:
        parts.append("Diverged.")
    if metrics_out:
        details = []
        for key in metrics_out[:3]:
            m = diff["metrics"][key]
            details.append(f"{key} {_number(m['a'])} → {_number(m['b'])}")
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
    return " and ".join(said)


def _failure_summary(failure: dict[str, Any]) -> str:
    cell = failure.get("cell")
    where = f"cell {cell['position']} ({_quote(cell)})" if cell else "a cell"
    if failure["kind"] == "error":
        return f"Failed at {where}: {failure['error']}: {failure['message']}".rstrip(": ")
    if failure["kind"] == "timeout":
        return f"Failed: {where} timed out ({failure['message']})."
    if failure["kind"] == "kernel died":
        return f"Failed: the kernel died while running {where}."
    return f"Failed: the kernel did not start ({failure['message']})."


def _failure_causes(failure: dict[str, Any], diff: dict[str, Any]) -> list[str]:
    causes = []
    if failure.get("error") in ("FileNotFoundError", "OSError", "IOError"):
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
        return {"position": index + 1, "first_line": first_line, "notebook_cell": index + 1}
    prelude = layout["prelude"]
    if index < prelude:
        return {"position": index + 1, "prelude": True, "first_line": first_line}
    positions = layout["cells"]
    position = positions[index - prelude] if index - prelude < len(positions) else None
    if position is None:
        return None
    cell = cells[position - 1]
    return {"position": position, "seq": cell["seq"], "first_line": _first_line(cell)}


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
                "a": {"seq": seq, "first_line": _first_line(cell)},
                "b": None,
            }
    return None


def _randomness_causes(
    cells: list[dict[str, Any]], record: runs.RunRecord, first_cell: dict[str, Any] | None
) -> list[str]:
    """Cells up to the first divergent one that draw random numbers with nothing seeding
    them; the divergent cell itself first."""
    last = first_cell["position"] if first_cell else len(cells)
    seeded = any(_seeds(c) for c in record.prelude())
    found: list[tuple[int, str]] = []
    for position, cell in enumerate(cells[:last], start=1):
        source = cell.get("source") or ""
        seeded = seeded or bool(_seeds(cell))
        if not draws_random(source):
            continue
        module = parse_cell(source)
        if module is None:
            continue
        unseeded = [text for text, fresh in random_draws(module) if fresh or not seeded]
        if unseeded:
            found.append(
                (
                    position,
                    f"cell {position} draws random numbers without a seed "
                    f"({', '.join(unseeded[:2])})",
                )
            )
    found.sort(key=lambda item: (item[0] != last, -item[0]))
    return [text for _, text in found[:2]]


def _unrecorded_files(
    original: dict[str, Any], first_cell: dict[str, Any] | None, record: runs.RunRecord
) -> list[str]:
    """Files the first divergent cell names that no dataset records: they may have changed,
    and only a recorded hash could tell."""
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
    named = []
    for node in ast.walk(module):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 300:
            path = base / node.value
            if "\n" not in node.value and path.is_file() and str(path.resolve()) not in recorded:
                named.append(node.value)
    return [
        f"cell {position} reads {name}, which no dataset records, so whether it changed is not "
        f"known (record it with %track data {name})"
        for name in dict.fromkeys(named)
    ][:2]


def _seeds(cell: dict[str, Any]) -> list[str]:
    if cell.get("seeds") is not None:
        return list(cell["seeds"])
    module = parse_cell(cell.get("source") or "")
    return seeds_in(module) if module is not None else []


def _display_path(path: str | None, record: runs.RunRecord) -> str | None:
    """A data file's path as the user knows it: relative to the run's folder when inside."""
    if not path:
        return None
    resolved = Path(path)
    for base in (record.row.get("cwd"), str(record.store.directory.parent)):
        if base and resolved.is_absolute() and resolved.is_relative_to(base):
            return str(resolved.relative_to(base))
    return path


def _notebook_file(record: runs.RunRecord, notebook: str | Path | None) -> Path | None:
    if notebook is not None:
        path = Path(notebook).expanduser().resolve()
        if not path.is_file():
            raise InvalidValueError(str(notebook), "no such notebook file")
        return path
    recorded = _recorded_notebook(record)
    return recorded if recorded is not None and recorded.is_file() else None


def _recorded_notebook(record: runs.RunRecord) -> Path | None:
    notebook = record.row.get("notebook")
    if not notebook:
        return None
    path = Path(notebook)
    return path if path.is_absolute() else record.store.directory.parent / path


def _kernel_name(notebook_file: Path | None) -> str:
    if notebook_file is not None:
        try:
            data = json.loads(notebook_file.read_text(encoding="utf-8"))
            name = data.get("metadata", {}).get("kernelspec", {}).get("name")
            if isinstance(name, str) and name:
                return name
        except (OSError, ValueError):
            pass
    return DEFAULT_KERNEL


def _working_directory(record: runs.RunRecord, notebook_file: Path | None) -> Path:
    cwd = record.row.get("cwd")
    if cwd and Path(cwd).is_dir():
        return Path(cwd)
    if notebook_file is not None:
        return notebook_file.parent
    return record.store.directory.parent


def _progress(
    progress: bool | Callable[[int, int], None],
    total: int,
    label: str,
    store: Store,
    replay_id: str,
) -> tuple[Any, Callable[[int, int], None]]:
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="cell", desc=label[:40], leave=True)
    user = progress if callable(progress) else None

    def on_cell(done: int, total: int) -> None:
        store.update_replay(replay_id, cells_done=done, cells_total=total)
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()
        if user is not None:
            user(done, total)

    return bar, on_cell


def _code_cell(source: str, *, raises: bool) -> Any:
    """A notebook cell; one that raised in the original may raise again without stopping."""
    import nbformat

    cell = nbformat.v4.new_code_cell(source)
    if raises:
        cell.metadata["tags"] = [RAISES_TAG]
    return cell


def _check_tolerance(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or value != value or value < 0:
        raise InvalidValueError(name, f"must be a number of zero or more, not {value!r}")


def _first_line(cell: dict[str, Any] | None) -> str:
    lines = ((cell or {}).get("source") or "").strip().splitlines()
    return lines[0][:_LINE] if lines else ""


def _quote(cell: dict[str, Any]) -> str:
    line = cell.get("first_line") or (cell.get("a") or {}).get("first_line") or ""
    if cell.get("prelude"):
        return "run before the tracked run started"
    return f"`{line}`" if line else "an empty cell"


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g}"


def _is_id(text: str) -> bool:
    return 0 < len(text) <= 64 and all(c in "0123456789abcdef" for c in text)


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def verdict_exit_code(report: Mapping[str, Any]) -> int:
    """The exit code of ``replay``: 0 reproduced (within tolerance too), 1 not."""
    return 0 if report.get("verdict") in REPRODUCED else 1


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
    diff = report.get("comparison") or {}
    metrics = diff.get("metrics") or {}
    if metrics:
        lines.append("metrics that differ:")
        for key, m in metrics.items():
            judged = "within" if m["within_tolerance"] else "outside"
            lines.append(
                f"  {key}: {_number(m['a'])} → {_number(m['b'])} "
                f"(delta {_number(m['delta'])}, {judged} tolerance)"
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
            lines.append(f"  cell {d['position']}: {', '.join(d['reasons'])}  `{first}`")
        if len(differing) > 5:
            lines.append(f"  … and {len(differing) - 5} more")
    if diff.get("packages"):
        lines.append("packages that differ:")
        for name, (a, b) in diff["packages"].items():
            lines.append(f"  {name}: {a or '-'} → {b or '-'}")
    if report.get("notebook"):
        lines.append(f"executed notebook: {report['notebook']}")
    return "\n".join(lines)
