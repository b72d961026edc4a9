"""Sweeps: run a notebook over a grid of params with Papermill, on a pool of workers.

Every point is one tracked run of kind ``sweep``, sharing the sweep's id, whether or not the
notebook mentions the tracker. One failing point does not stop the others.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from .errors import InvalidValueError
from .store import Store, open_store
from .vocabulary import KINDS

__all__ = ["expand_grid", "load_grid", "parse_value", "sweep"]

MAX_POINTS = 10_000
SWEEP = KINDS[2]


def parse_value(text: str) -> Any:
    """A value given on the command line: YAML scalars (``0.1``, ``true``, ``rf``, ``[1, 2]``)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def load_grid(path: str | Path) -> dict[str, list[Any]]:
    """A grid from a YAML file: ``name: [values]`` (a single value is a one-point axis)."""
    import yaml

    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidValueError(str(path), f"cannot read the grid file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InvalidValueError(str(path), f"the grid file is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise InvalidValueError(str(path), "a grid file maps param names to lists of values")
    return {str(k): v if isinstance(v, list) else [v] for k, v in data.items()}


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of a grid, in the order the names and values were given."""
    for name, values in grid.items():
        if not name.isidentifier():
            raise InvalidValueError(name, "a param name must be a Python identifier")
        if not values:
            raise InvalidValueError(name, "has no values")
    names = list(grid)
    size = 1
    for values in grid.values():
        size *= len(values)
    if size > MAX_POINTS:
        raise InvalidValueError("grid", f"has {size} points; at most {MAX_POINTS} per sweep")
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def parameters_sources(notebook: Path) -> list[str] | None:
    """The sources of a notebook's cells tagged ``parameters`` (None when it cannot be read)."""
    import json

    try:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    sources = []
    for cell in cells if isinstance(cells, list) else ():
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        if "parameters" in ((cell.get("metadata") or {}).get("tags") or []):
            source = cell.get("source") or ""
            sources.append("".join(source) if isinstance(source, list) else str(source))
    return sources


def parameter_names(notebook: Path) -> set[str] | None:
    """The names a notebook's ``parameters`` cells assign (None when it cannot be read)."""
    import ast

    from .cellcode import parse_cell

    sources = parameters_sources(notebook)
    if sources is None:
        return None
    names: set[str] = set()
    for source in sources:
        module = parse_cell(source)
        for statement in module.body if module is not None else ():
            targets = (
                statement.targets
                if isinstance(statement, ast.Assign)
                else [statement.target]
                if isinstance(statement, (ast.AnnAssign, ast.AugAssign))
                else []
            )
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def check_axes(notebook: Path, names: Sequence[str]) -> None:
    """Refuse grid axes that are no parameter of the notebook (a misspelled ``-p alhpa``)."""
    import difflib

    known = parameter_names(notebook)
    if known is None:
        return  # an unreadable notebook is Papermill's to report
    new = [name for name in names if name not in known]
    if not new:
        return
    if not known:
        raise InvalidValueError(
            ", ".join(new),
            f"{notebook.name} has no parameters cell (a cell tagged 'parameters'), so no axis "
            "is a parameter of it; tag one, or pass --allow-new (allow_new=True) to inject anyway",
        )
    guesses = [
        repr(guess[0])
        for guess in (difflib.get_close_matches(name, sorted(known), n=1) for name in new)
        if guess
    ]
    hint = f"did you mean {' or '.join(guesses)}? " if guesses else ""
    raise InvalidValueError(
        ", ".join(new),
        f"{'is not a parameter' if len(new) == 1 else 'are not parameters'} of "
        f"{notebook.name} ({hint}its parameters: {', '.join(sorted(known))}); "
        "pass --allow-new (allow_new=True) to inject it anyway",
    )


def sweep(
    notebook: str | Path,
    grid: Mapping[str, Sequence[Any]],
    *,
    workers: int = 1,
    output_dir: str | Path | None = None,
    cwd: str | Path | None = None,
    kernel_name: str | None = None,
    timeout: float | None = None,
    progress: bool | Callable[[int, int], None] = True,
    autolog: bool = True,
    store: Store | None = None,
    cluster: str | None = None,
    retries: int = 0,
    upload: bool = False,
    allow_new: bool = False,
) -> dict[str, Any]:
    """Run ``notebook`` once per point of ``grid``; returns the sweep id and every point's
    run, status, params, final metrics and output notebook (``autolog``: in each kernel).

    ``cluster``: a Dask scheduler address or ``local[:N]`` instead of the local pool, with
    ``retries`` for points whose worker died and ``upload`` to send the notebook's folder.
    An axis that is no parameter of the notebook is refused before anything runs, unless
    ``allow_new``."""
    path = _sweepable(notebook)
    if workers < 1:
        raise InvalidValueError("workers", "must be 1 or more")
    points = expand_grid(grid)
    if not allow_new:
        check_axes(path, list(grid))
    store = store or open_store()
    sweep_id = uuid.uuid4().hex
    out = Path(output_dir) if output_dir else store.directory / "sweeps" / sweep_id
    out.mkdir(parents=True, exist_ok=True)
    point = {
        "notebook": str(path),
        "store": str(store.directory),
        "sweep_id": sweep_id,
        "cwd": str(Path(cwd).resolve() if cwd else path.parent),
        "kernel": kernel_name,
        "timeout": timeout,
        "autolog": autolog,
    }
    jobs = [
        {
            **point,
            "index": index,
            "params": params,
            "output": str(out / f"{path.stem}-{index + 1:03d}.ipynb"),
            "name": f"{path.stem}[{_label(params)}]",
        }
        for index, params in enumerate(points)
    ]
    tally = _Tally(len(jobs), progress, f"sweep {path.stem}")
    started = time.perf_counter()
    try:
        if cluster:
            from .cluster import run_points_on_cluster

            workers = run_points_on_cluster(
                jobs, cluster, tally.done, store=store, retries=retries, upload=upload
            )
        else:
            _run_points(jobs, workers, tally.done)
    finally:
        tally.close()
    return {
        "sweep_id": sweep_id,
        "notebook": str(path),
        "output_dir": str(out),
        "workers": workers,
        "duration_s": round(time.perf_counter() - started, 3),
        "points": _with_outcomes(tally.results, store),
        "failed": sum(1 for r in tally.results if r["failure"]),
    }


def _sweepable(notebook: str | Path) -> Path:
    """The notebook file a sweep runs, or one line saying why it cannot."""
    path = Path(notebook).expanduser().resolve()
    if not path.is_file():
        raise InvalidValueError(str(notebook), "no such notebook file")
    if path.suffix != ".ipynb":
        raise InvalidValueError(str(notebook), "a sweep runs a notebook (.ipynb)")
    return path


class _Tally:
    """The points' results as they come in (from worker threads), shown as a bar or told to
    the caller's progress function."""

    def __init__(self, total: int, progress: bool | Callable[[int, int], None], label: str) -> None:
        self.results: list[dict[str, Any]] = [{} for _ in range(total)]
        self.progress = progress if callable(progress) else None
        self.bar: Any = None
        if progress is True:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="run", desc=label[:40])
        self._lock = threading.Lock()

    def done(self, result: dict[str, Any]) -> None:
        with self._lock:
            self.results[result["index"]] = result
            if self.bar is not None:
                self.bar.update(1)
                if result["failure"]:
                    self.bar.set_postfix_str(f"point {result['index'] + 1} failed")
            if self.progress is not None:
                self.progress(sum(1 for r in self.results if r), len(self.results))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _with_outcomes(results: list[dict[str, Any]], store: Store) -> list[dict[str, Any]]:
    """Each point's result with its run's name, final status and metrics."""
    from .records import get_run

    for result in results:
        record = get_run(result["run_id"], store=store)
        result.update(name=record.name, status=record.status, metrics=record.metrics)
    return results


