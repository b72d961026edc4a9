"""Data profiles: what a dataset looks like, compact enough to store with every run.

Per column: dtype, count, missing, min, max, mean and distinct; for numbers also the standard
deviation, quantiles and a fixed-bin histogram; for text, booleans and categoricals the top
categories with their counts; for pandas, the index kind. Above a million rows, the standard
deviation, distinct counts, quantiles, histograms and categories come from a fixed sample of
100,000 rows (the profile says ``"approximate": true``); counts, missing, min, max and mean
are always exact. A profile is the baseline a data check compares new data against; a profile
made with ``reference=`` puts its histograms on the reference's bins and counts the
reference's categories, so that the comparison is exact; above 100,000 rows it takes its
distinct counts, quantiles and standard deviation from the sample (a check does not use them).

Like ``hashing``, importing this module stays cheap: numpy, pandas, pyarrow and polars are
imported inside functions, once an object of that library is in hand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path, PurePath
from typing import Any

from .errors import InvalidValueError
from .hashing import content_hash
from .hashing.data_types import family_of, type_name
from .hashing.paths import directory_entries
from .jsonable import json_float

__all__ = ["HISTOGRAM_BINS", "QUANTILES", "TOP_CATEGORIES", "DataInfo", "describe", "profile"]

# Above this many rows, distinct counts, quantiles, histograms and categories come from a
# sample: exact counting is a hash table over every row, which takes seconds on millions.
_EXACT_DISTINCT_ROWS = 1_000_000
_DISTINCT_SAMPLE = 100_000
# Profiles go into the store; a column of long documents must not copy them there.
_MAX_PROFILE_TEXT = 100
# The quantiles kept for numbers, and the fixed bins of their histograms (equal width between
# min and max: population stability is measured on these bins).
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 20
# The most frequent values kept for text and categoricals; with fewer distinct values than
# this, the list is every category the data holds ("complete").
TOP_CATEGORIES = 50

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
        column = _column_stats(values, _Rows(sample, summary), known.get(key))
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


@dataclass(frozen=True)
class _Rows:
    """Which rows the statistics of a column come from: ``sample`` for histograms and
    categories, ``summary`` for distinct counts, quantiles and the standard deviation; None
    is every row."""

    sample: Any
    summary: Any


def _column_stats(values: Any, rows: _Rows, reference: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the statistics of one column (``reference``: the same column's profile)."""
    import numpy as np

    if type(values).__module__.partition(".")[0] == "pandas":
        if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iuf":
            values = values.to_numpy()
        else:
            converted = _pandas_to_arrow(values)
            if converted is None:
                return _python_stats(values.to_numpy(dtype=object))
            values = converted
    if isinstance(values, np.ndarray):
        if values.ndim != 1:  # a sub-array field of a structured array
            return _python_stats(list(values))
        if values.dtype.kind in "iuf":
            return _numeric_stats(values, rows, reference)
        converted = _numpy_to_arrow(values)
        if converted is None:
            return _python_stats(values)
        values = converted
    return _arrow_stats(values, rows, reference)


