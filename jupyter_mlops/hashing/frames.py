"""Hashes of pandas and polars frames, series and indexes: by dtype and values, column by
column, never by memory layout."""

from __future__ import annotations

from typing import Any

from .arrays import ndarray_digest, object_values_digest
from .arrow import arrow_digest
from .framing import field, hasher, tagged, text, u64
from .walk import Walk

__all__ = ["pandas_digest", "polars_digest"]


def pandas_digest(obj: Any, walk: Walk) -> bytes | None:
    """The digest of a pandas frame, series, index or array; None for other pandas objects."""
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        h = hasher(b"pandas.DataFrame")
        h.update(u64(obj.shape[0]) + u64(obj.shape[1]))
        h.update(_index_digest(obj.columns, walk))
        h.update(_index_digest(obj.index, walk))
        for position in range(obj.shape[1]):
            h.update(_pandas_values_digest(obj.iloc[:, position], walk))
        return h.digest()
    if isinstance(obj, pd.Series):
        h = hasher(b"pandas.Series")
        h.update(walk.digest(obj.name, walk))
        h.update(_index_digest(obj.index, walk))
        h.update(_pandas_values_digest(obj, walk))
        return h.digest()
    if isinstance(obj, pd.Index):
        return _index_digest(obj, walk)
    if isinstance(obj, pd.api.extensions.ExtensionArray):
        return tagged(b"pandas.array", _pandas_values_digest(pd.Series(obj, copy=False), walk))
    return None


def _index_digest(index: Any, walk: Walk) -> bytes:
    import pandas as pd

    if isinstance(index, pd.RangeIndex):
        # A RangeIndex is three numbers; hashing them avoids materialising millions of labels.
        h = hasher(b"pandas.RangeIndex")
        h.update(walk.digest(index.name, walk))
        h.update(walk.digest((index.start, index.stop, index.step), walk))
        return h.digest()
    if isinstance(index, pd.MultiIndex):
        h = hasher(b"pandas.MultiIndex")
        h.update(walk.digest(list(index.names), walk))
        h.update(u64(index.nlevels))
        for level in range(index.nlevels):
            h.update(_pandas_values_digest(index.get_level_values(level), walk))
        return h.digest()
    h = hasher(b"pandas.Index")
    h.update(walk.digest(index.name, walk))
    h.update(_pandas_values_digest(index, walk))
    return h.digest()


def _pandas_values_digest(values: Any, walk: Walk) -> bytes:
    """Digest the dtype and values of a Series or Index (not its name or index).

    Values are hashed whole, whatever their number: objects among them on a walk of their own,
    free of ``walk``'s limits."""
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    h = hasher(b"pandas.values")
    field(h, text(str(dtype)))
    h.update(u64(len(values)))
    if isinstance(dtype, np.dtype):
        if dtype.kind in "OT":
            h.update(object_values_digest(values.to_numpy(dtype=object), walk.fresh()))
        else:
            h.update(ndarray_digest(values.to_numpy(), walk, fresh=True))
        return h.digest()
    array = values.array
    if isinstance(dtype, pd.CategoricalDtype):
        h.update(b"\1" if dtype.ordered else b"\0")
        own = walk.fresh()
        h.update(own.digest(array.categories, own))
        h.update(ndarray_digest(array.codes, walk, fresh=True))
        return h.digest()
    if isinstance(dtype, pd.DatetimeTZDtype):
        h.update(ndarray_digest(array.asi8, walk, fresh=True))
        return h.digest()
    to_arrow = getattr(array, "__arrow_array__", None)
    if to_arrow is not None:
        import pyarrow as pa

        try:
            h.update(arrow_digest(to_arrow(), walk))
            return h.digest()
        except (pa.ArrowException, TypeError, NotImplementedError):
            pass
    # Sparse and third-party extension dtypes: hash their dense values.
    dense = np.asarray(array)
    if dense.dtype.kind == "O":
        h.update(object_values_digest(dense, walk.fresh()))
    else:
        h.update(ndarray_digest(dense, walk, fresh=True))
    return h.digest()


def polars_digest(obj: Any, walk: Walk) -> bytes | None:
    """The digest of a polars frame or series; None for other polars objects."""
    import polars as pl

    if isinstance(obj, pl.DataFrame):
        h = hasher(b"polars.DataFrame")
        h.update(u64(obj.height) + u64(obj.width))
        for column in obj.iter_columns():
            field(h, text(column.name))
            h.update(_polars_column_digest(column, walk))
        return h.digest()
    if isinstance(obj, pl.Series):
        h = hasher(b"polars.Series")
        field(h, text(obj.name))
        h.update(_polars_column_digest(obj, walk))
        return h.digest()
    return None


def _polars_column_digest(column: Any, walk: Walk) -> bytes:
    import polars as pl

    if column.dtype == pl.Object:
        # to_arrow() would give the objects' addresses, not their values.
        values = object_values_digest(column.to_numpy(), walk.fresh())
        return tagged(b"polars.Object", values)
    return arrow_digest(column.to_arrow(), walk)
