"""Import: the runs of an MLflow tracking server into the store (params, metric histories,
tags, status and times; for runs this tracker exported, their cells, datasets and
environment)."""

from __future__ import annotations

import json
import math
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InvalidValueError
from ..store import Store, insert_imported_run, mlflow_links, open_store
from ..store import set_mlflow_link as _set_link
from ..vocabulary import KINDS
from . import client

__all__ = ["import_mlflow"]

# MLflow's run statuses as ours.
_STATUS_FROM_MLFLOW = {
    "RUNNING": "running",
    "SCHEDULED": "running",
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "killed",
}


def import_mlflow(
    tracking_uri: str | None = None,
    *,
    experiment: str | None = None,
    progress: bool | Callable[[int, int], None] = False,
    store: Store | None = None,
) -> dict[str, Any]:
    """Bring the runs of an MLflow server (one experiment, or all) into the store: params,
    metric histories, tags, status and times; runs brought before are left as they are."""
    uri = client.server_uri(tracking_uri)
    client.mlflow_package()
    store = store or open_store()
    client.check_reachable(uri)
    server = client.Server(uri)
    if experiment is not None:
        found = server.call("get_experiment_by_name", experiment)
        if found is None:
            raise InvalidValueError(experiment, f"no such experiment on {uri}")
        experiment_ids = [found.experiment_id]
    else:
        experiment_ids = [e.experiment_id for e in server.call("search_experiments")]
    known = {link["mlflow_run_id"] for link in mlflow_links(store, uri).values()}
    found_runs = []
    for experiment_id in experiment_ids:
        token = None
        while True:
            page = server.call("search_runs", [experiment_id], max_results=1000, page_token=token)
            found_runs.extend(page)
            token = page.token
            if not token:
                break
    brought = points = 0
    for mlflow_run in found_runs:
        if mlflow_run.info.run_id in known:
            continue
        ours = mlflow_run.data.tags.get(client.TAG_RUN_ID)
        run_id = ours if ours and not store.run_exists(ours) else None
        if ours and run_id is None:
            continue  # exported from this store: the run is here already
        points += _import_run(server, store, mlflow_run, run_id or uuid.uuid4().hex)
        brought += 1
        server.done += 1
        if callable(progress):
            progress(brought, len(found_runs))
    return {
        "tracking_uri": uri,
        "direction": "import",
        "runs": brought,
        "already_here": len(found_runs) - brought,
        "metric_points": points,
        "calls": server.calls,
    }


def _import_run(server: client.Server, store: Store, mlflow_run: Any, run_id: str) -> int:
    info, data = mlflow_run.info, mlflow_run.data
    tags = dict(data.tags)
    ours = client.TAG_RUN_ID in tags
    text_params = set(json.loads(tags.get(client.TAG_TEXT_PARAMS, "[]")))
    params = {
        key: json.dumps(value if key in text_params else _param_value(value))
        for key, value in data.params.items()
    }
    metrics: list[tuple[str, int, float | None, float]] = []
    for key in data.metrics:
        for point in server.call("get_metric_history", info.run_id, key):
            value = None if math.isnan(point.value) else point.value
            metrics.append((key, int(point.step), value, point.timestamp / 1000))
    metrics.sort(key=lambda m: (m[3], m[1]))
    kind = tags.get(client.TAG_PREFIX + "kind", "script")
    row = {
        "id": run_id,
        "name": info.run_name or tags.get("mlflow.runName") or info.run_id[:12],
        "status": _STATUS_FROM_MLFLOW.get(info.status, "finished"),
        "kind": kind if kind in KINDS else "script",
        "notebook": tags.get(client.TAG_PREFIX + "notebook") or tags.get("mlflow.source.name"),
        "start_time": (info.start_time or 0) / 1000,
        "end_time": info.end_time / 1000 if info.end_time else None,
        "host": tags.get(client.TAG_PREFIX + "host"),
        "kernel": tags.get(client.TAG_PREFIX + "kernel"),
        "sweep_id": tags.get(client.TAG_PREFIX + "sweep_id"),
        "note": tags.get("mlflow.note.content"),
        "error": tags.get(client.TAG_PREFIX + "error"),
        "origin": tags.get(client.TAG_PREFIX + "origin") or f"mlflow:{server.uri}#{info.run_id}",
    }
    if ours and store.run_exists(tags.get(client.TAG_PREFIX + "parent_id", "")):
        row["parent_id"] = tags[client.TAG_PREFIX + "parent_id"]
    own_tags = {k: v for k, v in tags.items() if not k.startswith(("mlflow.", client.TAG_PREFIX))}
    if ours:
        row["env_id"] = _import_record(server, store, mlflow_run, run_id)
    insert_imported_run(store, row, params, own_tags, metrics)
    if ours:
        _import_details(server, store, mlflow_run, run_id)
    _set_link(store, run_id, server.uri, info.run_id, info.experiment_id, "import", {})
    return len(metrics)


def _import_record(server: client.Server, store: Store, mlflow_run: Any, run_id: str) -> str | None:
    """The environment an exported run carried (stored now; its cells after the run row)."""
    environment = _download_json(server, mlflow_run.info.run_id, client.ENVIRONMENT_ARTIFACT)
    if not isinstance(environment, dict):
        return None
    from ..hashing import hash_bytes

    env_id = hash_bytes(json.dumps(environment, sort_keys=True, default=str).encode())
    store.put_environment(env_id, environment)
    return env_id


def _import_details(server: client.Server, store: Store, mlflow_run: Any, run_id: str) -> None:
    """Cells and datasets of a run this tracker exported."""
    cells = _download_json(server, mlflow_run.info.run_id, client.CELLS_ARTIFACT)
    for cell in cells if isinstance(cells, list) else []:
        store.enqueue_cell(dict(cell, run_id=run_id))
    store.flush()
    inputs = getattr(mlflow_run, "inputs", None)
    for dataset_input in getattr(inputs, "dataset_inputs", None) or []:
        dataset = dataset_input.dataset
        source = _json_or(dataset.source, {})
        store.add_dataset(
            {
                "run_id": run_id,
                "name": dataset.name,
                "hash": dataset.digest,
                "kind": source.get("kind"),
                "shape": source.get("shape"),
                "schema": _json_or(dataset.schema, {}).get("jupyter_mlops"),
                "profile": _json_or(dataset.profile, None),
                "path": source.get("path"),
                "time": time.time(),
            }
        )


def _download_json(server: client.Server, mlflow_id: str, name: str) -> Any:
    with tempfile.TemporaryDirectory(prefix="jupyter-mlops-import-") as folder:
        try:
            path = server.client.download_artifacts(mlflow_id, name, folder)
        except Exception:
            return None  # not one of ours, or artifacts not kept
        server.calls += 1
        return _json_or(Path(path).read_text(encoding="utf-8"), None)


def _param_value(text: str) -> Any:
    """A param as MLflow keeps it (text) read back as the value it stands for."""
    return _json_or(text, text) if client.looks_json(text) else text


def _json_or(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default
