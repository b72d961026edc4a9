"""Faults met by real processes: killed kernels and scripts, clocks that lie, deleted runs,
read-only and full file systems, a lock held by another process, damaged files."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import jupyter_mlops as mlops
from jupyter_mlops import liveness
from jupyter_mlops import run as runs
from jupyter_mlops import store as stores
from jupyter_mlops.errors import (
    InvalidValueError,
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreGoneError,
    StoreLockedError,
    StoreReadOnlyError,
)
from jupyter_mlops.kernel_env import STORE_DIR
from jupyter_mlops.store import close_all, open_store

from .conftest import PYTHON, child_env, python_child

pytestmark = pytest.mark.slow

# Cells are durable this long after they end (README: "What is kept when things go wrong"),
# with room for a loaded machine.
CELL_WINDOW_S = stores.CELL_LATE_S + stores.FLUSH_INTERVAL_S + 0.75

_SCRIPT = """
import sys, time
import jupyter_mlops as mlops
name, mode = sys.argv[1], sys.argv[2]
run = mlops.start_run(name=name)
mlops.log_metric("seen", 1.0)
print(run.id, flush=True)
if mode == "raise":
    raise ValueError("boom")
if mode == "interrupt":
    raise KeyboardInterrupt
if mode == "sleep":
    time.sleep(60)
if mode == "busy":
    time.sleep(0.5)  # the points logged before it are past their loss window
    sum(range(10**12))  # one C call that never runs a bytecode
if mode == "pool":
    import multiprocessing

    pool = multiprocessing.get_context("fork").Pool(2)
    pool.map_async(time.sleep, [30, 30])
    time.sleep(1)
    pool.terminate()  # SIGTERM to the forked workers, not to this script
    pool.join()
    time.sleep(1.5)  # past the watcher's grace
if mode == "log":
    for step in range(400):
        mlops.log_metric("loss", 1.0 / (step + 1))
        mlops.log_param(f"p{step % 3}", step)
        time.sleep(0.01)
"""


def _script(name: str, mode: str) -> subprocess.Popen[str]:
    return python_child(_SCRIPT, name, mode)


def _ready(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


# -- script endings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status", "error"),
    [("raise", "failed", "ValueError: boom"), ("interrupt", "killed", "KeyboardInterrupt")],
)
def test_an_exception_ending_a_script_ends_its_run_so(mode: str, status: str, error: str) -> None:
    proc = _script(mode, mode)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert error.split(":")[0] in err  # Python's own traceback still shows
    record = mlops.get_run(mode)
    assert (record.status, record.row["error"]) == (status, error)
    assert record.metrics == {"seen": 1.0}


@pytest.mark.parametrize("mode", ["sleep", "busy"])
def test_sigterm_ends_the_run_at_once_even_inside_a_long_call(mode: str) -> None:
    proc = _script(f"term-{mode}", mode)
    _ready(proc)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    status = "running"
    for _ in range(100):  # the run is recorded killed promptly, not when the call returns
        status = mlops.get_run(f"term-{mode}").status
        if status != "running":
            break
        time.sleep(0.05)
    proc.communicate(timeout=20)
    assert status == "killed"
    assert proc.returncode in (-signal.SIGTERM, -signal.SIGKILL)
    record = mlops.get_run(f"term-{mode}")
    assert record.row["error"] == liveness.SIGTERM_ERROR
    assert record.metrics == {"seen": 1.0}


def test_sigterm_to_a_forked_worker_does_not_end_the_script_or_its_run() -> None:
    proc = _script("pooled", "pool")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    record = mlops.get_run("pooled")
    assert (record.status, record.row["error"]) == ("finished", None)


# -- liveness that no clock can fool -----------------------------------------------------


@pytest.fixture
def live_script() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A script whose run is live, sleeping."""
    proc = _script("live", "sleep")
    run_id = _ready(proc)
    try:
        yield proc, run_id
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=20)


def test_a_live_run_survives_any_heartbeat_and_dies_with_its_process(
    live_script: tuple[subprocess.Popen[str], str],
) -> None:
    proc, run_id = live_script
    store = open_store()
    day = 86_400.0
    for beat in (time.time() - 10 * day, time.time() + 10 * day):  # clock steps, both ways
        store.update_run(run_id, heartbeat=beat, start_time=beat)
        assert runs.reap_crashed(store) == []
        assert mlops.get_run("live").status == "running"
    with pytest.raises(InvalidValueError, match="still running"):
        mlops.delete_run("live")
    proc.kill()
    proc.wait(timeout=20)
    assert mlops.get_run("live").status == "crashed"
    mlops.delete_run("live")


