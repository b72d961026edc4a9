"""``content_hash``: the dispatch from a value to the digest of its kind, and the digests of
plain values (scalars and containers), the common case hashed inline."""

from __future__ import annotations

import struct
import sys
from pathlib import Path, PurePath
from typing import Any, cast

import xxhash

from ..errors import UnhashableError
from .arrays import numpy_digest
from .arrow import pyarrow_digest
from .data_types import top_module, type_name
from .frames import pandas_digest, polars_digest
from .framing import hasher, tagged, text, u64
from .models import is_model, model_digest
from .paths import path_digest
from .pickles import pickle_digest
from .walk import ADDRESS_MIN, Walk

__all__ = ["content_hash"]


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
        return _digest(obj, Walk(_digest, max_items, max_pickle_bytes, read_paths)).hex()
    except RecursionError:
        raise UnhashableError(type_name(obj), "it is nested too deeply to hash") from None


# The digest of each data family, by the top package its classes come from.
_FAMILY_DIGESTS = {
    "numpy": numpy_digest,
    "pandas": pandas_digest,
    "polars": polars_digest,
    "pyarrow": pyarrow_digest,
}


def _digest(obj: object, walk: Walk) -> bytes:
    cls = type(obj)
    scalar = _SCALAR_DIGESTS.get(cls)
    if scalar is not None:
        if walk.pickling and cls is int and cast(int, obj) > ADDRESS_MIN:
            walk.addresses.append(cast(int, obj))
        return scalar(obj)
    if cls in _CONTAINER_TAGS:
        return _container_digest(obj, _CONTAINER_TAGS[cls], walk)
    family = _FAMILY_DIGESTS.get(top_module(cls))
    result = family(obj, walk) if family is not None else None
    if result is not None:
        return result
    if isinstance(obj, PurePath):
        if walk.read_paths:
            return path_digest(Path(obj))
        return tagged(b"path", text(f"{cls.__module__}.{cls.__qualname__}:{obj}"))
    if isinstance(obj, (list, tuple, dict, set, frozenset)) and not _is_enum(obj):
        # Subclasses (namedtuple, OrderedDict, ...) hash like their base, tagged by their class.
        return _container_digest(obj, text(f"{cls.__module__}.{cls.__qualname__}"), walk)
    if is_model(cls):
        result = model_digest(obj, walk)
        if result is not None:
            return result
    return pickle_digest(obj, walk)


def _is_enum(obj: object) -> bool:
    enum = sys.modules.get("enum")
    return enum is not None and isinstance(obj, enum.Enum)


def _int_digest(obj: Any) -> bytes:
    return tagged(b"int", obj.to_bytes(obj.bit_length() // 8 + 1, "little", signed=True))


# Scalars are hashed item by item in containers: each digest is one call, its tag spelled out
# (the bytes fed are those of ``tagged``).
_xxh3 = xxhash.xxh3_128_digest
_pack_float = struct.Struct("<d").pack
_SCALAR_DIGESTS: dict[type, Any] = {
    type(None): lambda obj: tagged(b"none", b""),
    bool: lambda obj: tagged(b"bool", b"\1" if obj else b"\0"),
    int: _int_digest,
    float: lambda obj: _xxh3(b"float\0" + _pack_float(obj)),
    complex: lambda obj: tagged(b"complex", struct.pack("<dd", obj.real, obj.imag)),
    str: lambda obj: _xxh3(b"str\0" + obj.encode("utf-8", "surrogatepass")),
    bytes: lambda obj: tagged(b"bytes", obj),
    bytearray: lambda obj: tagged(b"bytes", bytes(obj)),
    memoryview: lambda obj: tagged(b"bytes", obj.tobytes()),
}
_CONTAINER_TAGS: dict[type, bytes] = {
    list: b"list",
    tuple: b"tuple",
    dict: b"dict",
    set: b"set",
    frozenset: b"frozenset",
}


def _container_digest(obj: Any, tag: bytes, walk: Walk) -> bytes:
    marker = id(obj)
    if marker in walk.active:
        raise UnhashableError(type_name(obj), "it contains itself")
    is_dict = isinstance(obj, dict)
    walk.spend(2 * len(obj) if is_dict else len(obj), obj)
    walk.active.add(marker)
    if walk.pickling:
        walk.seen.add(marker)
    try:
        h = hasher(tag)
        h.update(u64(len(obj)))
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
