"""The model registry end to end: register, alias, load and predict; refusing a run that
does not reproduce, from Python, the command line and the magics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import jupyter_mlops as mlops
from jupyter_mlops.errors import InvalidValueError, ModelNotFoundError
from jupyter_mlops.replays import replay

from .test_replay import START, run_original, write_notebook
from .test_sweep import mlops_cli


def trained_run(name: str, c: float, tmp_path: Path) -> str:
    """A run that records its training data and logs its fitted model."""
    X, y = load_iris(return_X_y=True)
    (tmp_path / "iris.csv").write_text("\n".join(",".join(map(str, row)) for row in X))
    with mlops.start_run(name=name) as run:
        run.log_params({"C": c})
        run.log_data("iris", tmp_path / "iris.csv")
        model = LogisticRegression(C=c, max_iter=500).fit(X, y)
        run.log_artifact(model, name="model")
        run.log_artifact({"note": "not a model"}, name="extras.json")
    return run.id


def test_versions_aliases_and_loading(tmp_path: Path) -> None:
    first = trained_run("weak", 0.01, tmp_path)
    second = trained_run("strong", 10.0, tmp_path)
    v1 = mlops.register_model("iris", first)
    v2 = mlops.register_model("iris", "strong", artifact="model")
    assert (v1["version"], v2["version"]) == (1, 2)
    assert v1["run_id"] == first and v1["artifact"] == "model" and v1["verdict"] is None
    assert set(v1["data_hashes"]) == {"iris"} and len(v1["data_hashes"]["iris"]) >= 16
    mlops.set_alias("iris", 1, "prod")
    mlops.set_alias("iris", 2, "staging")

    X, _ = load_iris(return_X_y=True)
    prod = mlops.load_model("iris@prod")
    assert prod.C == 0.01
    assert prod.predict(X[:3]).tolist() == [0, 0, 0]
    assert mlops.load_model("iris/2").C == 10.0
    assert mlops.load_model("iris").C == 10.0  # the newest
    mlops.set_alias("iris", 2, "prod")  # moved, not added
    assert mlops.load_model("iris@prod").C == 10.0
    listed = mlops.models("iris")
    assert [(v["version"], v["aliases"]) for v in listed] == [(1, []), (2, ["prod", "staging"])]
    # The version keeps its bytes when its run is deleted (blobs are content-addressed).
    mlops.delete_run(second)
    assert mlops.load_model("iris@staging").C == 10.0

    with pytest.raises(ModelNotFoundError, match=r"'iris' has no alias 'canary' \(prod, staging\)"):
        mlops.load_model("iris@canary")
    with pytest.raises(ModelNotFoundError, match="has versions 1 to 2"):
        mlops.load_model("iris/7")
    with pytest.raises(ModelNotFoundError, match="no version of 'nope'"):
        mlops.load_model("nope")
    with pytest.raises(ModelNotFoundError, match="iris/9"):
        mlops.set_alias("iris", 9, "prod")
    with pytest.raises(InvalidValueError, match="not a number"):
        mlops.set_alias("iris", 1, "3")
    with pytest.raises(InvalidValueError, match="may not hold '@'"):
        mlops.register_model("iris@x", first)


def test_which_artifact_is_the_model(tmp_path: Path) -> None:
    with mlops.start_run(name="no-model") as run:
        run.log_artifact({"a": 1}, name="settings.json")
        (tmp_path / "readme.txt").write_text("hi")
        run.log_artifact(tmp_path / "readme.txt")
    with pytest.raises(InvalidValueError, match="has no model artifact"):
        mlops.register_model("m", run.id)
    with mlops.start_run(name="two-models") as run:
        run.log_artifact({"weights": [1, 2]}, name="plain data")
        run.log_artifact(LogisticRegression(C=1.0), name="a")
        run.log_artifact(LogisticRegression(C=2.0), name="b")
    with pytest.raises(InvalidValueError, match=r"several models \(a, b\); name the artifact"):
        mlops.register_model("m", run.id)
    assert mlops.register_model("m", run.id, artifact="b")["artifact"] == "b"
    with pytest.raises(InvalidValueError, match="no such artifact"):
        mlops.register_model("m", run.id, artifact="c")


def test_cli_register_alias_models(tmp_path: Path) -> None:
    run_id = trained_run("cli", 1.0, tmp_path)
    done = mlops_cli("register", run_id[:8], "flowers", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == 1
    refused = mlops_cli("register", run_id, "flowers", "--require-reproduced")
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert "has no replay" in refused.stderr and "--require-reproduced" in refused.stderr
    assert mlops_cli("alias", "flowers", "1", "prod").stdout.strip() == (
        "flowers@prod is now flowers/1"
    )
    table = mlops_cli("models").stdout.splitlines()
    assert table[0].split()[:3] == ["model", "version", "aliases"]
    assert table[2].split()[:3] == ["flowers", "1", "prod"]
    shape = json.loads(mlops_cli("models", "flowers", "--format", "json").stdout)
    assert shape["count"] == 1
    assert set(shape["versions"][0]) >= {
        "name", "version", "aliases", "run_id", "artifact", "hash", "kind", "verdict",
        "data_hashes", "created",
    }  # fmt: skip
    shown = mlops_cli("show", run_id).stdout
    assert "registered as" in shown
    assert next(x for x in shown.splitlines() if x.startswith("flowers/1")).split() == [
        "flowers/1",
        "prod",
        "model",
    ]
    assert json.loads(mlops_cli("show", run_id, "--format", "json").stdout)["registered"][0][
        "aliases"
    ] == ["prod"]
    missing = mlops_cli("alias", "flowers", "4", "prod")
    assert missing.returncode == 2 and "no registered model 'flowers/4'" in missing.stderr
    assert mlops_cli("alias", "flowers", "1", "prod", "--remove").returncode == 0
    assert mlops.models("flowers")[0]["aliases"] == []


def test_track_register_in_a_notebook(shell: Any) -> None:
    shell.run_cell("%track start --name magic-model")
    shell.run_cell("model = [1, 2, 3]\n%track artifact model")
    shell.run_cell("%track end")
    cell = shell.run_cell("%track register listy")
    assert "has no model artifact" in str(cell.error_in_exec)  # a list is data, not a model
    cell = shell.run_cell("%track register listy model")
    assert cell.error_in_exec is None, cell.error_in_exec
    assert mlops.load_model("listy/1") == [1, 2, 3]
    cell = shell.run_cell("%track register listy model --require-reproduced")
    assert "has no replay" in str(cell.error_in_exec)


TRAIN = [
    START.format(name="{name}"),
    "import numpy as np\n"
    "from sklearn.datasets import load_iris\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "X, y = load_iris(return_X_y=True)\n"
    "rng = np.random.default_rng({seed})\n"
    "noise = rng.normal(size=X.shape) * 0.5",
    "model = LogisticRegression(max_iter=500).fit(X + noise, y)\n"
    "acc = float((model.predict(X) == y).mean())\n"
    "%track metric acc\n%track artifact model",
    "%track end",
]


@pytest.mark.slow
def test_require_reproduced_refuses_and_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, seed in (("seeded-model", "0"), ("unseeded-model", "")):
        cells = [cell.format(name=name, seed=seed) for cell in TRAIN]
        run_original(write_notebook(tmp_path / f"{name}.ipynb", cells), monkeypatch)
        replay(name, progress=False)
    assert mlops.get_run("seeded-model").replays()[0]["verdict"] == "reproduced"
    assert mlops.get_run("unseeded-model").replays()[0]["verdict"] == "diverged"

    refused = mlops_cli("register", "unseeded-model", "iris", "--require-reproduced")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "its latest replay diverged" in refused.stderr
    assert mlops.models() == []
    accepted = mlops_cli("register", "seeded-model", "iris", "--require-reproduced")
    assert accepted.returncode == 0, accepted.stderr
    assert "verdict: reproduced" in accepted.stdout
    version = mlops.models("iris")[0]
    assert version["verdict"] == "reproduced"
    X, y = load_iris(return_X_y=True)
    assert (mlops.load_model("iris/1").predict(X) == y).mean() > 0.8


@pytest.mark.slow
def test_versions_and_aliases_go_with_the_mlflow_export(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from benchmarks.bench_scale import mlflow_server
    from jupyter_mlops.mlflow_bridge import TAG_PREFIX, export_mlflow

    first = trained_run("weak", 0.01, tmp_path)
    trained_run("strong", 10.0, tmp_path)
    mlops.register_model("iris", first)
    mlops.register_model("iris", "strong")
    mlops.set_alias("iris", 2, "prod")
    (tmp_path / "mlflow").mkdir()
    with mlflow_server(tmp_path / "mlflow") as uri:
        export_mlflow(uri, experiment="registry")
        export_mlflow(uri, experiment="registry")  # again: no version made twice
        client = MlflowClient(tracking_uri=uri)
        versions = client.search_model_versions("name = 'iris'")
        assert sorted(v.tags[TAG_PREFIX + "version"] for v in versions) == ["iris/1", "iris/2"]
        prod = client.get_model_version_by_alias("iris", "prod")
        assert prod.tags[TAG_PREFIX + "version"] == "iris/2"
        assert prod.source.endswith("/artifacts/model")
        assert prod.tags[TAG_PREFIX + "verdict"] == "never replayed"
