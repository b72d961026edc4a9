"""Text for people: the tables, a run, a diff, a replay's report, a check, a sweep, a data check
and runs copied in or out."""

from __future__ import annotations

import csv
import importlib
import io
import math
import pkgutil
import time
from typing import Any

import pandas as pd
import pytest

from jupyter_mlops import run as runs
from jupyter_mlops import text
from jupyter_mlops.compare import diff_runs
from jupyter_mlops.datachecks import check_data
from jupyter_mlops.store import Store
from jupyter_mlops.text import (
    MAX_KEY_COLUMNS,
    cell_where,
    check_text,
    common_keys,
    data_check_text,
    diff_text,
    format_duration,
    format_value,
    import_text,
    mlflow_text,
    number_text,
    replay_count,
    report_text,
    run_duration,
    run_text,
    runs_csv,
    runs_table,
    series_text,
    sweep_table,
    when,
)

# -- one home ----------------------------------------------------------------------------------


def test_the_package_offers_every_name_of_its_modules() -> None:
    modules = [
        importlib.import_module(f"{text.__name__}.{found.name}")
        for found in pkgutil.iter_modules(text.__path__)
    ]
    assert len(modules) == 6
    public = {name for module in modules for name in module.__all__}
    # The table helpers and yes-or-no are words the renderers share, not text for people.
    assert public - set(text.__all__) == {"section", "sections", "yes_no"}
    assert all(getattr(text, name) is not None for name in text.__all__)


# -- the small words ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "width", "shown"),
    [
        (0.123456789, 40, "0.123457"),
        (math.nan, 40, "nan"),
        (-math.inf, 40, "-inf"),
        ("abc", 40, "abc"),
        ("x" * 50, 10, "x" * 9 + "…"),
        ({"a": [1, 2]}, 40, '{"a": [1, 2]}'),
        (None, 40, "null"),
    ],
)
def test_format_value(value: Any, width: int, shown: str) -> None:
    assert format_value(value, width) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-"), (0.85, "850ms"), (12.34, "12.3s"), (245, "4m05s"), (7380, "2h03m")],
)
def test_format_duration(seconds: float | None, shown: str) -> None:
    assert format_duration(seconds) == shown


def test_when_and_run_duration() -> None:
    assert when(None) == "-" and when(0) == "-"
    assert when(86_400 * 365) == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(86_400 * 365))
    assert run_duration({"start_time": 10.0, "end_time": 12.5, "status": "finished"}) == 2.5
    assert run_duration({"start_time": 10.0, "end_time": None, "status": "crashed"}) is None
    running = run_duration({"start_time": time.time() - 5, "end_time": None, "status": "running"})
    assert running is not None and 4 < running < 60


def test_number_text_and_cell_where() -> None:
    assert number_text(None) == "none" and number_text(1 / 3) == "0.333333"
    assert cell_where({"label": "cell 4 [7]", "position": 4}) == "cell 4 [7]"
    assert cell_where({"a": {"label": "cell 2 [2]"}, "position": 2}) == "cell 2 [2]"
    assert cell_where({"position": 9}) == "cell 9"


def test_common_keys_ranks_by_how_many_runs_have_them() -> None:
    rows = [{"params": {f"k{i}": 1 for i in range(10)}}, {"params": {"k9": 1, "k8": 1}}]
    assert common_keys(rows, "params", most=2) == ["k8", "k9"]
    assert len(common_keys(rows, "params")) == MAX_KEY_COLUMNS
    assert common_keys([], "params") == []


def test_replay_count() -> None:
    assert replay_count(None) == "-" and replay_count({"count": 0}) == "-"
    assert replay_count({"count": 2, "verdict": "reproduced"}) == "2, reproduced"
    assert replay_count({"count": 1, "state": "running"}) == "1, running"


# -- runs and one run --------------------------------------------------------------------------


def _recorded(store: Store, name: str, lr: float, acc: float, steps: int = 0) -> dict[str, Any]:
    run = runs.start_run(name=name, store=store, tags={"team": "a"})
    run.log_params({"lr": lr})
    run.log_metrics({"acc": acc})
    for step in range(steps):
        run.log_metric("loss", 1 / (step + 1), step=step)
    run.end()
    return runs.get_run(run.id, store=store).to_dict(full=True)


