"""Runs: their lifecycle, the one active run of a process, and the public logging API."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from . import hashing, profiles
from .errors import (
    InvalidValueError,
    NoActiveRunError,
    StoreError,
    StoreGoneError,
    StoreReadOnlyError,
)
from .store import Store, open_store
from .threads import start_background
from .validate import (
    MAX_TEXT_BYTES,
    STEP_MAX,
    STEP_MIN,
    checked_name,
    error_text,
    metric_number,
    metric_step,
    param_json,
    shown_text,
    tag_value,
    user_path,
)

if TYPE_CHECKING:
    import pandas as pd

    from .autologging.models import Artifact
    from .query import Node

__all__ = [
    "STATUSES",
    "Run",
    "RunRecord",
    "active_run",
    "delete_run",
    "end_run",
    "get_run",
    "log_artifact",
    "log_data",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "reap_crashed",
    "runs",
    "start_run",
    "update_run",
]

STATUSES = ("running", "finished", "failed", "killed", "crashed")
KINDS = ("interactive", "replay", "sweep", "script")
# What a dataset is to a run: the data it trained on, or a sample of what it serves.
DATA_CONTEXTS = ("training", "serving")
HEARTBEAT_S = 10.0
# A run on another host is thought crashed only when its heartbeat is far older than the
# interval it beats at: a clock step or a busy process must not be taken for a dead one.
STALE_AFTER_S = max(10 * HEARTBEAT_S, 300.0)
SIGTERM_ERROR = "terminated by SIGTERM"

# Set by the processes that launch kernels (replay, sweep) so a run knows where it came from.
ENV_KIND = "JUPYTER_MLOPS_KIND"
ENV_PARENT = "JUPYTER_MLOPS_PARENT"
ENV_SWEEP = "JUPYTER_MLOPS_SWEEP"
ENV_NOTEBOOK = "JUPYTER_MLOPS_NOTEBOOK"
# Set by our launchers for a kernel whose whole notebook is one run, started when the
# extension loads: the run's id and name, and how many leading cells replay a prelude.
ENV_AUTOSTART = "JUPYTER_MLOPS_AUTOSTART"
ENV_RUN_ID = "JUPYTER_MLOPS_RUN_ID"
ENV_RUN_NAME = "JUPYTER_MLOPS_RUN_NAME"
ENV_PRELUDE = "JUPYTER_MLOPS_PRELUDE"
# The name of the kernel a launcher started (a kernel does not know its own kernelspec).
ENV_KERNEL = "JUPYTER_MLOPS_KERNEL"

_HOST = socket.gethostname()
_active: Run | None = None
_last_started: Run | None = None
_state_lock = threading.RLock()
_heartbeat_thread: threading.Thread | None = None
_process_hooks_installed = False
# How the script is ending, when an exception escaped it: (status, error) for its run.
_exit_ending: tuple[str, str] | None = None
# Ends of runs the store could not record (full, locked): retried by the heartbeat and at exit.
_ends_owed: dict[str, tuple[Run, dict[str, Any]]] = {}
# The write end of the pipe that tells the SIGTERM watcher process which run is active.
_watcher_pipe: int | None = None
# Set by cell capture inside IPython: tells a new run which notebook it belongs to.
notebook_hint: Callable[[], str | None] | None = None
# Set by autologging while it is on: told when a run starts and before it ends.
run_hooks: Any = None


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

    def _repr_html_(self) -> str:
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
        status, error = _ending_of(exc)
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
            if _path_kind(data) is None:
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
            from .datachecks import check_serving

            checks = check_serving(self.id, names=[name], store=self.store)
            row["check"] = checks[0] if checks else None
        return row

    def log_artifact(self, source: Any, name: str | None = None) -> dict[str, Any]:
        """Store a file (a path) or a picklable object by content hash under ``blobs/``."""
        self._check_running("log an artifact")
        if isinstance(source, (str, Path)):
            check_artifact(source)
            path = user_path(source)
            name = checked_name("artifact", name or path.name)
            digest = hashing.hash_file(path)
            self.store.put_blob(digest, path)
            row = {
                "name": checked_name("artifact", name or path.name),
                "kind": "file",
                "size_bytes": path.stat().st_size,
                "source": str(path.resolve()),
            }
        else:
            label = name or type(source).__name__
            try:
                payload = pickle.dumps(source, protocol=5)
            except Exception as exc:
                raise InvalidValueError(label, f"cannot be pickled: {exc}") from exc
            digest = hashing.hash_bytes(payload)
            self.store.put_blob(digest, payload)
            row = {
                "name": checked_name("artifact", label),
                "kind": "pickle",
                "size_bytes": len(payload),
                "source": None,
            }
        row.update(run_id=self.id, hash=digest, cell_seq=self.current_cell, time=time.time())
        self.store.add_artifact(row)
        return row

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Add or replace tags (values are stored as text)."""
        self.store.set_tags(
            self.id, {checked_name("tag", k): tag_value(k, v) for k, v in tags.items()}
        )

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
        hooks = run_hooks
        if hooks is not None and self.status == "running":
            hooks.ending(self)  # autologging's last records (final models) go in first
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
            raise _owe_end(self, fields, fault) from fault
        if self._env_thread is not None:
            self._env_thread.join(timeout=30)
        if self._env_id is not None:
            fields["env_id"] = self._env_id
        notebook_path = self.notebook_path()
        if notebook_path is not None and notebook_path.is_file():
            fields["notebook_hash_end"] = hashing.hash_file(notebook_path)
        cells = self.store.cells(self.id)  # flushes this process's buffered rows first
        filled = fill_cell_facts(cells)
        if filled:
            self.store.set_cell_facts(self.id, filled)
        if cells:
            from .linearity import assess_linearity, cell_numbers

            numbers = cell_numbers(cells, notebook_path, self._original_cells())
            self.store.set_cell_numbers(
                self.id, [(c["seq"], n) for c, n in zip(cells, numbers, strict=True)]
            )
            linear, reasons = assess_linearity(cells, notebook_path)
            fields.update(linear=linear, linear_reasons=reasons)
        try:
            self.store.finish_run(self.id, **fields)
        except StoreError as fault:
            raise _owe_end(self, fields, fault) from fault
        error_seen = self.store.writer_error()
        if error_seen is not None:
            warnings.warn(
                f"jupyter-mlops: a background write failed and was retried: {error_seen}",
                RuntimeWarning,
                stacklevel=2,
            )

    def _original_cells(self) -> list[dict[str, Any]] | None:
        """For a replay: the cells of the run it replays (their numbers carry over)."""
        row = self.store.get_run(self.id)
        parent = row.get("parent_id")
        return self.store.cells(parent) if row.get("kind") == "replay" and parent else None

    def notebook_path(self) -> Path | None:
        """The notebook file of this run on disk, if it has one."""
        if not self.notebook:
            return None
        path = Path(self.notebook)
        return path if path.is_absolute() else self.store.directory.parent / path

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


