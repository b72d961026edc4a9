"""Run a notebook in a fresh kernel with Papermill, tracked as one run.

Replay, sweep and check launch kernels the same way: the kernel loads the extension at
start (``--ext``), and the environment tells it which run it is (id, name, kind, parent,
sweep, notebook path, how many leading prelude cells), because a Papermill kernel learns
none of that by itself. So any notebook becomes one run, whether or not it mentions the
tracker. This module knows Papermill and nbclient; it does not judge results.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RunNotFoundError
from .kernel_env import AUTOLOG, tracked_env
from .store import Store
from .text.replays import failure_text
from .vocabulary import DEFAULT_KERNEL, STATUSES

__all__ = [
    "Execution",
    "Failure",
    "execute_notebook",
    "skip_slow_optional_imports",
    "store_notebook_artifact",
]

ENGINE_NAME = "jupyter-mlops"
_, FINISHED, FAILED, _, CRASHED = STATUSES
# Cells tagged so may raise without stopping the notebook (nbclient's convention).
RAISES_TAG = "raises-exception"
_ERROR_MARKER = "papermill-error-cell-tag"
_ERROR_TEXT = 500
# How long a kernel may take to exit once asked to (it ends its run then).
KERNEL_SHUTDOWN_WAIT_S = 60.0


@dataclass
class Failure:
    """Why an execution stopped early: a cell's error, the kernel dying, a timeout."""

    kind: str  # "error", "kernel died", "timeout", "kernel did not start"
    cell_index: int | None  # among the executed notebook's cells, markdown included
    error: str | None = None  # "FileNotFoundError"
    message: str = ""  # "[Errno 2] No such file or directory: 'data.csv'"
    cell_label: str | None = None  # "cell 4 [7]", as every door names the cell
    line: str | None = None  # the line of the cell that raised, as its traceback says

    def __str__(self) -> str:
        return failure_text(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """As plain data."""
        return {
            "kind": self.kind,
            "cell_index": self.cell_index,
            "error": self.error,
            "message": self.message,
            "cell_label": self.cell_label,
            "line": self.line,
        }


@dataclass
class Execution:
    """What came of running a notebook: its run, the executed notebook, a failure if any."""

    run_id: str
    output_path: Path
    duration: float
    failure: Failure | None = None
    cells_total: int = 0
    notebook: Any = field(default=None, repr=False)


def execute_notebook(
    notebook: Any,
    output_path: Path,
    *,
    store: Store,
    kind: str,
    run_name: str,
    cwd: Path,
    notebook_path: Path | None = None,
    parent_id: str | None = None,
    sweep_id: str | None = None,
    prelude_cells: int = 0,
    env_vars: Mapping[str, str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    kernel_name: str | None = None,
    timeout: float | None = None,
    on_cell: Callable[[int, int], None] | None = None,
    run_id: str | None = None,
    autolog: bool = True,
    keep_cwd: bool = False,
) -> Execution:
    """Execute a notebook (a ``NotebookNode``) in a fresh tracked kernel; never raises for
    what happens inside the kernel: that comes back as ``Execution.failure``.

    ``autolog`` switches autologging on in the kernel (fits, scores, models, system metrics).
    ``keep_cwd`` starts the kernel in ``cwd`` without Papermill changing this process's
    working directory meanwhile (a Dask worker runs other tasks beside the point).
    """
    _register_engine()
    run_id = run_id or uuid.uuid4().hex
    kernel_name, language = _kernel_of(notebook, kernel_name)
    overrides = tracked_env(
        store.directory,
        run_id=run_id,
        run_name=run_name,
        kind=kind,
        kernel=kernel_name,
        parent=parent_id,
        sweep=sweep_id,
        notebook=notebook_path,
        prelude=prelude_cells,
        autolog=autolog,
    )
    overrides.update(env_vars or {})
    # The launcher decides, whatever the recorded environment of an original run said.
    overrides[AUTOLOG] = "1" if autolog else "0"
    progress = _Progress(on_cell)
    started = time.perf_counter()
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with _environment(overrides):
        executed, failure = _papermill(
            notebook,
            output_path,
            parameters=parameters,
            kernel_name=kernel_name,
            language=language,
            cwd=cwd,
            keep_cwd=keep_cwd,
            timeout=timeout,
            progress=progress,
        )
    duration = time.perf_counter() - started
    if executed is None:
        executed = _read_executed(output_path)
    if failure is not None and executed is not None:
        failure.cell_label = _cell_label(executed, failure.cell_index)
    _settle_run(
        store,
        run_id,
        failure,
        kind=kind,
        name=run_name,
        parent_id=parent_id,
        sweep_id=sweep_id,
        cwd=cwd,
        kernel=kernel_name,
    )
    return Execution(
        run_id=run_id,
        output_path=output_path,
        duration=duration,
        failure=failure,
        cells_total=progress.total,
        notebook=executed,
    )


def _kernel_of(notebook: Any, kernel_name: str | None) -> tuple[str, str]:
    """The kernel to start (the one asked for, else the notebook's) and the notebook's language."""
    metadata = notebook.get("metadata", {})
    kernelspec = metadata.get("kernelspec") or {}
    language = (
        kernelspec.get("language") or (metadata.get("language_info") or {}).get("name") or "python"
    )
    return kernel_name or kernelspec.get("name") or DEFAULT_KERNEL, language


def _papermill(
    notebook: Any,
    output_path: Path,
    *,
    parameters: Mapping[str, Any] | None,
    kernel_name: str,
    language: str,
    cwd: Path,
    keep_cwd: bool,
    timeout: float | None,
    progress: _Progress,
) -> tuple[Any, Failure | None]:
    """Papermill's run of the notebook: the executed notebook (None when Papermill did not
    return it), and why the run stopped early, if it did."""
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    try:
        executed = papermill.execute_notebook(
            notebook,
            str(output_path),
            parameters=dict(parameters) if parameters else None,
            engine_name=ENGINE_NAME,
            kernel_name=kernel_name,
            language=language,
            progress_bar=False,
            cwd=None if keep_cwd else str(cwd),
            # nbclient starts the kernel in the notebook's folder from its resources.
            resources={"metadata": {"path": str(cwd)}},
            execution_timeout=timeout,
            extra_arguments=["--ext=jupyter_mlops"],
            progress=progress,
        )
    except PapermillExecutionError as exc:
        # Papermill raises for any error output, even of cells allowed to raise: look at
        # the notebook it wrote for an error of a cell that was not allowed to.
        executed = _read_executed(output_path)
        if executed is None:
            return None, Failure("error", exc.cell_index, exc.ename, _clip(exc.evalue))
        return executed, _unexpected_error(executed)
    except CellTimeoutError as exc:
        return None, Failure("timeout", progress.current, None, _clip(str(exc)))
    except DeadKernelError as exc:
        return None, Failure("kernel died", progress.current, None, _clip(str(exc)))
    except NoSuchKernel:
        return None, Failure("kernel did not start", None, "NoSuchKernel", _no_kernel(kernel_name))
    except RuntimeError as exc:
        # nbclient says a kernel that died while starting this way.
        kind_of = "kernel died" if progress.current is not None else "kernel did not start"
        return None, Failure(kind_of, progress.current, None, _clip(str(exc)))
    return executed, None


def skip_slow_optional_imports() -> None:
    """In processes of our own (the CLI, sweep workers): do without optional imports that
    cost seconds and that nothing here needs.

    Papermill imports nbformat, which imports jsonschema, which imports ``rfc3987_syntax``
    when it is installed, only to check IRI formats; that module builds a grammar at import
    (about 2 s here). Marking it absent makes jsonschema skip that one format check.
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def store_notebook_artifact(store: Store, run_id: str, path: Path, name: str) -> None:
    """Keep an executed notebook as an artifact of a run."""
    from .hashing import hash_file

    if not path.is_file():
        return
    digest = hash_file(path)
    store.put_blob(digest, path)
    store.add_artifact(
        {
            "run_id": run_id,
            "name": name,
            "hash": digest,
            "kind": "file",
            "size_bytes": path.stat().st_size,
            "source": str(path),
            "cell_seq": None,
            "time": time.time(),
        }
    )


def _settle_run(
    store: Store,
    run_id: str,
    failure: Failure | None,
    *,
    kind: str,
    name: str,
    parent_id: str | None,
    sweep_id: str | None,
    cwd: Path,
    kernel: str,
) -> None:
    """Give the run its final status from what the launcher saw (the kernel cannot tell
    its own death or a timeout), and make sure a run exists even if the kernel never
    started one."""
    status, error = FINISHED, None
    if failure is not None:
        status = {"kernel died": CRASHED, "kernel did not start": FAILED}.get(failure.kind, FAILED)
        error = f"{failure.error}: {failure.message}" if failure.error else failure.message
        if failure.kind == "timeout":
            error = f"timed out: {failure.message}"
    now = time.time()
    try:
        row = store.get_run(run_id)
    except RunNotFoundError:
        store.insert_run(
            {
                "id": run_id,
                "name": name,
                "status": status,
                "kind": kind,
                "parent_id": parent_id,
                "sweep_id": sweep_id,
                "start_time": now,
                "end_time": now,
                "cwd": str(cwd),
                "error": error,
                "kernel": kernel,
            }
        )
        return
    fields: dict[str, Any] = {"status": status, "error": error}
    if not row.get("end_time"):
        fields["end_time"] = now
    if failure is None and row.get("status") == FINISHED:
        return
    store.update_run(run_id, **fields)


class _Progress:
    """Counts cells as Papermill completes them, and remembers the one running."""

    def __init__(self, on_cell: Callable[[int, int], None] | None) -> None:
        self.on_cell = on_cell
        self.current: int | None = None
        self.total = 0

    def start(self, index: int, total: int) -> None:
        self.current = index
        self.total = total

    def complete(self, index: int, total: int) -> None:
        self.total = total
        if self.on_cell is not None:
            self.on_cell(index + 1, total)


_registered = False


def _register_engine() -> None:
    """Papermill's nbclient engine, with per-cell progress reported back to us."""
    global _registered
    if _registered:
        return
    from papermill.engines import NBClientEngine, papermill_engines

    class ProgressEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: Any, **kwargs: Any) -> Any:
            progress: _Progress | None = kwargs.pop("progress", None)
            if progress is not None:
                total = len(nb_man.nb.cells)
                cell_start, cell_complete = nb_man.cell_start, nb_man.cell_complete

                def start(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
                    if cell_index is not None:
                        progress.start(cell_index, total)
                    return cell_start(cell, cell_index=cell_index, **kw)

                def complete(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
                    result = cell_complete(cell, cell_index=cell_index, **kw)
                    if cell_index is not None:
                        progress.complete(cell_index, total)
                    return result

                nb_man.cell_start, nb_man.cell_complete = start, complete
            kwargs.setdefault("kernel_manager_class", PatientKernelManager)
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class PatientKernelManager(AsyncKernelManager):
        """Gives a kernel time to record its run's end as it exits (the cells' facts, the
        environment, autologged models) before it is terminated: jupyter_client's 5 s
        leave it 2.5 s before SIGTERM, too little on a busy machine."""

        @default("shutdown_wait_time")
        def _patient_wait(self) -> float:
            return KERNEL_SHUTDOWN_WAIT_S

    papermill_engines.register(ENGINE_NAME, ProgressEngine)
    _registered = True


@contextlib.contextmanager
def _environment(overrides: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or unset, for None) environment variables for a kernel about to start."""
    saved = {name: os.environ.get(name) for name in overrides}
    try:
        for name, value in overrides.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _read_executed(output_path: Path) -> Any:
    """The notebook Papermill wrote, without its error markers (None if unreadable)."""
    import nbformat

    try:
        executed = nbformat.read(output_path, as_version=4)
    except Exception:
        return None
    executed.cells = _without_markers(executed.cells)
    return executed


def _unexpected_error(executed: Any) -> Failure | None:
    """The first error of a cell not tagged to raise, in an executed notebook."""
    for index, cell in enumerate(executed.cells):
        if RAISES_TAG in (cell.get("metadata", {}).get("tags") or []):
            continue
        for output in cell.get("outputs") or []:
            if output.get("output_type") == "error":
                failure = Failure("error", index, output.get("ename"), _clip(output.get("evalue")))
                failure.line = _raising_line(cell.get("source") or "", output)
                return failure
    return None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# How IPython names a cell's own frame in a traceback (newer and older wordings).
_CELL_FRAME = re.compile(
    r"^(?:Cell In\s*\[\d*\]|Input In \[\d*\]|<ipython-input-[^>]*>),? line (\d+)"
)


def _raising_line(source: str, output: Mapping[str, Any]) -> str | None:
    """The cell's line that raised, from the first frame of its traceback that is the cell."""
    for entry in output.get("traceback") or []:
        text = _ANSI.sub("", str(entry)).strip()
        match = _CELL_FRAME.match(text)
        if match:
            lines = source.splitlines()
            number = int(match.group(1))
            return lines[number - 1].strip()[:_ERROR_TEXT] if 0 < number <= len(lines) else None
    return None


def _without_markers(cells: list[Any]) -> list[Any]:
    """The notebook's cells without the two Papermill adds to point at an error."""
    return [c for c in cells if _ERROR_MARKER not in (c.get("metadata", {}).get("tags") or [])]


def _no_kernel(name: str) -> str:
    """One line: the kernel is not installed, and how to choose one that is."""
    from jupyter_client.kernelspec import KernelSpecManager

    try:
        installed = sorted(KernelSpecManager().find_kernel_specs())
    except Exception:
        installed = []
    listed = ", ".join(installed) if installed else "none found"
    return (
        f"no kernel named {name!r} is installed here; choose one with --kernel NAME "
        f"(installed: {listed})"
    )


def _cell_label(executed: Any, index: int | None) -> str | None:
    """How every door names the notebook cell at ``index`` (None for a notebook rebuilt from
    recorded cells: its replay names cells by the original's numbers)."""
    from .linearity import INJECTED_TAG, cell_label, notebook_cell_number

    cells = executed.cells
    if (
        index is None
        or not 0 <= index < len(cells)
        or "replay_of" in (executed.metadata.get("jupyter_mlops") or {})
    ):
        return None
    cell = cells[index]
    return cell_label(
        {
            "cell_number": notebook_cell_number(cells, index),
            "execution_count": cell.get("execution_count"),
            "injected": INJECTED_TAG in ((cell.get("metadata") or {}).get("tags") or []),
        }
    )


def _clip(text: str | None) -> str:
    text = (text or "").strip()
    return text if len(text) <= _ERROR_TEXT else text[: _ERROR_TEXT - 1] + "…"
