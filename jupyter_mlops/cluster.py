"""Sweep points on a Dask cluster: Papermill in worker processes, merged back as they finish.

Each point runs in a worker process with Papermill, in a kernel started in the point's folder
(the worker's own working directory never changes), and records into a store of its own on
the worker's local disk (SQLite is never shared over a network file system). The point sends
that store and its executed notebook back; the driver merges the run into the main store at
once (``merge.import_store``), so it shows up in ``runs`` and the sidebar while the others go
on. The notebook itself travels with each point; the files it reads are found on a path the
workers share, or in a copy of the notebook's folder sent to each worker once (``upload``).
A worker that dies mid-point leaves that attempt ``crashed``; with ``retries`` the point is
tried again on another worker. Dask is imported only here, and only when used.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import InvalidValueError, MlopsError
from .execute import (
    Execution,
    execute_notebook,
    skip_slow_optional_imports,
    store_notebook_artifact,
)
from .liveness import HOST
from .notebooks import stored_notebook
from .store import DB_NAME, Store, fold_log
from .vocabulary import KINDS, STATUSES

__all__ = ["MAX_UPLOAD_BYTES", "connect", "local_cluster", "pack_folder", "run_points_on_cluster"]

# A folder sent to the workers is for notebooks and their small inputs, not data lakes.
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
CRASHED, SWEEP = STATUSES[-1], KINDS[2]
_LOCAL = re.compile(r"^local(?::(\d+))?$")
_SKIPPED = {".mlops", ".git", ".ipynb_checkpoints", "__pycache__", ".venv", "node_modules"}


def _distributed() -> Any:
    """The distributed package, or one line saying which extra to install."""
    try:
        import distributed
    except ImportError:
        raise MlopsError(
            'sweeps on a Dask cluster need the dask extra: pip install "jupyter-mlops[dask]"'
        ) from None
    return distributed


@contextmanager
def connect(cluster: str) -> Iterator[tuple[Any, int]]:
    """A client of a running scheduler (``tcp://host:8786``) or of a ``LocalCluster`` of N
    worker processes started and stopped here (``local[:N]``); with how many workers it has."""
    distributed = _distributed()
    local = _LOCAL.match(cluster.strip())
    if local:
        workers = int(local.group(1) or os.cpu_count() or 1)
        if workers < 1:
            raise InvalidValueError("cluster", "local:N needs N of 1 or more")
        with local_cluster(workers) as client:
            yield client, workers
        return
    try:
        client = distributed.Client(cluster, timeout=30)
    except (OSError, TimeoutError) as exc:
        raise MlopsError(f"cannot reach the Dask scheduler at {cluster}: {exc}") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=60)
        except TimeoutError:
            raise MlopsError(f"the Dask scheduler at {cluster} has no workers") from None
        yield client, len(client.scheduler_info()["workers"])


@contextmanager
def local_cluster(workers: int) -> Iterator[Any]:
    """A client of a ``LocalCluster`` of ``workers`` single-threaded worker processes on
    127.0.0.1, started here and stopped on leaving."""
    distributed = _distributed()
    with (
        distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as started,
        distributed.Client(started) as client,
    ):
        yield client


def pack_folder(folder: Path) -> bytes:
    """A zip of a notebook's folder for the workers (without stores, git and checkpoints)."""
    buffer = io.BytesIO()
    total = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if _SKIPPED & set(relative.parts) or not path.is_file():
                continue
            total += path.stat().st_size
            if total > MAX_UPLOAD_BYTES:
                raise InvalidValueError(
                    str(folder),
                    f"holds over {MAX_UPLOAD_BYTES // 2**20} MB to send to the workers; put "
                    "the data on a path the workers share and sweep without --upload",
                )
            archive.write(path, relative.as_posix())
    return buffer.getvalue()


def run_points_on_cluster(
    jobs: list[dict[str, Any]],
    cluster: str,
    done: Callable[[dict[str, Any]], None],
    *,
    store: Store,
    retries: int = 0,
    upload: bool = False,
) -> int:
    """Run every point on the cluster, merging each finished point into ``store`` and
    calling ``done`` with its result; returns how many workers the cluster had."""
    from .merge import import_store

    if retries < 0:
        raise InvalidValueError("retries", "must be 0 or more")
    distributed = _distributed()
    notebook = Path(jobs[0]["notebook"])
    text = notebook.read_text(encoding="utf-8")
    folder = pack_folder(Path(jobs[0]["cwd"])) if upload else None
    with connect(cluster) as (client, workers):
        files = client.scatter(folder, broadcast=True) if folder is not None else None
        attempts: dict[int, int] = {}

        def submit(job: dict[str, Any]) -> Any:
            attempts[job["index"]] = attempts.get(job["index"], 0) + 1
            key = f"jupyter-mlops-{job['sweep_id'][:12]}-{job['index']}-{attempts[job['index']]}"
            return client.submit(run_point_on_worker, job, text, files, key=key, pure=False)

        for job in jobs:
            job["retries"] = retries
            job["attempts_variable"] = f"jupyter-mlops-{job['sweep_id']}-{job['index']}"
            distributed.Variable(job["attempts_variable"], client=client).set([])
        futures = {submit(job): job for job in jobs}
        pending = distributed.as_completed(list(futures))
        for future in pending:
            job = futures.pop(future)
            try:
                result = future.result()
            except distributed.KilledWorker:
                # Every worker Dask tried it on died; try again while retries are left.
                started = distributed.Variable(job["attempts_variable"], client=client).get()
                if len(started) <= retries:
                    again = submit(job)
                    futures[again] = job
                    pending.add(again)
                    continue
                result = _died(job, started)
            except Exception as exc:
                result = _broken(job, exc)
            _merge(result, job, store, import_store)
            done(result)
        for job in jobs:
            distributed.Variable(job["attempts_variable"], client=client).delete()
    return workers


def _merge(result: dict[str, Any], job: dict[str, Any], store: Store, import_store: Any) -> None:
    """Bring a finished point into the main store: its run, its executed notebook, and a
    crashed run for each attempt whose worker died."""
    packed = result.pop("store_zip", None)
    executed = result.pop("notebook_bytes", None)
    if packed is not None:
        with tempfile.TemporaryDirectory(prefix="jupyter-mlops-point-") as folder:
            with zipfile.ZipFile(io.BytesIO(packed)) as archive:
                archive.extractall(folder)
            import_store(
                Path(folder),
                store=store,
                run_ids=[result["run_id"]],
                origin=f"{result['host']}:{result['store_dir']} (Dask worker {result['worker']})",
            )
        ref = stored_notebook(store.directory.parent, Path(job["notebook"]))
        store.update_run(result["run_id"], notebook=ref)
    if executed is not None:
        output = Path(job["output"])
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(executed)
        result["output"] = str(output)
    for attempt in result.pop("died", []):
        _record_crash(store, job, attempt)
    if not store.run_exists(result["run_id"]):
        _record_crash(store, job, {"run_id": result["run_id"], "worker": result.get("worker")})


def _record_crash(store: Store, job: dict[str, Any], attempt: dict[str, Any]) -> None:
    """A run for an attempt whose worker died: it cannot tell its own end."""
    if store.run_exists(attempt["run_id"]):
        return
    now = time.time()
    store.insert_run(
        {
            "id": attempt["run_id"],
            "name": job["name"],
            "status": CRASHED,
            "kind": SWEEP,
            "sweep_id": job["sweep_id"],
            "start_time": attempt.get("start_time") or now,
            "end_time": now,
            "host": attempt.get("host"),
            "cwd": job["cwd"],
            "kernel": job["kernel"],
            "error": f"the Dask worker {attempt.get('worker')} running this point died",
            "origin": f"Dask worker {attempt.get('worker')}",
        },
        {"sweep.attempt": str(attempt.get("attempt", 1))},
    )
    store.set_params(attempt["run_id"], {k: json.dumps(v) for k, v in job["params"].items()})


def _died(job: dict[str, Any], started: list[dict[str, Any]]) -> dict[str, Any]:
    """The result of a point whose every attempt's worker died."""
    last = started[-1] if started else {"run_id": uuid.uuid4().hex, "worker": None}
    return {
        "index": job["index"],
        "params": job["params"],
        "run_id": last["run_id"],
        "output": None,
        "duration_s": 0.0,
        "attempts": len(started),
        "died": started,
        "failure": {
            "kind": "worker died",
            "cell_index": None,
            "error": "WorkerDied",
            "message": f"the Dask worker {last.get('worker')} running this point died",
            "cell_label": None,
        },
    }


def _broken(job: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    """The result of a point the cluster could not run at all (not the notebook's error)."""
    run_id = uuid.uuid4().hex
    result = _died(job, [{"run_id": run_id, "worker": None}])
    message = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
    result["failure"].update(kind="cluster error", error=type(exc).__name__, message=message)
    return result


# -- in the worker -------------------------------------------------------------------------


def run_point_on_worker(job: dict[str, Any], text: str, files: bytes | None) -> dict[str, Any]:
    """Run one point in this worker process, into a store of its own on local disk; returns
    the result with that store and the executed notebook packed."""
    from distributed import Variable, get_worker

    skip_slow_optional_imports()
    worker = get_worker()
    started = Variable(job["attempts_variable"]).get()
    if len(started) > job["retries"]:
        # Dask reran a point whose worker died; the sweep was asked for no more tries.
        return _died(job, started)
    run_id = uuid.uuid4().hex
    attempt = {
        "run_id": run_id,
        "worker": worker.address,
        "host": HOST,
        "start_time": time.time(),
        "attempt": len(started) + 1,
    }
    Variable(job["attempts_variable"]).set([*started, attempt])
    root = Path(worker.local_directory) / "jupyter-mlops" / job["sweep_id"][:12]
    folder = root / f"{job['index'] + 1:03d}-{run_id[:8]}"
    try:
        execution = _execute_point(job, text, files, folder, run_id)
        packed = _pack_store(folder / ".mlops")
        executed = execution.output_path.read_bytes() if execution.output_path.is_file() else None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "index": job["index"],
        "params": job["params"],
        "run_id": run_id,
        "output": None,
        "duration_s": round(execution.duration, 3),
        "failure": execution.failure.to_dict() if execution.failure else None,
        "attempts": attempt["attempt"],
        "died": started,
        "worker": worker.address,
        "host": HOST,
        "store_dir": str(folder / ".mlops"),
        "store_zip": packed,
        "notebook_bytes": executed,
    }


def _execute_point(
    job: dict[str, Any], text: str, files: bytes | None, folder: Path, run_id: str
) -> Execution:
    """Run the point's notebook into the store in ``folder``, in the notebook's folder: the
    copy sent to the workers, else the shared one, else ``folder`` itself."""
    import nbformat

    cwd = Path(job["cwd"])
    if files is not None:
        cwd = folder / "files"
        with zipfile.ZipFile(io.BytesIO(files)) as archive:
            archive.extractall(cwd)
    elif not cwd.is_dir():
        cwd = folder
    notebook_path = cwd / Path(job["notebook"]).name if files is not None else Path(job["notebook"])
    store = Store(folder / ".mlops")
    try:
        execution = execute_notebook(
            nbformat.reads(text, as_version=4),
            folder / Path(job["output"]).name,
            store=store,
            kind=SWEEP,
            run_name=job["name"],
            cwd=cwd,
            notebook_path=notebook_path,
            sweep_id=job["sweep_id"],
            parameters=job["params"],
            kernel_name=job["kernel"],
            timeout=job["timeout"],
            autolog=job.get("autolog", True),
            run_id=run_id,
            keep_cwd=True,
        )
        store_notebook_artifact(store, run_id, execution.output_path, "sweep.ipynb")
    finally:
        store.close()
    return execution


def _pack_store(store_dir: Path) -> bytes:
    """The point's store as one zip: the database with its log folded in, and the blobs."""
    fold_log(store_dir)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(store_dir / DB_NAME, f".mlops/{DB_NAME}")
        for blob in sorted((store_dir / "blobs").rglob("*")):
            if blob.is_file() and not blob.name.endswith(".tmp"):
                archive.write(blob, f".mlops/{blob.relative_to(store_dir).as_posix()}")
    return buffer.getvalue()
