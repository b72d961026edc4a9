"""Content hashes: what a run's data *is*, independent of where it lives.

Every hash is xxh3_128 in lowercase hex. ``content_hash`` depends on content only (never on
object identity, a path or an mtime), is equal across processes for equal content, and mixes a
type tag into each value so that, say, an int64 array and the raw bytes of its buffer differ.
A ``Path`` stands for the file (its bytes) or folder (names and file contents) it names; a
``str`` is always text, never a path. Sets and dicts hash independently of their order, so of
the hash seed. A fitted model (an object with scikit-learn's ``get_params`` and ``fit``) hashes
by its learned state: its attributes, arrays by content, wall-clock timings left out. Other
objects are pickled, without pickle's memo (so shared references do not change the stream),
with their sets, dicts, models and data hashed by content; an object whose pickle holds the
address of an object in it, or differs from that of a copy of it (made by pickling and
unpickling), depends on identity, not content. An object that cannot be hashed so (a lambda,
a generator, a lock, a figure whose objects refer to each other) raises ``UnhashableError``.

This module is on the hot path of every captured cell, so importing it must stay cheap: numpy,
pandas, pyarrow and polars are never imported here at module level. Objects are recognised by
``type(obj).__module__`` and class name, and a library is imported inside a function only once
an object of that library is in hand (so it is already loaded and the import is a dict lookup).
Profiles of data (what ``log_data`` records beside the hash) are in ``profiles``.
"""

from __future__ import annotations

import math
import os
import re
import struct
import sys
from pathlib import Path, PurePath
from typing import Any, cast

import xxhash

from jupyter_mlops.errors import UnhashableError

__all__ = [
    "IDENTITY",
    "TOO_LARGE",
    "content_hash",
    "hash_bytes",
    "hash_file",
    "is_data",
]

# Files are read in chunks of this size so a multi-gigabyte file never sits in memory.
_FILE_CHUNK = 1 << 20
# Non-contiguous arrays are copied this many bytes at a time rather than whole.
_ARRAY_CHUNK = 16 << 20

# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def hash_bytes(data: bytes | str) -> str:
    """Return the xxh3_128 hex digest of raw bytes (a str is encoded as UTF-8)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return xxhash.xxh3_128_hexdigest(data)


def hash_file(path: Path) -> str:
    """Return the xxh3_128 hex digest of a file's bytes (equal to ``hash_bytes`` of them)."""
    return _file_digest(Path(path)).hex()


def content_hash(
    obj: object,
    *,
    max_items: int | None = None,
    max_pickle_bytes: int | None = None,
    read_paths: bool = True,
) -> str:
    """Return a hash of ``obj`` that depends on its content and type only.

    ``max_items`` bounds the values hashed one by one (container items, object-array items,
    model attributes) and ``max_pickle_bytes`` the bytes pickled: past either, ``obj`` is too
    large to hash cheaply (``UnhashableError`` with reason ``TOO_LARGE``). Arrays, frames and
    text are hashed whole at memory speed, whatever their size. With ``read_paths=False`` a
    ``Path`` hashes as the name it is, not as the file or folder it names.
    """
    try:
        return _digest(obj, _Walk(max_items, max_pickle_bytes, read_paths)).hex()
    except RecursionError:
        raise UnhashableError(_type_name(obj), "it is nested too deeply to hash") from None


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


# ---------------------------------------------------------------------------------------------
# Recognising data types without importing their libraries
# ---------------------------------------------------------------------------------------------

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


def _top_module(cls: type) -> str:
    """The top package a class comes from ("numpy", "pandas", ...); "" when it names none
    (some extension types carry a descriptor, not text, as ``__module__``)."""
    module = getattr(cls, "__module__", None)
    return module.partition(".")[0] if isinstance(module, str) else ""


def _is_data_type(cls: type) -> bool:
    top = _top_module(cls)
    names = _DATA_CLASSES.get(top)
    if names is None:
        return False
    # pyarrow has one Array class per type (Int64Array, LargeStringArray, ...).
    return cls.__name__ in names or (top == "pyarrow" and cls.__name__.endswith("Array"))


def _family(obj: object) -> str | None:
    """Name the tabular family of a data object ("numpy", "pandas", ...), or None."""
    if not is_data(obj):
        return None
    return _top_module(type(obj))


def _type_name(obj: object) -> str:
    cls = type(obj)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


