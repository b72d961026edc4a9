"""Replay: run a recorded run again in a fresh kernel and say whether it reproduced.

``recorded`` mode rebuilds the notebook the run actually executed (the cells its kernel ran
before the run started, then the run's cells in the order they ran); ``file`` mode runs the
saved notebook top to bottom with the run's params. Either way the replay is itself a run
(kind ``replay``, parent the original), compared with ``compare.diff_runs`` and judged:
``reproduced``, ``reproduced within tolerance``, ``diverged`` (the first cell that differs
and the likely cause) or ``failed`` (the cell and its error, a dead kernel, a timeout).
"""

from __future__ import annotations

import functools
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

from . import liveness
from .autologging import TAG as AUTOLOG_TAG
from .compare import DEFAULT_ATOL, DEFAULT_RTOL, Tolerance
from .errors import InvalidValueError, ReplayNotFoundError, RunNotFoundError
from .execute import RAISES_TAG, Execution, execute_notebook, store_notebook_artifact
from .kernel_env import launcher_env
from .notebooks import notebook_file
from .records import RunRecord, get_run
from .store import Store, open_store
from .verdicts import confirm_verdict, first_source_line, judge
from .vocabulary import DEFAULT_KERNEL, KINDS, MODES, REPLAY_STATES, STATUSES

__all__ = [
    "build_notebook",
    "get_replay",
    "replay",
    "start_replay",
]

RUNNING, DONE, ERROR = REPLAY_STATES
# A run that has not ended yet (the same word as a replay's state, about a run).
RUN_RUNNING = STATUSES[0]
REPLAY = KINDS[1]


def replay(
    run: str | RunRecord,
    *,
    mode: str = "recorded",
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    tolerances: Mapping[str, float | Tolerance] | None = None,
    timeout: float | None = None,
    kernel_name: str | None = None,
    notebook: str | Path | None = None,
    parameters: Mapping[str, Any] | None = None,
    progress: bool | Callable[[int, int], None] = True,
    replay_id: str | None = None,
    confirm: bool = False,
    autolog: bool = True,
    store: Store | None = None,
) -> dict[str, Any]:
    """Replay a run in a fresh kernel and return the report (``report["verdict"]``).

    ``notebook`` (file mode) runs that notebook file instead of the run's own, with
    ``parameters`` instead of the run's params when given ({}: the notebook's own);
    the kernel is ``kernel_name``, else the one the run recorded, else the notebook's;
    ``progress`` shows a bar per cell, or is called with (cells done, cells in all);
    ``confirm`` replays once more when the replay diverged (as it always does when no cause
    was found), to tell a nondeterministic cell from a world that changed.
    ``autolog`` lets the replay autolog when its original did (never when it did not: the
    replay would log what the original never had).
    """
    _check_options(mode, rtol, atol)
    record = run if isinstance(run, RunRecord) else get_run(run, store=store)
    store = record.store
    _refuse_running(record)
    original = record.to_dict(full=True)
    nb, layout, notebook_file = _prepare(record, mode, notebook, parameters, replay_id)
    replay_id = replay_id or uuid.uuid4().hex
    options: dict[str, Any] = {
        "mode": mode,
        "rtol": rtol,
        "atol": atol,
        "tolerances": dict(tolerances or {}),
        "timeout": timeout,
        "kernel": kernel_name or record.row.get("kernel") or _kernel_name(notebook_file),
        "autolog": autolog and record.tags.get(AUTOLOG_TAG) == "on",
    }
    _begin(store, replay_id, record.id, options, len(nb.cells))
    run_kernel = functools.partial(
        execute_notebook,
        nb,
        store=store,
        kind=REPLAY,
        cwd=_working_directory(record, notebook_file),
        notebook_path=notebook_file if mode == "file" else _recorded_notebook(record),
        parent_id=record.id,
        prelude_cells=layout["prelude"],
        env_vars=_replay_env(original),
        parameters=layout["parameters"],
        kernel_name=options["kernel"],
        timeout=timeout,
        autolog=options["autolog"],
    )
    output_path = store.directory / "replays" / f"{replay_id}.ipynb"
    execution = _first_replay(run_kernel, output_path, record, replay_id, progress, len(nb.cells))
    limits = {"rtol": rtol, "atol": atol, "tolerances": tolerances}
    report, replayed = _judge(original, execution, record, layout, limits)
    duration = execution.duration
    if report["verdict"] == "diverged" and (confirm or not report["causes"]):
        confirm_path = output_path.with_name(f"{replay_id}-confirm.ipynb")
        duration += _confirm(report, replayed, run_kernel, confirm_path, record, limits)
    report.update(
        id=replay_id, notebook=str(output_path), duration_s=round(duration, 3), options=options
    )
    _finish(store, replay_id, execution, report)
    return report


