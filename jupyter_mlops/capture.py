"""Cell capture: IPython events record every cell executed while a run is active.

The hooks run on every cell, so the main-thread work is kept to timing, the names a cell
assigns (to hash the data it wrote before the next cell can change it) and handing the row
over; hashing the source and outputs and reading the names a cell used happen later, in the
store's writer thread.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import functools
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import hashing
from . import run as runs
from .linearity import is_injected_parameters

__all__ = ["CellCapture", "assigned_names", "cell_names", "quiet", "seeds_in"]

_BUILTINS = frozenset(dir(builtins)) | {"get_ipython", "In", "Out", "exit", "quit", "display"}
_MAX_ERROR_VALUE = 1000
_ABSENT = object()
_SEED_CALLS = frozenset(
    {"seed", "manual_seed", "set_seed", "default_rng", "RandomState", "PRNGKey"}
)


class CellCapture:
    """Records cells of one IPython shell into the active run."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self._module: ast.Module | None = None
        self._started: tuple[runs.Run | None, float, float] | None = None
        self._outputs: list[str] = []
        self._recording = False
        self._warned = False
        self._pending_params: dict[str, Any] = {}
        self._grabber = _ModuleGrabber(self)
        self._restore: list[Callable[[], None]] = []
        self._tapped: tuple[Any, Any, Any] | None = None

    # -- installing ---------------------------------------------------------------------

    def register(self) -> None:
        """Start listening to the shell's cell events."""
        events = self.shell.events
        events.register("pre_run_cell", self.pre_run_cell)
        events.register("post_run_cell", self.post_run_cell)
        self.shell.ast_transformers.append(self._grabber)
        self._wrap_outputs()
        runs.notebook_hint = self.notebook_path
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
        if self._grabber in self.shell.ast_transformers:
            self.shell.ast_transformers.remove(self._grabber)
        for restore in reversed(self._restore):
            restore()
        self._restore.clear()
        if runs.notebook_hint == self.notebook_path:
            runs.notebook_hint = None

    def notebook_path(self) -> str | None:
        """The notebook this kernel runs, from ``__session__`` (JupyterLab sets it)."""
        session = self.shell.user_ns.get("__session__")
        if not isinstance(session, str) or not session.endswith(".ipynb"):
            return None
        path = Path(session)
        if not path.is_absolute() and not path.exists() and Path(path.name).exists():
            path = Path(path.name)
        return str(path)

    # -- events -------------------------------------------------------------------------

    def pre_run_cell(self, info: Any) -> None:
        """Note the start of a cell."""
        try:
            self._module = None
            self._outputs.clear()
            active = runs.active_run()
            self._recording = active is not None
            self._started = (active, time.time(), time.perf_counter())
            if active is not None:
                active.current_cell = active.next_cell_seq()
                self._tap_stdout()
        except Exception as exc:
            self._warn(exc)

    def post_run_cell(self, result: Any) -> None:
        """Record the cell that just ran into its run."""
        try:
            self._record(result)
        except Exception as exc:
            self._warn(exc)
        finally:
            self._untap_stdout()
            self._recording = False
            self._started = None
            self._module = None

    def _record(self, result: Any) -> None:
        started = self._started
        if started is None:
            return
        run_at_start, start_time, start_clock = started
        duration = time.perf_counter() - start_clock
        info = result.info
        source: str = info.raw_cell or ""
        run = runs.active_run()
        if run is None:
            # The cell may have ended its run (`%track end`, `%%track`): it still belongs to it.
            last = runs.last_started_run()
            if run_at_start is not None:
                run = run_at_start
            elif last is not None and last.start_time >= start_time:
                run = last
        injected = is_injected_parameters(source)
        if injected:
            self._pending_params.update(_literal_assignments(self._module))
        if run is None:
            return
        if self._pending_params and run.status == "running":
            params, self._pending_params = self._pending_params, {}
            run.log_params(params)
        seq = run.current_cell if run is run_at_start and run.current_cell else run.next_cell_seq()
        error = result.error_in_exec or result.error_before_exec
        module = self._module
        if source.startswith("%%track"):
            # The whole-cell run: IPython parsed only the magic call, so read the body itself.
            module = self._parse(source.partition("\n")[2])
        row: dict[str, Any] = {
            "seq": seq,
            "execution_count": result.execution_count,
            "cell_id": getattr(info, "cell_id", None),
            "source": source,
            "start_time": start_time,
            "duration": duration,
            "error": type(error).__name__ if error is not None else None,
            "error_value": str(error)[:_MAX_ERROR_VALUE] if error is not None else None,
            "data_hashes": self._hash_written_data(module),
        }
        outputs = list(self._outputs)
        run.record_cell(row, complete=_Completion(module, outputs))
        if run.status != "running":
            run.store.flush()  # the run ended in this cell: nothing more will flush it soon
        if run.current_cell == seq:
            run.current_cell = None
        writer_error = run.store.writer_error()
        if writer_error is not None:
            self._warn(writer_error)

    def _parse(self, source: str) -> ast.Module | None:
        try:
            return ast.parse(self.shell.transform_cell(source))
        except (SyntaxError, ValueError):
            return None

    def _hash_written_data(self, module: ast.Module | None) -> dict[str, str] | None:
        if module is None:
            return None
        namespace = self.shell.user_ns
        hashes: dict[str, str] = {}
        for name in assigned_names(module):
            value = namespace.get(name)
            if value is not None and hashing.is_data(value):
                try:
                    hashes[name] = hashing.content_hash(value)
                except Exception:
                    continue
        return hashes or None

    # -- outputs ------------------------------------------------------------------------

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
        outputs = self._outputs

        def keep_text(data: Any) -> None:
            if self._recording and not _quiet.depth and isinstance(data, dict):
                text = data.get("text/plain")
                if isinstance(text, str):
                    outputs.append(text)

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


