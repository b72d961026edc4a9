"""The one diff: tolerances for metrics, cells aligned by source, what differs where."""

from __future__ import annotations

from typing import Any

from jupyter_mlops.compare import diff_runs, metric_close, telling_line


def run(run_id: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": run_id,
        "name": run_id,
        "params": {"lr": 0.1},
        "metrics": {"acc": 0.9},
        "metric_series": {"acc": [{"step": 0, "value": 0.9, "cell_seq": 2}]},
        "datasets": [{"name": "train", "hash": "aa", "path": "/data/train.csv"}],
        "cells": [
            {"seq": 1, "source_hash": "s1", "output_hash": "partial", "data_hashes": None},
            {"seq": 2, "source_hash": "s2", "output_hash": "o2", "data_hashes": {"x": "h"}},
        ],
        "environment": {"python": "3.11", "packages": {"numpy": "2.0"}, "env_vars": {}},
    }
    base.update(fields)
    return base


def test_equal_runs_are_the_same() -> None:
    diff = diff_runs(run("a"), run("b"))
    assert diff["same"] is True
    assert diff["metrics"] == {} and diff["cells"]["differences"] == []


def test_metric_noise_is_within_tolerance_and_real_change_is_not() -> None:
    noisy = run("b", metrics={"acc": 0.9 * (1 + 1e-9)})
    diff = diff_runs(run("a"), noisy)
    assert diff["same"] is False
    assert diff["metrics"]["acc"]["within_tolerance"] is True
    assert diff["metrics_within_tolerance"] is True
    changed = diff_runs(run("a"), run("b", metrics={"acc": 0.91}))
    assert changed["metrics"]["acc"]["within_tolerance"] is False
    loose = diff_runs(run("a"), run("b", metrics={"acc": 0.91}), tolerances={"acc": 0.05})
    assert loose["metrics"]["acc"]["within_tolerance"] is True
    assert loose["tolerance"]["metrics"] == {"acc": [0.05, 1e-09]}


def test_a_series_that_differs_at_a_step_is_outside_tolerance() -> None:
    series = {"acc": [{"step": 0, "value": 0.5, "cell_seq": 2}]}
    diff = diff_runs(run("a"), run("b", metric_series=series))
    assert diff["metrics"]["acc"]["within_tolerance"] is False
    assert diff["metrics"]["acc"]["series"] == {"step": 0, "a": 0.9, "b": 0.5}


def test_metric_close_handles_nan_and_inf() -> None:
    assert metric_close(float("nan"), float("nan"), 0, 0)
    assert not metric_close(float("nan"), 1.0, 1, 1)
    assert metric_close(float("inf"), float("inf"), 0, 0)
    assert not metric_close(None, 1.0, 1, 1)


def test_cells_datasets_and_packages_that_differ_are_named() -> None:
    cells = [
        {"seq": 1, "source_hash": "s1", "output_hash": "other", "data_hashes": None},
        {"seq": 2, "source_hash": "s2", "output_hash": "o2", "data_hashes": {"x": "changed"}},
    ]
    other = run(
        "b",
        cells=cells,
        datasets=[{"name": "train", "hash": "bb", "path": "/data/train.csv"}],
        environment={"python": "3.11", "packages": {"numpy": "2.1"}, "env_vars": {}},
    )
    diff = diff_runs(run("a"), other)
    # The first cell's output was only partly watched in "a": not a difference.
    assert [d["position"] for d in diff["cells"]["differences"]] == [2]
    assert diff["cells"]["differences"][0]["reasons"] == ["data"]
    assert diff["cells"]["differences"][0]["data"] == ["x"]
    assert diff["datasets"] == {"train": ["aa", "bb"]}
    assert diff["dataset_paths"] == {"train": "/data/train.csv"}
    assert diff["packages"] == {"numpy": ["2.0", "2.1"]}


def cell(seq: int, source: str, output: str | None = None, **fields: Any) -> dict[str, Any]:
    """A recorded cell as the store gives it back."""
    return {
        "seq": seq,
        "source": source,
        "source_hash": f"h-{source}",
        "output_hash": output,
        **fields,
    }


PARAMS = "seed = 0\nn = 10"
INJECTED = "# Parameters\nseed = 3\n"
WORK = ["%load_ext jupyter_mlops\n%track start --name w", "x = make(n, seed)", "print(x)"]


def test_runs_that_did_the_same_work_are_the_same_whatever_ran_before_them() -> None:
    # Papermill ran the parameters cells before the notebook started its run...
    papermill = run(
        "a",
        prelude=[cell(-1, PARAMS), cell(0, INJECTED)],
        cells=[cell(1, WORK[0], "partial"), cell(2, WORK[1]), cell(3, WORK[2], "o3")],
    )
    # ...a sweep point's run is the whole notebook, its parameters cells included.
    sweep_point = run(
        "b",
        prelude=[],
        cells=[
            cell(1, PARAMS, "o1"),
            cell(2, INJECTED),
            cell(3, WORK[0], "o0"),
            cell(4, WORK[1]),
            cell(5, WORK[2], "o3"),
        ],
    )
    diff = diff_runs(papermill, sweep_point)
    assert diff["cells"]["differences"] == []
    assert diff["same"] is True


def test_a_cell_added_in_one_run_does_not_shift_the_others() -> None:
    a = run("a", cells=[cell(1, "x = 1", "o1"), cell(2, "y = 2", "o2"), cell(3, "z = 3", "o3")])
    added = [cell(1, "x = 1", "o1"), cell(2, "debug()", "d"), cell(3, "y = 2", "o2")]
    b = run("b", cells=[*added, cell(4, "z = 3", "changed")])
    for c, number, count in zip(b["cells"], [1, None, 2, 3], [1, 2, 3, 4], strict=True):
        c.update(cell_number=number, execution_count=count)
    differences = diff_runs(a, b)["cells"]["differences"]
    assert [(d["reasons"], d["position"], d["position_b"]) for d in differences] == [
        (["only in b"], 2, 2),
        (["output"], 3, 4),
    ]
    assert [d["label"] for d in differences] == ["cell ?#2 [2]", "cell ?#3"]
    assert differences[1]["b"]["label"] == "cell 3 [4]"


def test_the_line_quoted_is_the_one_that_matters() -> None:
    source = "# fit the model\nimport numpy as np\nrng = np.random.default_rng()\nw = rng.normal()"
    assert telling_line(source) == "rng = np.random.default_rng()"
    assert telling_line(source, ["w"]) == "w = rng.normal()"
    assert telling_line("%load_ext jupyter_mlops") == "%load_ext jupyter_mlops"
