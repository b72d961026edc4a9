"""Export: runs to an MLflow tracking server, in batches within MLflow's request limits;
the MLflow run each run went to is kept with what was sent, so exporting again sends only
what is new."""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..store import Store, metric_points, mlflow_links, open_store
from ..store import set_mlflow_link as _set_link
from . import client

__all__ = ["export_mlflow"]

# MLflow's limits on one log_batch request, and on the length of values.
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
# Our statuses as MLflow's (it has no word for a crashed run).
_STATUS_TO_MLFLOW = {
    "running": "RUNNING",
    "finished": "FINISHED",
    "failed": "FAILED",
    "crashed": "FAILED",
    "killed": "KILLED",
}
# Columns of a run that MLflow has no place for, sent as tags of ours.
_RUN_FIELDS_AS_TAGS = ("kind", "sweep_id", "host", "kernel", "origin", "notebook", "error")


def export_mlflow(
    tracking_uri: str | None = None,
    *,
    experiment: str | None = None,
    where: str | None = None,
    run_ids: Sequence[str] | None = None,
    progress: bool | Callable[[int, int], None] = False,
    store: Store | None = None,
) -> dict[str, Any]:
    """Export runs (all, those matching ``where``, or ``run_ids``) to an MLflow tracking
    server; runs exported before are updated, not made again. Returns what was sent."""
    from ..records import list_runs

    uri = client.server_uri(tracking_uri)
    client.mlflow_package()
    store = store or open_store()
    runs = list_runs(where=where, store=store)
    if run_ids is not None:
        wanted = set(run_ids)
        runs = [run for run in runs if run["id"] in wanted]
    runs.sort(key=lambda run: run["start_time"])  # parents before the replays of them
    client.check_reachable(uri)
    server = client.Server(uri)
    links = mlflow_links(store, uri)
    experiments: dict[str, str] = {}
    made = updated = points = 0
    bar = _bar(progress, len(runs), "export to MLflow")
    try:
        for number, run in enumerate(runs, start=1):
            name = experiment or _experiment_name(run)
            if name not in experiments:
                experiments[name] = _experiment_id(server, name)
            link = links.get(run["id"])
            new, sent = _export_run(server, store, run, experiments[name], link, links)
            links[run["id"]] = sent
            made += new
            updated += not new
            points += sent["new_points"]
            server.done += 1
            if callable(progress):
                progress(number, len(runs))
            elif bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return {
        "tracking_uri": uri,
        "direction": "export",
        "runs": len(runs),
        "created": made,
        "updated": updated,
        "metric_points": points,
        "calls": server.calls,
    }


def _export_run(
    server: client.Server,
    store: Store,
    run: dict[str, Any],
    experiment_id: str,
    link: dict[str, Any] | None,
    links: dict[str, dict[str, Any]],
) -> tuple[bool, dict[str, Any]]:
    """One run to MLflow, made there unless it is linked already, with what was not sent
    before; whether it was made, and the link as it now stands."""
    run_id = run["id"]
    new, mlflow_id, sent = _mlflow_run(server, store, run, experiment_id, link)
    params, counts, new_points = _log_batches(server, store, run, mlflow_id, sent, links)
    sent_datasets = set(sent.get("datasets") or [])
    datasets = [d for d in store.datasets(run_id) if d["hash"] not in sent_datasets]
    if datasets:
        server.call("log_inputs", mlflow_id, datasets=[_dataset_input(d) for d in datasets])
    artifacts = _export_artifacts(server, store, run, mlflow_id, set(sent.get("artifacts") or []))
    sent["models"] = _export_models(
        server, store, run_id, mlflow_id, dict(sent.get("models") or {})
    )
    status = _STATUS_TO_MLFLOW.get(run["status"], "FAILED")
    if status != "RUNNING" and sent.get("status") != [status, run["end_time"]]:
        server.call(
            "set_terminated", mlflow_id, status=status, end_time=_ms(run["end_time"] or time.time())
        )
        sent["status"] = [status, run["end_time"]]
    sent.update(
        params=sorted(set(sent.get("params") or []) | set(params)),
        metrics=counts,
        datasets=sorted(sent_datasets | {d["hash"] for d in datasets}),
        artifacts=sorted(artifacts),
    )
    _set_link(store, run_id, server.uri, mlflow_id, experiment_id, "export", sent)
    return new, {
        "mlflow_run_id": mlflow_id,
        "experiment_id": experiment_id,
        "direction": "export",
        "sent": sent,
        "new_points": new_points,
    }


