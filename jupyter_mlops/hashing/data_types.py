"""Recognising data (arrays, frames, tables) by class, without importing their libraries.

Objects are recognised by ``type(obj).__module__`` and class name, so that hashing a value of a
library never imports it: a library is imported only once an object of it is in hand.
"""

from __future__ import annotations

__all__ = ["family_of", "is_data", "top_module", "type_name"]

_DATA_CLASSES: dict[str, frozenset[str]] = {
    "numpy": frozenset({"ndarray", "memmap", "matrix", "recarray", "MaskedArray"}),
    "pandas": frozenset(
        {
            "DataFrame",
            "Series",
            "Index",
            "RangeIndex",
            "MultiIndex",
            "CategoricalIndex",
            "DatetimeIndex",
            "TimedeltaIndex",
            "PeriodIndex",
            "IntervalIndex",
        }
    ),
    "polars": frozenset({"DataFrame", "Series"}),
    "pyarrow": frozenset({"Table", "RecordBatch", "ChunkedArray"}),
}
_DATA_TYPE_CACHE: dict[type, bool] = {}


def is_data(obj: object) -> bool:
    """Tell whether ``obj`` is an array, frame or table worth hashing after a cell writes it."""
    cls = type(obj)
    known = _DATA_TYPE_CACHE.get(cls)
    if known is None:
        known = _is_data_type(cls)
        # Classes made on the fly must not grow the cache without bound.
        if len(_DATA_TYPE_CACHE) < 4096:
            _DATA_TYPE_CACHE[cls] = known
    return known


def top_module(cls: type) -> str:
    """The top package a class comes from ("numpy", "pandas", ...); "" when it names none
    (some extension types carry a descriptor, not text, as ``__module__``)."""
    module = getattr(cls, "__module__", None)
    return module.partition(".")[0] if isinstance(module, str) else ""


def _is_data_type(cls: type) -> bool:
    top = top_module(cls)
    names = _DATA_CLASSES.get(top)
    if names is None:
        return False
    # pyarrow has one Array class per type (Int64Array, LargeStringArray, ...).
    return cls.__name__ in names or (top == "pyarrow" and cls.__name__.endswith("Array"))


def family_of(obj: object) -> str | None:
    """Name the tabular family of a data object ("numpy", "pandas", ...), or None."""
    if not is_data(obj):
        return None
    return top_module(type(obj))


def type_name(obj: object) -> str:
    """The class of ``obj`` as a user would name it (``list``, ``pandas.core.frame.DataFrame``)."""
    cls = type(obj)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"
