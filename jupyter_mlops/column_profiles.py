"""The profile of one column: count, missing, min, max, mean and distinct; for numbers the
standard deviation, quantiles and a fixed-bin histogram; for text, booleans and categoricals
the top categories with their counts.

Columns come as numpy arrays, Arrow arrays or pandas series (read through Arrow where it can);
which rows count for what is a ``Rows``. Libraries are imported inside functions, once a column
of theirs is in hand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .jsonable import json_float

__all__ = ["HISTOGRAM_BINS", "QUANTILES", "TOP_CATEGORIES", "Rows", "column_stats"]

# Profiles go into the store; a column of long documents must not copy them there.
_MAX_PROFILE_TEXT = 100
# The quantiles kept for numbers, and the fixed bins of their histograms (equal width between
# min and max: population stability is measured on these bins).
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 20
# The most frequent values kept for text and categoricals; with fewer distinct values than
# this, the list is every category the data holds ("complete").
TOP_CATEGORIES = 50


@dataclass(frozen=True)
class Rows:
    """Which rows the statistics of a column come from: ``sample`` for histograms and
    categories, ``summary`` for distinct counts, quantiles and the standard deviation; None
    is every row."""

    sample: Any
    summary: Any


def column_stats(values: Any, rows: Rows, reference: Mapping[str, Any] | None) -> dict[str, Any]:
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
    values: Any, rows: Rows, reference: Mapping[str, Any] | None = None
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
    values: Any, rows: Rows, reference: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    values, kind = _plain_arrow(values)
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
    if count:
        # Every distinct value counted: their extremes are the column's, from far fewer.
        counted_all = counted is not None and rows.sample is None
        result.update(_arrow_extremes(counted.field("values") if counted_all else values, kind))
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


def _plain_arrow(values: Any) -> tuple[Any, Any]:
    """An Arrow column without its extension type or dictionary encoding, and its type."""
    import pyarrow as pa

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
    return values, kind


def _arrow_extremes(source: Any, kind: Any) -> dict[str, Any]:
    """The least and greatest of Arrow values of type ``kind``; none where Arrow cannot order
    them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    extremes: dict[str, Any] = {}
    try:
        # min_max has no duration kernel; durations order like their int64 ticks.
        ticks = source.cast(pa.int64()) if pa.types.is_duration(kind) else source
        found = pc.min_max(ticks)
        for key in ("min", "max"):
            value = found[key]
            if ticks is not source:
                value = pa.scalar(value.as_py(), type=kind)
            extremes[key] = _json_value(_as_py(value))
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    return extremes


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
