"""Data profiles: what a dataset looks like, compact enough to store with every run.

Per column (``column_profiles``): dtype, count, missing, min, max, mean and distinct; for
numbers also the standard deviation, quantiles and a fixed-bin histogram; for text, booleans
and categoricals the top categories with their counts; for pandas, the index kind. Above a
million rows, the standard deviation, distinct counts, quantiles, histograms and categories
come from a fixed sample of 100,000 rows (the profile says ``"approximate": true``); counts,
missing, min, max and mean are always exact. A profile is the baseline a data check compares
new data against; a profile made with ``reference=`` puts its histograms on the reference's
bins and counts the reference's categories, so that the comparison is exact; above 100,000
rows it takes its distinct counts, quantiles and standard deviation from the sample (a check
does not use them).

Like ``hashing``, importing this module stays cheap: numpy, pandas, pyarrow and polars are
imported inside functions, once an object of that library is in hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath
from typing import Any

from .column_profiles import Rows, column_stats
from .errors import InvalidValueError
from .hashing import content_hash
from .hashing.data_types import family_of, type_name
from .hashing.paths import directory_entries

__all__ = ["DataInfo", "describe", "profile"]

# Above this many rows, distinct counts, quantiles, histograms and categories come from a
# sample: exact counting is a hash table over every row, which takes seconds on millions.
_EXACT_DISTINCT_ROWS = 1_000_000
_DISTINCT_SAMPLE = 100_000

_TABLE_SUFFIXES = (
    ".csv",
    ".csv.gz",
    ".tsv",
    ".tsv.gz",
    ".parquet",
    ".pq",
    ".feather",
    ".arrow",
    ".ipc",
    ".jsonl",
    ".ndjson",
    ".json",
)


@dataclass
class DataInfo:
    """What is recorded about a dataset: its hash, kind, shape, schema, profile and size."""

    kind: str
    hash: str
    shape: list[int] | None = None
    schema: dict[str, str] | None = None
    profile: dict[str, Any] | None = None
    path: str | None = None
    size_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-serializable dict."""
        return asdict(self)


def describe(obj: object, *, reference: Mapping[str, Any] | None = None) -> DataInfo:
    """Return the content hash plus kind, shape, schema, profile and size of ``obj``."""
    if isinstance(obj, PurePath):
        return _describe_path(Path(obj), reference)
    digest = content_hash(obj)
    family = family_of(obj)
    if family is not None:
        kind, shape, schema, size = _tabular_facts(obj, family)
        prof = profile(obj, reference=reference) if _profilable(obj, family) else None
        return DataInfo(kind, digest, shape, schema, prof, None, size)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return DataInfo("bytes", digest, size_bytes=memoryview(obj).nbytes)
    if isinstance(obj, str):
        return DataInfo("text", digest, size_bytes=len(obj.encode("utf-8", "surrogatepass")))
    return DataInfo("object", digest)


