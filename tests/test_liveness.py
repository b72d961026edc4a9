"""Whether a run's process is alive: heartbeats, crashes, SIGTERM and exit, reused pids."""

from __future__ import annotations

import signal
import subprocess
import time

import jupyter_mlops as mlops
from jupyter_mlops import liveness
from jupyter_mlops.store import Store

from .conftest import PYTHON, python_child, run_child

_CHILD = """
import os, signal, sys, time
import jupyter_mlops as mlops
run = mlops.start_run(name=sys.argv[1])
mlops.log_metric("step", 1)
mode = sys.argv[2]
if mode == "kill":
    mlops.active_run().store.flush()
    os.kill(os.getpid(), signal.SIGKILL)
elif mode == "term":
    print("ready", flush=True)
    # Short sleeps: a signal the system hands to another thread (numpy's and pyarrow's
    # pools take them too) runs its Python handler only when the main thread next wakes.
    for _ in range(1200):
        time.sleep(0.05)
elif mode == "exit":
    sys.exit(0)
"""


def _child(name: str, mode: str) -> subprocess.Popen[str]:
    return python_child(_CHILD, name, mode)


def _running_row(run_id: str, name: str, pid: int, host: str, start: float, beat: float) -> dict:
    return {
        "id": run_id,
        "name": name,
        "status": "running",
        "kind": "script",
        "start_time": start,
        "heartbeat": beat,
        "pid": pid,
        "host": host,
    }


def test_killed_process_reads_crashed() -> None:
    proc = _child("victim", "kill")
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    record = mlops.get_run("victim")
    assert record.status == "crashed"
    assert record.metrics == {"step": 1.0}


def test_sigterm_ends_the_run_killed() -> None:
    proc = _child("terminated", "term")
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM
    assert mlops.get_run("terminated").status == "killed"


def test_interpreter_exit_ends_the_run_finished() -> None:
    proc = _child("exited", "exit")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    record = mlops.get_run("exited")
    assert record.status == "finished"
    assert record.row["kind"] == "script"
    assert record.metrics == {"step": 1.0}


def test_stale_heartbeat_from_another_host_reads_crashed(store: Store) -> None:
    long_ago = time.time() - 10 * liveness.STALE_AFTER_S
    store.insert_run(
        {
            "id": "e" * 32,
            "name": "remote",
            "status": "running",
            "kind": "script",
            "start_time": long_ago,
            "heartbeat": long_ago,
            "pid": 1,
            "host": "another-host",
        }
    )
    store.insert_run(
        {
            "id": "f" * 32,
            "name": "remote-alive",
            "status": "running",
            "kind": "script",
            "start_time": long_ago,
            "heartbeat": time.time(),
            "pid": 1,
            "host": "another-host",
        }
    )
    assert mlops.get_run("remote").status == "crashed"
    assert mlops.get_run("remote-alive").status == "running"


def test_a_live_process_on_this_host_is_running_however_quiet(store: Store) -> None:
    # pid 1 is alive; the clock says its run began a day ago and last beat a day ago (or in
    # the future, after a clock step back): only the process table counts on this host.
    day = 86_400.0
    for index, when in enumerate((time.time() - day, time.time() + day)):
        row = _running_row(str(index) * 32, f"busy{index}", 1, liveness.HOST, when, when)
        row["process_start"] = liveness.process_start(1)
        store.insert_run(row)
        assert mlops.get_run(f"busy{index}").status == "running"


def test_a_reused_pid_does_not_keep_a_dead_run_alive(store: Store) -> None:
    newcomer = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(30)"])
    try:
        row = _running_row(
            "2" * 32, "reused", newcomer.pid, liveness.HOST, time.time(), time.time()
        )
        # The pid is alive, but the process that recorded the run started at another time.
        started = liveness.process_start(newcomer.pid)
        assert started is not None
        row["process_start"] = started - 100
        store.insert_run(row)
        assert mlops.get_run("reused").status == "crashed"
    finally:
        newcomer.kill()
        newcomer.wait()


def test_a_heartbeat_revives_a_run_thought_crashed() -> None:
    run = mlops.start_run(name="sleeper")
    run.store.mark_runs([run.id], "crashed", "silent too long")
    assert mlops.get_run("sleeper").status == "crashed"
    run.store.heartbeat(run.id, time.time())
    assert mlops.get_run("sleeper").status == "running"
    run.end()
    run.store.heartbeat(run.id, time.time())
    assert mlops.get_run("sleeper").status == "finished"


def test_a_running_process_keeps_its_heartbeat_fresh() -> None:
    child = (
        "import time, jupyter_mlops as mlops, jupyter_mlops.liveness as r\n"
        "r.HEARTBEAT_S = 0.05\n"
        "run = mlops.start_run(name='beating')\n"
        "time.sleep(1.0)\n"
        "row = run.record().row\n"
        "print(row['heartbeat'] - row['start_time'])\n"
    )
    out = run_child(child)
    assert float(out) > 0.5