class RunRecord:
    """A recorded run as read from the store: its row, params, latest metrics and tags."""

    def __init__(self, store: Store, row: dict[str, Any]) -> None:
        self.store = store
        self.row = row
        self.id: str = row["id"]
        self.name: str = row["name"]
        self.status: str = row["status"]

    def __repr__(self) -> str:
        return f"<RunRecord {self.name!r} {self.id[:12]} {self.status}>"

    def _repr_html_(self) -> str:
        """The run as a card in a notebook: status, params, latest metrics (text escaped)."""
        from .widgets import run_html  # imported here: run.py stays light

        return run_html(self)

    @property
    def params(self) -> dict[str, Any]:
        """The run's params."""
        return self.store.params([self.id])[self.id]

    @property
    def metrics(self) -> dict[str, float]:
        """The latest value of each metric."""
        return {k: v["value"] for k, v in self.store.latest_metrics([self.id])[self.id].items()}

    @property
    def tags(self) -> dict[str, str]:
        """The run's tags."""
        return dict(self.row.get("tags") or {})

    def metric_series(self, key: str) -> list[dict[str, Any]]:
        """Every point of one metric: step, value, time, cell."""
        return self.store.metric_series(self.id, key)

    def cells(self) -> list[dict[str, Any]]:
        """The cells the run executed, in the order they ran."""
        cells = self.store.cells(self.id)
        fill_cell_facts(cells)  # a run still going has not worked these out yet
        return cells

    def prelude(self) -> list[dict[str, Any]]:
        """The cells its kernel ran before the run started (sources and execution counts)."""
        return self.store.cells(self.id, prelude=True)

    def datasets(self) -> list[dict[str, Any]]:
        """The datasets the run recorded."""
        return self.store.datasets(self.id)

    def serving(self) -> list[dict[str, Any]]:
        """The serving samples the run recorded (``log_data(..., context="serving")``)."""
        return self.store.datasets(self.id, context="serving")

    def data_checks(self) -> list[dict[str, Any]]:
        """Data checks made in this run or against its datasets, newest first."""
        return self.store.data_checks(self.id)

    def artifacts(self) -> list[dict[str, Any]]:
        """The artifacts the run stored."""
        return self.store.artifacts(self.id)

    def artifact(self, name: str) -> Artifact:
        """One stored artifact by name (the latest of that name), to ``load()`` it back."""
        from .autologging.models import Artifact

        rows = [row for row in self.artifacts() if row["name"] == name]
        if not rows:
            known = ", ".join(sorted({row["name"] for row in self.artifacts()})) or "none"
            raise InvalidValueError(name, f"run {self.name!r} has no such artifact ({known})")
        return Artifact(self.store, rows[-1])

    def _notebook_path(self) -> Path | None:
        notebook = self.row.get("notebook")
        if not notebook:
            return None
        path = Path(notebook)
        return path if path.is_absolute() else self.store.directory.parent / path

    def environment(self) -> dict[str, Any] | None:
        """The environment the run ran in."""
        env_id = self.row.get("env_id")
        return self.store.environment(env_id) if env_id else None

    @property
    def note(self) -> str | None:
        """The free-text note on the run, if any."""
        note = self.row.get("note")
        return str(note) if note is not None else None

    def replays(self) -> list[dict[str, Any]]:
        """Replays of this run, newest first, each with its verdict and summary (no report)."""
        rows = self.store.replays(original_id=self.id)
        return [{k: v for k, v in row.items() if k != "report"} for row in rows]

    def replay_of(self) -> dict[str, Any] | None:
        """For a replay run: the replay that made it, with its verdict and whole report."""
        rows = self.store.replays(replay_run_id=self.id)
        return rows[0] if rows else None

    def to_dict(self, *, full: bool = False) -> dict[str, Any]:
        """The run as plain data; ``full`` adds series, cells, datasets, artifacts, environment,
        replays of it and, for a replay run, the replay that made it."""
        out = dict(self.row)
        out["params"] = self.params
        latest = self.store.latest_metrics([self.id])[self.id]
        out["metrics"] = {k: v["value"] for k, v in latest.items()}
        if full:
            out["metric_series"] = {key: self.metric_series(key) for key in latest}
            from .linearity import annotate_cells

            cells = self.cells()
            # How each cell broke top-to-bottom order, and its number, worked out once for
            # every door.
            annotate_cells(cells, self._notebook_path(), ended=self.status != "running")
            out["cells"] = cells
            out["prelude"] = self.prelude()
            out["datasets"] = self.datasets()
            out["serving"] = self.serving()
            out["data_checks"] = self.data_checks()
            out["artifacts"] = self.artifacts()
            out["environment"] = self.environment()
            out["replays"] = self.replays()
            out["replay_of"] = self.replay_of()
            out["param_history"] = self.param_history()
            out["registered"] = self.store.model_versions(run_id=self.id)
        return out

    def param_history(self) -> dict[str, list[dict[str, Any]]]:
        """Earlier values of params logged again with another value, oldest first."""
        return self.store.param_history(self.id)


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
    kind = kind or os.environ.get(ENV_KIND) or _default_kind()
    if kind not in KINDS:
        raise InvalidValueError("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    if name is not None:
        name = checked_name("run", str(name))
    tag_values = {checked_name("tag", k): tag_value(k, v) for k, v in (tags or {}).items()}
    store = store or open_store()
    if _ends_owed:
        _record_owed_ends()  # the store may take them now
    with _state_lock:
        previous = _active
    if previous is not None and previous.managed:
        # The launched kernel's notebook starts "its" run: it is the managed one.
        if tag_values:
            store.set_tags(previous.id, tag_values)
        return previous
    if previous is not None:
        warnings.warn(
            f"jupyter-mlops: ended the active run {previous.name!r} to start a new one",
            stacklevel=2,
        )
        previous.end("finished")
    if not notebook:
        notebook = os.environ.get(ENV_NOTEBOOK) or (notebook_hint() if notebook_hint else None)
    notebook_ref = _notebook_ref(store, Path(notebook)) if notebook else None
    now = time.time()
    run_id = run_id or uuid.uuid4().hex
    row: dict[str, Any] = {
        "id": run_id,
        "name": name or _default_name(notebook_ref, now),
        "status": "running",
        "kind": kind,
        "notebook": notebook_ref,
        "parent_id": parent or os.environ.get(ENV_PARENT) or None,
        "sweep_id": os.environ.get(ENV_SWEEP) or None,
        "start_time": now,
        "heartbeat": now,
        "pid": os.getpid(),
        "process_start": _process_start(os.getpid()),
        "host": _HOST,
        "cwd": str(Path.cwd()),
        "kernel": os.environ.get(ENV_KERNEL) or None,
    }
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
    _install_process_hooks()
    _tell_watcher(run)
    _ensure_heartbeat()
    if run_hooks is not None:
        run_hooks.started(run)
    return run


def start_managed_run() -> Run | None:
    """In a kernel our launchers started: the run that the whole notebook is (else None)."""
    if not os.environ.get(ENV_AUTOSTART) or active_run() is not None:
        return None
    run = start_run(
        name=os.environ.get(ENV_RUN_NAME) or None, run_id=os.environ.get(ENV_RUN_ID) or None
    )
    run.managed = True
    run.prelude_recorded = True
    run.prelude_cells = int(os.environ.get(ENV_PRELUDE) or 0)
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


def check_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Params as stored (JSON text by checked name), or the error that refuses one."""
    return {checked_name("param", key): param_json(key, value) for key, value in params.items()}


def check_metrics(metrics: Mapping[str, Any], step: Any = None) -> None:
    """Raise the error ``log_metrics`` would give for these metrics and step, logging nothing."""
    for key, value in metrics.items():
        checked_name("metric", key)
        if type(value) is not float and type(value) is not int:
            metric_number(key, value)
        if step is not None:
            metric_step(key, step)


def check_artifact(source: Any) -> None:
    """Raise the error ``log_artifact`` would give for a path that is no file."""
    if isinstance(source, (str, Path)):
        kind = _path_kind(user_path(source))
        if kind != "file":
            reason = "is a folder; log a file (or the folder as data)" if kind else "no such file"
            raise InvalidValueError(shown_text(str(source)), reason)


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


# -- reading ---------------------------------------------------------------------------------


def get_run(ref: str, *, store: Store | None = None) -> RunRecord:
    """A run by full id, unique id prefix, or name (the newest run of that name)."""
    store = store or open_store(create=False)
    reap_crashed(store)
    return RunRecord(store, store.get_run(store.resolve_run(ref)))


def list_runs(
    *,
    where: str | None = None,
    notebook: str | Path | None = None,
    statuses: Sequence[str] = (),
    limit: int | None = None,
    offset: int = 0,
    order_by: str | None = None,
    descending: bool = True,
    kinds: Sequence[str] = (),
    replays: bool = True,
    store: Store | None = None,
) -> list[dict[str, Any]]:
    """Runs newest first (or by ``order_by``: a column, ``params.K``, ``metrics.K``) as dicts
    with ``params``, ``metrics``, ``tags`` and ``replay_summary`` (how often it was replayed,
    the latest verdict); ``statuses`` and ``kinds`` keep runs of those; ``replays=False``
    leaves replay runs out (shown under their run) unless a kind or the filter asks for them."""
    store = store or open_store(create=False)
    if limit is not None and limit < 0:
        raise InvalidValueError("limit", "must be zero or more")
    if offset < 0:
        raise InvalidValueError("offset", "must be zero or more")
    reap_crashed(store)
    node, notebook_ref = _filters(store, where, notebook, statuses, kinds, replays)
    return store.list_runs(
        where=node,
        notebook=notebook_ref,
        limit=limit,
        offset=offset,
        order_by=order_by,
        descending=descending,
    )


def count_runs(
    *,
    where: str | None = None,
    notebook: str | Path | None = None,
    statuses: Sequence[str] = (),
    upto: int | None = None,
    kinds: Sequence[str] = (),
    replays: bool = True,
    store: Store | None = None,
) -> int:
    """How many runs ``list_runs`` with the same filters would give without a limit
    (counting no further than ``upto`` when given)."""
    store = store or open_store(create=False)
    node, notebook_ref = _filters(store, where, notebook, statuses, kinds, replays)
    return store.count_runs(where=node, notebook=notebook_ref, upto=upto)


def _filters(
    store: Store,
    where: str | None,
    notebook: str | Path | None,
    statuses: Sequence[str],
    kinds: Sequence[str] = (),
    replays: bool = True,
) -> tuple[Node | None, str | None]:
    """The parsed filter (with the statuses and kinds joined to the tree, never pasted into
    the text) and the notebook as the store names it."""
    from .query import BoolOp, Comparison, fields_used, parse_expression

    node: Node | None = parse_expression(where) if where else None
    asks_kind = bool(kinds) or (node is not None and ("kind", None) in fields_used(node))
    for field, wanted, known in (("status", statuses, STATUSES), ("kind", kinds, KINDS)):
        either: Node | None = None
        for value in dict.fromkeys(wanted):
            if value not in known:
                raise InvalidValueError(field, f"{value!r} is not one of {', '.join(known)}")
            test = Comparison(field, None, "=", value, 0)
            either = test if either is None else BoolOp("or", either, test)
        if either is not None:
            node = either if node is None else BoolOp("and", node, either)
    if not replays and not asks_kind:
        no_replay = Comparison("kind", None, "!=", "replay", 0)
        node = no_replay if node is None else BoolOp("and", node, no_replay)
    notebook_ref = _notebook_ref(store, Path(notebook)) if notebook else None
    return node, notebook_ref


def update_run(
    ref: str,
    *,
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    remove_tags: Sequence[str] = (),
    note: str | None = None,
    store: Store | None = None,
) -> RunRecord:
    """Rename a run, set or remove its tags, or set its note (``""`` clears it)."""
    store = store or open_store(create=False)
    run_id = store.resolve_run(ref)
    if name is not None:
        name = checked_name("run", name)
        store.update_run(run_id, name=name)
    if tags:
        store.set_tags(run_id, {checked_name("tag", k): tag_value(k, v) for k, v in tags.items()})
    if remove_tags:
        store.delete_tags(run_id, [checked_name("tag", k) for k in remove_tags])
    if note is not None:
        if len(note.encode()) > MAX_TEXT_BYTES:
            raise InvalidValueError("note", "is too long (at most 64 KB)")
        store.update_run(run_id, note=note or None)
    return RunRecord(store, store.get_run(run_id))


def delete_run(ref: str, *, store: Store | None = None) -> str:
    """Delete a run that is not running, with its params, metrics, cells and replays; its id."""
    store = store or open_store(create=False)
    reap_crashed(store)
    run_id = store.resolve_run(ref)
    row = store.get_run(run_id)
    # A run thought crashed whose process is alive after all is still being recorded.
    alive = (
        row["status"] == "crashed"
        and row["host"] == _HOST
        and row["pid"] is not None
        and row["process_start"] is not None
        and _pid_alive(row["pid"], row["process_start"])
    )
    if row["status"] == "running" or alive:
        raise InvalidValueError(ref, "the run is still running; end it before deleting it")
    store.delete_run(run_id)
    return run_id


_FRAME_COLUMNS = (
    "run_id",
    "name",
    "status",
    "kind",
    "notebook",
    "start_time",
    "end_time",
    "linear",
    "parent_id",
)


def runs(
    where: str | None = None,
    *,
    notebook: str | Path | None = None,
    limit: int | None = None,
    store: Store | None = None,
) -> pd.DataFrame:
    """Runs newest first as a DataFrame: a row a run, ``params.*``/``metrics.*``/``tags.*``."""
    import pandas as pd

    rows = []
    for run in list_runs(where=where, notebook=notebook, limit=limit, store=store):
        row: dict[str, Any] = {"run_id": run["id"]}
        row.update({column: run[column] for column in _FRAME_COLUMNS[1:]})
        row["start_time"] = _timestamp(run["start_time"])
        row["end_time"] = _timestamp(run["end_time"])
        row["duration"] = run["end_time"] - run["start_time"] if run["end_time"] else None
        row.update({f"params.{k}": _flat(v) for k, v in run["params"].items()})
        row.update({f"metrics.{k}": v for k, v in run["metrics"].items()})
        row.update({f"tags.{k}": v for k, v in run["tags"].items()})
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else [*_FRAME_COLUMNS, "duration"])


def reap_crashed(store: Store) -> list[str]:
    """Mark as ``crashed`` the running runs whose process is gone: on this host, by the process
    table (pid and process start time); from another host, by a heartbeat far too old."""
    now = time.time()
    dead: list[str] = []
    for run in store.running_runs():
        if run["host"] == _HOST and run["pid"] is not None:
            # On this host the process table is the truth: a live process whose heartbeat
            # thread is starved (a long call holding the GIL) is still running, whatever the
            # clock says.
            if not _pid_alive(run["pid"], run.get("process_start")):
                dead.append(run["id"])
            continue
        beat = run["heartbeat"] or run["start_time"]
        if now - beat > STALE_AFTER_S:
            dead.append(run["id"])
    if dead and not store.read_only:
        with contextlib.suppress(StoreReadOnlyError):
            store.mark_runs(dead, "crashed", now, "the process ended without ending the run")
    return dead


# -- process hooks: heartbeat, exit, SIGTERM ----------------------------------------------------


def _ensure_heartbeat() -> None:
    global _heartbeat_thread
    with _state_lock:
        if _heartbeat_thread is None or not _heartbeat_thread.is_alive():
            _heartbeat_thread = start_background(_heartbeat_loop, "jupyter-mlops-heartbeat")


def _heartbeat_loop() -> None:
    while True:
        time.sleep(HEARTBEAT_S)
        _record_owed_ends()
        run = _active
        if run is None:
            continue
        _beat(run)


def _beat(run: Run) -> None:
    """One heartbeat of the active run; says once if its store file went away under it."""
    try:
        run.store.check_file()
        run.store.heartbeat(run.id, time.time())
    except StoreGoneError as gone:
        if not run.store_gone_said:
            run.store_gone_said = True
            warnings.warn(f"jupyter-mlops: {gone}", RuntimeWarning, stacklevel=2)
    except Exception:
        return  # a busy or full store: the next beat tries again


def _owe_end(run: Run, fields: dict[str, Any], fault: StoreError) -> StoreError:
    """Keep the end of a run the store could not take; it is recorded when the store can."""
    with _state_lock:
        _ends_owed[run.id] = (run, fields)
    return StoreError(
        fault.path, f"{fault}; run {run.name!r} ended {fields['status']}, recorded when it can be"
    )


def _record_owed_ends() -> None:
    """Record the ends of runs the store could not take before (at the next beat or exit)."""
    with _state_lock:
        owed = list(_ends_owed.items())
    for run_id, (run, fields) in owed:
        try:
            run.store.finish_run(run_id, **fields)
        except StoreError:
            continue
        with _state_lock:
            _ends_owed.pop(run_id, None)
        warnings.warn(
            f"jupyter-mlops: recorded now that run {run.name!r} ended {fields['status']}",
            RuntimeWarning,
            stacklevel=2,
        )


def _install_process_hooks() -> None:
    global _process_hooks_installed
    with _state_lock:
        if _process_hooks_installed:
            return
        _process_hooks_installed = True
    atexit.register(_end_at_exit)
    script = not _in_ipython()  # a kernel's errors stay in their cells; it owns the wakeup fd
    if script:
        previous_hook = sys.excepthook

        def excepthook(
            kind: type[BaseException], value: BaseException, tb: TracebackType | None
        ) -> None:
            # The script is ending with this exception: its run ends with it, not "finished".
            global _exit_ending
            _exit_ending = _ending_of(value)
            previous_hook(kind, value, tb)

        sys.excepthook = excepthook
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        return  # the script chose to outlive SIGTERM: so does its run

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        run = _active
        if run is not None:
            with contextlib.suppress(Exception):
                run.end("killed", error=SIGTERM_ERROR, final=True)
        if callable(previous):
            previous(signum, frame)
        else:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGTERM, on_sigterm)
        if script:
            _start_signal_watcher(kill_after=not callable(previous))

    def in_forked_child() -> None:
        # A forked worker's SIGTERM (a pool's terminate) is not the end of this run.
        global _watcher_pipe
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signal.SIGTERM, previous)
            if _watcher_pipe is not None:
                signal.set_wakeup_fd(-1)
                os.close(_watcher_pipe)
        _watcher_pipe = None

    os.register_at_fork(after_in_child=in_forked_child)


def _ending_of(exc: BaseException) -> tuple[str, str]:
    """The status and error of a run whose block or script ``exc`` ended."""
    if isinstance(exc, KeyboardInterrupt):
        return "killed", "KeyboardInterrupt"
    return "failed", f"{type(exc).__name__}: {error_text(exc, 1000)}"


def _end_at_exit() -> None:
    from .store import close_all

    run = _active
    if run is not None:
        status, error = _exit_ending or ("finished", None)
        try:
            run.end(status, error=error, final=True)
        except Exception as exc:
            warnings.warn(f"jupyter-mlops: could not end the run at exit: {exc}", stacklevel=1)
    _record_owed_ends()
    for owed_run, fields in list(_ends_owed.values()):
        warnings.warn(
            f"jupyter-mlops: the store could not record that run {owed_run.name!r} ended "
            f"{fields['status']}; it will show as crashed",
            RuntimeWarning,
            stacklevel=1,
        )
    close_all()


# -- SIGTERM during a long call -------------------------------------------------------------
#
# Python runs a signal handler between bytecodes, so a long C call (a numpy kernel, a regex,
# sum over a huge range) holds SIGTERM back, and holds the GIL so no thread of ours can act
# either. Python's own C-level handler still writes the signal's number to the wakeup fd: a
# small watcher process reads it, records the run as killed at once and, when SIGTERM's
# default action was to end the process, ends it as that default would have.


def _start_signal_watcher(*, kill_after: bool) -> None:
    """Start the watcher process (scripts only; nothing else may use the wakeup fd)."""
    global _watcher_pipe
    signal_read, signal_write = os.pipe()
    os.set_blocking(signal_write, False)
    try:
        if signal.set_wakeup_fd(signal_write, warn_on_full_buffer=False) != -1:
            signal.set_wakeup_fd(-1)  # someone else listens there: leave it to them
            raise OSError("the wakeup fd is in use")
        control_read, control_write = os.pipe()
    except (OSError, ValueError):
        os.close(signal_read)
        os.close(signal_write)
        return
    package_parent = str(Path(__file__).resolve().parent.parent)
    code = (
        f"import sys; sys.path.insert(0, {package_parent!r}); "
        "from jupyter_mlops.run import _watch_signals; _watch_signals()"
    )
    args = [str(signal_read), str(control_read), str(os.getpid()), "1" if kill_after else "0"]
    try:
        subprocess.Popen(
            [sys.executable, "-I", "-c", code, *args],
            pass_fds=(signal_read, control_read),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
    except OSError:
        signal.set_wakeup_fd(-1)
        for fd in (signal_write, control_write):
            os.close(fd)
        return
    finally:
        os.close(signal_read)
        os.close(control_read)
    _watcher_pipe = control_write
    _tell_watcher(_active)


def _tell_watcher(run: Run | None) -> None:
    """Tell the watcher process which run is active (and in which store)."""
    if _watcher_pipe is None or run is None:
        return
    with contextlib.suppress(OSError):
        os.write(_watcher_pipe, f"{run.id}\t{run.store.directory}\n".encode())


def _watch_signals() -> None:
    """The watcher process: on SIGTERM to its parent, record the parent's run as killed."""
    signal_fd, control_fd, parent, kill_after = (int(arg) for arg in sys.argv[1:5])
    current: list[str] = []
    pending = b""
    while True:
        ready, _, _ = select.select([signal_fd, control_fd], [], [])
        if control_fd in ready:
            data = os.read(control_fd, 4096)
            if not data:
                return  # the parent exited
            pending += data
            *lines, pending = pending.split(b"\n")
            if lines:
                current = lines[-1].decode().split("\t")
        if signal_fd in ready:
            data = os.read(signal_fd, 512)
            if not data:
                return
            if signal.SIGTERM in data:
                _record_sigterm(current)
                # Give Python's own handler a moment; then do what SIGTERM would have done.
                ready, _, _ = select.select([control_fd], [], [], 1.0)
                if not ready and kill_after:
                    with contextlib.suppress(OSError):
                        os.kill(parent, signal.SIGKILL)
                return


def _record_sigterm(current: list[str]) -> None:
    if len(current) != 2:
        return
    run_id, directory = current
    with contextlib.suppress(Exception):
        store = open_store(Path(directory), create=False)
        store.end_running(run_id, "killed", time.time(), SIGTERM_ERROR)


# -- values -------------------------------------------------------------------------------------


def fill_cell_facts(cells: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Work out reads, writes and seeds of cells that lack them; returns what it filled in."""
    from .cellcode import cell_facts

    filled = []
    for cell in cells:
        if cell.get("reads") is None and cell.get("writes") is None:
            facts = cell_facts(cell.get("source") or "")
            if facts["reads"] is not None:
                cell.update(facts)
                filled.append((cell["seq"], facts))
    return filled


def _path_kind(path: Path) -> str | None:
    """``"file"``, ``"folder"``, or None for a path that does not exist or cannot be looked at
    (a name too long for the file system, a folder without permission)."""
    try:
        if path.is_dir():
            return "folder"
        return "file" if path.is_file() else None
    except (OSError, ValueError):
        return None


def _flat(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def _timestamp(value: float | None) -> Any:
    import pandas as pd

    return pd.NaT if value is None else pd.Timestamp(value, unit="s", tz="UTC")


def _default_kind() -> str:
    return "interactive" if _in_ipython() else "script"


def _in_ipython() -> bool:
    import sys

    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    return get_ipython() is not None


def _default_name(notebook_ref: str | None, now: float) -> str:
    stem = Path(notebook_ref).stem if notebook_ref else "run"
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}"


def _notebook_ref(store: Store, path: Path) -> str:
    """A notebook path as stored: relative to the project (the store's parent) when inside it."""
    resolved = path.expanduser().resolve()
    project = store.directory.parent.resolve()
    if resolved.is_relative_to(project):
        return resolved.relative_to(project).as_posix()
    return resolved.as_posix()


def _pid_alive(pid: int, process_start: float | None = None) -> bool:
    """Whether ``pid`` is a live process (not a zombie) and, when ``process_start`` is given,
    the same process that recorded it (not a later one given the same pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    except OSError:
        return False
    stat = _process_stat(pid)
    if stat is None:
        return True  # no /proc here: trust the signal
    state, started = stat
    if state == "Z":  # killed, not yet reaped by its parent
        return False
    return process_start is None or started == process_start


def _process_start(pid: int) -> float | None:
    """When a process started, in clock ticks since boot: no wall clock, so no clock step
    can change it (None without /proc)."""
    stat = _process_stat(pid)
    return None if stat is None else stat[1]


def _process_stat(pid: int) -> tuple[str, float] | None:
    """A process's state letter and start time (fields 3 and 22 of ``/proc/PID/stat``)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[-1].split()
        return fields[0].decode("ascii", "replace"), float(int(fields[19]))
    except (OSError, IndexError, ValueError):
        return None