def _run_points(
    jobs: list[dict[str, Any]], workers: int, done: Callable[[dict[str, Any]], None]
) -> None:
    """Run every point: this process is one worker, ``workers - 1`` processes the others.

    This process has its imports done already, so it starts at once where a new worker
    takes a second; each other worker is fed by a thread here, so none waits for another.
    """
    pending = deque(jobs)
    lock = threading.Lock()

    def take() -> dict[str, Any] | None:
        with lock:
            return pending.popleft() if pending else None

    if workers == 1 or len(jobs) == 1:
        while (job := take()) is not None:
            done(run_point(job))
        return
    import multiprocessing

    # Fresh interpreters: forking a process with a store writer thread is unsafe.
    context = multiprocessing.get_context("spawn")
    errors: list[BaseException] = []
    with ProcessPoolExecutor(
        max_workers=workers - 1, mp_context=context, initializer=_start_worker
    ) as pool:
        # Started from this thread before any point runs here: a worker process copies this
        # process's environment and folder, which running a point changes for a while.
        first = [pool.submit(run_point, job) for job in _take_up_to(take, workers - 1)]

        def feed(future: Future[dict[str, Any]] | None) -> None:
            try:
                while future is not None:
                    done(future.result())
                    job = take()
                    future = pool.submit(run_point, job) if job is not None else None
            except BaseException as exc:
                errors.append(exc)

        feeders = [threading.Thread(target=feed, args=(f,), daemon=True) for f in first]
        for feeder in feeders:
            feeder.start()
        while (job := take()) is not None:
            done(run_point(job))
        for feeder in feeders:
            feeder.join()
    if errors:
        raise errors[0]


def _take_up_to(take: Callable[[], dict[str, Any] | None], count: int) -> list[dict[str, Any]]:
    taken: list[dict[str, Any]] = []
    while len(taken) < count and (job := take()) is not None:
        taken.append(job)
    return taken


def _start_worker() -> None:
    """A worker process gets ready to run points: the imports every point needs, once."""
    from .execute import skip_slow_optional_imports

    skip_slow_optional_imports()
    import papermill  # noqa: F401


def run_point(job: dict[str, Any]) -> dict[str, Any]:
    """Run one point of a sweep (in a worker process or inline)."""
    import nbformat

    from .execute import execute_notebook, store_notebook_artifact

    store = open_store(Path(job["store"]))
    notebook = nbformat.read(job["notebook"], as_version=4)
    execution = execute_notebook(
        notebook,
        Path(job["output"]),
        store=store,
        kind=SWEEP,
        run_name=job["name"],
        cwd=Path(job["cwd"]),
        notebook_path=Path(job["notebook"]),
        sweep_id=job["sweep_id"],
        parameters=job["params"],
        kernel_name=job["kernel"],
        timeout=job["timeout"],
        autolog=job.get("autolog", True),
    )
    store_notebook_artifact(store, execution.run_id, execution.output_path, "sweep.ipynb")
    store.flush()
    return {
        "index": job["index"],
        "params": job["params"],
        "run_id": execution.run_id,
        "output": str(execution.output_path),
        "duration_s": round(execution.duration, 3),
        "failure": execution.failure.to_dict() if execution.failure else None,
    }


def _label(params: Mapping[str, Any]) -> str:
    text = ",".join(f"{k}={v}" for k, v in params.items())
    return text if len(text) <= 120 else text[:119] + "…"
