"""Whether a run's process is alive: heartbeat, crash reaping, process hooks, SIGTERM.

A running run beats in the store while its process lives. A run whose process went away
without ending it is marked ``crashed`` by whoever reads the store next (``reap_crashed``):
on this host by the process table, from another host by a heartbeat far too old. A script's
run ends with the exception that ends the script, and SIGTERM is recorded at once, even
during a long C call, by a small watcher process. Nothing here knows what a run logs: the
run module hands over the active run (``keep_alive``) and its ends the store could not take
(``owe_end``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Protocol

from .errors import StoreError, StoreGoneError, StoreReadOnlyError
from .store import Store, close_all, open_store
from .threads import start_background
from .validate import error_text

__all__ = [
    "HEARTBEAT_S",
    "HOST",
    "SIGTERM_ERROR",
    "STALE_AFTER_S",
    "LiveRun",
    "active_run_id",
    "declare_kernel",
    "ending_of",
    "is_kernel",
    "keep_alive",
    "owe_end",
    "pid_alive",
    "process_start",
    "reap_crashed",
    "record_owed_ends",
]

HOST = socket.gethostname()
HEARTBEAT_S = 10.0
# A run on another host is thought crashed only when its heartbeat is far older than the
# interval it beats at: a clock step or a busy process must not be taken for a dead one.
STALE_AFTER_S = max(10 * HEARTBEAT_S, 300.0)
SIGTERM_ERROR = "terminated by SIGTERM"


class LiveRun(Protocol):
    """What liveness needs of a run: where it is stored, and how to end it."""

    id: str
    name: str
    store: Store
    store_gone_said: bool

    def end(
        self, status: str = "finished", *, error: str | None = None, final: bool = False
    ) -> None:
        """End the run with a status."""


def _no_run() -> LiveRun | None:
    return None


_state_lock = threading.RLock()
# The process's active run, as the run module tells it (``keep_alive``).
_active: Callable[[], LiveRun | None] = _no_run
# An interactive kernel keeps its errors in their cells and owns the wakeup fd.
_kernel = False
_heartbeat_thread: threading.Thread | None = None
_process_hooks_installed = False
# How the script is ending, when an exception escaped it: (status, error) for its run.
_exit_ending: tuple[str, str] | None = None
# Ends of runs the store could not record (full, locked): retried by the heartbeat and at exit.
_ends_owed: dict[str, tuple[LiveRun, dict[str, Any]]] = {}
# The write end of the pipe that tells the SIGTERM watcher process which run is active.
_watcher_pipe: int | None = None


def declare_kernel() -> None:
    """Say that this process is an interactive kernel (its runs are ``interactive``, its
    errors stay in their cells, and SIGTERM is left to the kernel)."""
    global _kernel
    _kernel = True


def is_kernel() -> bool:
    """Whether this process is an interactive kernel: it said so, or an IPython shell runs it
    (a kernel that logs without ``%load_ext``). IPython is looked up, never imported."""
    if _kernel:
        return True
    get_shell = getattr(sys.modules.get("IPython"), "get_ipython", None)
    return callable(get_shell) and get_shell() is not None


def keep_alive(run: LiveRun, active: Callable[[], LiveRun | None]) -> None:
    """Watch over a run that just became the active one: heartbeat, hooks at exit and on
    SIGTERM (installed once; ``active`` gives the active run then)."""
    global _active
    _active = active
    _install_process_hooks()
    _tell_watcher(run)
    _ensure_heartbeat()


def active_run_id() -> str | None:
    """The id of this process's active run, if any (for records made beside it)."""
    run = _active()
    return run.id if run is not None else None


def ending_of(exc: BaseException) -> tuple[str, str]:
    """The status and error of a run whose block or script ``exc`` ended."""
    if isinstance(exc, KeyboardInterrupt):
        return "killed", "KeyboardInterrupt"
    return "failed", f"{type(exc).__name__}: {error_text(exc, 1000)}"


# -- who is alive -------------------------------------------------------------------------------


def reap_crashed(store: Store) -> list[str]:
    """Mark as ``crashed`` the running runs whose process is gone: on this host, by the process
    table (pid and process start time); from another host, by a heartbeat far too old."""
    now = time.time()
    dead: list[str] = []
    for run in store.running_runs():
        if run["host"] == HOST and run["pid"] is not None:
            # On this host the process table is the truth: a live process whose heartbeat
            # thread is starved (a long call holding the GIL) is still running, whatever the
            # clock says.
            if not pid_alive(run["pid"], run.get("process_start")):
                dead.append(run["id"])
            continue
        beat = run["heartbeat"] or run["start_time"]
        if now - beat > STALE_AFTER_S:
            dead.append(run["id"])
    if dead and not store.read_only:
        with contextlib.suppress(StoreReadOnlyError):
            store.mark_runs(dead, "crashed", "the process ended without ending the run")
    return dead


def pid_alive(pid: int, process_start: float | None = None) -> bool:
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


def process_start(pid: int) -> float | None:
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


# -- heartbeat and ends owed ------------------------------------------------------------------


def _ensure_heartbeat() -> None:
    global _heartbeat_thread
    with _state_lock:
        if _heartbeat_thread is None or not _heartbeat_thread.is_alive():
            _heartbeat_thread = start_background(_heartbeat_loop, "jupyter-mlops-heartbeat")


def _heartbeat_loop() -> None:
    while True:
        time.sleep(HEARTBEAT_S)
        record_owed_ends()
        run = _active()
        if run is None:
            continue
        _beat(run)


def _beat(run: LiveRun) -> None:
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


def owe_end(run: LiveRun, fields: dict[str, Any], fault: StoreError) -> StoreError:
    """Keep the end of a run the store could not take; it is recorded when the store can."""
    with _state_lock:
        _ends_owed[run.id] = (run, fields)
    return StoreError(
        fault.path, f"{fault}; run {run.name!r} ended {fields['status']}, recorded when it can be"
    )


def record_owed_ends() -> None:
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


# -- process hooks: exit, exceptions, SIGTERM -------------------------------------------------


def _install_process_hooks() -> None:
    global _process_hooks_installed
    with _state_lock:
        if _process_hooks_installed:
            return
        _process_hooks_installed = True
    atexit.register(_end_at_exit)
    script = not is_kernel()
    if script:
        _end_with_escaping_exceptions()
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        return  # the script chose to outlive SIGTERM: so does its run

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        run = _active()
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


def _end_with_escaping_exceptions() -> None:
    """A script ending with an exception ends its run with it, not "finished"."""
    previous_hook = sys.excepthook

    def excepthook(
        kind: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        global _exit_ending
        _exit_ending = ending_of(value)
        previous_hook(kind, value, tb)

    sys.excepthook = excepthook


def _end_at_exit() -> None:
    run = _active()
    if run is not None:
        status, error = _exit_ending or ("finished", None)
        try:
            run.end(status, error=error, final=True)
        except Exception as exc:
            warnings.warn(f"jupyter-mlops: could not end the run at exit: {exc}", stacklevel=1)
    record_owed_ends()
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
        "from jupyter_mlops.liveness import _watch_signals; _watch_signals()"
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
    _tell_watcher(_active())


def _tell_watcher(run: LiveRun | None) -> None:
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
