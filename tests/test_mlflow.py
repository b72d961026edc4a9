"""Sharing through MLflow: a real ``mlflow server`` (sqlite backend) on a free local port."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import jupyter_mlops as mlops
from benchmarks.bench_scale import free_port, mlflow_server
from jupyter_mlops.compare import diff_runs
from jupyter_mlops.errors import MlopsError
from jupyter_mlops.mlflow_bridge import CELLS_ARTIFACT, TAG_RUN_ID, export_mlflow, import_mlflow
from jupyter_mlops.store import Store, open_store

from .conftest import PYTHON, child_env
from .test_merge import record_runs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server for this module, stopped after it."""
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as uri:
        yield uri


def long_run(store: Store) -> str:
    """A run with more params and points than one MLflow request may carry."""
    with mlops.start_run(name="long", store=store, tags={"team": "nlp"}) as run:
        run.log_params({f"p{i:03d}": i / 10 for i in range(150)} | {"model": "rf", "code": "3"})
        for step in range(2_500):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
            if step % 10 == 0:
                run.log_metric("val_loss", 2.0 / (step + 1), step=step)
        return run.id


def test_export_reads_back_updates_without_duplicates_and_imports_the_same(
    mlflow_uri: str, shell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    source = record_runs(shell, monkeypatch, tmp_path / "alice" / ".mlops", 0.5, 2.0)
    long_id = long_run(source)
    ids = [r["id"] for r in source.list_runs()]
    assert len(ids) == 3

    result = export_mlflow(mlflow_uri, experiment="merge-team", store=source)
    assert (result["created"], result["updated"]) == (3, 0)
    assert result["metric_points"] == 2_500 + 250 + 2 * 6
    client = MlflowClient(tracking_uri=mlflow_uri)
    experiment = client.get_experiment_by_name("merge-team")
    found = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags[TAG_RUN_ID] for r in found) == sorted(ids)
    by_id = {r.data.tags[TAG_RUN_ID]: r for r in found}

    long = by_id[long_id]
    assert len(long.data.params) == 152 and long.data.params["p149"] == "14.9"
    assert long.data.params["model"] == "rf" and long.data.tags["team"] == "nlp"
    history = client.get_metric_history(long.info.run_id, "loss")
    assert sorted((p.step, p.value) for p in history) == [(s, 1.0 / (s + 1)) for s in range(2_500)]
    assert len(client.get_metric_history(long.info.run_id, "val_loss")) == 250
    assert long.info.status == "FINISHED"

    fit = by_id[mlops.get_run("fit-0.5", store=source).id]
    assert fit.data.params == {"C": "0.5", "solver": "lbfgs"}
    assert fit.data.metrics["acc"] == mlops.get_run("fit-0.5", store=source).metrics["acc"]
    assert fit.data.tags[TAG_RUN_ID] == mlops.get_run("fit-0.5", store=source).id
    names = {a.path for a in client.list_artifacts(fit.info.run_id, "artifacts")}
    assert names == {"artifacts/model", "artifacts/iris.csv"}
    assert CELLS_ARTIFACT in {
        a.path for a in client.list_artifacts(fit.info.run_id, "jupyter_mlops")
    }
    dataset = fit.inputs.dataset_inputs[0].dataset
    recorded = mlops.get_run("fit-0.5", store=source).datasets()[0]
    assert (dataset.name, dataset.digest) == ("frame", recorded["hash"][:36])

    again = export_mlflow(mlflow_uri, experiment="merge-team", store=source)
    assert (again["created"], again["updated"], again["metric_points"]) == (0, 3, 0)
    assert again["calls"] < result["calls"]
    assert len(client.search_runs([experiment.experiment_id])) == 3
    assert len(client.get_metric_history(long.info.run_id, "loss")) == 2_500

    fresh = open_store(tmp_path / "fresh" / ".mlops")
    brought = import_mlflow(mlflow_uri, experiment="merge-team", store=fresh)
    assert brought["runs"] == 3 and brought["metric_points"] == result["metric_points"]
    for run_id in ids:
        original = mlops.get_run(run_id, store=source).to_dict(full=True)
        copy = mlops.get_run(run_id, store=fresh).to_dict(full=True)
        diff = diff_runs(original, copy)
        assert diff["same"], diff
        assert copy["params"] == original["params"]
        assert copy["metric_series"].keys() == original["metric_series"].keys()
        assert copy["status"] == "finished" and copy["origin"].startswith("mlflow:")
    assert import_mlflow(mlflow_uri, experiment="merge-team", store=fresh)["runs"] == 0
    # Exported from the store it would go back into: nothing to bring.
    assert import_mlflow(mlflow_uri, experiment="merge-team", store=source)["runs"] == 0


def test_a_server_that_is_down_is_one_line(tmp_path: Path, store: Store) -> None:
    with mlops.start_run(name="solo", store=store) as run:
        run.log_metric("acc", 0.5)
    down = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(MlopsError, match="cannot be reached") as caught:
        export_mlflow(down, store=store)
    assert "\n" not in str(caught.value)
    done = subprocess.run(
        [PYTHON, "-m", "jupyter_mlops.cli", "export", "mlflow", "--tracking-uri", down],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "cannot be reached" in done.stderr


def test_without_the_extra_one_line_says_what_to_install(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(MlopsError, match=r'pip install "jupyter-mlops\[mlflow\]"'):
        import_mlflow("http://127.0.0.1:1", store=store)


def test_exporting_a_run_again_sends_what_is_new_to_the_same_mlflow_run(
    mlflow_uri: str, store: Store
) -> None:
    from mlflow.tracking import MlflowClient

    run = mlops.start_run(name="growing", store=store)
    for step in range(3):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    first = export_mlflow(mlflow_uri, experiment="growing", store=store)
    assert (first["created"], first["metric_points"]) == (1, 3)
    for step in range(3, 5):
        run.log_metric("loss", 1.0 / (step + 1), step=step)
    run.log_param("lr", 0.1)
    run.end("failed")
    second = export_mlflow(mlflow_uri, experiment="growing", store=store)
    assert (second["created"], second["updated"], second["metric_points"]) == (0, 1, 2)

    client = MlflowClient(tracking_uri=mlflow_uri)
    [found] = client.search_runs([client.get_experiment_by_name("growing").experiment_id])
    assert sorted(p.step for p in client.get_metric_history(found.info.run_id, "loss")) == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert found.data.params == {"lr": "0.1"} and found.info.status == "FAILED"


def test_a_server_that_refuses_is_one_line_and_what_was_exported_stays(
    mlflow_uri: str, store: Store
) -> None:
    from mlflow.tracking import MlflowClient

    with mlops.start_run(name="fine", store=store) as run:
        run.log_metric("acc", 0.9)
    with mlops.start_run(name="odd", store=store) as run:
        run.log_metric("acc@top5", 0.7)
    with pytest.raises(MlopsError, match="refused log_batch") as caught:
        export_mlflow(mlflow_uri, experiment="refusing", store=store)
    assert "\n" not in str(caught.value) and "1 run(s) done before" in str(caught.value)
    client = MlflowClient(tracking_uri=mlflow_uri)
    experiment = client.get_experiment_by_name("refusing").experiment_id
    names = sorted(r.info.run_name for r in client.search_runs([experiment]))
    assert names == ["fine", "odd"]
    with pytest.raises(MlopsError, match="refused"):
        export_mlflow(mlflow_uri, experiment="refusing", store=store)
    assert len(client.search_runs([experiment])) == 2