class _Completion:
    """The part of a cell row worked out off the hot path, in the store's writer thread."""

    __slots__ = ("module", "outputs")

    def __init__(self, module: ast.Module | None, outputs: list[str]) -> None:
        self.module = module
        self.outputs = outputs

    def __call__(self, row: dict[str, Any]) -> None:
        row["source_hash"] = hashing.hash_bytes(row["source"])
        if self.outputs:
            row["output_hash"] = hashing.hash_bytes(hashing.sanitize_output("".join(self.outputs)))
        if self.module is not None:
            reads, writes = cell_names(self.module)
            row["reads"] = reads
            row["writes"] = writes
            row["seeds"] = seeds_in(self.module) or None


class _ModuleGrabber(ast.NodeTransformer):
    """An IPython AST transformer that keeps the cell's parsed module and changes nothing."""

    def __init__(self, capture: CellCapture) -> None:
        self.capture = capture

    def visit(self, node: ast.AST) -> ast.AST:
        if self.capture._module is None and isinstance(node, ast.Module):
            self.capture._module = node
        return node


def _restore_attribute(holder: Any, name: str) -> None:
    with contextlib.suppress(AttributeError):
        delattr(holder, name)


# -- reading names from a cell ---------------------------------------------------------------


def assigned_names(module: ast.Module) -> list[str]:
    """Names a cell binds at top level by statements (cheap: expressions are not walked)."""
    names: list[str] = []
    stack = list(reversed(module.body))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Assign):
            for target in node.targets:
                _target_names(target, names)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            _target_names(node.target, names)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            _target_names(node.target, names)
            stack.extend(reversed(node.body + node.orelse))
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    _target_names(item.optional_vars, names)
            stack.extend(reversed(node.body))
        elif isinstance(node, (ast.If, ast.While)):
            stack.extend(reversed(node.body + node.orelse))
        elif isinstance(node, ast.Try):
            stack.extend(reversed(node.body + node.orelse + node.finalbody))
    return names


def _target_names(target: ast.AST, out: list[str]) -> None:
    if isinstance(target, ast.Name):
        out.append(target.id)
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            _target_names(element, out)
    elif isinstance(target, ast.Starred):
        _target_names(target.value, out)


def cell_names(module: ast.Module) -> tuple[list[str], list[str]]:
    """(names read, names written) by a cell, in order; a name bound earlier is not a read."""
    names = _CellNames()
    names.block(module.body)
    return list(names.reads), list(names.writes)


