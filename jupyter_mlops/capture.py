"""Cell capture: IPython events record every cell executed while a run is active.

The hooks run on every cell, so the work done in the cell's thread is kept to timing, the
names a cell assigns (to hash the data it wrote before the next cell can change it) and
handing the row over. Its source and what it showed are hashed in the store's writer thread;
the names it read and wrote are worked out from its source when the run ends
(``cellcode``). The assigned names come from the module IPython parses, seen by wrapping
the shell's ``ast_parse`` rather than by an AST transformer: any transformer makes IPython
walk every cell's tree again.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import os
import resource
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import autologging, files, hashing, values
from . import run as runs
from .cellcode import assigned_names, literal_assignments, parse_cell
from .kernel_env import read_kernel_env
from .linearity import INJECTED_HEADER, is_injected_parameters, saved_cells
from .liveness import declare_kernel
from .notebooks import session_notebook
from .outputs import figure_hash, figure_of, sanitize_output
from .validate import error_text
from .vocabulary import PARTIAL_OUTPUT

__all__ = ["CellCapture", "quiet"]

_MAX_ERROR_VALUE = 1000
# The cells a kernel ran before a run started are kept with it (so a replay can run them
# first); a kernel that ran for days keeps only the latest ones.
MAX_PRELUDE_CELLS = 2000
_ABSENT = object()
# getrusage's peak RSS is in kilobytes on Linux, in bytes on macOS.
_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024


class CellCapture:
    """Records cells of one IPython shell into the active run."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self._assigned: list[str] | None = None
        self._started: tuple[runs.Run | None, float, float] | None = None
        # What the cell printed and displayed: text, and (MIME type, payload) for figures.
        self._outputs: list[str | tuple[str, Any]] = []
        self._recording = False
        self._warned = False
        self._pending_params: dict[str, Any] = {}
        self._restore: list[Callable[[], None]] = []
        self._tapped: tuple[Any, Any, Any] | None = None
        self._busy_store: Any = None
        self._cpu_start = 0.0

    # -- installing ---------------------------------------------------------------------

    def register(self) -> None:
        """Start listening to the shell's cell events."""
        events = self.shell.events
        events.register("pre_run_cell", self.pre_run_cell)
        events.register("post_run_cell", self.post_run_cell)
        self._keep_parsed_cells()
        self._wrap_outputs()
        files.install()
        # Installed in a shell: this process is an interactive kernel, and knows its notebook.
        declare_kernel()
        runs.set_notebook_provider(self.notebook_path)
        # Loaded from inside a cell (`%load_ext`), whose pre-run event has passed: that cell
        # still counts, from now on, so a run it starts records it.
        self._started = (None, time.time(), time.perf_counter())

    def unregister(self) -> None:
        """Stop listening and put the shell's output functions back."""
        events = self.shell.events
        for name, callback in (
            ("pre_run_cell", self.pre_run_cell),
            ("post_run_cell", self.post_run_cell),
        ):
            with contextlib.suppress(ValueError):
                events.unregister(name, callback)
        for restore in reversed(self._restore):
            restore()
        self._restore.clear()
        if runs.notebook_provider() == self.notebook_path:
            runs.set_notebook_provider(None)

    def notebook_path(self) -> str | None:
        """The notebook this kernel runs, from ``__session__`` (JupyterLab sets it)."""
        return session_notebook(self.shell.user_ns.get("__session__"))

    # -- events -------------------------------------------------------------------------

    def pre_run_cell(self, info: Any) -> None:
        """Note the start of a cell."""
        try:
            self._assigned = None
            self._outputs.clear()
            active = runs.active_run()
            self._recording = active is not None
            self._started = (active, time.time(), time.perf_counter())
            self._cpu_start = time.process_time()
            if active is not None:
                active.current_cell = active.next_cell_seq()
                active.store.cell_running(True)
                self._busy_store = active.store
                self._tap_stdout()
                files.start()
        except Exception as exc:
            self._warn(exc)

    def post_run_cell(self, result: Any) -> None:
        """Record the cell that just ran into its run."""
        try:
            self._record(result)
        except Exception as exc:
            self._warn(exc)
        finally:
            files.stop()
            if self._busy_store is not None:
                self._busy_store.cell_running(False)
                self._busy_store = None
            self._untap_stdout()
            self._recording = False
            self._started = None
            self._assigned = None

    def _record(self, result: Any) -> None:
        started = self._started
        if started is None:
            return
        run_at_start, start_time, start_clock = started
        timing = (
            start_time,
            time.perf_counter() - start_clock,
            time.process_time() - self._cpu_start,
        )
        opened = files.stop()
        source: str = result.info.raw_cell or ""
        run = _run_of_cell(run_at_start, start_time)
        if source.startswith(INJECTED_HEADER) and self._injected(source, run):
            self._pending_params.update(literal_assignments(parse_cell(source)))
        if run is None:
            return
        if self._pending_params and run.status == "running":
            params, self._pending_params = self._pending_params, {}
            run.log_params(params)
        seq = run.current_cell if run is run_at_start and run.current_cell else run.next_cell_seq()
        if not run.prelude_recorded:
            run.prelude_recorded = True
            self._record_prelude(run, result.execution_count)
        assigned = self._assigned
        if source.startswith("%%track"):
            # The whole-cell run: IPython parsed only the magic call, so read the body itself.
            body = parse_cell(source)
            assigned = assigned_names(body) if body is not None else None
        row = self._cell_row(result, seq, source, assigned, timing)
        if autologging.is_on() and run.status == "running":
            autologging.cell_ended(run, source, assigned, self.shell.user_ns)
        if opened:
            row["_opened"] = files.Opened(opened, os.getcwd(), run.store.directory)
        # A cell in which the run started was only partly watched: its output is not known.
        self._hand_over(run, row, partial=run_at_start is None)

    def _cell_row(
        self,
        result: Any,
        seq: int,
        source: str,
        assigned: list[str] | None,
        timing: tuple[float, float, float],
    ) -> dict[str, Any]:
        """The row of a cell that ran: what it was, how long it took, what it raised and wrote."""
        start_time, duration, cpu_time = timing
        error = result.error_in_exec or result.error_before_exec
        return {
            "seq": seq,
            "execution_count": result.execution_count,
            "cell_id": getattr(result.info, "cell_id", None),
            "source": source,
            "start_time": start_time,
            "duration": duration,
            "error": type(error).__name__ if error is not None else None,
            "error_value": error_text(error, _MAX_ERROR_VALUE) if error is not None else None,
            **self._hash_written_data(assigned),
            "cpu_time": cpu_time,
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _MAXRSS_UNIT,
        }

    def _hand_over(self, run: runs.Run, row: dict[str, Any], *, partial: bool) -> None:
        """Give the cell's row, with what it showed, to the run's store writer."""
        self._untap_stdout()
        outputs = self._outputs
        self._outputs = []
        run.record_cell(row, complete=_Hashes(outputs, partial=partial))
        if run.status != "running":
            run.store.flush()  # the run ended in this cell: nothing more will flush it soon
        if run.current_cell == row["seq"]:
            run.current_cell = None
        writer_error = run.store.writer_error()
        if writer_error is not None:
            self._warn(writer_error)

    def _record_prelude(self, run: runs.Run, execution_count: Any) -> None:
        """Keep the cells this kernel ran before the run started, from IPython's history."""
        if not isinstance(execution_count, int) or execution_count <= 1:
            return
        history = getattr(self.shell.history_manager, "input_hist_raw", None)
        if not history or len(history) < execution_count:
            return
        sources = history[1:execution_count][-MAX_PRELUDE_CELLS:]
        first_count = execution_count - len(sources)
        params: dict[str, Any] = {}
        for index, source in enumerate(sources):
            row = {"seq": index - len(sources), "execution_count": first_count + index}
            row["source"] = source
            run.record_cell(row, complete=_Hashes([]))
            if source.startswith(INJECTED_HEADER) and self._injected(source, run):
                # Papermill's parameters ran before the extension was loaded.
                params.update(literal_assignments(parse_cell(source)))
        if params and run.status == "running":
            run.log_params(params)

    def _injected(self, source: str, run: runs.Run | None) -> bool:
        """Whether a cell is Papermill's parameters: a cell of the saved notebook is the user's."""
        notebook = run.notebook_path() if run is not None else None
        if notebook is None:
            named = read_kernel_env().notebook or self.notebook_path()
            notebook = Path(named) if named else None
        return is_injected_parameters(source, saved_cells(notebook))

    def _hash_written_data(self, assigned: list[str] | None) -> dict[str, Any]:
        """The cell row's ``data_hashes`` (every value compared) and ``uncompared`` columns."""
        if not assigned:
            return _NOTHING_WRITTEN  # a cell that assigns nothing costs nothing here
        hashes, uncompared = values.compare_written(self.shell.user_ns, assigned)
        return {"data_hashes": hashes, "uncompared": uncompared}

    # -- the parsed cell and its outputs ------------------------------------------------

    def _keep_parsed_cells(self) -> None:
        """Note which names each cell assigns, from the module IPython parses for it."""
        compiler = self.shell.compile
        original = getattr(compiler, "ast_parse", None)
        if original is None:
            return

        def ast_parse(source: Any, *args: Any, **kwargs: Any) -> Any:
            module = original(source, *args, **kwargs)
            # Only the names: holding the tree until the cell ends would make the garbage
            # collector walk it again and move its freeing into the post-run hook.
            if self._assigned is None and isinstance(module, ast.Module):
                self._assigned = assigned_names(module)
            return module

        try:
            setattr(compiler, "ast_parse", ast_parse)  # noqa: B010 - an instance attribute
        except (AttributeError, TypeError):
            return
        self._restore.append(functools.partial(_restore_attribute, compiler, "ast_parse"))

    def _tap_stdout(self) -> None:
        """Also see what this cell prints (IPython re-wraps stdout per cell, so tap per cell)."""
        stream = sys.stdout
        original_write = getattr(stream, "write", None)
        if original_write is None:
            return
        outputs = self._outputs
        saved = getattr(stream, "__dict__", {}).get("write", _ABSENT)

        def write(text: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(text, str) and not _quiet.depth:
                outputs.append(text)
            return original_write(text, *args, **kwargs)

        try:
            setattr(stream, "write", write)  # noqa: B010 - an instance attribute, on purpose
        except (AttributeError, TypeError):
            return  # a stream that takes no attributes: printed text is not hashed there
        self._tapped = (stream, write, saved)

    def _untap_stdout(self) -> None:
        tapped, self._tapped = self._tapped, None
        if tapped is None:
            return
        stream, write, saved = tapped
        if getattr(stream, "__dict__", {}).get("write") is not write:
            return  # someone wrapped it after us; leave their wrapper in place
        if saved is _ABSENT:
            _restore_attribute(stream, "write")
        else:
            stream.write = saved

    def _wrap_outputs(self) -> None:
        """See what cells display, by wrapping the shell's display functions."""

        def keep_text(data: Any) -> None:
            if self._recording and not _quiet.depth and isinstance(data, dict):
                text = data.get("text/plain")
                if isinstance(text, str):
                    self._outputs.append(text)
                # Only a reference here: the figure is hashed in the writer (``_Hashes``).
                figure = figure_of(data)
                if figure is not None:
                    self._outputs.append(figure)

        for holder, method in (
            (self.shell.display_pub, "publish"),
            (self.shell.displayhook, "write_format_data"),
        ):
            original = getattr(holder, method, None)
            if original is None:
                continue

            def wrapped(data: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
                with contextlib.suppress(Exception):  # never disturb an output
                    keep_text(data)
                return __original(data, *args, **kwargs)

            try:
                setattr(holder, method, wrapped)
            except (AttributeError, TypeError):
                continue
            self._restore.append(functools.partial(_restore_attribute, holder, method))

    def _warn(self, exc: BaseException) -> None:
        if self._warned:
            return
        self._warned = True
        warnings.warn(
            f"jupyter-mlops: cell capture failed ({type(exc).__name__}: {exc}); your cells run "
            "as usual, but this run may miss some cells",
            RuntimeWarning,
            stacklevel=2,
        )


def _run_of_cell(run_at_start: runs.Run | None, start_time: float) -> runs.Run | None:
    """The run a cell that just ran belongs to: the active run, else the run that was active
    when it started or that it started (a cell may end its run: `%track end`, `%%track`)."""
    run = runs.active_run()
    if run is not None:
        return run
    if run_at_start is not None:
        return run_at_start
    last = runs.last_started_run()
    return last if last is not None and last.start_time >= start_time else None


class _Quiet(threading.local):
    depth = 0


_quiet = _Quiet()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Leave what is shown inside out of the cell's output hash (the tracker's own messages)."""
    _quiet.depth += 1
    try:
        yield
    finally:
        _quiet.depth -= 1


_NOTHING_WRITTEN: dict[str, Any] = {}


class _Hashes:
    """Hashes a cell's source and what it showed, in the store's writer, not in the cell."""

    __slots__ = ("outputs", "partial")

    def __init__(self, outputs: list[str | tuple[str, Any]], partial: bool = False) -> None:
        self.outputs = outputs
        self.partial = partial

    def __call__(self, row: dict[str, Any]) -> None:
        opened = row.pop("_opened", None)
        if opened is not None:
            opened.fill(row)
        row["source_hash"] = hashing.hash_bytes(row["source"])
        if self.partial:
            # What it showed before the run started is unknown: neither output nor figures.
            row["output_hash"] = PARTIAL_OUTPUT
        else:
            texts = [piece for piece in self.outputs if isinstance(piece, str)]
            if texts:
                row["output_hash"] = hashing.hash_bytes(sanitize_output("".join(texts)))
            # A list even when empty: cells recorded before figures were hashed have null.
            row["figure_hashes"] = [
                figure_hash(*piece) for piece in self.outputs if isinstance(piece, tuple)
            ]


def _restore_attribute(holder: Any, name: str) -> None:
    with contextlib.suppress(AttributeError):
        delattr(holder, name)