def test_runs_table_and_csv(store: Store) -> None:
    first = _recorded(store, "first", 0.1, 0.8)
    second = _recorded(store, "second", 0.01, 0.9)
    table = runs_table([second, first])
    assert table.splitlines()[0].split()[:4] == ["id", "name", "status", "kind"]
    assert "params.lr" in table and "metrics.acc" in table and "replays" not in table
    assert second["id"][:12] in table.splitlines()[2]
    assert runs_table([]) == "no runs"
    rows = list(csv.DictReader(io.StringIO(runs_csv([first, second]))))
    assert [r["name"] for r in rows] == ["first", "second"]
    assert rows[0]["params.lr"] == "0.1" and rows[1]["tags.team"] == "a"


def test_run_text_shows_each_section_it_has(store: Store) -> None:
    detail = _recorded(store, "whole", 0.1, 0.8, steps=10)
    text = run_text(detail)
    assert text.startswith(f"id        {detail['id']}")
    assert "\nparams\n" in text and "\nmetrics\n" in text and "tags      team=a" in text
    # The series in a few words: its first and last points.
    assert "0: 1, 1: 0.5, 2: 0.333333 … 7: 0.125, 8: 0.111111, 9: 0.1" in text
    assert "\nenvironment\n" in text and "\ncells\n" not in text
    bare = dict(detail, params={}, metrics={}, environment=None)
    assert "params" not in run_text(bare) and "environment" not in run_text(bare)


def test_diff_text(store: Store) -> None:
    a = _recorded(store, "a", 0.1, 0.8)
    b = _recorded(store, "b", 0.2, 0.8)
    text = diff_text(diff_runs(a, b))
    assert text.startswith(f"a: a ({a['id'][:12]})\nb: b ({b['id'][:12]})")
    assert "params" in text and "0.1" in text and "0.2" in text and "metrics" not in text
    assert diff_text(diff_runs(a, a)).endswith("no differences")


def test_series_text_thins_evenly_and_keeps_the_last() -> None:
    points = [{"step": i, "value": float(i)} for i in range(100)]
    text = series_text("loss", {"run-a": points, "run-b": []})
    assert "loss of run-a: 100 point(s), last 99 at step 99, min 0, max 99" in text
    assert text.splitlines()[-3].split() == ["99", "99"]
    assert "loss of run-b: no points" in text


# -- a replay, a check, a sweep ----------------------------------------------------------------


def _report(**changes: Any) -> dict[str, Any]:
    report = {
        "original": {"name": "train", "id": "a" * 32},
        "replay_run": {"id": "b" * 32},
        "mode": "recorded",
        "duration_s": 2.25,
        "verdict": "diverged",
        "summary": "Diverged at cell 3 [3].",
        "causes": ["an unseeded call", "a changed package"],
        "comparison": {
            "metrics": {
                "acc": {"a": 0.9, "b": 0.8, "delta": -0.1, "within_tolerance": False},
            },
            "params": {"lr": [0.1, 0.2]},
            "datasets": {"train": ["abc", None]},
            "dataset_paths": {"train": "data/train.csv"},
            "cells": {
                "count": [4, 4],
                "differences": [
                    {"position": 3, "label": "cell 3 [3]", "reasons": ["output"], "a": {}}
                ]
                * 6,
            },
            "packages": {"numpy": ["1.0", "2.0"]},
        },
        "notebook": "out/replay.ipynb",
    }
    return {**report, **changes}


def test_report_text_names_the_verdict_then_what_differs() -> None:
    lines = report_text(_report()).splitlines()
    assert lines[:3] == [
        f"replay of train ({'a' * 12}) as run {'b' * 12}, recorded mode, 2.2 s",
        "verdict: diverged",
        "Diverged at cell 3 [3].",
    ]
    assert "likely causes:" in lines and "  - a changed package" in lines
    assert "  acc: 0.9 → 0.8 (delta -0.1, outside tolerance)" in lines
    assert "  lr: 0.1 → 0.2" in lines
    assert "  train (data/train.csv): abc → -" in lines
    assert "cells that differ: 6 of 4" in lines and "  … and 1 more" in lines
    assert "  numpy: 1.0 → 2.0" in lines
    assert lines[-1] == "executed notebook: out/replay.ipynb"