class _CellNames:
    """Walks a cell's statements in execution order, outside function and class bodies."""

    def __init__(self) -> None:
        self.reads: dict[str, None] = {}
        self.writes: dict[str, None] = {}

    def bind(self, name: str) -> None:
        self.writes[name] = None

    def load(self, node: ast.AST | None) -> None:
        """Names an expression reads, leaving out comprehension and lambda variables."""
        if node is None:
            return
        local: set[str] = set()
        found: list[ast.Name] = []
        stack = [node]
        while stack:
            current = stack.pop()
            if isinstance(current, ast.comprehension):
                local.update(_names_in(current.target))
            elif isinstance(current, ast.Lambda):
                local.update(a.arg for a in ast.walk(current.args) if isinstance(a, ast.arg))
            elif isinstance(current, ast.Name):
                found.append(current)
            stack.extend(ast.iter_child_nodes(current))
        for name in sorted(found, key=lambda n: (n.lineno, n.col_offset)):
            if name.id in local:
                continue
            if isinstance(name.ctx, ast.Load):
                if name.id not in self.writes and name.id not in _BUILTINS:
                    self.reads[name.id] = None
            elif isinstance(name.ctx, ast.Store):
                self.bind(name.id)  # a walrus inside an expression

    def targets(self, target: ast.AST) -> None:
        """Bind assignment targets; subscripts and attributes read their base."""
        if isinstance(target, ast.Name):
            self.bind(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.targets(element)
        elif isinstance(target, ast.Starred):
            self.targets(target.value)
        else:
            self.load(target)

    def block(self, statements: list[ast.stmt]) -> None:
        for statement in statements:
            self.statement(statement)

    def statement(self, node: ast.stmt) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for expr in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
                self.load(expr)
            self.bind(node.name)
        elif isinstance(node, ast.ClassDef):
            for expr in [*node.decorator_list, *node.bases]:
                self.load(expr)
            self.bind(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name != "*":
                    self.bind(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.Assign):
            self.load(node.value)
            for target in node.targets:
                self.targets(target)
        elif isinstance(node, ast.AugAssign):
            self.load(node.value)
            if isinstance(node.target, ast.Name):
                self.load(ast.Name(node.target.id, ast.Load(), lineno=0, col_offset=0))
            self.targets(node.target)
        elif isinstance(node, ast.AnnAssign):
            self.load(node.value)
            self.targets(node.target)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.load(node.iter)
            self.targets(node.target)
            self.block(node.body)
            self.block(node.orelse)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self.load(item.context_expr)
                if item.optional_vars is not None:
                    self.targets(item.optional_vars)
            self.block(node.body)
        elif isinstance(node, (ast.If, ast.While)):
            self.load(node.test)
            self.block(node.body)
            self.block(node.orelse)
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            self.block(node.body)  # type: ignore[attr-defined]
            for handler in node.handlers:  # type: ignore[attr-defined]
                self.load(handler.type)
                if handler.name:
                    self.bind(handler.name)
                self.block(handler.body)
            self.block(node.orelse)  # type: ignore[attr-defined]
            self.block(node.finalbody)  # type: ignore[attr-defined]
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                self.targets(target)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            return
        else:
            self.load(node)


def _names_in(target: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def seeds_in(module: ast.Module) -> list[str]:
    """Seeding calls in a cell, as written (``np.random.seed(0)``, ``random_state=42`` ...)."""
    found: list[str] = []
    for node in ast.walk(module):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in _SEED_CALLS and node.args:
            found.append(ast.unparse(node))
        for keyword in node.keywords:
            if keyword.arg in ("random_state", "seed") and isinstance(keyword.value, ast.Constant):
                found.append(f"{keyword.arg}={keyword.value.value!r}")
    return found


def _literal_assignments(module: ast.Module | None) -> dict[str, Any]:
    """``name = literal`` statements of a cell (Papermill's injected parameters)."""
    values: dict[str, Any] = {}
    if module is None:
        return values
    for statement in module.body:
        if (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
        ):
            try:
                values[statement.targets[0].id] = ast.literal_eval(statement.value)
            except (ValueError, SyntaxError, TypeError):
                continue
    return values
