"""Which values a cell wrote are compared between two runs, and why the others are not.

After each captured cell, every name it assigned is hashed by content (``hashing``), so that a
replay can tell, name by name, whether the cell wrote the same thing: plain values (numbers,
text, lists, tuples, dicts, sets, nested), arrays and frames, fitted models (by learned
state) and other objects that pickle by content. A value that cannot be hashed so is not a
difference: it is listed as *not compared*, with the reason:

- what has no content of its own: modules, functions, classes, generators, open files;
- what cannot be pickled (a lock, an object holding a lambda);
- what depends on object identity (its pickle holds an object's address, pickles differently
  from a copy of itself, or its objects refer to each other, as a matplotlib figure's do);
- what is too large to hash cheaply: containers of Python objects are hashed item by item,
  and the work is bounded so that a cell never stalls on it. Arrays, frames and text are
  hashed whole at memory speed, whatever their size.

A ``Path`` is compared as the name it is: reading the folder it names could take minutes, and
the files a run reads are recorded by themselves.
"""

from __future__ import annotations

import functools
import io
import types
from collections.abc import Iterable, Mapping
from typing import Any

from . import hashing
from .errors import UnhashableError

__all__ = ["MAX_ITEMS", "MAX_PICKLE_BYTES", "compare_written", "value_hash"]

# About 15-50 ms of hashing item by item on one core (a dict entry counts two): beyond that,
# a value is "too large".
MAX_ITEMS = 100_000
MAX_PICKLE_BYTES = 8 << 20

NOT_COMPARED = "not compared: "
TOO_LARGE = NOT_COMPARED + "too large"

# What has no content of its own to compare, by kind. Checked before anything is hashed.
_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (types.ModuleType, "a module"),
    (type, "a class"),
    (
        (
            types.FunctionType,
            types.BuiltinFunctionType,
            types.MethodType,
            types.MethodWrapperType,
            types.WrapperDescriptorType,
            types.MethodDescriptorType,
            types.ClassMethodDescriptorType,
            functools.partial,
        ),
        "a function",
    ),
    ((types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType), "a generator"),
    (io.IOBase, "a file object"),
)
_KIND_CACHE: dict[type, str | None] = {}


def value_hash(value: object) -> tuple[str | None, str | None]:
    """Return (content hash, None) for a value that is compared, or (None, why it is not)."""
    reason = _kind(type(value))
    if reason is not None:
        return None, reason
    try:
        if hashing.is_data(value):
            # Data is hashed whole, as fast as memory reads: no bound needed.
            return hashing.content_hash(value), None
        return hashing.content_hash(
            value, max_items=MAX_ITEMS, max_pickle_bytes=MAX_PICKLE_BYTES, read_paths=False
        ), None
    except UnhashableError as exc:
        if exc.reason == hashing.TOO_LARGE:
            return None, TOO_LARGE
        return None, NOT_COMPARED + str(exc)
    except Exception as exc:  # a value's own code (__reduce__, __len__) may raise anything
        return None, f"{NOT_COMPARED}hashing it raised {type(exc).__name__}"


def compare_written(
    namespace: Mapping[str, Any], names: Iterable[str]
) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    """Content hashes of the values ``names`` are bound to, and why each other one is not.

    A name no longer bound (deleted in the cell) is neither.
    """
    hashes: dict[str, str] = {}
    uncompared: dict[str, str] = {}
    missing = _MISSING
    for name in dict.fromkeys(names):
        value = namespace.get(name, missing)
        if value is missing:
            continue
        digest, reason = value_hash(value)
        if digest is not None:
            hashes[name] = digest
        elif reason is not None:
            uncompared[name] = reason
    return hashes or None, uncompared or None


_MISSING = object()


def _kind(cls: type) -> str | None:
    try:
        return _KIND_CACHE[cls]
    except KeyError:
        pass
    reason = next((NOT_COMPARED + what for kinds, what in _KINDS if issubclass(cls, kinds)), None)
    # Classes made on the fly must not grow the cache without bound.
    if len(_KIND_CACHE) < 4096:
        _KIND_CACHE[cls] = reason
    return reason
