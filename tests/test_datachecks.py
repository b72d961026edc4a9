"""Data checks on real frames: a training set logged in a run, serving samples of the same
distribution (passes) and with one thing wrong each (the check names that and only that);
CSV and Parquet files through the CLI; thresholds from YAML and options; serving samples;
checks stored with their runs and shown."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from IPython.core.error import UsageError

import jupyter_mlops as mlops
from jupyter_mlops.cli import cli
from jupyter_mlops.data_thresholds import (
    DEFAULT_THRESHOLDS,
    load_thresholds,
    parse_threshold_options,
)
from jupyter_mlops.datachecks import (
    PROBLEM_KINDS,
    _jensen_shannon,
    _psi,
    _rebinned,
    check_data,
    compare_profiles,
)
from jupyter_mlops.errors import InvalidValueError
from jupyter_mlops.profiles import profile
from jupyter_mlops.store import SCHEMA_VERSION, open_store


def loans(rows: int, seed: int) -> pd.DataFrame:
    """Loan applications as a teaching notebook builds them: ages, incomes, a city, a score."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows),
            "income": rng.lognormal(10, 0.5, rows),
            "city": rng.choice(["paris", "lyon", "nice", "lille"], rows, p=[0.4, 0.3, 0.2, 0.1]),
            "score": rng.random(rows),
        }
    )


@pytest.fixture
def trained() -> str:
    """A run that trained on 20,000 rows, logged as the dataset ``train``."""
    with mlops.start_run("train") as run:
        mlops.log_data("train", loans(20_000, seed=1))
    return run.id


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def kinds(report: dict) -> set[tuple[str, str, str]]:
    return {(p["column"], p["kind"], p["severity"]) for p in report["problems"]}


def errors(report: dict) -> set[tuple[str, str]]:
    return {(p["column"], p["kind"]) for p in report["problems"] if p["severity"] == "error"}


def test_same_distribution_passes_with_no_drift(trained: str) -> None:
    report = check_data(loans(5_000, seed=2), "train:train", record=False)
    assert report["passed"], report["problems"]
    assert errors(report) == set()
    assert set(report["columns"]) == {"age", "income", "city", "score"}
    for name in ("age", "income", "score"):
        assert report["columns"][name]["psi"] < 0.02, name
        assert report["columns"][name]["drift"] is False
    assert report["columns"]["city"]["distance"] < 0.03
    assert report["baseline"] == {
        "run": trained,
        "run_name": "train",
        "dataset": "train",
        "hash": mlops.get_run(trained).datasets()[0]["hash"],
    }
    assert report["rows"] == 5_000


def test_a_shifted_mean_drifts_that_column_only(trained: str) -> None:
    serving = loans(5_000, seed=3)
    serving["income"] = serving["income"] * 1.6
    report = check_data(serving, "train:train", record=False)
    assert not report["passed"]
    assert report["columns"]["income"]["drift"] is True
    assert report["columns"]["income"]["psi"] > DEFAULT_THRESHOLDS["psi"]
    assert [name for name, c in report["columns"].items() if c["drift"]] == ["income"]
    assert {kind for column, kind in errors(report)} <= {"drift", "range"}
    assert {column for column, kind in errors(report)} == {"income"}
    drift = next(p for p in report["problems"] if p["kind"] == "drift")
    assert "PSI" in drift["detail"] and "mean" in drift["detail"]


def test_a_new_category_is_named(trained: str) -> None:
    serving = loans(5_000, seed=4)
    serving.loc[serving.index[:400], "city"] = "marseille"
    report = check_data(serving, "train:train", record=False)
    assert ("city", "new_category") in errors(report)
    problem = next(p for p in report["problems"] if p["kind"] == "new_category")
    assert "'marseille'" in problem["detail"] and "8%" in problem["detail"]
    assert report["columns"]["city"]["new_categories"] == ["marseille"]
    assert {column for column, _ in errors(report)} == {"city"}


def test_a_dropped_column_and_an_extra_one(trained: str) -> None:
    serving = loans(5_000, seed=5).drop(columns="score").assign(channel="web")
    report = check_data(serving, "train:train", record=False)
    assert kinds(report) == {
        ("score", "missing_column", "error"),
        ("channel", "extra_column", "warning"),
    }
    assert not report["passed"]


def test_a_dtype_change(trained: str) -> None:
    serving = loans(5_000, seed=6)
    serving["age"] = serving["age"].astype(str)
    report = check_data(serving, "train:train", record=False)
    assert ("age", "dtype") in errors(report)
    assert {column for column, _ in errors(report)} == {"age"}