def profile(obj: object, *, reference: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return per-column statistics of tabular data (``reference``: a profile whose bins and
    categories to count on)."""
    family = family_of(obj)
    if family is None or not _profilable(obj, family):
        raise InvalidValueError(
            type_name(obj),
            "only a frame, series, table or 1-/2-D array can be profiled",
        )
    rows, columns = _columns(obj, family)
    approximate = rows > _EXACT_DISTINCT_ROWS
    sample = _sample_rows(rows) if approximate else None
    summary = sample
    if reference is not None and sample is None and rows > _DISTINCT_SAMPLE:
        # Checking new data needs its histograms and categories exact, its distinct counts
        # and quantiles far less: those come from the sample, which saves most of the time.
        summary = _sample_rows(rows)
    known = (reference or {}).get("columns") or {}
    stats: dict[str, Any] = {}
    for position, (name, dtype, values) in enumerate(columns):
        key = name if name not in stats else f"{name} ({position})"
        column = column_stats(values, Rows(sample, summary), known.get(key))
        stats[key] = {"dtype": dtype, **column}
    result: dict[str, Any] = {"rows": rows, "columns": stats, "approximate": approximate}
    index = _index_kind(obj, family)
    if index is not None:
        result["index"] = index
    return result


def read_table(path: Path) -> Any:
    """Read a tabular file (CSV, TSV, Parquet, Feather, JSON lines) as an Arrow table, or
    return None if it is not one (or cannot be read)."""
    name = path.name.lower()
    suffix = next((s for s in _TABLE_SUFFIXES if name.endswith(s)), None)
    if suffix is None:
        return None
    try:
        import pyarrow as pa

        if suffix.startswith((".csv", ".tsv")):
            from pyarrow import csv

            delimiter = "\t" if suffix.startswith(".tsv") else ","
            return csv.read_csv(
                path,
                parse_options=csv.ParseOptions(delimiter=delimiter),
                # An empty field is a missing value, as pandas reads it (and writes None).
                convert_options=csv.ConvertOptions(strings_can_be_null=True),
            )
        if suffix in (".parquet", ".pq"):
            from pyarrow import parquet

            return parquet.read_table(path)
        if suffix in (".feather", ".arrow", ".ipc"):
            from pyarrow import feather

            return feather.read_table(path)
        from pyarrow import json

        return json.read_json(path)
    except ImportError:
        return None
    except (pa.ArrowException, OSError, ValueError):
        # A .json that is one document rather than lines, a malformed csv: hash and size only.
        return None


# ---------------------------------------------------------------------------------------------
# describe() and profile()
# ---------------------------------------------------------------------------------------------


def _describe_path(path: Path, reference: Mapping[str, Any] | None = None) -> DataInfo:
    digest = content_hash(path)
    if path.is_dir():
        size = sum((path / rel).stat().st_size for rel, k in directory_entries(path) if k == "f")
        return DataInfo("directory", digest, path=str(path), size_bytes=size)
    size = path.stat().st_size
    table = read_table(path)
    if table is None:
        return DataInfo("file", digest, path=str(path), size_bytes=size)
    return DataInfo(
        "file",
        digest,
        shape=[table.num_rows, table.num_columns],
        schema=_arrow_schema(table),
        profile=profile(table, reference=reference),
        path=str(path),
        size_bytes=size,
    )


def _profilable(obj: Any, family: str) -> bool:
    if family != "numpy":
        return True
    # A structured array is a table of its fields; a plain one, of its columns.
    return bool(obj.ndim == 1 if obj.dtype.names is not None else 1 <= obj.ndim <= 2)


def _tabular_facts(
    obj: Any, family: str
) -> tuple[str, list[int], dict[str, str] | None, int | None]:
    """Return kind, shape, schema and size in bytes of a data object."""
    if family == "numpy":
        names = obj.dtype.names
        schema: dict[str, str] | None = None
        if names is not None:
            schema = {n: str(obj.dtype.fields[n][0]) for n in names}
        elif obj.ndim == 2:
            schema = {str(i): str(obj.dtype) for i in range(obj.shape[1])}
        elif obj.ndim == 1:
            schema = {"0": str(obj.dtype)}
        return "array", list(obj.shape), schema, int(obj.nbytes)
    if family == "pandas":
        import pandas as pd

        if isinstance(obj, pd.DataFrame):
            schema = {str(c): str(t) for c, t in zip(obj.columns, obj.dtypes, strict=True)}
            size = int(obj.memory_usage(index=True, deep=False).sum())
            return "dataframe", list(obj.shape), schema, size
        schema = {_column_name(obj.name): str(obj.dtype)}
        return "series", [len(obj)], schema, int(obj.memory_usage(deep=False))
    if family == "polars":
        import polars as pl

        if isinstance(obj, pl.DataFrame):
            schema = {str(k): str(v) for k, v in obj.schema.items()}
            return "dataframe", list(obj.shape), schema, int(obj.estimated_size())
        schema = {_column_name(obj.name): str(obj.dtype)}
        return "series", [len(obj)], schema, int(obj.estimated_size())
    import pyarrow as pa

    if isinstance(obj, (pa.Table, pa.RecordBatch)):
        return "table", [obj.num_rows, obj.num_columns], _arrow_schema(obj), int(obj.nbytes)
    return "array", [len(obj)], {"0": str(obj.type)}, int(obj.nbytes)


def _arrow_schema(table: Any) -> dict[str, str]:
    return {field.name: str(field.type) for field in table.schema}


def _column_name(name: Any) -> str:
    return "0" if name is None or name == "" else str(name)


def _index_kind(obj: Any, family: str) -> dict[str, Any] | None:
    """For pandas: the kind of the index (range, datetime, ...) and its dtype."""
    if family != "pandas" or not hasattr(obj, "index"):
        return None
    index = obj.index
    kind = type(index).__name__
    if kind == "Index":
        kind = "default" if index.dtype == object else str(index.dtype)
    else:
        kind = kind.removesuffix("Index").lower()
    return {"kind": kind, "dtype": str(index.dtype), "levels": int(index.nlevels)}


def _columns(obj: Any, family: str) -> tuple[int, list[tuple[str, str, Any]]]:
    """Split tabular data into (rows, [(column name, dtype, values)])."""
    if family == "numpy":
        import numpy as np

        arr: Any = np.asarray(obj)
        if arr.dtype.names is not None:
            names = arr.dtype.names
            return len(arr), [(n, str(arr.dtype.fields[n][0]), arr[n]) for n in names]
        if arr.ndim == 1:
            return len(arr), [("0", str(arr.dtype), arr)]
        # Column-major once, so that every column below is a contiguous run.
        arr = np.asfortranarray(arr)
        return arr.shape[0], [(str(i), str(arr.dtype), arr[:, i]) for i in range(arr.shape[1])]
    if family == "pandas":
        import pandas as pd

        if isinstance(obj, pd.DataFrame):
            picked = (obj.iloc[:, i] for i in range(obj.shape[1]))
            columns = [(str(c.name), str(c.dtype), c) for c in picked]
            return len(obj), columns
        return len(obj), [(_column_name(obj.name), str(obj.dtype), obj)]
    if family == "polars":
        import polars as pl

        series = list(obj.iter_columns()) if isinstance(obj, pl.DataFrame) else [obj]
        # An Object column's Arrow form holds addresses: profile its Python values instead.
        columns = [
            (
                _column_name(c.name),
                str(c.dtype),
                c.to_numpy() if c.dtype == pl.Object else c.to_arrow(),
            )
            for c in series
        ]
        return len(obj), columns
    import pyarrow as pa

    if isinstance(obj, (pa.Table, pa.RecordBatch)):
        columns = [(f.name, str(f.type), obj.column(i)) for i, f in enumerate(obj.schema)]
        return obj.num_rows, columns
    return len(obj), [("0", str(obj.type), obj)]


def _sample_rows(rows: int) -> Any:
    """Pick a deterministic, spread-out sample of row numbers.

    One random row in each of ``_DISTINCT_SAMPLE`` equal strata: evenly spaced rows would alias
    with periodic data (ids cycling with the sampling step), a fixed seed keeps it reproducible.
    """
    import numpy as np

    size = min(rows, _DISTINCT_SAMPLE)
    starts = np.arange(size, dtype=np.int64) * rows // size
    stops = np.arange(1, size + 1, dtype=np.int64) * rows // size
    jitter = np.random.default_rng(0).random(size)
    return starts + (jitter * (stops - starts)).astype(np.int64)
