"""Runs as recorded: a DataFrame of them, lookups, renaming, tags, deleting, the card."""

from __future__ import annotations

from pathlib import Path

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.errors import InvalidValueError, RunNotFoundError
from jupyter_mlops.store import open_store


def test_runs_dataframe_has_params_and_metrics_columns() -> None:
    for lr, acc in [(0.1, 0.7), (0.01, 0.9)]:
        with mlops.start_run(name=f"lr{lr}", tags={"sweep": "a"}):
            mlops.log_param("lr", lr)
            mlops.log_metric("acc", acc)
    frame = mlops.runs()
    assert list(frame["name"]) == ["lr0.01", "lr0.1"]
    assert {"run_id", "status", "params.lr", "metrics.acc", "tags.sweep"} <= set(frame.columns)
    best = mlops.runs("metrics.acc > 0.8")
    assert list(best["params.lr"]) == [0.01]
    assert mlops.runs("metrics.acc > 5").empty


def test_unknown_run_reference() -> None:
    mlops.start_run().end()
    with pytest.raises(RunNotFoundError, match="no run matches 'nope'"):
        mlops.get_run("nope")


def test_update_run_renames_tags_and_notes(tmp_path: Path) -> None:
    with mlops.start_run(name="first", tags={"a": "1", "b": "2"}) as run:
        mlops.log_metric("acc", 0.5)
    record = mlops.update_run(run.id, name="renamed", tags={"c": 3}, remove_tags=["a"], note="ok")
    assert record.name == "renamed"
    assert record.tags == {"b": "2", "c": "3"}
    assert record.note == "ok"
    assert mlops.get_run("renamed").id == run.id
    assert mlops.update_run(run.id, note="").note is None
    with pytest.raises(InvalidValueError, match="run name"):
        mlops.update_run(run.id, name="  ")


def test_delete_run_removes_everything_but_refuses_a_running_run() -> None:
    keep = mlops.start_run(name="keep")
    mlops.log_metric("loss", 1.0)
    with pytest.raises(InvalidValueError, match="still running"):
        mlops.delete_run(keep.id)
    keep.end()
    with mlops.start_run(name="gone") as gone:
        mlops.log_params({"lr": 0.1})
        mlops.log_metric("loss", 2.0, step=3)
    assert mlops.delete_run("gone") == gone.id
    with pytest.raises(RunNotFoundError):
        mlops.get_run(gone.id)
    assert [r["id"] for r in open_store().list_runs()] == [keep.id]
    assert mlops.get_run(keep.id).metrics == {"loss": 1.0}


def test_a_record_shows_as_the_card_the_views_registered() -> None:
    from jupyter_mlops.records import register_card
    from jupyter_mlops.views.card import run_html

    with mlops.start_run(name="carded"):
        pass
    try:
        register_card(lambda record: f"<p>{record.name}</p>")
        assert mlops.get_run("carded")._repr_html_() == "<p>carded</p>"
    finally:
        register_card(run_html)
    assert "carded" in mlops.get_run("carded")._repr_html_()