# ---------------------------------------------------------------------------------------------
# Digests: each returns the 16-byte xxh3_128 digest of one tagged value
# ---------------------------------------------------------------------------------------------
#
# Framing rule: a hasher is fed a NUL-terminated type tag, then fixed-size or length-prefixed
# fields, and at most one variable-length stream, last. That keeps every encoding prefix-free,
# so two different values cannot feed the same bytes.


def _hasher(tag: bytes) -> xxhash.xxh3_128:
    h = xxhash.xxh3_128()
    h.update(tag + b"\0")
    return h


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "little")


def _field(h: xxhash.xxh3_128, data: bytes) -> None:
    h.update(_u64(len(data)))
    h.update(data)


def _text(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def _tagged(tag: bytes, payload: bytes) -> bytes:
    return xxhash.xxh3_128_digest(tag + b"\0" + payload)


# Why an object is not hashed, as ``UnhashableError.reason``: callers tell these apart.
TOO_LARGE = "it is too large to hash cheaply"
IDENTITY = "its pickle depends on object identity, not only on content"
_CYCLE = "its objects refer to each other in a cycle (or nest too deeply)"
# Below this, an int is not the address (``id``) of an object, nor its default hash.
_ADDRESS_MIN = 1 << 16


class _Walk:
    """The state of one ``content_hash``: containers entered (to catch cycles), the work left
    before the value counts as too large, and how deep inside a pickle the walk is."""

    __slots__ = (
        "active",
        "addresses",
        "data",
        "items",
        "pickle_bytes",
        "pickling",
        "read_paths",
        "seen",
    )

    def __init__(
        self,
        max_items: int | None = None,
        max_pickle_bytes: int | None = None,
        read_paths: bool = True,
    ) -> None:
        self.active: set[int] = set()
        self.items = max_items
        self.pickle_bytes = max_pickle_bytes
        self.read_paths = read_paths
        self.pickling = 0
        # Inside a pickle: the ids of the objects met, and the ints that could be addresses.
        self.seen: set[int] = set()
        self.addresses: list[int] = []
        # Digests of the data objects met in a pickle, by id (the object kept alive with it):
        # a copy made to check identity shares them, and need not hash them again.
        self.data: dict[int, tuple[object, bytes]] = {}

    def spend(self, items: int, obj: object) -> None:
        """Count ``items`` values about to be hashed one by one."""
        if self.items is not None:
            self.items -= items
            if self.items < 0:
                raise UnhashableError(_type_name(obj), TOO_LARGE)


def _digest(obj: object, walk: _Walk) -> bytes:
    cls = type(obj)
    scalar = _SCALAR_DIGESTS.get(cls)
    if scalar is not None:
        if walk.pickling and cls is int and cast(int, obj) > _ADDRESS_MIN:
            walk.addresses.append(cast(int, obj))
        return scalar(obj)
    if cls in _CONTAINER_TAGS:
        return _container_digest(obj, _CONTAINER_TAGS[cls], walk)
    top = _top_module(cls)
    if top == "numpy":
        result = _numpy_digest(obj, walk)
    elif top == "pandas":
        result = _pandas_digest(obj, walk)
    elif top == "polars":
        result = _polars_digest(obj)
    elif top == "pyarrow":
        result = _pyarrow_digest(obj)
    else:
        result = None
    if result is not None:
        return result
    if isinstance(obj, PurePath):
        if walk.read_paths:
            return _path_digest(Path(obj))
        return _tagged(b"path", _text(f"{cls.__module__}.{cls.__qualname__}:{obj}"))
    if isinstance(obj, (list, tuple, dict, set, frozenset)) and not _is_enum(obj):
        # Subclasses (namedtuple, OrderedDict, ...) hash like their base, tagged by their class.
        return _container_digest(obj, _text(f"{cls.__module__}.{cls.__qualname__}"), walk)
    if _is_model(cls):
        result = _model_digest(obj, walk)
        if result is not None:
            return result
    return _pickle_digest(obj, walk)


def _is_enum(obj: object) -> bool:
    enum = sys.modules.get("enum")
    return enum is not None and isinstance(obj, enum.Enum)


def _int_digest(obj: Any) -> bytes:
    return _tagged(b"int", obj.to_bytes(obj.bit_length() // 8 + 1, "little", signed=True))


# Scalars are hashed item by item in containers: each digest is one call, its tag spelled out
# (the bytes fed are those of ``_tagged``).
_xxh3 = xxhash.xxh3_128_digest
_pack_float = struct.Struct("<d").pack
_SCALAR_DIGESTS: dict[type, Any] = {
    type(None): lambda obj: _tagged(b"none", b""),
    bool: lambda obj: _tagged(b"bool", b"\1" if obj else b"\0"),
    int: _int_digest,
    float: lambda obj: _xxh3(b"float\0" + _pack_float(obj)),
    complex: lambda obj: _tagged(b"complex", struct.pack("<dd", obj.real, obj.imag)),
    str: lambda obj: _xxh3(b"str\0" + obj.encode("utf-8", "surrogatepass")),
    bytes: lambda obj: _tagged(b"bytes", obj),
    bytearray: lambda obj: _tagged(b"bytes", bytes(obj)),
    memoryview: lambda obj: _tagged(b"bytes", obj.tobytes()),
}
_CONTAINER_TAGS: dict[type, bytes] = {
    list: b"list",
    tuple: b"tuple",
    dict: b"dict",
    set: b"set",
    frozenset: b"frozenset",
}


def _container_digest(obj: Any, tag: bytes, walk: _Walk) -> bytes:
    marker = id(obj)
    if marker in walk.active:
        raise UnhashableError(_type_name(obj), "it contains itself")
    is_dict = isinstance(obj, dict)
    walk.spend(2 * len(obj) if is_dict else len(obj), obj)
    walk.active.add(marker)
    if walk.pickling:
        walk.seen.add(marker)
    try:
        h = _hasher(tag)
        h.update(_u64(len(obj)))
        # Scalars straight to their digest, skipping ``_digest``'s dispatch (the common case
        # of long containers); inside a pickle every int goes through it, to be seen.
        scalars = {} if walk.pickling else _SCALAR_DIGESTS
        if is_dict:
            # Sorted by key hash, so insertion order does not matter. Key digests have one
            # length, so sorting the joined pairs sorts by key (and is faster than tuples).
            pairs = [
                (scalars[type(k)](k) if type(k) in scalars else _digest(k, walk))
                + (scalars[type(v)](v) if type(v) in scalars else _digest(v, walk))
                for k, v in obj.items()
            ]
            pairs.sort()
            for pair in pairs:
                h.update(pair)
        else:
            items = [scalars[type(x)](x) if type(x) in scalars else _digest(x, walk) for x in obj]
            if isinstance(obj, (set, frozenset)):
                items.sort()
            h.update(b"".join(items))
        return h.digest()
    finally:
        walk.active.discard(marker)


# --- fitted models --------------------------------------------------------------------------------

_MODEL_TYPE_CACHE: dict[type, bool] = {}
# Wall-clock timings a model keeps (GridSearchCV's mean_fit_time, refit_time_) are not learned.
_TIMING_NAME = re.compile(r"(?:^|_)times?_?$")


def _is_model(cls: type) -> bool:
    """Whether instances of ``cls`` are models in scikit-learn's sense (get_params and fit)."""
    known = _MODEL_TYPE_CACHE.get(cls)
    if known is None:
        known = callable(getattr(cls, "get_params", None)) and callable(getattr(cls, "fit", None))
        if len(_MODEL_TYPE_CACHE) < 4096:
            _MODEL_TYPE_CACHE[cls] = known
    return known


def _untimed(mapping: dict[Any, Any]) -> dict[Any, Any]:
    return {k: v for k, v in mapping.items() if not (isinstance(k, str) and _TIMING_NAME.search(k))}


def _model_digest(obj: Any, walk: _Walk) -> bytes | None:
    """Digest a model by its learned state: its params and fitted attributes, by content.

    scikit-learn keeps both as instance attributes (params by name, fitted ones ending in
    ``_``); all attributes are taken, as other libraries keep fitted state in private ones.
    """
    state = getattr(obj, "__dict__", None)
    if type(state) is not dict:
        return None
    marker = id(obj)
    if marker in walk.active:
        raise UnhashableError(_type_name(obj), "it contains itself")
    walk.spend(len(state), obj)
    walk.active.add(marker)
    if walk.pickling:
        walk.seen.add(marker)
    try:
        cls = type(obj)
        h = _hasher(b"model")
        _field(h, _text(f"{cls.__module__}.{cls.__qualname__}"))
        names = sorted(k for k in state if isinstance(k, str) and not _TIMING_NAME.search(k))
        h.update(_u64(len(names)))
        for name in names:
            value = state[name]
            _field(h, _text(name))
            h.update(_digest(_untimed(value) if type(value) is dict else value, walk))
        return h.digest()
    finally:
        walk.active.discard(marker)


# --- other objects, through pickle ----------------------------------------------------------------


class _HashWriter:
    """A file-like sink that feeds pickle's output straight into a hasher, within a budget."""

    def __init__(self, h: xxhash.xxh3_128, walk: _Walk, obj: object) -> None:
        if walk.pickle_bytes is None:
            self.write = h.update
            return
        update = h.update

        def write(data: Any) -> None:
            left = walk.pickle_bytes
            assert left is not None
            walk.pickle_bytes = left - len(data)
            if walk.pickle_bytes < 0:
                raise UnhashableError(_type_name(obj), TOO_LARGE)
            update(data)

        self.write = write


_PICKLERS: Any = None


def _picklers() -> Any:
    """Return (once built) the content pickler, and the pickler and unpickler that copy."""
    global _PICKLERS
    if _PICKLERS is None:
        import pickle

        class ContentPickler(pickle.Pickler):
            # Sets and dicts pickle in insertion (so hash-seed) order, frames pickle their
            # memory layout and models their caches; writing their content hash instead keeps
            # an object's hash stable across processes.
            def __init__(self, sink: _HashWriter, walk: _Walk, buffers: list[Any]) -> None:
                super().__init__(sink, protocol=5, buffer_callback=buffers.append)
                # No memo: with it, the stream depends on which equal values are one object
                # (interned strings, shared tuples), which a copy or another process need not
                # repeat. An object that refers to itself then recurses, and is not hashed.
                self.fast = True
                self.walk = walk

            def persistent_id(self, item: Any) -> str | None:
                kind = type(item)
                if kind is int:
                    if item > _ADDRESS_MIN:
                        self.walk.addresses.append(item)
                    return None
                walk = self.walk
                walk.seen.add(id(item))
                if kind is dict or kind is set or kind is frozenset:
                    return "content:" + _digest(item, walk).hex()
                if is_data(item):
                    known = walk.data.get(id(item))
                    if known is None:
                        known = walk.data[id(item)] = (item, _digest(item, walk))
                    return "content:" + known[1].hex()
                if _is_model(kind):
                    return "model:" + _digest(item, self.walk).hex()
                return None

        class CopyPickler(pickle.Pickler):
            # Data goes by reference: its hash is its content, so copying it would prove nothing.
            def __init__(self, sink: Any, kept: list[Any], buffers: list[Any]) -> None:
                super().__init__(sink, protocol=5, buffer_callback=buffers.append)
                self.kept = kept

            def persistent_id(self, item: Any) -> int | None:
                if is_data(item):
                    self.kept.append(item)
                    return len(self.kept) - 1
                return None

        class CopyUnpickler(pickle.Unpickler):
            def __init__(self, source: Any, kept: list[Any], buffers: list[Any]) -> None:
                super().__init__(source, buffers=buffers)
                self.kept = kept

            def persistent_load(self, pid: Any) -> Any:
                return self.kept[pid]

        _PICKLERS = (ContentPickler, CopyPickler, CopyUnpickler)
    return _PICKLERS


def _pickle_digest(obj: object, walk: _Walk) -> bytes:
    outermost = walk.pickling == 0
    if outermost:
        walk.seen.clear()
        walk.addresses.clear()
        walk.data.clear()
    digest = _pickled_digest(obj, walk)
    if outermost:
        # Identity shows in two ways, checked once for the outermost pickled object (which
        # covers all inside it): the pickle holds the id (or default hash) of an object in it,
        # or a copy of the object pickles differently (ids or fresh uuids made while pickling).
        seen = walk.seen
        if any(n in seen or (n << 4) in seen for n in walk.addresses):
            raise UnhashableError(_type_name(obj), IDENTITY)
        items, pickle_bytes = walk.items, walk.pickle_bytes
        copy = _pickle_copy(obj)
        try:
            same = _pickled_digest(copy, walk) == digest
        except UnhashableError:
            same = False
        finally:
            walk.items, walk.pickle_bytes = items, pickle_bytes
            walk.data.clear()
        if not same:
            raise UnhashableError(_type_name(obj), IDENTITY)
    return digest


def _pickled_digest(obj: object, walk: _Walk) -> bytes:
    cls = type(obj)
    h = _hasher(b"pickle")
    _field(h, _text(f"{cls.__module__}.{cls.__qualname__}"))
    stream = xxhash.xxh3_128()
    buffers: list[Any] = []
    walk.pickling += 1
    try:
        _picklers()[0](_HashWriter(stream, walk, obj), walk, buffers).dump(obj)
    except UnhashableError:
        raise
    except RecursionError:
        raise UnhashableError(_type_name(obj), _CYCLE) from None
    except Exception as exc:  # pickling runs arbitrary __reduce__ code; any failure means "no"
        if "fast mode" in str(exc):  # the pickler found a cycle before the recursion limit
            raise UnhashableError(_type_name(obj), _CYCLE) from None
        raise UnhashableError(
            _type_name(obj), f"it cannot be pickled: {_first_line(exc)}"
        ) from None
    finally:
        walk.pickling -= 1
    # Out-of-band buffers (protocol 5) are hashed where they lie instead of copied into the pickle.
    h.update(_u64(len(buffers)))
    for buffer in buffers:
        with buffer.raw() as raw:
            h.update(xxhash.xxh3_128_digest(raw))
    h.update(stream.digest())
    return h.digest()


def _pickle_copy(obj: object) -> Any:
    """A copy of ``obj`` made by pickling and unpickling it (data shared, not copied)."""
    import io

    _, copy_pickler, copy_unpickler = _picklers()
    sink = io.BytesIO()
    kept: list[Any] = []
    buffers: list[Any] = []
    try:
        copy_pickler(sink, kept, buffers).dump(obj)
        sink.seek(0)
        return copy_unpickler(sink, kept, buffers).load()
    except RecursionError:
        raise UnhashableError(_type_name(obj), _CYCLE) from None
    except Exception as exc:
        raise UnhashableError(
            _type_name(obj), f"it cannot be copied by pickling: {_first_line(exc)}"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    return reason if len(reason) <= 160 else reason[:157] + "..."


# --- files and folders --------------------------------------------------------------------------


def _file_digest(path: Path) -> bytes:
    h = xxhash.xxh3_128()
    chunk = bytearray(_FILE_CHUNK)
    view = memoryview(chunk)
    try:
        with open(path, "rb", buffering=0) as handle:
            while True:
                n = handle.readinto(chunk)
                if not n:
                    break
                h.update(view[:n])
    except OSError as exc:
        raise UnhashableError(
            type(path).__name__, f"cannot read {path}: {exc.strerror or exc}"
        ) from None
    return h.digest()


def _directory_entries(root: Path) -> list[tuple[str, str]]:
    """List (relative posix path, "f" or "d") for everything under ``root``, sorted."""
    entries: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath).relative_to(root)
        for name in dirnames:
            entries.append(((base / name).as_posix(), "d"))
        for name in filenames:
            # A broken symlink or a socket has no content to hash.
            if os.path.isfile(os.path.join(dirpath, name)):
                entries.append(((base / name).as_posix(), "f"))
    entries.sort()
    return entries


def _path_digest(path: Path) -> bytes:
    if path.is_file():
        return _tagged(b"file", _file_digest(path))
    if path.is_dir():
        h = _hasher(b"directory")
        entries = _directory_entries(path)
        h.update(_u64(len(entries)))
        for rel, kind in entries:
            _field(h, kind.encode() + os.fsencode(rel))
            if kind == "f":
                h.update(_file_digest(path / rel))
        return h.digest()
    raise UnhashableError(type(path).__name__, f"{path} does not exist or is not a regular file")


# --- numpy --------------------------------------------------------------------------------------


def _numpy_digest(obj: Any, walk: _Walk) -> bytes | None:
    import numpy as np

    if isinstance(obj, np.ndarray):
        # numpy.ma is imported lazily by numpy; a masked array in hand means it is loaded.
        ma = sys.modules.get("numpy.ma")
        if ma is not None and isinstance(obj, ma.MaskedArray):
            h = _hasher(b"numpy.MaskedArray")
            h.update(_ndarray_digest(np.ma.getmaskarray(obj)))
            h.update(_ndarray_digest(obj.filled(), walk))
            return h.digest()
        return _ndarray_digest(obj, walk)
    if isinstance(obj, np.generic):
        return _tagged(b"numpy.scalar", _ndarray_digest(np.asarray(obj)))
    return None


def _ndarray_digest(arr: Any, walk: _Walk | None = None) -> bytes:
    import numpy as np

    arr = np.asarray(arr).view(np.ndarray)
    dtype = arr.dtype
    h = _hasher(b"numpy.ndarray")
    _field(h, b",".join(str(n).encode() for n in arr.shape))
    if dtype.names is not None:
        # Fields one by one: padding bytes between fields are uninitialised memory.
        _field(h, b"struct:" + "\0".join(dtype.names).encode("utf-8", "surrogatepass"))
        for name in dtype.names:
            h.update(_ndarray_digest(arr[name], walk))
        return h.digest()
    if dtype.kind in "OT":
        # Object (and numpy 2 StringDType) arrays hold pointers, not values.
        _field(h, b"object")
        h.update(_object_values_digest(arr.astype(object, copy=False).ravel(), walk))
        return h.digest()
    if not dtype.isnative:
        arr = arr.astype(dtype.newbyteorder("="))
    _field(h, arr.dtype.str.encode())
    _feed_array_bytes(h, arr)
    return h.digest()


def _feed_array_bytes(h: xxhash.xxh3_128, arr: Any) -> None:
    """Feed an array's values in C order, without copying it whole when it is not contiguous."""
    import numpy as np

    if arr.flags.c_contiguous:
        # Through uint8: datetime64 and friends refuse the buffer protocol.
        h.update(arr.reshape(-1).view(np.uint8))
        return
    row_bytes = max(1, arr.itemsize * math.prod(arr.shape[1:]))
    step = max(1, _ARRAY_CHUNK // row_bytes)
    for start in range(0, arr.shape[0], step):
        block: Any = np.ascontiguousarray(arr[start : start + step])
        h.update(block.reshape(-1).view(np.uint8))


def _object_values_digest(values: Any, walk: _Walk | None = None) -> bytes:
    """Digest a 1-D sequence of Python objects: vectorized through Arrow when all are text."""
    arrow = _arrow_strings(values)
    if arrow is not None:
        return _tagged(b"text-values", _arrow_digest(arrow))
    h = _hasher(b"object-values")
    h.update(_u64(len(values)))
    walk = walk or _Walk()
    walk.spend(len(values), values)
    for item in values:
        h.update(_digest(item, walk))
    return h.digest()


def _arrow_strings(values: Any) -> Any:
    """Return ``values`` as an Arrow string/binary array, or None if they are not all text."""
    try:
        import pyarrow as pa
    except ImportError:
        return None
    try:
        # from_pandas: None and NaN are both "missing", as pandas has it in object columns.
        arr = pa.array(values, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    kind = arr.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return arr
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return arr
    return None


# --- pandas -------------------------------------------------------------------------------------


def _pandas_digest(obj: Any, walk: _Walk) -> bytes | None:
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        h = _hasher(b"pandas.DataFrame")
        h.update(_u64(obj.shape[0]) + _u64(obj.shape[1]))
        h.update(_index_digest(obj.columns, walk))
        h.update(_index_digest(obj.index, walk))
        for position in range(obj.shape[1]):
            h.update(_pandas_values_digest(obj.iloc[:, position]))
        return h.digest()
    if isinstance(obj, pd.Series):
        h = _hasher(b"pandas.Series")
        h.update(_digest(obj.name, walk))
        h.update(_index_digest(obj.index, walk))
        h.update(_pandas_values_digest(obj))
        return h.digest()
    if isinstance(obj, pd.Index):
        return _index_digest(obj, walk)
    if isinstance(obj, pd.api.extensions.ExtensionArray):
        return _tagged(b"pandas.array", _pandas_values_digest(pd.Series(obj, copy=False)))
    return None


def _index_digest(index: Any, walk: _Walk) -> bytes:
    import pandas as pd

    if isinstance(index, pd.RangeIndex):
        # A RangeIndex is three numbers; hashing them avoids materialising millions of labels.
        h = _hasher(b"pandas.RangeIndex")
        h.update(_digest(index.name, walk))
        h.update(_digest((index.start, index.stop, index.step), walk))
        return h.digest()
    if isinstance(index, pd.MultiIndex):
        h = _hasher(b"pandas.MultiIndex")
        h.update(_digest(list(index.names), walk))
        h.update(_u64(index.nlevels))
        for level in range(index.nlevels):
            h.update(_pandas_values_digest(index.get_level_values(level)))
        return h.digest()
    h = _hasher(b"pandas.Index")
    h.update(_digest(index.name, walk))
    h.update(_pandas_values_digest(index))
    return h.digest()


def _pandas_values_digest(values: Any) -> bytes:
    """Digest the dtype and values of a Series or Index (not its name or index)."""
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    h = _hasher(b"pandas.values")
    _field(h, _text(str(dtype)))
    h.update(_u64(len(values)))
    if isinstance(dtype, np.dtype):
        if dtype.kind in "OT":
            h.update(_object_values_digest(values.to_numpy(dtype=object)))
        else:
            h.update(_ndarray_digest(values.to_numpy()))
        return h.digest()
    array = values.array
    if isinstance(dtype, pd.CategoricalDtype):
        h.update(b"\1" if dtype.ordered else b"\0")
        h.update(_digest(array.categories, _Walk()))
        h.update(_ndarray_digest(array.codes))
        return h.digest()
    if isinstance(dtype, pd.DatetimeTZDtype):
        h.update(_ndarray_digest(array.asi8))
        return h.digest()
    to_arrow = getattr(array, "__arrow_array__", None)
    if to_arrow is not None:
        import pyarrow as pa

        try:
            h.update(_arrow_digest(to_arrow()))
            return h.digest()
        except (pa.ArrowException, TypeError, NotImplementedError):
            pass
    # Sparse and third-party extension dtypes: hash their dense values.
    dense = np.asarray(array)
    if dense.dtype.kind == "O":
        h.update(_object_values_digest(dense))
    else:
        h.update(_ndarray_digest(dense))
    return h.digest()


# --- polars and pyarrow -------------------------------------------------------------------------


def _polars_digest(obj: Any) -> bytes | None:
    import polars as pl

    if isinstance(obj, pl.DataFrame):
        h = _hasher(b"polars.DataFrame")
        h.update(_u64(obj.height) + _u64(obj.width))
        for column in obj.iter_columns():
            _field(h, _text(column.name))
            h.update(_polars_column_digest(column))
        return h.digest()
    if isinstance(obj, pl.Series):
        h = _hasher(b"polars.Series")
        _field(h, _text(obj.name))
        h.update(_polars_column_digest(obj))
        return h.digest()
    return None


def _polars_column_digest(column: Any) -> bytes:
    import polars as pl

    if column.dtype == pl.Object:
        # to_arrow() would give the objects' addresses, not their values.
        return _tagged(b"polars.Object", _object_values_digest(column.to_numpy()))
    return _arrow_digest(column.to_arrow())


def _pyarrow_digest(obj: Any) -> bytes | None:
    import pyarrow as pa

    if isinstance(obj, pa.Table):
        return _tagged(b"pyarrow.Table", _table_digest(obj))
    if isinstance(obj, pa.RecordBatch):
        return _tagged(b"pyarrow.RecordBatch", _table_digest(obj))
    if isinstance(obj, (pa.Array, pa.ChunkedArray)):
        return _tagged(b"pyarrow.Array", _arrow_digest(obj))
    return None


def _table_digest(table: Any) -> bytes:
    # Schema metadata (pandas' index notes, polars' categorical flags) is not content.
    h = _hasher(b"arrow.table")
    h.update(_u64(table.num_rows) + _u64(table.num_columns))
    for name, column in zip(table.column_names, table.columns, strict=True):
        _field(h, _text(name))
        h.update(_arrow_digest(column))
    return h.digest()


_WIDE_TYPE_NAMES = re.compile(r"\blarge_(string|binary|list)\b|\b(string|binary)_view\b")


def _canonical_type(kind: Any) -> str:
    # 32- and 64-bit offsets, and views, are layouts of the same values.
    return _WIDE_TYPE_NAMES.sub(lambda m: m.group(1) or m.group(2), str(kind))


def _arrow_digest(data: Any) -> bytes:
    """Digest an Arrow Array or ChunkedArray; equal values give equal digests however chunked."""
    import pyarrow as pa

    if isinstance(data, pa.ChunkedArray):
        return _arrow_chunks_digest(list(data.chunks), data.type)
    return _arrow_chunks_digest([data], data.type)


def _arrow_chunks_digest(chunks: list[Any], kind: Any) -> bytes:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    h = _hasher(b"arrow")
    extension = isinstance(kind, pa.ExtensionType)
    _field(h, _text(kind.extension_name) if extension else b"")
    if extension:
        chunks = [c.storage for c in chunks]
        kind = kind.storage_type
    if pa.types.is_dictionary(kind):
        # Dictionary encodings of equal values differ (order, unused entries): decode them.
        chunks = [c.dictionary_decode() for c in chunks]
        kind = kind.value_type
    if pa.types.is_string_view(kind) or pa.types.is_binary_view(kind):
        wide = pa.large_string() if pa.types.is_string_view(kind) else pa.large_binary()
        chunks = [c.cast(wide) for c in chunks]
        kind = wide
    chunks = [c for c in chunks if len(c)]
    nulls = sum(c.null_count for c in chunks)
    _field(h, _text(_canonical_type(kind)))
    h.update(_u64(sum(len(c) for c in chunks)) + _u64(nulls))

    validity: list[Any] = [None] * len(chunks)
    if nulls:
        vh = xxhash.xxh3_128()
        for i, chunk in enumerate(chunks):
            valid = chunk.is_valid().to_numpy(zero_copy_only=False)
            validity[i] = valid
            vh.update(valid.view(np.uint8))
        h.update(vh.digest())

    data = xxhash.xxh3_128()
    if pa.types.is_null(kind):
        pass
    elif pa.types.is_boolean(kind):
        for chunk in chunks:
            filled = pc.fill_null(chunk, False) if chunk.null_count else chunk
            data.update(filled.to_numpy(zero_copy_only=False).view(np.uint8))
    elif _is_text(kind):
        # The canonical form is each value's end offset as int64, counted from the first value:
        # independent of slicing, chunking and offset width. A 64-bit array that starts at 0
        # (the common case) is already in that form and is hashed without a copy.
        ends = xxhash.xxh3_128()
        wide = pa.types.is_large_string(kind) or pa.types.is_large_binary(kind)
        empty = pa.scalar("" if _is_string(kind) else b"", type=kind)
        total = 0
        for chunk in chunks:
            # Null slots may own bytes; filling them makes the layout canonical.
            filled = pc.fill_null(chunk, empty) if chunk.null_count else chunk
            buffers = filled.buffers()
            offsets: Any = np.frombuffer(buffers[1], dtype=np.int64 if wide else np.int32)
            offsets = offsets[filled.offset : filled.offset + len(filled) + 1]
            first, last = int(offsets[0]), int(offsets[-1])
            if wide and first == total:
                ends.update(offsets[1:].view(np.uint8))
            else:
                shifted = offsets[1:].astype(np.int64)
                shifted += total - first
                ends.update(shifted.view(np.uint8))
            total += last - first
            if buffers[2] is not None and last > first:
                text: Any = np.frombuffer(buffers[2], dtype=np.uint8)
                data.update(text[first:last])
        h.update(ends.digest())
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind) or _is_fixed_list(kind):
        lengths = xxhash.xxh3_128()
        children = []
        for chunk in chunks:
            sizes = pc.fill_null(chunk.value_lengths(), 0).to_numpy(zero_copy_only=False)
            lengths.update(sizes.astype(np.int64).view(np.uint8))
            children.append(chunk.flatten())
        h.update(lengths.digest())
        data.update(_arrow_chunks_digest(children, kind.value_type))
    elif pa.types.is_struct(kind):
        fields = [c.flatten() for c in chunks]
        for i in range(kind.num_fields):
            _field(h, _text(kind.field(i).name))
            data.update(_arrow_chunks_digest([f[i] for f in fields], kind.field(i).type))
    elif _fixed_width(kind):
        width = kind.bit_width // 8
        for i, chunk in enumerate(chunks):
            buffer = chunk.buffers()[1]
            start, stop = chunk.offset * width, (chunk.offset + len(chunk)) * width
            if buffer is None:
                data.update(bytes(stop - start))
                continue
            raw: Any = np.frombuffer(buffer, dtype=np.uint8)[start:stop]
            if chunk.null_count:
                # What sits under a null slot is undefined: zero it.
                raw = raw.reshape(-1, width).copy()
                raw[~validity[i]] = 0
            data.update(raw)
    else:
        # Maps, unions, run-end encoded and the like: rare enough to go value by value.
        walk = _Walk()
        for chunk in chunks:
            for item in chunk.to_pylist():
                data.update(_digest(item, walk))
    h.update(data.digest())
    return h.digest()


def _is_string(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _is_text(kind: Any) -> bool:
    import pyarrow as pa

    return _is_string(kind) or bool(pa.types.is_binary(kind) or pa.types.is_large_binary(kind))


def _is_fixed_list(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_fixed_size_list(kind))


def _fixed_width(kind: Any) -> bool:
    try:
        return bool(kind.bit_width % 8 == 0)
    except ValueError:
        return False