def test_nulls_where_the_baseline_had_none(trained: str) -> None:
    serving = loans(5_000, seed=7)
    serving.loc[serving.index[:50], "income"] = np.nan
    report = check_data(serving, "train:train", record=False)
    assert errors(report) == {("income", "nulls")}
    detail = next(p["detail"] for p in report["problems"] if p["kind"] == "nulls")
    assert detail.startswith("50 missing value(s)")
    assert report["columns"]["income"]["missing"] == pytest.approx(0.01)


def test_a_missing_rate_far_above_the_baseline() -> None:
    train = loans(10_000, seed=8)
    train.loc[train.index[:200], "score"] = np.nan  # 2% missing in training
    with mlops.start_run("gappy"):
        mlops.log_data("train", train)
    slightly = loans(5_000, seed=9)
    slightly.loc[slightly.index[:150], "score"] = np.nan  # 3%: within 5 points
    assert check_data(slightly, "gappy:train", record=False)["passed"]
    far = loans(5_000, seed=10)
    far.loc[far.index[:1_000], "score"] = np.nan  # 20%
    assert errors(check_data(far, "gappy:train", record=False)) == {("score", "nulls")}


def test_values_out_of_range(trained: str) -> None:
    serving = loans(5_000, seed=11)
    serving.loc[serving.index[:500], "age"] = 130
    report = check_data(serving, "train:train", record=False)
    assert ("age", "range") in errors(report)
    detail = next(p["detail"] for p in report["problems"] if p["kind"] == "range")
    assert "to 130" in detail and "10% outside" in detail
    # A handful of values past the range is a warning, not a failure.
    few = loans(5_000, seed=12)
    few.loc[few.index[:3], "age"] = 81
    report = check_data(few, "train:train", record=False)
    assert ("age", "range", "warning") in kinds(report)
    assert report["passed"]


def test_thresholds_per_column_from_yaml_and_options(trained: str, tmp_path: Path) -> None:
    serving = loans(5_000, seed=13)
    serving["income"] = serving["income"] * 1.15
    psi = check_data(serving, "train:train", record=False)["columns"]["income"]["psi"]
    assert 0.05 < psi < 0.5
    loose = tmp_path / "thresholds.yaml"
    loose.write_text(f"psi: {psi / 2}\ncolumns:\n  income:\n    psi: {psi * 2}\n")
    limits = load_thresholds(loose)
    assert limits == {"psi": psi / 2, "columns": {"income": {"psi": psi * 2}}}
    report = check_data(serving, "train:train", thresholds=limits, record=False)
    assert report["columns"]["income"]["drift"] is False
    assert report["columns"]["income"]["threshold"] == psi * 2
    strict = parse_threshold_options([f"income:psi={psi / 2}"], base=limits)
    assert check_data(serving, "train:train", thresholds=strict, record=False)["columns"]["income"][
        "drift"
    ]
    ignored = parse_threshold_options([], ["income"], strict)
    assert "income" not in check_data(serving, "train:train", thresholds=ignored)["columns"]
    for bad, message in [
        (["psi"], "looks like psi=0.3"),
        (["spi=0.2"], "unknown threshold 'spi'"),
        (["psi=-1"], "zero or more"),
        (["income:psi=high"], "is not a number"),
    ]:
        with pytest.raises(InvalidValueError, match=message):
            parse_threshold_options(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("psi: [0.2\n")
    with pytest.raises(InvalidValueError, match="not valid YAML"):
        load_thresholds(broken)


def test_baseline_references_are_checked(trained: str) -> None:
    with mlops.start_run("notes"):
        mlops.log_data("notes", {"a": 1})
    frame = loans(100, seed=14)
    for against, message in [
        ("train:nope", "has no dataset 'nope' (train)"),
        ("nobody:train", "no run matches 'nobody'"),
        ("notes:notes", "no profile to check"),
        (":train", "RUN:DATASET"),
    ]:
        with pytest.raises(mlops.MlopsError, match=re.escape(message)):
            check_data(frame, against, record=False)
    # A run with one dataset needs no dataset name.
    assert check_data(frame, "train", record=False)["baseline"]["dataset"] == "train"
    with pytest.raises(InvalidValueError, match="not tabular data"):
        check_data({"a": [1]}, "train:train", record=False)


def test_csv_and_parquet_files_through_the_cli(trained: str, tmp_path: Path) -> None:
    same, drifted = loans(5_000, seed=15), loans(5_000, seed=16)
    drifted["score"] = np.sqrt(drifted["score"])
    same.to_csv(tmp_path / "same.csv", index=False)
    drifted.to_parquet(tmp_path / "drifted.parquet")
    same.to_parquet(tmp_path / "same.parquet")

    passed = invoke("data", "check", str(tmp_path / "same.csv"), "--against", "train:train")
    assert passed.exit_code == 0, passed.output
    assert passed.output.startswith("PASSED")
    assert invoke("data", "check", "same.parquet", "--against", "train:train").exit_code == 0

    failed = invoke(
        "data", "check", "drifted.parquet", "--against", "train:train", "--format", "json"
    )
    assert failed.exit_code == 1
    report = json.loads(failed.output)
    assert set(report) >= {"passed", "baseline", "rows", "problems", "columns"}
    assert report["passed"] is False and report["rows"] == 5_000
    assert set(report["baseline"]) >= {"run", "dataset", "hash"}
    assert errors(report) == {("score", "drift")}
    for problem in report["problems"]:
        assert set(problem) == {"column", "kind", "detail", "severity"}
        assert problem["kind"] in PROBLEM_KINDS
    assert report["columns"]["score"]["psi"] > 0.2

    # A per-column threshold on the command line lets it through.
    loose = invoke(
        "data", "check", "drifted.parquet", "--against", "train:train", "--threshold",
        "score:psi=5",
    )  # fmt: skip
    assert loose.exit_code == 0, loose.output

    for args in [
        ["data", "check", "same.csv"],
        ["data", "check", "missing.csv", "--against", "train:train"],
        ["data", "check", "same.csv", "--against", "train:nope"],
        ["data", "check", "same.csv", "--against", "train:train", "--threshold", "x=1"],
    ]:
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)