def test_another_hosts_run_is_crashed_only_after_a_long_silence(store: Any) -> None:
    now = time.time()
    for name, silent in (("quiet", 120.0), ("gone", 2 * liveness.STALE_AFTER_S)):
        row = {"id": name * 4, "name": name, "status": "running", "kind": "script"}
        row.update(start_time=now - silent, heartbeat=now - silent, pid=1, host="elsewhere")
        store.insert_run(row)
    assert mlops.get_run("quiet").status == "running"
    assert mlops.get_run("gone").status == "crashed"


def test_a_run_deleted_under_its_writer_stops_it_with_one_warning() -> None:
    proc = _script("doomed", "log")
    run_id = _ready(proc)
    time.sleep(0.5)
    open_store().delete_run(run_id)  # what a careless tool would do
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert err.count("was deleted from the store while it ran") == 1, err
    assert "Traceback" not in err and "FOREIGN KEY" not in err, err
    assert runs.list_runs() == []


# -- a killed kernel -----------------------------------------------------------------------


def test_a_killed_kernel_keeps_the_cells_that_ended_before_the_window(tmp_path: Path) -> None:
    from jupyter_client.manager import KernelManager

    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(tmp_path), env=child_env())
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive(
            "%load_ext jupyter_mlops\n%track start --name run-all", timeout=60
        )
        assert reply["content"]["status"] == "ok"
        # "Run All": every request sent at once; the kernel runs them back to back.
        sent = {client.execute(f"x = {i}\nimport time; time.sleep(0.004)"): i for i in range(900)}
        ended: dict[int, float] = {}
        began = time.monotonic()
        while time.monotonic() - began < 4.0:
            with_timeout = client.get_shell_msg(timeout=10)
            parent = with_timeout["parent_header"].get("msg_id")
            if parent in sent:
                ended[sent[parent]] = time.monotonic()
        killed_at = time.monotonic()
        os.kill(manager.provisioner.pid, signal.SIGKILL)  # type: ignore[union-attr]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    record = mlops.get_run("run-all")
    assert record.status == "crashed"
    stored = {cell["source"].split("\n")[0] for cell in record.cells()}
    assert "%load_ext jupyter_mlops" in stored or any("%track start" in s for s in stored)
    due = [i for i, at in ended.items() if at < killed_at - CELL_WINDOW_S]
    assert len(due) > 50  # the kernel ran well over a second of cells before the kill
    missing = [i for i in due if f"x = {i}" not in stored]
    assert missing == []


# -- the file system -------------------------------------------------------------------------


def _mount(args: list[str]) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({done.stderr.strip() or 'not permitted'})")


def _unmount(point: Path) -> None:
    close_all()
    subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.fixture
