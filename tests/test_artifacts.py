"""Artifacts come back out: from Python, from the command line and through the server."""

from __future__ import annotations

import json
import pickle
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression

import jupyter_mlops as mlops
from jupyter_mlops.errors import InvalidValueError
from jupyter_mlops.store import Store, open_store

from .conftest import PYTHON, child_env


def mlops_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """``jupyter mlops ARGS`` in a child process, as a shell runs it."""
    return subprocess.run(
        [PYTHON, "-m", "jupyter_mlops.cli", *args],
        capture_output=True,
        env=child_env(),
        cwd=cwd,
        timeout=120,
    )


def logged_run(folder: Path) -> str:
    """A run with a CSV file, a pickled model file, a JSON file and a pickled object."""
    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    (folder / "train.csv").write_text("x,y\n0,0\n1,0\n2,1\n3,1\n")
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    (folder / "config.json").write_text('{"lr": 0.1, "layers": [3, 2]}')
    with mlops.start_run(name="with-artifacts") as run:
        run.log_artifact(folder / "train.csv")
        run.log_artifact(folder / "model.pkl")
        run.log_artifact(folder / "config.json")
        run.log_artifact({"classes": [0, 1]}, name="labels")
    return run.id


def test_each_kind_loads_back_with_its_loader(tmp_path: Path) -> None:
    run_id = logged_run(tmp_path)
    record = mlops.get_run(run_id)
    csv = record.artifact("train.csv")
    assert csv.read_bytes() == (tmp_path / "train.csv").read_bytes()
    assert csv.path.is_file() and csv.path.is_relative_to(record.store.blobs)
    assert csv.load() == csv.path  # a file with no loader of its own is its stored copy
    model = record.artifact("model.pkl").load()
    assert model.predict([[0.2], [2.8]]).tolist() == [0, 1]
    assert record.artifact("config.json").load() == {"lr": 0.1, "layers": [3, 2]}
    assert record.artifact("labels").load() == {"classes": [0, 1]}
    with pytest.raises(InvalidValueError, match=r"no such artifact .*config\.json"):
        record.artifact("nothing")


def test_a_missing_stored_copy_is_named(tmp_path: Path) -> None:
    record = mlops.get_run(logged_run(tmp_path))
    artifact = record.artifact("config.json")
    artifact.path.unlink()
    with pytest.raises(InvalidValueError, match="stored copy is missing"):
        artifact.read_bytes()
    # Listings say so too, rather than list it as if it were there.
    present = {row["name"]: row["present"] for row in record.artifacts()}
    assert present == {"train.csv": True, "model.pkl": True, "config.json": False, "labels": True}
    listed = mlops_cli("artifact", record.id, "--list")
    assert listed.returncode == 0 and b"(missing)" in listed.stdout
    assert listed.stdout.count(b"(missing)") == 1


@pytest.mark.slow
def test_cli_lists_writes_and_refuses(tmp_path: Path) -> None:
    run_id = logged_run(tmp_path)
    listed = mlops_cli("artifact", run_id[:8], "--list")
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.decode().splitlines()[2:]]
    assert names == ["train.csv", "model.pkl", "config.json", "labels"]
    shape = json.loads(mlops_cli("artifact", run_id, "--list", "--format", "json").stdout)
    assert shape["run"] == run_id
    assert [a["name"] for a in shape["artifacts"]] == names
    assert set(shape["artifacts"][0]) >= {"name", "kind", "size_bytes", "hash", "source"}

    out = tmp_path / "out"
    out.mkdir()
    written = mlops_cli("artifact", "with-artifacts", "model.pkl", "-o", str(out))
    assert written.returncode == 0, written.stderr
    assert (out / "model.pkl").read_bytes() == (tmp_path / "model.pkl").read_bytes()
    again = mlops_cli("artifact", "with-artifacts", "model.pkl", "-o", str(out))
    assert again.returncode == 2
    assert again.stderr.decode().count("\n") == 1 and "--force" in again.stderr.decode()
    here = mlops_cli("artifact", run_id, "train.csv", cwd=out)
    assert (out / "train.csv").read_text().startswith("x,y")
    assert here.returncode == 0
    piped = mlops_cli("artifact", run_id, "config.json", "-o", "-")
    assert json.loads(piped.stdout) == {"lr": 0.1, "layers": [3, 2]}
    missing = mlops_cli("artifact", run_id, "nope")
    assert missing.returncode == 2
    assert missing.stderr.decode().startswith("Error: ") and "nope" in missing.stderr.decode()
    assert missing.stderr.decode().count("\n") == 1


# -- the server's download --------------------------------------------------------------------


@pytest.fixture
def served_run(server_root: Path, server_store: Store) -> str:
    """A run with artifacts in the store the server finds from its root."""
    root, store = server_root, server_store
    (root / "report.csv").write_text("a,b\n1,2\n")
    (root / "naïve model.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    with mlops.start_run(name="served", store=store) as run:
        run.log_artifact(root / "report.csv")
        run.log_artifact(root / "naïve model.pkl")
        run.log_artifact({"k": 1}, name="state")
    return run.id


async def fetch(jp_fetch: Any, *parts: str, **kwargs: Any) -> Any:
    return await jp_fetch("jupyter-mlops/api", *parts, raise_error=False, **kwargs)


async def test_download_is_an_attachment_with_its_type(jp_fetch: Any, served_run: str) -> None:
    response = await fetch(jp_fetch, "runs", served_run, "artifacts", "report.csv")
    assert response.code == 200
    assert response.body == b"a,b\n1,2\n"
    assert response.headers["Content-Type"] == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="report.csv"')
    model = await fetch(jp_fetch, "runs", served_run, "artifacts", "naïve model.pkl")
    assert model.code == 200 and pickle.loads(model.body) == [1, 2, 3]
    assert model.headers["Content-Type"] == "application/octet-stream"
    disposition = model.headers["Content-Disposition"]
    assert 'filename="na_ve model.pkl"' in disposition
    assert "filename*=UTF-8''na%C3%AFve%20model.pkl" in disposition
    state = await fetch(jp_fetch, "runs", served_run, "artifacts", "state")
    assert pickle.loads(state.body) == {"k": 1}


async def test_download_errors_are_json(jp_fetch: Any, served_run: str) -> None:
    missing = await fetch(jp_fetch, "runs", served_run, "artifacts", "nothing")
    assert missing.code == 400 and json.loads(missing.body)["error"] == "invalid_value"
    unknown = await fetch(jp_fetch, "runs", "0" * 32, "artifacts", "report.csv")
    assert unknown.code == 404 and json.loads(unknown.body)["error"] == "run_not_found"
    named = await fetch(jp_fetch, "runs", "served", "artifacts", "report.csv")
    assert named.code == 400 and json.loads(named.body)["error"] == "bad_run_id"


async def test_download_needs_the_token(jp_fetch: Any, served_run: str) -> None:
    refused = await fetch(
        jp_fetch, "runs", served_run, "artifacts", "report.csv", headers={"Authorization": ""}
    )
    assert refused.code == 403


async def test_a_blob_outside_the_store_is_not_served(
    jp_fetch: Any, served_run: str, jp_root_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    store = open_store(Path(jp_root_dir) / ".mlops")
    blob = mlops.get_run(served_run, store=store).artifact("report.csv").path
    outside = tmp_path_factory.mktemp("outside") / "secret.csv"
    outside.write_text("secret\n")
    blob.unlink()
    blob.symlink_to(outside)
    response = await fetch(jp_fetch, "runs", served_run, "artifacts", "report.csv")
    assert response.code == 404
    assert b"secret" not in response.body
