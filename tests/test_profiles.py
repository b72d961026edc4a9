"""Profiles of real data: exact below a million rows, sampled above; the statistics a data
check needs (standard deviation, quantiles, fixed-bin histograms, top categories, index kind);
profiles made on a reference's bins; files described through Arrow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jupyter_mlops.column_profiles import HISTOGRAM_BINS, QUANTILES, TOP_CATEGORIES
from jupyter_mlops.errors import InvalidValueError
from jupyter_mlops.hashing import content_hash
from jupyter_mlops.profiles import DataInfo, describe, profile

from .conftest import run_child

# How this pandas names a column of text: "str" from pandas 3 on, "object" before.
TEXT_DTYPE = str(pd.Series(["text"]).dtype)


def test_profile_of_a_small_frame_is_exact() -> None:
    frame = pd.DataFrame(
        {
            "x": [1.0, 2.0, np.nan, 5.0],
            "n": [3, 1, 3, 2],
            "s": ["b", None, "a", "b"],
            "t": pd.to_datetime(["2024-01-02", None, "2024-01-01", "2024-03-01"]),
            "i": pd.array([1, None, None, 7], dtype="Int64"),
            "c": pd.Categorical(["u", "v", "u", None]),
        }
    )
    result = profile(frame)
    json.dumps(result, allow_nan=False)
    assert result["rows"] == 4
    assert result["approximate"] is False
    columns = result["columns"]
    x = columns["x"]
    assert {k: x[k] for k in ("dtype", "count", "missing", "min", "max", "distinct")} == {
        "dtype": "float64",
        "count": 3,
        "missing": 1,
        "min": 1.0,
        "max": 5.0,
        "distinct": 3,
    }
    assert x["mean"] == pytest.approx(8 / 3)
    assert x["std"] == pytest.approx(np.std([1.0, 2.0, 5.0]))
    assert x["quantiles"] == pytest.approx(list(np.quantile([1.0, 2.0, 5.0], QUANTILES)))
    assert x["histogram"]["edges"][0] == 1.0 and x["histogram"]["edges"][-1] == 5.0
    assert len(x["histogram"]["edges"]) == HISTOGRAM_BINS + 1
    assert sum(x["histogram"]["counts"]) == 3
    n = columns["n"]
    assert (n["dtype"], n["count"], n["min"], n["max"], n["mean"], n["distinct"]) == (
        "int64",
        4,
        1,
        3,
        2.25,
        3,
    )
    assert columns["s"]["dtype"] == TEXT_DTYPE
    assert (columns["s"]["count"], columns["s"]["missing"]) == (3, 1)
    assert (columns["s"]["min"], columns["s"]["max"], columns["s"]["distinct"]) == ("a", "b", 2)
    assert columns["s"]["mean"] is None
    assert columns["s"]["categories"] == {"top": [["b", 2], ["a", 1]], "other": 0, "complete": True}
    assert columns["t"]["min"].startswith("2024-01-01T00:00:00")
    assert columns["t"]["max"].startswith("2024-03-01T00:00:00")
    assert (columns["t"]["missing"], columns["t"]["distinct"]) == (1, 3)
    assert "categories" not in columns["t"]
    assert columns["i"]["dtype"] == "Int64"
    assert (columns["i"]["count"], columns["i"]["mean"], columns["i"]["distinct"]) == (2, 4.0, 2)
    assert (columns["c"]["count"], columns["c"]["min"], columns["c"]["distinct"]) == (3, "u", 2)
    assert columns["c"]["categories"]["top"] == [["u", 2], ["v", 1]]
    assert result["index"] == {"kind": "range", "dtype": "int64", "levels": 1}


def test_index_kinds() -> None:
    dated = pd.Series([1.0, 2.0], index=pd.date_range("2024-01-01", periods=2), name="v")
    assert profile(dated)["index"]["kind"] == "datetime"
    labelled = pd.DataFrame({"v": [1, 2]}, index=pd.Index(["a", "b"]))
    assert profile(labelled)["index"]["kind"] in ("default", "str")
    nested = pd.DataFrame({"v": [1, 2]}, index=pd.MultiIndex.from_tuples([(1, "a"), (2, "b")]))
    assert profile(nested)["index"]["levels"] == 2
    assert "index" not in profile(np.arange(3.0))


def test_many_categories_keep_the_top_ones_and_count_the_rest() -> None:
    values = [f"id_{i}" for i in range(200)] * 3 + ["common"] * 100
    column = profile(pd.Series(values, name="who"))["columns"]["who"]["categories"]
    assert len(column["top"]) == TOP_CATEGORIES
    assert column["top"][0] == ["common", 100]
    assert column["other"] == 700 - sum(n for _, n in column["top"])
    assert column["complete"] is False
    booleans = profile(pd.Series([True, False, True], name="b"))["columns"]["b"]
    assert booleans["categories"]["top"] == [[True, 2], [False, 1]]


def test_a_reference_gives_its_bins_and_counts_its_categories() -> None:
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"x": rng.normal(0, 1, 1_000), "city": rng.choice(["a", "b", "c"], 1_000)})
    baseline = profile(train)
    serving = pd.DataFrame({"x": [-10.0, 0.0, 0.1, 10.0, 20.0], "city": ["d"] * 4 + ["c"]})
    result = profile(serving, reference=baseline)["columns"]
    assert result["x"]["histogram"]["edges"] == baseline["columns"]["x"]["histogram"]["edges"]
    counts = result["x"]["histogram"]["counts"]
    # Outside the baseline's range: counted in its first and last bins, and told apart.
    assert (counts[0], counts[-1], sum(counts), result["x"]["outside"]) == (1, 2, 5, 3)
    # The baseline's categories are counted even where the new data has few of them.
    assert dict(map(tuple, result["city"]["categories"]["top"])) == {"d": 4, "c": 1}
    # A constant column has one bin.
    flat = profile(pd.Series([2.0, 2.0], name="k"))["columns"]["k"]["histogram"]
    assert flat == {"edges": [2.0, 2.0], "counts": [2]}
    on_flat = profile(
        pd.Series([2.0, 3.0], name="k"), reference={"columns": {"k": {"histogram": flat}}}
    )
    assert on_flat["columns"]["k"]["histogram"]["counts"] == [2]


def test_profile_makes_non_finite_values_json_safe() -> None:
    result = profile(pd.Series([1.0, np.inf, -np.inf], name="v"))
    column = result["columns"]["v"]
    assert (column["min"], column["max"], column["mean"]) == ("-inf", "inf", None)
    assert column["histogram"] == {"edges": [1.0, 1.0], "counts": [1]}
    json.dumps(result, allow_nan=False)
    nothing = profile(pd.Series([np.inf, np.nan], name="w"))["columns"]["w"]
    assert nothing["histogram"] is None
    json.dumps(nothing, allow_nan=False)


def test_describe_frame_array_polars_and_arrow() -> None:
    info = describe(pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "x"]}))
    assert isinstance(info, DataInfo)
    assert (info.kind, info.shape, info.schema) == (
        "dataframe",
        [3, 2],
        {"a": "int64", "b": TEXT_DTYPE},
    )
    assert info.profile is not None and info.profile["columns"]["b"]["distinct"] == 2
    assert info.hash == content_hash(pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "x"]}))
    json.dumps(info.to_dict(), allow_nan=False)

    matrix = describe(np.array([[1.0, 10.0], [3.0, 30.0]]))
    assert (matrix.kind, matrix.shape, matrix.size_bytes) == ("array", [2, 2], 32)
    assert matrix.profile is not None
    assert matrix.profile["columns"]["1"]["mean"] == 20.0
    assert describe(np.zeros((2, 2, 2))).profile is None

    series = describe(pl.Series("v", [1, None, 3]))
    assert series.kind == "series" and series.profile is not None
    assert series.profile["columns"]["v"]["missing"] == 1
    assert series.profile["columns"]["v"]["mean"] == 2.0
    table = describe(pa.table({"a": [1, 2]}))
    assert (table.kind, table.shape, table.schema) == ("table", [2, 1], {"a": "int64"})
    assert describe(b"abc").to_dict()["kind"] == "bytes"
    assert (describe({"a": 1}).kind, describe({"a": 1}).profile) == ("object", None)


def test_describe_csv_tsv_and_parquet_files(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3, 4], "b": ["x", "y", None, "x"]})
    csv = tmp_path / "train.csv"
    frame.to_csv(csv, index=False)
    tsv = tmp_path / "train.tsv"
    frame.to_csv(tsv, index=False, sep="\t")
    parquet = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), parquet)
    for path in (csv, tsv, parquet):
        info = describe(path)
        assert info.kind == "file"
        assert info.path == str(path)
        assert info.size_bytes == path.stat().st_size
        assert info.hash == content_hash(path)
        assert info.shape == [4, 2]
        assert info.schema is not None and info.schema["a"] == "int64"
        assert info.profile is not None
        a, b = info.profile["columns"]["a"], info.profile["columns"]["b"]
        assert (a["min"], a["max"], a["mean"], a["distinct"]) == (1, 4, 2.5, 4)
        assert (b["count"], b["missing"], b["distinct"]) == (3, 1, 2)
        assert b["categories"]["top"] == [["x", 2], ["y", 1]]


def test_describe_other_files_and_folders(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    info = describe(notes)
    assert (info.kind, info.size_bytes, info.shape, info.profile) == ("file", 5, None, None)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert describe(broken).profile is None
    info = describe(tmp_path)
    assert info.kind == "directory"
    assert info.size_bytes == 5 + len("{not json")
    assert info.hash == content_hash(tmp_path)


def test_profile_is_approximate_above_a_million_rows() -> None:
    rows = 1_200_000
    frame = pd.DataFrame(
        {"cycle": np.arange(rows, dtype=np.int64) % 1000, "unique": np.arange(rows, dtype=np.int64)}
    )
    result = profile(frame)
    assert result["approximate"] is True
    cycle, unique = result["columns"]["cycle"], result["columns"]["unique"]
    assert (cycle["count"], cycle["missing"], cycle["min"], cycle["max"]) == (rows, 0, 0, 999)
    assert cycle["mean"] == pytest.approx(499.5)
    assert cycle["distinct"] == 1000
    assert unique["distinct"] == rows
    assert sum(unique["histogram"]["counts"]) == 100_000
    assert unique["quantiles"][3] == pytest.approx(rows / 2, rel=0.01)
    assert profile(frame.iloc[:1000])["approximate"] is False


def test_profile_refuses_non_tabular_values() -> None:
    with pytest.raises(InvalidValueError, match="profiled"):
        profile({"a": 1})


def test_import_loads_no_data_library() -> None:
    code = (
        "import sys, jupyter_mlops.profiles\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow', 'polars') if m in sys.modules))"
    )
    assert run_child(code).strip() == "[]"
