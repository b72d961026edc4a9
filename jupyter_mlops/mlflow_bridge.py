"""Sharing runs through an MLflow tracking server, with MLflow's own client.

Export sends a run's params, metric series (with steps and times, in batches within MLflow's
request limits), tags, status and times, the notebook source tags MLflow's UI shows, datasets
as dataset inputs, artifacts, the recorded cells, the environment and the executed notebook,
and replay verdicts as tags. The MLflow run each run went to is kept in the store with what
was sent, so exporting again sends only what is new. Import brings runs, params, metric
histories and tags (and, for runs this tracker exported, their cells, datasets and
environment) into the store. MLflow is imported only here, and only when used.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import InvalidValueError, MlopsError
from .store import Store, insert_imported_run, metric_points, mlflow_links, open_store
from .store import set_mlflow_link as _set_link
from .vocabulary import KINDS

__all__ = ["export_mlflow", "import_mlflow", "mlflow_text"]

# MLflow's limits on one log_batch request, and on the length of values.
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
# Our tags on an MLflow run; the ``mlflow.*`` ones are those MLflow's UI reads.
TAG_PREFIX = "jupyter_mlops."
TAG_RUN_ID = TAG_PREFIX + "run_id"
TAG_TEXT_PARAMS = TAG_PREFIX + "text_params"
CELLS_ARTIFACT = "jupyter_mlops/cells.json"
ENVIRONMENT_ARTIFACT = "jupyter_mlops/environment.json"
_STATUS_TO_MLFLOW = {
    "running": "RUNNING",
    "finished": "FINISHED",
    "failed": "FAILED",
    "crashed": "FAILED",
    "killed": "KILLED",
}
_STATUS_FROM_MLFLOW = {
    "RUNNING": "running",
    "SCHEDULED": "running",
    "FINISHED": "finished",
    "FAILED": "failed",
    "KILLED": "killed",
}
_RUN_FIELDS_AS_TAGS = ("kind", "sweep_id", "host", "kernel", "origin", "notebook", "error")


def _mlflow() -> Any:
    """The mlflow package, or one line saying which extra to install."""
    # MLflow's client prints a link to every run it ends; an export of many runs is one line.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    try:
        import mlflow
    except ImportError:
        raise MlopsError(
            "sharing runs through MLflow needs the mlflow extra: "
            'pip install "jupyter-mlops[mlflow]"'
        ) from None
    return mlflow


def _tracking_uri(given: str | None) -> str:
    uri = given or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise InvalidValueError(
            "tracking uri", "give the MLflow server with --tracking-uri (or MLFLOW_TRACKING_URI)"
        )
    return uri.rstrip("/")


def _reachable(uri: str) -> None:
    """Fail in one line at once when an HTTP tracking server does not answer (MLflow's client
    would retry for minutes first)."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri + "/health", timeout=10) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:
        if exc.code < 500 and exc.code != 404:
            raise MlopsError(f"the MLflow server at {uri} refused: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MlopsError(f"the MLflow server at {uri} cannot be reached ({reason})") from None


class _Server:
    """An MLflow client that counts its calls and says a server's refusal in one line."""

    def __init__(self, uri: str) -> None:
        _mlflow()
        from mlflow.tracking import MlflowClient

        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        self.calls = 0
        self.done = 0

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        try:
            return getattr(self.client, name)(*args, **kwargs)
        except MlopsError:
            raise
        except Exception as exc:
            message = " ".join(str(exc).split())[:300]
            raise MlopsError(
                f"the MLflow server at {self.uri} refused {name}: {message}; "
                f"{self.done} run(s) done before stay done, run it again to go on"
            ) from None


# -- export --------------------------------------------------------------------------------


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
    from .run import list_runs

    uri = _tracking_uri(tracking_uri)
    _mlflow()
    store = store or open_store()
    runs = list_runs(where=where, store=store)
    if run_ids is not None:
        wanted = set(run_ids)
        runs = [run for run in runs if run["id"] in wanted]
    runs.sort(key=lambda run: run["start_time"])  # parents before the replays of them
    _reachable(uri)
    server = _Server(uri)
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
    server: _Server,
    store: Store,
    run: dict[str, Any],
    experiment_id: str,
    link: dict[str, Any] | None,
    links: dict[str, dict[str, Any]],
) -> tuple[bool, dict[str, Any]]:
    from mlflow.entities import Metric, Param, RunTag

    run_id = run["id"]
    sent: dict[str, Any] = dict(link["sent"]) if link and link["direction"] == "export" else {}
    mlflow_id = link["mlflow_run_id"] if link else None
    if mlflow_id is not None and not _exists(server, mlflow_id):
        mlflow_id, sent = None, {}  # deleted on the server: make it again
    new = mlflow_id is None
    if mlflow_id is None:
        created = server.call(
            "create_run",
            experiment_id,
            start_time=_ms(run["start_time"]),
            run_name=run["name"],
            tags={TAG_RUN_ID: run_id},
        )
        mlflow_id = created.info.run_id
        # Remembered at once: a refusal later leaves a run that exporting again completes.
        _set_link(store, run_id, server.uri, mlflow_id, experiment_id, "export", {})
    params = {key: _param_text(value) for key, value in run["params"].items()}
    sent_params = set(sent.get("params") or [])
    new_params = [Param(k, v) for k, v in params.items() if k not in sent_params]
    tags = [RunTag(k, _clip(v, MAX_TAG_VALUE)) for k, v in _tags(store, run, links).items()]
    counts: dict[str, int] = dict(sent.get("metrics") or {})
    metrics = []
    for key, series in metric_points(store, run_id).items():
        for step, value, at in series[counts.get(key, 0) :]:
            metrics.append(Metric(key, value, _ms(at), step))
        counts[key] = len(series)
    for batch in _batches(new_params, tags, metrics):
        server.call("log_batch", mlflow_id, **batch)
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
        params=sorted(sent_params | set(params)),
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
        "new_points": len(metrics),
    }


