"""Runs as they happen: the one active run of a process, and the public logging API.

Reading runs (one, a list, a DataFrame) is ``records``; whether a run's process is alive
(heartbeat, crash reaping, exit and SIGTERM) is ``liveness``. The public reading names stay
importable from here. Nothing here knows IPython or autologging: the doors tell this module
what it cannot find out itself (``set_notebook_provider``, ``liveness.declare_kernel``,
``add_run_listener``).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from . import hashing, profiles
from .artifacts import store_artifact
from .cellcode import fill_cell_facts
from .datachecks import check_serving
from .errors import InvalidValueError, NoActiveRunError, StoreError
from .kernel_env import KernelEnv, read_kernel_env
from .liveness import (
    HOST,
    ending_of,
    is_kernel,
    keep_alive,
    owe_end,
    process_start,
    reap_crashed,
    record_owed_ends,
)
from .notebooks import notebook_file, stored_notebook
from .records import (
    RunRecord,
    count_runs,
    delete_run,
    get_run,
    list_runs,
    runs,
    update_run,
)
from .store import Store, open_store
from .threads import start_background
from .validate import (
    STEP_MAX,
    STEP_MIN,
    check_artifact,
    check_metrics,
    check_params,
    checked_name,
    metric_number,
    metric_step,
    path_kind,
    shown_text,
    tag_value,
    user_path,
)
from .vocabulary import DATA_CONTEXTS, KINDS, STATUSES

__all__ = [
    "Run",
    "RunListener",
    "RunRecord",
    "active_run",
    "add_run_listener",
    "count_runs",
    "delete_run",
    "end_run",
    "get_run",
    "last_started_run",
    "list_runs",
    "log_artifact",
    "log_data",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "notebook_provider",
    "reap_crashed",
    "remove_run_listener",
    "run_for_logging",
    "runs",
    "set_notebook_provider",
    "start_managed_run",
    "start_run",
    "update_run",
]

_active: Run | None = None
_last_started: Run | None = None
_state_lock = threading.RLock()


class RunListener(Protocol):
    """Told when a run of this process starts and before it ends (autologging is one)."""

    def started(self, run: Run) -> None:
        """A run started and is the active run."""

    def ending(self, run: Run) -> None:
        """A run is about to end: what it still has to record goes in now."""


_listeners: list[RunListener] = []
# Which notebook this process runs, when something knows (cell capture inside a kernel).
_notebook_provider: Callable[[], str | None] | None = None


def add_run_listener(listener: RunListener) -> None:
    """Tell ``listener`` when runs start and before they end (once, however often added)."""
    with _state_lock:
        if listener not in _listeners:
            _listeners.append(listener)


def remove_run_listener(listener: RunListener) -> None:
    """Stop telling ``listener`` about runs."""
    with _state_lock:
        if listener in _listeners:
            _listeners.remove(listener)


def set_notebook_provider(provider: Callable[[], str | None] | None) -> None:
    """Say how a new run finds the notebook it belongs to (None: it cannot know)."""
    global _notebook_provider
    _notebook_provider = provider


def notebook_provider() -> Callable[[], str | None] | None:
    """What finds the notebook a new run belongs to, if anything does."""
    return _notebook_provider


class Run:
    """A live run of this process: log to it, then end it (or use it as a context manager)."""

    def __init__(self, store: Store, row: dict[str, Any]) -> None:
        self.store = store
        self.id: str = row["id"]
        self.name: str = row["name"]
        self.notebook: str | None = row.get("notebook")
        self.start_time: float = row["start_time"]
        self.status = "running"
        self.current_cell: int | None = None
        self._steps: dict[str, int] = {}
        self._cell_seq = 0
        self._env_thread: threading.Thread | None = None
        self._env_id: str | None = None
        # A managed run is the whole notebook of a launched kernel (replay, sweep, check): the
        # notebook's own start and end calls join it instead of starting or ending runs.
        self.managed = False
        self.prelude_cells = 0
        self.prelude_recorded = False
        self.store_gone_said = False

    def __repr__(self) -> str:
        return f"<Run {self.name!r} {self.id[:12]} {self.status}>"

    def _repr_html_(self) -> str | None:
        """The run as a card in a notebook (what the store holds about it now)."""
        return self.record()._repr_html_()

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.status != "running":
            return
        if exc is None:
            self.end("finished")
            return
        status, error = ending_of(exc)
        try:
            self.end(status, error=error)
        except StoreError as fault:
            # The block's own exception is what the user must see; the store's fault is a line.
            warnings.warn(f"jupyter-mlops: {fault}", RuntimeWarning, stacklevel=2)

    # -- logging ---------------------------------------------------------------------------

    def log_param(self, key: str, value: Any) -> None:
        """Record one hyperparameter (a JSON value); a second call with the key replaces it."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any], *, quiet: bool = False) -> None:
        """Record several hyperparameters at once; a param logged again with another value
        warns (unless ``quiet``) and its earlier value stays in the param's history."""
        self._check_running("log params")
        encoded = check_params(params)
        if not encoded:
            return
        for key, old, new in self.store.set_params(self.id, encoded) or ():
            if not quiet:
                warnings.warn(
                    f"jupyter-mlops: param {key!r} was {old} and is now {new} "
                    "(both are kept: see show)",
                    stacklevel=3,
                )

    def log_metric(self, key: str, value: Any, step: int | None = None) -> None:
        """Record one point of a metric's step series (step counts up by itself when omitted)."""
        if self.status != "running":
            self._check_running("log a metric")
        steps = self._steps
        if key not in steps:
            checked_name("metric", key)
        kind = type(value)
        try:
            number = float(value) if kind is float or kind is int else metric_number(key, value)
        except OverflowError:
            number = metric_number(key, value)  # says which metric is too large
        if step is None:
            step = steps.get(key, -1) + 1
        if type(step) is not int or not STEP_MIN <= step <= STEP_MAX:
            step = metric_step(key, step)
        steps[key] = step
        self.store.enqueue_metric(self.id, key, step, number, time.time(), self.current_cell)

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Record several metrics at the same step (none when any of them is refused)."""
        check_metrics(metrics, step)
        for key, value in metrics.items():
            self.log_metric(key, value, step=step)

    def log_data(self, name: str, data: Any, context: str = "training") -> dict[str, Any]:
        """Record a dataset: content hash, shape, schema, profile. A str is a file path.

        A serving sample (``context="serving"``) is profiled on the bins of the run's training
        dataset of the same name and checked against it (``row["check"]``, also stored).
        """
        self._check_running("log data")
        checked_name("dataset", name)
        if context not in DATA_CONTEXTS:
            raise InvalidValueError(
                "context", f"{context!r} is not one of {', '.join(DATA_CONTEXTS)}"
            )
        training = None
        if context == "serving":
            training = next((d for d in self.store.datasets(self.id) if d["name"] == name), None)
        if isinstance(data, str):
            data = Path(data)
        if isinstance(data, Path):
            data = user_path(data)
            if path_kind(data) is None:
                raise InvalidValueError(name, f"no such file or folder: {shown_text(str(data))}")
        info = profiles.describe(data, reference=(training or {}).get("profile"))
        row = info.to_dict()
        if row.get("path"):
            row["path"] = str(Path(row["path"]).resolve())
        row.update(
            run_id=self.id, name=name, context=context, cell_seq=self.current_cell, time=time.time()
        )
        self.store.add_dataset(row)
        if training is not None and training.get("profile") and info.profile is not None:
            checks = check_serving(self.id, names=[name], store=self.store)
            row["check"] = checks[0] if checks else None
        return row

    def log_artifact(self, source: Any, name: str | None = None) -> dict[str, Any]:
        """Store a file (a path) or a picklable object by content hash under ``blobs/``."""
        self._check_running("log an artifact")
        row = store_artifact(self.store, source, name)
        row.update(run_id=self.id, cell_seq=self.current_cell, time=time.time())
        self.store.add_artifact(row)
        return row

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Add or replace tags (values are stored as text)."""
        self.store.set_tags(
            self.id, {checked_name("tag", k): tag_value(k, v) for k, v in tags.items()}
        )

    def last_step(self, key: str) -> int | None:
        """The step of the metric's latest point logged by this process (None: none yet)."""
        return self._steps.get(key)

    @property
    def cells_recorded(self) -> int:
        """How many cells this run has recorded so far."""
        return self._cell_seq

    def next_cell_seq(self) -> int:
        """The sequence number for the next captured cell of this run (prelude cells: < 0)."""
        if self.prelude_cells:
            self.prelude_cells -= 1
            return -(self.prelude_cells + 1)
        self._cell_seq += 1
        return self._cell_seq

    def record_cell(
        self, row: dict[str, Any], complete: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        """Hand one captured cell execution to the store's writer (``complete`` fills it in)."""
        row["run_id"] = self.id
        self.store.enqueue_cell(row, complete)

    # -- ending ----------------------------------------------------------------------------

    def end(
        self, status: str = "finished", *, error: str | None = None, final: bool = False
    ) -> None:
        """End the run with a status; its buffered rows are written first.

        A managed run ends only when its kernel does (``final``), not at the notebook's own end.
        """
        global _active
        if status not in STATUSES or status == "running":
            allowed = ", ".join(s for s in STATUSES if s != "running")
            raise InvalidValueError("status", f"{status!r} is not one of {allowed}")
        if self.managed and not final:
            return
        if self.status == "running":
            for listener in list(_listeners):
                listener.ending(self)  # autologging's last records (final models) go in first
        with _state_lock:
            if self.status != "running":
                return
            self.status = status
            if _active is self:
                _active = None
        fields: dict[str, Any] = {"status": status, "end_time": time.time(), "error": error}
        try:
            self.store.flush()
        except StoreError as fault:
            raise owe_end(self, fields, fault) from fault
        if self._env_thread is not None:
            self._env_thread.join(timeout=30)
        if self._env_id is not None:
            fields["env_id"] = self._env_id
        notebook_path = self.notebook_path()
        if notebook_path is not None and notebook_path.is_file():
            fields["notebook_hash_end"] = hashing.hash_file(notebook_path)
        fields.update(self._settle_cells(notebook_path))
        try:
            self.store.finish_run(self.id, **fields)
        except StoreError as fault:
            raise owe_end(self, fields, fault) from fault
        error_seen = self.store.writer_error()
        if error_seen is not None:
            warnings.warn(
                f"jupyter-mlops: a background write failed and was retried: {error_seen}",
                RuntimeWarning,
                stacklevel=2,
            )

    def _settle_cells(self, notebook_path: Path | None) -> dict[str, Any]:
        """Work out what the run's cells read and wrote and their numbers; the run's
        linearity fields."""
        cells = self.store.cells(self.id)  # flushes this process's buffered rows first
        filled = fill_cell_facts(cells)
        if filled:
            self.store.set_cell_facts(self.id, filled)
        if not cells:
            return {}
        from .linearity import assess_linearity, cell_numbers

        numbers = cell_numbers(cells, notebook_path, self._original_cells())
        self.store.set_cell_numbers(
            self.id, [(c["seq"], n) for c, n in zip(cells, numbers, strict=True)]
        )
        linear, reasons = assess_linearity(cells, notebook_path)
        return {"linear": linear, "linear_reasons": reasons}

    def _original_cells(self) -> list[dict[str, Any]] | None:
        """For a replay: the cells of the run it replays (their numbers carry over)."""
        row = self.store.get_run(self.id)
        parent = row.get("parent_id")
        return self.store.cells(parent) if row.get("kind") == "replay" and parent else None

    def notebook_path(self) -> Path | None:
        """The notebook file of this run on disk, if it has one."""
        return notebook_file(self.store.directory.parent, self.notebook) if self.notebook else None

    def record(self) -> RunRecord:
        """What the store holds about this run now."""
        return RunRecord(self.store, self.store.get_run(self.id))

    def _check_running(self, action: str) -> None:
        if self.status != "running":
            raise NoActiveRunError(f"{action} (run {self.name!r} has {self.status})")

    def _capture_environment(self, cwd: Path) -> None:
        from .environment import capture_environment, environment_id

        try:
            env = capture_environment(cwd)
            env_id = environment_id(env)
            self.store.put_environment(env_id, env)
            self._env_id = env_id
        except Exception as exc:
            warnings.warn(
                f"jupyter-mlops: could not record the environment: {exc}",
                RuntimeWarning,
                stacklevel=1,
            )


# -- the process's active run ------------------------------------------------------------------


def start_run(
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    *,
    notebook: str | Path | None = None,
    kind: str | None = None,
    parent: str | None = None,
    store: Store | None = None,
    run_id: str | None = None,
) -> Run:
    """Start a run and make it this process's active run (ending any active one first)."""
    global _active, _last_started
    launched = read_kernel_env()
    kind = kind or launched.kind or ("interactive" if is_kernel() else "script")
    if kind not in KINDS:
        raise InvalidValueError("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    if name is not None:
        name = checked_name("run", str(name))
    tag_values = {checked_name("tag", k): tag_value(k, v) for k, v in (tags or {}).items()}
    store = store or open_store()
    record_owed_ends()  # the store may take them now
    managed = _end_previous(store, tag_values)
    if managed is not None:
        return managed
    row = _new_row(
        store, launched, run_id=run_id, name=name, kind=kind, notebook=notebook, parent=parent
    )
    run = Run(store, row)
    notebook_path = run.notebook_path()
    if notebook_path is not None and notebook_path.is_file():
        row["notebook_hash_start"] = hashing.hash_file(notebook_path)
    store.insert_run(row, tag_values)
    run._env_thread = start_background(
        run._capture_environment, "jupyter-mlops-environment", Path(row["cwd"])
    )
    with _state_lock:
        _active = run
        _last_started = run
    keep_alive(run, active_run)
    for listener in list(_listeners):
        listener.started(run)
    return run


def _new_row(
    store: Store,
    launched: KernelEnv,
    *,
    run_id: str | None,
    name: str | None,
    kind: str,
    notebook: str | Path | None,
    parent: str | None,
) -> dict[str, Any]:
    """The row of a run starting now in this process (what its launcher said filled in)."""
    if not notebook:
        provider = _notebook_provider
        notebook = launched.notebook or (provider() if provider else None)
    notebook_ref = stored_notebook(store.directory.parent, Path(notebook)) if notebook else None
    now = time.time()
    return {
        "id": run_id or uuid.uuid4().hex,
        "name": name or _default_name(notebook_ref, now),
        "status": "running",
        "kind": kind,
        "notebook": notebook_ref,
        "parent_id": parent or launched.parent,
        "sweep_id": launched.sweep,
        "start_time": now,
        "heartbeat": now,
        "pid": os.getpid(),
        "process_start": process_start(os.getpid()),
        "host": HOST,
        "cwd": str(Path.cwd()),
        "kernel": launched.kernel,
    }


def _end_previous(store: Store, tag_values: dict[str, str]) -> Run | None:
    """End the active run before a new one starts; the managed run of a launched kernel is
    not ended but returned (the notebook's own start joins it, adding its tags)."""
    with _state_lock:
        previous = _active
    if previous is None:
        return None
    if previous.managed:
        if tag_values:
            store.set_tags(previous.id, tag_values)
        return previous
    warnings.warn(
        f"jupyter-mlops: ended the active run {previous.name!r} to start a new one",
        stacklevel=3,
    )
    previous.end("finished")
    return None


def start_managed_run() -> Run | None:
    """In a kernel our launchers started: the run that the whole notebook is (else None)."""
    launched = read_kernel_env()
    if not launched.autostart or active_run() is not None:
        return None
    run = start_run(name=launched.run_name, run_id=launched.run_id)
    run.managed = True
    run.prelude_recorded = True
    run.prelude_cells = launched.prelude
    return run


def active_run() -> Run | None:
    """This process's active run, if any."""
    return _active


def last_started_run() -> Run | None:
    """The run this process started most recently (active or not)."""
    return _last_started


def end_run(status: str = "finished") -> None:
    """End the active run (no-op when none is active)."""
    run = _active
    if run is not None:
        run.end(status)


def run_for_logging(check: Callable[[], object] = lambda: None) -> Run:
    """The active run; else ``check()`` the call first (a refused call starts no run), then
    a new run."""
    run = _active
    if run is None:
        check()
        run = start_run()
    return run


def log_param(key: str, value: Any) -> None:
    """Record a param on the active run (starting one if needed)."""
    log_params({key: value})


def log_params(params: Mapping[str, Any]) -> None:
    """Record params on the active run (starting one if needed)."""
    run_for_logging(lambda: check_params(params)).log_params(params)


def log_metric(key: str, value: Any, step: int | None = None) -> None:
    """Record a metric point on the active run (starting one if needed)."""
    run = _active
    if run is None:
        run = run_for_logging(lambda: check_metrics({key: value}, step))
    run.log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, Any], step: int | None = None) -> None:
    """Record several metrics at one step on the active run (starting one if needed)."""
    run_for_logging(lambda: check_metrics(metrics, step)).log_metrics(metrics, step=step)


def log_data(name: str, data: Any, context: str = "training") -> dict[str, Any]:
    """Record a dataset (or, with ``context="serving"``, a serving sample) on the active run
    (starting one if needed)."""
    return run_for_logging().log_data(name, data, context)


def log_artifact(source: Any, name: str | None = None) -> dict[str, Any]:
    """Store an artifact on the active run (starting one if needed)."""
    return run_for_logging(lambda: check_artifact(source)).log_artifact(source, name)


def _default_name(notebook_ref: str | None, now: float) -> str:
    stem = Path(notebook_ref).stem if notebook_ref else "run"
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}"