def _check_options(mode: str, rtol: float | None, atol: float | None) -> None:
    """Refuse a mode or a tolerance that is none, before anything starts."""
    if mode not in MODES:
        raise InvalidValueError("mode", f"{mode!r} is not one of {', '.join(MODES)}")
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None:
            _check_tolerance(name, value)


def _refuse_running(record: RunRecord) -> None:
    if record.status == RUN_RUNNING:
        raise InvalidValueError(
            record.name, "the run is still running; replay it once it has ended"
        )


def _prepare(
    record: RunRecord,
    mode: str,
    notebook: str | Path | None,
    parameters: Mapping[str, Any] | None,
    replay_id: str | None,
) -> tuple[Any, dict[str, Any], Path | None]:
    """The notebook to replay, its layout, and the notebook file it comes from, if any."""
    try:
        notebook_file = _notebook_file(record, notebook)
        nb, layout = build_notebook(record, mode, notebook_file, parameters)
    except Exception as exc:
        if replay_id is not None and record.store.get_replay(replay_id) is not None:
            # Started in the background: say why there, not only in its log.
            record.store.update_replay(
                replay_id, state=ERROR, summary=str(exc), end_time=time.time()
            )
        raise
    return nb, layout, notebook_file


def _begin(
    store: Store, replay_id: str, original_id: str, options: dict[str, Any], cells: int
) -> None:
    """The replay's row: inserted, or (started in the background) told it now runs."""
    if store.get_replay(replay_id) is None:
        _insert_replay(
            store,
            replay_id,
            original_id,
            options["mode"],
            pid=os.getpid(),
            options=options,
            cells_total=cells,
        )
    else:
        store.update_replay(replay_id, state=RUNNING, cells_total=cells)


def _first_replay(
    run_kernel: Callable[..., Execution],
    output_path: Path,
    record: RunRecord,
    replay_id: str,
    progress: bool | Callable[[int, int], None],
    cells: int,
) -> Execution:
    """Run the replay's kernel, its progress written to the replay's row as cells complete."""
    store = record.store
    bar, on_cell = _progress(progress, cells, f"replay {record.name}", store, replay_id)
    try:
        return run_kernel(output_path, run_name=f"replay of {_root_name(record)}", on_cell=on_cell)
    except BaseException as exc:
        store.update_replay(
            replay_id,
            state=ERROR,
            summary=f"the replay could not run: {type(exc).__name__}: {exc}",
            end_time=time.time(),
        )
        raise
    finally:
        if bar is not None:
            bar.close()