def _pandas_to_arrow(values: Any) -> Any:
    import numpy as np
    import pyarrow as pa

    to_arrow = getattr(values.array, "__arrow_array__", None)
    try:
        if to_arrow is not None:
            return to_arrow()
        if isinstance(values.dtype, np.dtype):
            return pa.array(values.to_numpy(), from_pandas=True)
        return pa.array(np.asarray(values.array), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None


def _numpy_to_arrow(values: Any) -> Any:
    import numpy as np
    import pyarrow as pa

    try:
        return pa.array(np.ascontiguousarray(values), from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None


def _numeric_stats(
    values: Any, rows: _Rows, reference: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    # numpy rather than pyarrow.compute here: min_max over floats is ten times faster.
    import numpy as np
    import pyarrow as pa

    if values.dtype.kind == "f":
        nan = np.isnan(values)
        missing = int(np.count_nonzero(nan))
        valid = values[~nan] if missing else values
    else:
        missing = 0
        valid = values
    count = len(valid)
    result: dict[str, Any] = {"count": count, "missing": missing}
    if count:
        low, high = valid.min().item(), valid.max().item()
        result["min"] = _json_value(low)
        result["max"] = _json_value(high)
        shaped = valid if rows.sample is None else _sampled(values, rows.sample)
        summed = shaped if rows.summary is rows.sample else _sampled(values, rows.summary)
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is a NaN mean, fine
            result["mean"] = _json_value(float(valid.mean(dtype=np.float64)))
            result["std"] = _json_value(float(summed.std(dtype=np.float64)))
        result.update(_shape_stats(shaped, summed, float(low), float(high), reference))
    else:
        summed = valid
        result.update(min=None, max=None, mean=None, std=None)
    try:
        if rows.summary is None:
            result["distinct"] = len(pa.array(np.ascontiguousarray(valid)).unique())
        else:
            result["distinct"] = _estimate_distinct(pa.array(summed), count)
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError):  # float16 has no hash kernel
        result["distinct"] = len(np.unique(valid))
    return result


def _sampled(values: Any, sample: Any) -> Any:
    import numpy as np

    picked = values[sample]
    return picked[~np.isnan(picked)] if values.dtype.kind == "f" else picked


def _shape_stats(
    values: Any, summed: Any, low: float, high: float, reference: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Quantiles (of ``summed``) and a fixed-bin histogram (of ``values``) of the valid values
    of a numeric column; on the reference's bins when it has them, with the values outside
    its range counted."""
    import numpy as np

    if not (math.isfinite(low) and math.isfinite(high)):
        values = values[np.isfinite(values)]
        summed = summed[np.isfinite(summed)]
        if not len(values):
            return {"quantiles": None, "histogram": None}
        low, high = float(values.min()), float(values.max())
    if values.dtype.kind != "f":
        # Integers above 2**53 lose their last digits as floats; the shape survives that.
        values = values.astype(np.float64)
    quantiles = np.quantile(summed.astype(np.float64, copy=False), QUANTILES) if len(summed) else []
    result: dict[str, Any] = {"quantiles": [_json_value(float(q)) for q in quantiles]}
    edges = (reference or {}).get("histogram", {}) or {}
    edges = edges.get("edges")
    if edges:
        lo, hi = float(edges[0]), float(edges[-1])
        bins = len(edges) - 1
        below = int(np.count_nonzero(values < lo)) if low < lo else 0
        above = int(np.count_nonzero(values > hi)) if high > hi else 0
        if hi > lo:
            counts, _ = np.histogram(values, bins=bins, range=(lo, hi))
        else:
            counts = np.array([len(values) - below - above])
        # Values outside the reference's range belong to its first and last bins.
        counts[0] += below
        counts[-1] += above
        result["histogram"] = {"edges": list(edges), "counts": counts.tolist()}
        result["outside"] = below + above
        result["sampled"] = len(values)
        return result
    if high > low:
        counts, bounds = np.histogram(values, bins=HISTOGRAM_BINS, range=(low, high))
        result["histogram"] = {"edges": bounds.tolist(), "counts": counts.tolist()}
    else:
        result["histogram"] = {"edges": [low, high], "counts": [len(values)]}
    return result


def _arrow_stats(
    values: Any, rows: _Rows, reference: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = values.type
    if isinstance(kind, pa.ExtensionType):
        values = (
            pa.chunked_array([c.storage for c in values.chunks], type=kind.storage_type)
            if isinstance(values, pa.ChunkedArray)
            else values.storage
        )
        kind = kind.storage_type
    if pa.types.is_dictionary(kind):
        values = values.cast(kind.value_type)
        kind = kind.value_type
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
    if numeric and values.null_count == 0:
        return _numeric_stats(values.to_numpy(), rows, reference)
    if numeric:
        # Nulls become NaN: the float path counts them as missing, at numpy's speed.
        return _numeric_stats(
            values.cast(pa.float64()).to_numpy(zero_copy_only=False), rows, reference
        )
    missing = values.null_count
    count = len(values) - missing
    result: dict[str, Any] = {"count": count, "missing": missing}
    result["min"] = result["max"] = result["mean"] = None
    counted: Any = None
    try:
        picked = values if rows.sample is None else values.take(pa.array(rows.sample))
        counted = pc.value_counts(picked.drop_null())
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    try:
        if count:
            # Every distinct value counted: their extremes are the column's, from far fewer.
            counted_all = counted is not None and rows.sample is None
            source = counted.field("values") if counted_all else values
            # min_max has no duration kernel; durations order like their int64 ticks.
            ticks = source.cast(pa.int64()) if pa.types.is_duration(kind) else source
            extremes = pc.min_max(ticks)
            for key in ("min", "max"):
                value = extremes[key]
                if ticks is not source:
                    value = pa.scalar(value.as_py(), type=kind)
                result[key] = _json_value(_as_py(value))
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    if count and pa.types.is_decimal(kind):
        result["mean"] = _json_value(_as_py(pc.mean(values)))
    if counted is None:
        result["distinct"] = None
        return result
    exact = rows.sample is None
    result["distinct"] = len(counted) if exact else _estimate_distinct_from(counted, count)
    categorical = pa.types.is_string(kind) or pa.types.is_large_string(kind)
    categorical = categorical or pa.types.is_boolean(kind) or pa.types.is_string_view(kind)
    if categorical:
        result["categories"] = _top_categories(counted, reference)
    return result


def _top_categories(counted: Any, reference: Mapping[str, Any] | None) -> dict[str, Any]:
    """The most frequent values with their counts, the count of all others, and whether the
    list is every value; with a reference, its categories are counted too."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    counts = counted.field("counts").to_numpy()
    values = counted.field("values")
    order = np.argsort(-counts, kind="stable")[:TOP_CATEGORIES]
    chosen = set(order.tolist())
    known = ((reference or {}).get("categories") or {}).get("top") or []
    if known:
        try:
            wanted = pa.array([v for v, _ in known]).cast(values.type)
            found = pc.is_in(values, value_set=wanted).to_numpy(zero_copy_only=False)
        except (pa.ArrowException, TypeError, ValueError):
            found = np.zeros(len(values), dtype=bool)  # the baseline held another type
        chosen.update(np.flatnonzero(found).tolist())
    picked = sorted(chosen, key=lambda i: (-int(counts[i]), i))
    names = values.take(pa.array(picked, type=pa.int64())).to_pylist()
    top = [[_json_value(name), int(counts[i])] for name, i in zip(names, picked, strict=True)]
    total = int(counts.sum())
    kept = sum(n for _, n in top)
    return {"top": top, "other": total - kept, "complete": len(counts) <= len(top)}


def _python_stats(values: Any) -> dict[str, Any]:
    """Stats for a column of arbitrary Python objects, which Arrow cannot hold."""
    present = [x for x in values if not (x is None or (isinstance(x, float) and math.isnan(x)))]
    try:
        distinct: int | None = len(set(present))
    except TypeError:  # lists, dicts: unhashable values have no cheap distinct count
        distinct = None
    return {
        "count": len(present),
        "missing": len(values) - len(present),
        "min": None,
        "max": None,
        "mean": None,
        "distinct": distinct,
    }


def _estimate_distinct(sample: Any, population: int) -> int:
    """Estimate the distinct values of a column from a sample of it (Chao1, bias-corrected)."""
    import pyarrow.compute as pc

    if len(sample) == 0:
        return 0
    return _estimate_distinct_from(pc.value_counts(sample), population)


def _estimate_distinct_from(counted: Any, population: int) -> int:
    """Chao1 from a sample's value counts.

    The sample's own distinct count badly undercounts (a column of 5M unique ids shows 100k);
    Chao1 extrapolates from how many values the sample saw once (f1) and twice (f2).
    """
    import numpy as np

    counts = counted.field("counts").to_numpy()
    seen = len(counts)
    if not seen:
        return 0
    once = int(np.count_nonzero(counts == 1))
    twice = int(np.count_nonzero(counts == 2))
    extra = once * once / (2 * twice) if twice else once * (once - 1) / 2
    return int(min(max(seen, round(seen + extra)), population))


def _as_py(scalar: Any) -> Any:
    try:
        return scalar.as_py()
    except (ValueError, OverflowError):
        # Timestamps outside what datetime can hold.
        return str(scalar)


def _json_value(value: Any) -> Any:
    """Make a statistic JSON-serializable: ISO strings for times, None for NaN."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return json_float(value, nan=None)
    if isinstance(value, str):
        return value if len(value) <= _MAX_PROFILE_TEXT else value[: _MAX_PROFILE_TEXT - 1] + "…"
    if isinstance(value, (bytes, bytearray)):
        return _json_value(bytes(value).hex())
    if hasattr(value, "isoformat") and not _is_timedelta(value):
        return value.isoformat()
    if hasattr(value, "item"):
        return _json_value(value.item())
    if type(value).__name__ == "Decimal":
        return _json_value(float(value))
    return _json_value(str(value))


def _is_timedelta(value: Any) -> bool:
    import datetime

    return isinstance(value, datetime.timedelta)