def test_report_text_of_a_kernel_that_never_started_lists_no_differences() -> None:
    failed = _report(
        verdict="failed", causes=["no kernel"], failure={"kind": "kernel did not start"}
    )
    text = report_text(failed)
    assert "likely causes:\n  - no kernel" in text
    assert "differ" not in text


def test_check_text() -> None:
    result = {
        "checks": [
            {"name": "replay", "passed": True, "message": "reproduced"},
            {"name": "acc>=0.9", "passed": False, "message": "acc is 0.8"},
        ]
    }
    assert check_text(result) == (
        "PASS  replay: reproduced\nFAIL  acc>=0.9: acc is 0.8\n1 of 2 check(s) failed"
    )
    assert check_text({"checks": result["checks"][:1]}).endswith("\nall checks passed")


def test_the_sweep_table_leaves_out_clock_metrics() -> None:
    point = {
        "index": 0,
        "run_id": "a" * 32,
        "status": "finished",
        "failure": None,
        "params": {"lr": 0.1},
        "metrics": {"acc": 0.9, "pipe.fit_time": 0.2, "system/rss_mb": 300.0},
    }
    summary = {"sweep_id": "s" * 32, "duration_s": 1.0, "workers": 1, "output_dir": "out"}
    table = sweep_table({**summary, "points": [point]})
    assert "acc" in table and "0.9" in table
    assert "fit_time" not in table and "system/" not in table


# -- a data check, runs copied in or out -------------------------------------------------------


def test_data_check_text_gives_the_verdict_the_problems_then_drift(store: Store) -> None:
    frame = pd.DataFrame({"x": [float(i % 10) for i in range(200)], "city": ["a", "b"] * 100})
    with runs.start_run(name="train", store=store):
        runs.log_data("train", frame)
    same = data_check_text(check_data(frame, "train:train", record=False, store=store))
    lines = same.splitlines()
    assert lines[0] == "PASSED: DataFrame (200 rows) against train:train"
    assert lines[1] == "no problems"
    assert lines[3].split() == ["column", "measure", "value", "threshold", "drift"]
    assert any(line.split()[:2] == ["x", "psi"] and line.endswith("no") for line in lines)
    shifted = frame.assign(x=frame["x"] + 100, city="c")
    failed = data_check_text(check_data(shifted, "train:train", record=False, store=store))
    assert failed.startswith("FAILED: DataFrame (200 rows) against train:train\n\nseverity")
    assert "new_category" in failed and "range" in failed
    assert any(
        line.split()[:2] == ["x", "psi"] and line.endswith("yes") for line in failed.splitlines()
    )


def test_import_text_and_mlflow_text() -> None:
    copied = {
        "source": "/elsewhere/.mlops",
        "runs": 2,
        "already_here": 1,
        "rows": {"metrics": 5, "cells": 3},
        "blobs": 4,
        "blobs_missing": 0,
    }
    assert import_text(copied) == (
        "2 run(s) imported from /elsewhere/.mlops; 1 already here; "
        "5 metric point(s), 3 cell(s); 4 blob(s)"
    )
    assert import_text({**copied, "blobs_missing": 1}).endswith("; 1 blob(s) missing in the source")
    sent = {"direction": "export", "tracking_uri": "http://mlflow", "runs": 3}
    sent.update(created=2, updated=1, metric_points=40, calls=2)
    assert mlflow_text(sent) == (
        "3 run(s) exported to http://mlflow (2 new, 1 updated), 40 new metric point(s) in 2 call(s)"
    )
    brought = {"direction": "import", "tracking_uri": "http://mlflow", "runs": 1}
    brought.update(already_here=0, metric_points=7)
    assert mlflow_text(brought) == (
        "1 run(s) imported from http://mlflow (0 already here), 7 metric point(s)"
    )