def _export_models(
    server: _Server, store: Store, run_id: str, mlflow_id: str, sent: dict[str, str]
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
                TAG_PREFIX + "version": ours,
                TAG_PREFIX + "verdict": version["verdict"] or "never replayed",
                TAG_PREFIX + "data_hashes": json.dumps(version["data_hashes"], sort_keys=True),
                TAG_PREFIX + "hash": version["hash"],
            },
        )
        sent[ours] = str(made.version)
    for version in versions:
        for alias in version["aliases"]:
            number = sent[f"{version['name']}/{version['version']}"]
            server.call("set_registered_model_alias", version["name"], alias, number)
    return sent


def _exists(server: _Server, mlflow_id: str) -> bool:
    try:
        found = server.client.get_run(mlflow_id)
    except Exception:
        return False
    return bool(found.info.lifecycle_stage != "deleted")


def _tags(store: Store, run: dict[str, Any], links: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The run's own tags, MLflow's source and note tags, our columns, replay verdicts."""
    tags = dict(run["tags"])
    tags[TAG_RUN_ID] = run["id"]
    for field in _RUN_FIELDS_AS_TAGS:
        if run.get(field) is not None:
            tags[TAG_PREFIX + field] = str(run[field])
    if run.get("linear") is not None:
        tags[TAG_PREFIX + "linear"] = "true" if run["linear"] else "false"
    if run.get("notebook"):
        tags["mlflow.source.name"] = str(run["notebook"])
        tags["mlflow.source.type"] = "NOTEBOOK"
    if run.get("note"):
        tags["mlflow.note.content"] = str(run["note"])
    parent = links.get(run.get("parent_id") or "")
    if parent is not None:
        tags["mlflow.parentRunId"] = parent["mlflow_run_id"]
    if run.get("parent_id"):
        tags[TAG_PREFIX + "parent_id"] = str(run["parent_id"])
    text = sorted(k for k, v in run["params"].items() if isinstance(v, str) and _looks_json(v))
    if text:
        tags[TAG_TEXT_PARAMS] = json.dumps(text)
    replays = store.replays(original_id=run["id"])
    if replays:
        latest = replays[0]
        tags[TAG_PREFIX + "replay.verdict"] = str(latest.get("verdict") or latest["state"])
        tags[TAG_PREFIX + "replay.summary"] = str(latest.get("summary") or "")
        tags[TAG_PREFIX + "replay.run_id"] = str(latest.get("replay_run_id") or "")
    made_by = store.replays(replay_run_id=run["id"])
    if made_by:
        tags[TAG_PREFIX + "replay_of"] = made_by[0]["original_id"]
        tags[TAG_PREFIX + "replay.verdict"] = str(made_by[0].get("verdict") or made_by[0]["state"])
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
    server: _Server, store: Store, run: dict[str, Any], mlflow_id: str, sent: set[str]
) -> set[str]:
    """Artifacts not sent before (by content hash), the cells and environment, and the saved
    notebook of an interactive run; returns the hashes sent so far."""
    from .hashing import hash_bytes

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
        record = {
            CELLS_ARTIFACT: store.cells(run_id, prelude=True) + store.cells(run_id),
            ENVIRONMENT_ARTIFACT: store.environment(run["env_id"]) if run.get("env_id") else None,
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
    from .hashing import hash_file

    return hash_file(path)


# -- import --------------------------------------------------------------------------------


def import_mlflow(
    tracking_uri: str | None = None,
    *,
    experiment: str | None = None,
    progress: bool | Callable[[int, int], None] = False,
    store: Store | None = None,
) -> dict[str, Any]:
    """Bring the runs of an MLflow server (one experiment, or all) into the store: params,
    metric histories, tags, status and times; runs brought before are left as they are."""
    uri = _tracking_uri(tracking_uri)
    _mlflow()
    store = store or open_store()
    _reachable(uri)
    server = _Server(uri)
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
        ours = mlflow_run.data.tags.get(TAG_RUN_ID)
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


def _import_run(server: _Server, store: Store, mlflow_run: Any, run_id: str) -> int:
    info, data = mlflow_run.info, mlflow_run.data
    tags = dict(data.tags)
    ours = TAG_RUN_ID in tags
    text_params = set(json.loads(tags.get(TAG_TEXT_PARAMS, "[]")))
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
    kind = tags.get(TAG_PREFIX + "kind", "script")
    row = {
        "id": run_id,
        "name": info.run_name or tags.get("mlflow.runName") or info.run_id[:12],
        "status": _STATUS_FROM_MLFLOW.get(info.status, "finished"),
        "kind": kind if kind in KINDS else "script",
        "notebook": tags.get(TAG_PREFIX + "notebook") or tags.get("mlflow.source.name"),
        "start_time": (info.start_time or 0) / 1000,
        "end_time": info.end_time / 1000 if info.end_time else None,
        "host": tags.get(TAG_PREFIX + "host"),
        "kernel": tags.get(TAG_PREFIX + "kernel"),
        "sweep_id": tags.get(TAG_PREFIX + "sweep_id"),
        "note": tags.get("mlflow.note.content"),
        "error": tags.get(TAG_PREFIX + "error"),
        "origin": tags.get(TAG_PREFIX + "origin") or f"mlflow:{server.uri}#{info.run_id}",
    }
    if ours and store.run_exists(tags.get(TAG_PREFIX + "parent_id", "")):
        row["parent_id"] = tags[TAG_PREFIX + "parent_id"]
    own_tags = {k: v for k, v in tags.items() if not k.startswith(("mlflow.", TAG_PREFIX))}
    if ours:
        row["env_id"] = _import_record(server, store, mlflow_run, run_id)
    insert_imported_run(store, row, params, own_tags, metrics)
    if ours:
        _import_details(server, store, mlflow_run, run_id)
    _set_link(store, run_id, server.uri, info.run_id, info.experiment_id, "import", {})
    return len(metrics)


def _import_record(server: _Server, store: Store, mlflow_run: Any, run_id: str) -> str | None:
    """The environment an exported run carried (stored now; its cells after the run row)."""
    environment = _download_json(server, mlflow_run.info.run_id, ENVIRONMENT_ARTIFACT)
    if not isinstance(environment, dict):
        return None
    from .hashing import hash_bytes

    env_id = hash_bytes(json.dumps(environment, sort_keys=True, default=str).encode())
    store.put_environment(env_id, environment)
    return env_id


def _import_details(server: _Server, store: Store, mlflow_run: Any, run_id: str) -> None:
    """Cells and datasets of a run this tracker exported."""
    cells = _download_json(server, mlflow_run.info.run_id, CELLS_ARTIFACT)
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


def _download_json(server: _Server, mlflow_id: str, name: str) -> Any:
    with tempfile.TemporaryDirectory(prefix="jupyter-mlops-import-") as folder:
        try:
            path = server.client.download_artifacts(mlflow_id, name, folder)
        except Exception:
            return None  # not one of ours, or artifacts not kept
        server.calls += 1
        return _json_or(Path(path).read_text(encoding="utf-8"), None)


# -- values --------------------------------------------------------------------------------


def mlflow_text(result: dict[str, Any]) -> str:
    """One line for people: what an export or import did."""
    if result["direction"] == "export":
        return (
            f"{result['runs']} run(s) exported to {result['tracking_uri']} "
            f"({result['created']} new, {result['updated']} updated), "
            f"{result['metric_points']} new metric point(s) in {result['calls']} call(s)"
        )
    return (
        f"{result['runs']} run(s) imported from {result['tracking_uri']} "
        f"({result['already_here']} already here), {result['metric_points']} metric point(s)"
    )


def _experiment_name(run: dict[str, Any]) -> str:
    notebook = run.get("notebook")
    return Path(notebook).stem if notebook else "jupyter-mlops"


def _experiment_id(server: _Server, name: str) -> str:
    found = server.call("get_experiment_by_name", name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            server.call("restore_experiment", found.experiment_id)
        return str(found.experiment_id)
    return str(server.call("create_experiment", name))


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return _clip(text, MAX_PARAM_VALUE)


def _param_value(text: str) -> Any:
    """A param as MLflow keeps it (text) read back as the value it stands for."""
    return _json_or(text, text) if _looks_json(text) else text


def _looks_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _json_or(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


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