def test_checks_are_stored_with_their_run_and_shown(trained: str) -> None:
    standalone = check_data(loans(1_000, seed=17), "train:train", subject="batch-17")
    assert standalone["run"] is None
    with mlops.start_run("scoring") as scoring:
        broken = loans(1_000, seed=18).drop(columns="city")
        inside = check_data(broken, "train:train", subject="batch-18")
    assert inside["run"] == scoring.id
    checks = mlops.get_run(scoring.id).data_checks()
    assert [c["subject"] for c in checks] == ["batch-18"]
    assert checks[0]["passed"] is False
    assert checks[0]["report"]["problems"][0]["kind"] == "missing_column"
    # The training run lists every check made against its data, newest first.
    against = [c["subject"] for c in mlops.get_run(trained).data_checks()]
    assert against == ["batch-18", "batch-17"]

    text = invoke("show", "scoring").output
    assert "data checks" in text and "batch-18" in text and "missing_column city" in text
    shown = json.loads(invoke("show", "train", "--format", "json").output)
    assert [c["passed"] for c in shown["data_checks"]] == [False, True]


def test_serving_samples_are_checked_against_training_data(trained: str) -> None:
    with mlops.start_run("model") as run:
        mlops.log_data("applicants", loans(20_000, seed=19))
        fine = mlops.log_data("applicants", loans(2_000, seed=20), context="serving")
        assert fine["check"]["passed"], fine["check"]["problems"]
        skewed = loans(2_000, seed=21)
        skewed["age"] = skewed["age"] + 15
        row = mlops.log_data("applicants", skewed, context="serving")
    assert row["context"] == "serving"
    assert ("age", "drift") in errors(row["check"])
    record = mlops.get_run(run.id)
    # The serving sample sits beside the training data of the same name, not over it.
    assert [d["name"] for d in record.datasets()] == ["applicants"]
    assert record.datasets()[0]["shape"] == [20_000, 4]
    assert [d["shape"] for d in record.serving()] == [[2_000, 4]]
    # Profiled on the training data's bins, so the stored profiles compare exactly.
    train_bins = record.datasets()[0]["profile"]["columns"]["age"]["histogram"]["edges"]
    assert record.serving()[0]["profile"]["columns"]["age"]["histogram"]["edges"] == train_bins

    result = invoke("data", "check", "--serving", "model", "--format", "json")
    assert result.exit_code == 1
    checks = json.loads(result.output)["checks"]
    assert [c["subject"]["name"] for c in checks] == ["applicants (serving)"]
    assert ("age", "drift") in errors(checks[0])
    assert invoke("data", "check", "--serving", "train").exit_code == 2
    with pytest.raises(InvalidValueError, match="context"):
        mlops.log_data("applicants", loans(10, seed=0), context="production")


def test_magics_check_data_and_serving(trained: str, shell: object, tmp_path: Path) -> None:
    loans(3_000, seed=22).to_csv(tmp_path / "batch.csv", index=False)
    run_cell = shell.run_cell  # type: ignore[attr-defined]
    user_ns = shell.user_ns  # type: ignore[attr-defined]
    user_ns["batch"] = loans(3_000, seed=23).drop(columns="age")
    result = run_cell("%track check-data batch --against train:train")
    assert result.success
    result = run_cell("%track check-data batch.csv --against train:train --threshold psi=0.5")
    assert result.success
    subjects = [c["subject"] for c in mlops.get_run(trained).data_checks()]
    assert subjects == ["batch.csv", "batch"]
    run_cell("%track start serving-run")
    user_ns["sample"] = loans(1_000, seed=24)
    run_cell("%track data train=sample --context serving")
    run = mlops.active_run()
    assert run is not None and [d["name"] for d in run.record().serving()] == ["train"]
    run_cell("%track end")
    with pytest.raises(UsageError, match="--against"):
        shell.run_line_magic("track", "check-data batch")  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match="training or serving"):
        shell.run_line_magic("track", "data batch --context prod")  # type: ignore[attr-defined]


