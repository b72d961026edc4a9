"""Stores that merge: runs recorded in a real shell into one store, imported into another."""

from __future__ import annotations

import pickle
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.compare import diff_runs
from jupyter_mlops.errors import InvalidValueError, StoreError, StoreNotFoundError
from jupyter_mlops.merge import import_store
from jupyter_mlops.store import Store, open_store

from .conftest import PYTHON, child_env

# A small teaching notebook: read a CSV, fit a model, score it, keep the model.
SESSION = [
    "%track start --name {name} --tag team=cv",
    "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
    "frame = pd.read_csv('iris.csv')\nC = {c}",
    "%track params C solver='lbfgs'",
    "%track data frame",
    "model = LogisticRegression(C=C, max_iter=200).fit(frame[['x', 'y']], frame['label'])\n"
    "for epoch in range(5):\n    %track metric loss=1.0/(epoch + C) --step epoch",
    "acc = model.score(frame[['x', 'y']], frame['label'])\n%track metric acc=acc",
    "%track artifact model",
    "%track artifact iris.csv",
    "%track end",
]

TABLES = (
    "runs",
    "params",
    "tags",
    "metrics",
    "latest_metrics",
    "cells",
    "datasets",
    "artifacts",
    "environments",
    "replays",
)


def record_runs(shell: Any, monkeypatch: pytest.MonkeyPatch, folder: Path, *cs: float) -> Store:
    """Runs of the teaching session in a real shell, recorded into the store at ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder.parent / "iris.csv"
    rows = ["x,y,label"] + [f"{i % 7},{(i * 3) % 5},{int(i % 7 > 3)}" for i in range(40)]
    data.write_text("\n".join(rows) + "\n")
    monkeypatch.setenv("JUPYTER_MLOPS_DIR", str(folder))
    monkeypatch.chdir(folder.parent)
    for c in cs:
        for source in SESSION:
            result = shell.run_cell(source.format(name=f"fit-{c}", c=c), store_history=True)
            assert result.success, (source, result.error_in_exec)
    return open_store(folder)


def add_replay(store: Store, original: str, replay: str) -> None:
    """A replay row as ``replay`` writes it: the original, the replay run and the verdict."""
    store.insert_replay(
        {
            "id": uuid.uuid4().hex,
            "original_id": original,
            "replay_run_id": replay,
            "mode": "recorded",
            "state": "done",
            "cells_done": 8,
            "cells_total": 8,
            "verdict": "reproduced",
            "summary": "every cell the same",
            "report": {"verdict": "reproduced"},
            "start_time": time.time(),
        }
    )


def counts(store: Store) -> dict[str, int]:
    """How many rows each table of a store holds."""
    return {t: store.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_runs_are_copied_whole_once_and_keep_their_origin(
    shell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = record_runs(shell, monkeypatch, tmp_path / "alice" / ".mlops", 0.5, 2.0)
    first, second = (mlops.get_run(f"fit-{c}", store=source) for c in (0.5, 2.0))
    add_replay(source, first.id, second.id)
    main = open_store(tmp_path / "main" / ".mlops")

    result = import_store(tmp_path / "alice", store=main)

    assert result["runs"] == 2 and result["already_here"] == 0
    # Two models (C differs) and the one CSV both runs stored.
    assert result["blobs"] == 3 and result["blobs_missing"] == 0
    assert counts(main) == counts(source)
    for original in (first, second):
        copy = mlops.get_run(original.id, store=main)
        a, b = original.to_dict(full=True), copy.to_dict(full=True)
        assert diff_runs(a, b)["same"]
        assert b["origin"].endswith(f":{source.directory}")
        assert a["origin"] is None
        for key in ("params", "metric_series", "datasets", "artifacts", "environment", "tags"):
            assert a[key] == b[key], key
        assert [c["source"] for c in a["cells"]] == [c["source"] for c in b["cells"]]
        assert [c["output_hash"] for c in a["cells"]] == [c["output_hash"] for c in b["cells"]]
    model = mlops.get_run(first.id, store=main).artifact("model").load()
    assert model.C == 0.5
    assert mlops.get_run(first.id, store=main).replays()[0]["verdict"] == "reproduced"

    again = import_store(tmp_path / "alice" / ".mlops", store=main)
    assert again["runs"] == 0 and again["already_here"] == 2 and again["blobs"] == 0
    assert counts(main) == counts(source)


def test_a_run_copied_on_keeps_its_first_origin_and_new_runs_join_later(
    shell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = record_runs(shell, monkeypatch, tmp_path / "alice" / ".mlops", 1.0)
    team = open_store(tmp_path / "team" / ".mlops")
    import_store(alice.directory, store=team)
    lab = open_store(tmp_path / "lab" / ".mlops")
    import_store(team.directory / "tracking.db", store=lab)
    run_id = mlops.get_run("fit-1.0", store=alice).id
    assert lab.get_run(run_id)["origin"] == team.get_run(run_id)["origin"]
    assert str(alice.directory) in lab.get_run(run_id)["origin"]

    record_runs(shell, monkeypatch, alice.directory, 3.0)
    later = import_store(alice.directory, store=team)
    assert later["runs"] == 1 and later["already_here"] == 1
    assert later["run_ids"] == [mlops.get_run("fit-3.0", store=alice).id]


def test_only_the_runs_asked_for_are_copied(
    shell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = record_runs(shell, monkeypatch, tmp_path / "alice" / ".mlops", 1.0, 4.0)
    wanted = mlops.get_run("fit-4.0", store=alice).id
    main = open_store(tmp_path / "main" / ".mlops")
    result = import_store(alice.directory, store=main, run_ids=[wanted], origin="worker-1:/tmp")
    assert result["run_ids"] == [wanted]
    assert [r["id"] for r in main.list_runs()] == [wanted]
    assert main.get_run(wanted)["origin"] == "worker-1:/tmp"


def test_what_cannot_be_imported_is_refused(tmp_path: Path) -> None:
    main = open_store(tmp_path / "main" / ".mlops")
    with pytest.raises(StoreNotFoundError):
        import_store(tmp_path / "nowhere", store=main)
    with pytest.raises(InvalidValueError, match="this store itself"):
        import_store(main.directory, store=main)
    newer = tmp_path / "newer" / ".mlops"
    open_store(newer).close()
    with sqlite3.connect(newer / "tracking.db") as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="schema version 99, newer") as caught:
        import_store(newer, store=main)
    assert "\n" not in str(caught.value)
    junk = tmp_path / "junk" / ".mlops"
    junk.mkdir(parents=True)
    (junk / "tracking.db").write_bytes(pickle.dumps(list(range(1000))) * 10)
    with pytest.raises(StoreError, match="junk"):
        import_store(junk, store=main)
    assert main.list_runs() == []


def test_the_import_command_says_what_it_did_in_one_line(
    shell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_runs(shell, monkeypatch, tmp_path / "alice" / ".mlops", 1.0)
    main = tmp_path / "main" / ".mlops"
    open_store(main)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "-m", "jupyter_mlops.cli", "--store", str(main), *args],
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=120,
        )

    done = cli("import", str(tmp_path / "alice"))
    assert done.returncode == 0, done.stderr
    assert "1 run(s) imported" in done.stdout
    assert "0 run(s) imported" in cli("import", str(tmp_path / "alice")).stdout
    with sqlite3.connect(tmp_path / "alice" / ".mlops" / "tracking.db") as conn:
        conn.execute("PRAGMA user_version = 42")
    refused = cli("import", str(tmp_path / "alice"))
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "newer than this jupyter-mlops" in refused.stderr