def _judge(
    original: dict[str, Any],
    execution: Execution,
    record: RunRecord,
    layout: dict[str, Any],
    limits: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report on the replay run (its executed notebook kept), and the replay run whole."""
    store = record.store
    store_notebook_artifact(store, execution.run_id, execution.output_path, "replay.ipynb")
    if layout["mode"] == "file" and execution.notebook is not None:
        # Papermill added its parameters cell: name failing cells as they ran.
        layout["first_lines"] = [first_source_line(dict(cell)) for cell in execution.notebook.cells]
    replayed = get_run(execution.run_id, store=store).to_dict(full=True)
    report = judge(
        original,
        replayed,
        record=record,
        mode=layout["mode"],
        layout=layout,
        failure=execution.failure.to_dict() if execution.failure else None,
        **limits,
    )
    return report, replayed


def _confirm(
    report: dict[str, Any],
    replayed: dict[str, Any],
    run_kernel: Callable[..., Execution],
    output_path: Path,
    record: RunRecord,
    limits: dict[str, Any],
) -> float:
    """Replay once more and add what the second replay says to the report; its duration."""
    second = run_kernel(output_path, run_name=f"confirming replay of {_root_name(record)}")
    confirm_verdict(
        report,
        replayed,
        get_run(second.run_id, store=record.store).to_dict(full=True),
        failed=second.failure is not None,
        **limits,
    )
    return second.duration


def _finish(store: Store, replay_id: str, execution: Execution, report: dict[str, Any]) -> None:
    """The replay's row, done: its run, verdict and report."""
    done: dict[str, Any] = {"cells_done": execution.cells_total} if not execution.failure else {}
    store.update_replay(
        replay_id,
        state=DONE,
        replay_run_id=execution.run_id,
        verdict=report["verdict"],
        summary=report["summary"],
        report=report,
        end_time=time.time(),
        **done,
    )


def _replay_env(original: dict[str, Any]) -> dict[str, str]:
    """The original's recorded variables; a hash seed it did not fix stays random here too,
    whatever the launching process has (so that hash order varies as it did)."""
    environment = original.get("environment")
    env = dict((environment or {}).get("env_vars") or {})
    if environment and "PYTHONHASHSEED" not in env:
        env["PYTHONHASHSEED"] = "random"
    return env


def build_notebook(
    record: RunRecord,
    mode: str,
    notebook_file: Path | None,
    parameters: Mapping[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The notebook to replay, and its layout: which notebook cell is which original cell."""
    if mode == "file":
        if notebook_file is None:
            raise InvalidValueError(
                record.name, "the run has no saved notebook file to replay in file mode"
            )
        return _saved_notebook(record, notebook_file, parameters)
    return _recorded_cells_notebook(record)


def _saved_notebook(
    record: RunRecord, notebook_file: Path, parameters: Mapping[str, Any] | None
) -> tuple[Any, dict[str, Any]]:
    """The saved notebook file with the run's params (or ``parameters``) injected."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(notebook_file))  # with the metadata Papermill expects
    if parameters is None:
        parameters = {k: v for k, v in record.params.items() if k.isidentifier()}
    if parameters:
        spec = nb.metadata.get("kernelspec") or {}
        nb = parameterize_notebook(
            nb,
            parameters,
            kernel_name=spec.get("name") or DEFAULT_KERNEL,
            language=spec.get("language") or "python",
        )
    layout = {"mode": "file", "prelude": _file_prelude(nb, record), "cells": None}
    layout.update(parameters=None, first_lines=[first_source_line(dict(c)) for c in nb.cells])
    return nb, layout


def _recorded_cells_notebook(record: RunRecord) -> tuple[Any, dict[str, Any]]:
    """A notebook of the cells the run's kernel ran: its prelude, then the run's cells in
    the order they ran."""
    import nbformat

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
    layout = {"mode": "recorded", "prelude": len(prelude), "cells": positions, "parameters": None}
    layout["first_lines"] = [first_source_line(dict(cell)) for cell in nb.cells]
    return nb, layout


def _file_prelude(nb: Any, record: RunRecord) -> int:
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
    _check_options(mode, rtol, atol)
    if timeout is not None and timeout <= 0:
        raise InvalidValueError("timeout", "must be a positive number of seconds")
    store = store or open_store(create=False)
    record = get_run(run, store=store)
    _refuse_running(record)
    if mode == "file" and _notebook_file(record, None) is None:
        raise InvalidValueError(
            record.name, "the run has no saved notebook file to replay in file mode"
        )
    replay_id = uuid.uuid4().hex
    log_dir = store.directory / "replays"
    log_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "jupyter_mlops.replay_worker", replay_id, record.id]
    command += ["--store", str(store.directory), "--mode", mode]
    for flag, value in (("--rtol", rtol), ("--atol", atol), ("--timeout", timeout)):
        if value is not None:
            command += [flag, repr(value)]
    _insert_replay(store, replay_id, record.id, mode)
    env = launcher_env(store.directory)
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
    row["state"] = RUNNING
    row.update(cells_done=0, host=liveness.HOST, start_time=time.time(), **fields)
    store.insert_replay(row)


def get_replay(replay_id: str, *, store: Store | None = None) -> dict[str, Any]:
    """A replay's progress and, once done, its verdict, summary and report."""
    store = store or open_store(create=False)
    row = store.get_replay(replay_id) if _is_id(replay_id) else None
    if row is None:
        raise ReplayNotFoundError(replay_id)
    if (
        row["state"] == RUNNING
        and row.get("pid")
        and row.get("host") == liveness.HOST
        and not liveness.pid_alive(int(row["pid"]))
    ):
        log = store.directory / "replays" / f"{replay_id}.log"
        tail = _last_line(log)
        summary = "the replay process ended without a verdict" + (f": {tail}" if tail else "")
        store.update_replay(replay_id, state=ERROR, summary=summary, end_time=time.time())
        row = store.get_replay(replay_id) or row
    return row


def _notebook_file(record: RunRecord, notebook: str | Path | None) -> Path | None:
    if notebook is not None:
        path = Path(notebook).expanduser().resolve()
        if not path.is_file():
            raise InvalidValueError(str(notebook), "no such notebook file")
        return path
    recorded = _recorded_notebook(record)
    return recorded if recorded is not None and recorded.is_file() else None


def _recorded_notebook(record: RunRecord) -> Path | None:
    notebook = record.row.get("notebook")
    return notebook_file(record.store.directory.parent, notebook) if notebook else None


def _root_name(record: RunRecord) -> str:
    """The name of the run a chain of replays started from: replay names never nest."""
    row, seen = record.row, {record.id}
    while row.get("kind") == REPLAY and row.get("parent_id") and row["parent_id"] not in seen:
        seen.add(row["parent_id"])
        try:
            row = record.store.get_run(row["parent_id"])
        except RunNotFoundError:
            break
    name = str(row["name"])
    return name.removeprefix("replay of ") if row.get("kind") == REPLAY else name


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


def _working_directory(record: RunRecord, notebook_file: Path | None) -> Path:
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


def _is_id(text: str) -> bool:
    return 0 < len(text) <= 64 and all(c in "0123456789abcdef" for c in text)


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""