def read_only_copy(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A store with one finished run, and the same folder seen through a read-only mount
    (root ignores file permissions, so a chmod would prove nothing here)."""
    source = tmp_path / "source" / ".mlops"
    run = mlops.start_run(name="archived", store=open_store(source))
    mlops.log_metric("acc", 0.9)
    run.end()
    view = tmp_path / "view"
    view.mkdir()
    _mount(["--bind", str(source), str(view)])
    try:
        _mount(["-o", "remount,ro,bind", str(view)])
        yield source, view
    finally:
        _unmount(view)


@pytest.mark.parametrize("wal", [False, True], ids=["checkpointed", "with-wal"])
def test_a_read_only_store_is_read_and_refuses_writes_in_one_line(
    read_only_copy: tuple[Path, Path], wal: bool
) -> None:
    source, view = read_only_copy
    close_all()  # the last close folds the WAL into the file and removes it
    holder = None
    if wal:
        # Another process is writing: -wal and -shm exist beside the file.
        holder = sqlite3.connect(source / "tracking.db")
        holder.execute("UPDATE runs SET note = 'seen' WHERE name = 'archived'")
        holder.commit()
        assert (source / "tracking.db-wal").exists()
    try:
        store = open_store(view, create=False)
        assert store.read_only
        record = mlops.get_run("archived", store=store)
        assert record.metrics == {"acc": 0.9}
        assert record.note == ("seen" if wal else None)
        with pytest.raises(StoreReadOnlyError, match="is read-only"):
            mlops.start_run(name="new", store=store)
        done = subprocess.run(
            [PYTHON, "-m", "jupyter_mlops.cli", "runs"],
            env=child_env(**{STORE_DIR: str(view)}),
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "archived" in done.stdout
    finally:
        close_all()
        if holder is not None:
            holder.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB file system of its own."""
    point = tmp_path / "small"
    point.mkdir()
    _mount(["-t", "tmpfs", "-o", "size=2m", "tmpfs", str(point)])
    try:
        yield point
    finally:
        _unmount(point)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_is_one_line_and_the_end_is_recorded_once_there_is_room(
    small_disk: Path,
) -> None:
    store = open_store(small_disk / ".mlops")
    run = mlops.start_run(name="filling", store=store)
    mlops.log_metric("before", 1.0)
    store.flush()
    filler = _fill(small_disk)
    with pytest.raises(StoreFullError, match="is full"):
        mlops.log_artifact(os.urandom(200_000))
    with pytest.raises(StoreFullError):
        for index in range(200):  # until the write-ahead log can grow no more
            mlops.log_param(f"p{index}", "x" * 60_000)
    mlops.log_metric("during", 2.0)  # buffered: kept for when there is room
    with pytest.raises(StoreError, match="recorded when it can be"):
        run.end()
    filler.unlink()
    liveness.record_owed_ends()
    record = mlops.get_run("filling", store=store)
    assert record.status == "finished"
    assert record.metrics == {"before": 1.0, "during": 2.0}


_HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def test_a_lock_held_by_another_process_is_one_line_and_loses_nothing(store: Any) -> None:
    run = mlops.start_run(name="locked-out", store=store)
    holder = subprocess.Popen(
        [PYTHON, "-c", _HOLD_LOCK, str(store.path), "20"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        # A synchronous write gives up long before the holder lets go (after 20 s).
        with pytest.raises(StoreLockedError, match="locked by another process"):
            mlops.log_param("lr", 0.1)
        mlops.log_metric("loss", 0.5)  # buffered: the writer keeps it until the lock is free
        # The block's own exception comes out; that its end must wait is one warning.
        with (
            pytest.warns(RuntimeWarning, match="locked by another process"),
            pytest.raises(ValueError, match="the block's own"),
            run,
        ):
            raise ValueError("the block's own")
    finally:
        holder.kill()
        holder.wait()
    liveness.record_owed_ends()
    record = mlops.get_run("locked-out", store=store)
    assert (record.status, record.row["error"]) == ("failed", "ValueError: the block's own")
    assert (record.params, record.metrics) == ({}, {"loss": 0.5})


def test_a_damaged_store_is_one_line(store_dir: Path) -> None:
    run = mlops.start_run(name="damaged")
    for step in range(3000):
        mlops.log_metric("loss", float(step))
    run.end()
    close_all()
    path = store_dir / "tracking.db"
    data = bytearray(path.read_bytes())
    page = 4096
    data[2 * page :] = os.urandom(len(data) - 2 * page)  # the header and schema stay
    path.write_bytes(bytes(data))
    done = subprocess.run(
        [PYTHON, "-m", "jupyter_mlops.cli", "show", "damaged"],
        env=child_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    assert "is damaged" in done.stderr
    path.write_bytes(os.urandom(8192))  # not a database at all
    with pytest.raises(StoreCorruptError, match="is damaged"):
        open_store(store_dir)


def test_an_emptied_or_deleted_store_is_said_not_silently_recreated(store_dir: Path) -> None:
    run = mlops.start_run(name="vanishing")
    run.store.check_file()
    (store_dir / "tracking.db").write_bytes(b"")
    with pytest.raises(StoreGoneError, match="was emptied"):
        run.store.check_file()
    shutil.rmtree(store_dir)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        liveness._beat(run)
        liveness._beat(run)
    assert [str(w.message) for w in said] == [
        f"jupyter-mlops: the store {store_dir / 'tracking.db'} was deleted while a run was "
        "recording into it"
    ]
    run.end()  # into the deleted file, which this process still holds open
    close_all()
    store_dir.mkdir()
    (store_dir / "tracking.db").write_bytes(b"")
    with pytest.warns(RuntimeWarning, match="was an empty file"):
        open_store(store_dir)