def test_psi_distance_and_rebinning_agree_with_their_definitions() -> None:
    from scipy.spatial.distance import jensenshannon

    rng = np.random.default_rng(25)
    for _ in range(5):
        p, q = rng.random(6), rng.random(6)
        p, q = p / p.sum(), q / q.sum()
        assert _jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9)
    assert _jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    base = profile(pd.Series(rng.normal(0, 1, 50_000), name="x"))["columns"]["x"]["histogram"]
    own = profile(pd.Series(rng.normal(0.5, 1, 50_000), name="x"))["columns"]["x"]["histogram"]
    on_bins = profile(
        pd.Series(rng.normal(0.5, 1, 50_000), name="x"),
        reference={"columns": {"x": {"histogram": base}}},
    )["columns"]["x"]["histogram"]
    assert on_bins["edges"] == base["edges"] and own["edges"] != base["edges"]
    # A histogram on its own bins, moved onto the baseline's, gives nearly the exact PSI.
    exact, moved = _psi(base, on_bins), _psi(base, own)
    assert exact > 0.2 and moved == pytest.approx(exact, rel=0.1)
    assert _rebinned([0, 1, 2], [5, 5], [0, 2]).tolist() == [10.0]
    assert sum(_rebinned([0, 10], [10], [2, 4, 6])) == 10
    same = {"columns": {"x": {"dtype": "float64", "count": 3, "missing": 0, "histogram": base}}}
    assert compare_profiles(same, same)["columns"]["x"]["psi"] == 0.0


def test_profiles_of_large_frames_are_approximate_but_exact_where_it_matters() -> None:
    rows = 1_500_000
    rng = np.random.default_rng(26)
    frame = pd.DataFrame(
        {"x": rng.normal(3, 2, rows), "kind": rng.choice(["a", "b", "c"], rows)},
        index=pd.RangeIndex(rows),
    )
    result = profile(frame)
    assert result["approximate"] is True
    assert result["index"] == {"kind": "range", "dtype": "int64", "levels": 1}
    x = result["columns"]["x"]
    assert x["count"] == rows and x["min"] == frame["x"].min() and x["max"] == frame["x"].max()
    assert x["std"] == pytest.approx(2, rel=0.02)
    assert x["quantiles"][3] == pytest.approx(3, abs=0.05)
    assert sum(x["histogram"]["counts"]) == 100_000
    categories = result["columns"]["kind"]["categories"]
    assert categories["complete"] and {v for v, _ in categories["top"]} == {"a", "b", "c"}
    # The same check against itself, profiled from a sample, is clean.
    with mlops.start_run("big"):
        mlops.log_data("frame", frame)
    assert check_data(frame, "big:frame", record=False)["problems"] == []


def test_a_store_of_schema_4_keeps_its_datasets(tmp_path: Path) -> None:
    from sqlite_utils import Database

    from jupyter_mlops import store as stores

    folder = tmp_path / "old"
    folder.mkdir()
    conn = sqlite3.connect(folder / "tracking.db")
    database = Database(conn)
    for step in stores.MIGRATIONS[:4]:
        step(database)
    conn.execute(
        "INSERT INTO runs (id, name, status, kind, start_time) VALUES ('r1', 'old', "
        "'finished', 'script', 1.0)"
    )
    conn.execute(
        "INSERT INTO datasets (run_id, name, hash, kind, profile, time) VALUES ('r1', 'train', "
        "'abc', 'dataframe', '{\"rows\": 1, \"columns\": {}}', 2.0)"
    )
    conn.execute("PRAGMA user_version = 4")
    conn.commit()
    conn.close()
    store = open_store(folder)
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    [row] = store.datasets("r1")
    assert (row["name"], row["hash"], row["context"]) == ("train", "abc", "training")
    assert store.datasets("r1", context="serving") == []
    assert store.data_checks("r1") == []


def test_the_run_view_has_a_data_checks_tab(trained: str) -> None:
    from jupyter_mlops import views

    evil = "<img src=x onerror=alert(1)>"
    with mlops.start_run("scoring"):
        batch = loans(1_000, seed=27).rename(columns={"city": evil})
        check_data(batch, "train:train", subject="batch-27")
    view = views.run_view("scoring")
    assert "data checks" in view.titles
    page = view.widget.children[view.titles.index("data checks")].value
    assert "batch-27" in page and "failed" in page and "missing_column" in page
    assert "<img" not in page and "&lt;img" in page
    assert "data checks" not in views.run_view(trained).titles[:5]