def _mlflow_run(
    server: client.Server,
    store: Store,
    run: dict[str, Any],
    experiment_id: str,
    link: dict[str, Any] | None,
) -> tuple[bool, str, dict[str, Any]]:
    """The run's MLflow run, made when there is none (or it was deleted on the server):
    whether it was made, its id, and what was sent to it before."""
    sent: dict[str, Any] = dict(link["sent"]) if link and link["direction"] == "export" else {}
    mlflow_id = link["mlflow_run_id"] if link else None
    if mlflow_id is not None and _exists(server, mlflow_id):
        return False, mlflow_id, sent
    created = server.call(
        "create_run",
        experiment_id,
        start_time=_ms(run["start_time"]),
        run_name=run["name"],
        tags={client.TAG_RUN_ID: run["id"]},
    )
    mlflow_id = created.info.run_id
    # Remembered at once: a refusal later leaves a run that exporting again completes.
    _set_link(store, run["id"], server.uri, mlflow_id, experiment_id, "export", {})
    return True, mlflow_id, {}


def _log_batches(
    server: client.Server,
    store: Store,
    run: dict[str, Any],
    mlflow_id: str,
    sent: dict[str, Any],
    links: dict[str, dict[str, Any]],
) -> tuple[dict[str, str], dict[str, int], int]:
    """Params and metric points not sent before, and the tags, in MLflow's batches: the
    params as text, the number of points sent of each metric, and how many were new."""
    from mlflow.entities import Metric, Param, RunTag

    params = {key: _param_text(value) for key, value in run["params"].items()}
    sent_params = set(sent.get("params") or [])
    new_params = [Param(k, v) for k, v in params.items() if k not in sent_params]
    tags = [RunTag(k, _clip(v, MAX_TAG_VALUE)) for k, v in _tags(store, run, links).items()]
    counts: dict[str, int] = dict(sent.get("metrics") or {})
    metrics = []
    for key, series in metric_points(store, run["id"]).items():
        for step, value, at in series[counts.get(key, 0) :]:
            metrics.append(Metric(key, value, _ms(at), step))
        counts[key] = len(series)
    for batch in _batches(new_params, tags, metrics):
        server.call("log_batch", mlflow_id, **batch)
    return params, counts, len(metrics)


def _export_models(
    server: client.Server, store: Store, run_id: str, mlflow_id: str, sent: dict[str, str]
) -> dict[str, str]:
    """The model versions registered from a run, as versions of MLflow registered models of
    the same names (their source the exported artifact), with their aliases; returns which
    MLflow version each of ours is (``name/N`` -> MLflow's version number)."""
    versions = store.model_versions(run_id=run_id)
    for version in versions:
        ours = f"{version['name']}/{version['version']}"
        if ours in sent:
            continue
        try:
            server.client.get_registered_model(version["name"])
        except Exception:
            server.call("create_registered_model", version["name"])
        made = server.call(
            "create_model_version",
            version["name"],
            f"runs:/{mlflow_id}/artifacts/{_file_name(version['artifact'])}",
            run_id=mlflow_id,
            tags={
                client.TAG_PREFIX + "version": ours,
                client.TAG_PREFIX + "verdict": version["verdict"] or "never replayed",
                client.TAG_PREFIX + "data_hashes": json.dumps(
                    version["data_hashes"], sort_keys=True
                ),
                client.TAG_PREFIX + "hash": version["hash"],
            },
        )
        sent[ours] = str(made.version)
    for version in versions:
        for alias in version["aliases"]:
            number = sent[f"{version['name']}/{version['version']}"]
            server.call("set_registered_model_alias", version["name"], alias, number)
    return sent


def _exists(server: client.Server, mlflow_id: str) -> bool:
    try:
        found = server.client.get_run(mlflow_id)
    except Exception:
        return False
    return bool(found.info.lifecycle_stage != "deleted")


def _tags(store: Store, run: dict[str, Any], links: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The run's own tags, MLflow's source and note tags, our columns, replay verdicts."""
    tags = dict(run["tags"])
    tags[client.TAG_RUN_ID] = run["id"]
    for field in _RUN_FIELDS_AS_TAGS:
        if run.get(field) is not None:
            tags[client.TAG_PREFIX + field] = str(run[field])
    if run.get("linear") is not None:
        tags[client.TAG_PREFIX + "linear"] = "true" if run["linear"] else "false"
    if run.get("notebook"):
        tags["mlflow.source.name"] = str(run["notebook"])
        tags["mlflow.source.type"] = "NOTEBOOK"
    if run.get("note"):
        tags["mlflow.note.content"] = str(run["note"])
    parent = links.get(run.get("parent_id") or "")
    if parent is not None:
        tags["mlflow.parentRunId"] = parent["mlflow_run_id"]
    if run.get("parent_id"):
        tags[client.TAG_PREFIX + "parent_id"] = str(run["parent_id"])
    text = sorted(
        k for k, v in run["params"].items() if isinstance(v, str) and client.looks_json(v)
    )
    if text:
        tags[client.TAG_TEXT_PARAMS] = json.dumps(text)
    replays = store.replays(original_id=run["id"])
    if replays:
        latest = replays[0]
        tags[client.TAG_PREFIX + "replay.verdict"] = str(latest.get("verdict") or latest["state"])
        tags[client.TAG_PREFIX + "replay.summary"] = str(latest.get("summary") or "")
        tags[client.TAG_PREFIX + "replay.run_id"] = str(latest.get("replay_run_id") or "")
    made_by = store.replays(replay_run_id=run["id"])
    if made_by:
        origin = made_by[0]
        tags[client.TAG_PREFIX + "replay_of"] = origin["original_id"]
        tags[client.TAG_PREFIX + "replay.verdict"] = str(origin.get("verdict") or origin["state"])
    return tags


def _batches(params: list[Any], tags: list[Any], metrics: list[Any]) -> Iterator[dict[str, Any]]:
    """log_batch arguments within MLflow's limits: at most 100 params, 100 tags and 1000
    metrics, and 1000 of them in all, a request."""
    params, tags, metrics = list(params), list(tags), list(metrics)
    while params or tags or metrics:
        batch_params = params[:MAX_PARAMS_PER_BATCH]
        batch_tags = tags[:MAX_TAGS_PER_BATCH]
        room = min(
            MAX_METRICS_PER_BATCH, MAX_ENTITIES_PER_BATCH - len(batch_params) - len(batch_tags)
        )
        batch_metrics = metrics[:room]
        del params[: len(batch_params)], tags[: len(batch_tags)], metrics[: len(batch_metrics)]
        yield {"params": batch_params, "tags": batch_tags, "metrics": batch_metrics}


def _dataset_input(row: dict[str, Any]) -> Any:
    from mlflow.entities import Dataset, DatasetInput, InputTag

    source = {"path": row.get("path"), "kind": row.get("kind"), "shape": row.get("shape")}
    dataset = Dataset(
        name=row["name"],
        digest=str(row["hash"])[:36],
        source_type="local" if row.get("path") else "code",
        source=json.dumps(source),
        schema=json.dumps({"jupyter_mlops": row.get("schema")}),
        profile=json.dumps(row.get("profile"), allow_nan=True),
    )
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])


def _export_artifacts(
    server: client.Server, store: Store, run: dict[str, Any], mlflow_id: str, sent: set[str]
) -> set[str]:
    """Artifacts not sent before (by content hash), the cells and environment, and the saved
    notebook of an interactive run; returns the hashes sent so far."""
    from ..hashing import hash_bytes

    run_id = run["id"]
    with tempfile.TemporaryDirectory(prefix="jupyter-mlops-export-") as folder:
        root = Path(folder)
        files: list[tuple[Path, str]] = []
        for row in store.artifacts(run_id):
            blob = store.blob_path(row["hash"])
            if row["hash"] in sent or not blob.is_file():
                continue
            # Named as the run named them; executed notebooks go where MLflow's UI shows them.
            place = "notebooks" if str(row["name"]).endswith(".ipynb") else "artifacts"
            target = root / place / _file_name(row["name"])
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(blob.read_bytes())
            files.append((target, place))
            sent.add(row["hash"])
        environment = store.environment(run["env_id"]) if run.get("env_id") else None
        record = {
            client.CELLS_ARTIFACT: store.cells(run_id, prelude=True) + store.cells(run_id),
            client.ENVIRONMENT_ARTIFACT: environment,
        }
        for name, data in record.items():
            payload = json.dumps(data, default=str, allow_nan=True).encode()
            digest = f"{name}:{hash_bytes(payload)}"
            if digest in sent or not data:
                continue
            sent = {s for s in sent if not s.startswith(name + ":")} | {digest}
            target = root / name
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(payload)
            files.append((target, "jupyter_mlops"))
        notebook = _saved_notebook(store, run)
        if notebook is not None and run["kind"] == "interactive":
            digest = f"notebook:{_file_hash(notebook)}"
            if digest not in sent:
                sent = {s for s in sent if not s.startswith("notebook:")} | {digest}
                files.append((notebook, "notebooks"))
        for path, place in files:
            server.call("log_artifact", mlflow_id, str(path), place)
    return sent


def _saved_notebook(store: Store, run: dict[str, Any]) -> Path | None:
    notebook = run.get("notebook")
    if not notebook:
        return None
    path = Path(notebook)
    path = path if path.is_absolute() else store.directory.parent / path
    return path if path.is_file() else None


def _file_hash(path: Path) -> str:
    from ..hashing import hash_file

    return hash_file(path)


def _experiment_name(run: dict[str, Any]) -> str:
    notebook = run.get("notebook")
    return Path(notebook).stem if notebook else "jupyter-mlops"


def _experiment_id(server: client.Server, name: str) -> str:
    found = server.call("get_experiment_by_name", name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            server.call("restore_experiment", found.experiment_id)
        return str(found.experiment_id)
    return str(server.call("create_experiment", name))


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return _clip(text, MAX_PARAM_VALUE)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _file_name(name: str) -> str:
    cleaned = re.sub(r"[^\w.\-]+", "_", name).strip("._") or "artifact"
    return cleaned[:200]


def _bar(progress: bool | Callable[[int, int], None], total: int, label: str) -> Any:
    if progress is not True:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="run", desc=label)
