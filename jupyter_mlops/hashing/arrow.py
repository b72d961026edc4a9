"""Hashes of Arrow arrays and tables: equal values give equal digests however they are laid
out (chunks, slices, offset widths, dictionary encoding, views, what sits under a null)."""

from __future__ import annotations

import re
from typing import Any

import xxhash

from .framing import field, hasher, tagged, text, u64
from .walk import Walk

__all__ = ["arrow_digest", "pyarrow_digest", "table_digest"]

_WIDE_TYPE_NAMES = re.compile(r"\blarge_(string|binary|list)\b|\b(string|binary)_view\b")


def pyarrow_digest(obj: Any, walk: Walk) -> bytes | None:
    """The digest of a pyarrow table, record batch or array; None for other pyarrow objects."""
    import pyarrow as pa

    if isinstance(obj, pa.Table):
        return tagged(b"pyarrow.Table", table_digest(obj, walk))
    if isinstance(obj, pa.RecordBatch):
        return tagged(b"pyarrow.RecordBatch", table_digest(obj, walk))
    if isinstance(obj, (pa.Array, pa.ChunkedArray)):
        return tagged(b"pyarrow.Array", arrow_digest(obj, walk))
    return None


def table_digest(table: Any, walk: Walk) -> bytes:
    """The digest of an Arrow table's shape, column names and columns."""
    # Schema metadata (pandas' index notes, polars' categorical flags) is not content.
    h = hasher(b"arrow.table")
    h.update(u64(table.num_rows) + u64(table.num_columns))
    for name, column in zip(table.column_names, table.columns, strict=True):
        field(h, text(name))
        h.update(arrow_digest(column, walk))
    return h.digest()


def arrow_digest(data: Any, walk: Walk) -> bytes:
    """Digest an Arrow Array or ChunkedArray; equal values give equal digests however chunked.

    Values Arrow cannot lay out flat (maps, unions, ...) are hashed one by one with
    ``walk``'s digest, on a walk of their own."""
    import pyarrow as pa

    if isinstance(data, pa.ChunkedArray):
        return _chunks_digest(list(data.chunks), data.type, walk)
    return _chunks_digest([data], data.type, walk)


def _chunks_digest(chunks: list[Any], kind: Any, walk: Walk) -> bytes:
    h = hasher(b"arrow")
    chunks, kind = _plain_chunks(h, chunks, kind)
    chunks = [c for c in chunks if len(c)]
    nulls = sum(c.null_count for c in chunks)
    field(h, text(_canonical_type(kind)))
    h.update(u64(sum(len(c) for c in chunks)) + u64(nulls))
    validity = _validity(h, chunks) if nulls else [None] * len(chunks)
    data = xxhash.xxh3_128()
    _feed_values(h, data, chunks, kind, validity, walk)
    h.update(data.digest())
    return h.digest()


def _plain_chunks(h: xxhash.xxh3_128, chunks: list[Any], kind: Any) -> tuple[list[Any], Any]:
    """Feed the extension name (if any), and return the chunks and type with extension,
    dictionary encoding and views taken off: layouts of the same values."""
    import pyarrow as pa

    extension = isinstance(kind, pa.ExtensionType)
    field(h, text(kind.extension_name) if extension else b"")
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
    return chunks, kind


def _validity(h: xxhash.xxh3_128, chunks: list[Any]) -> list[Any]:
    """Feed the digest of which slots are valid; return each chunk's validity as numpy."""
    import numpy as np

    validity = []
    vh = xxhash.xxh3_128()
    for chunk in chunks:
        valid = chunk.is_valid().to_numpy(zero_copy_only=False)
        validity.append(valid)
        vh.update(valid.view(np.uint8))
    h.update(vh.digest())
    return validity


def _feed_values(
    h: xxhash.xxh3_128,
    data: xxhash.xxh3_128,
    chunks: list[Any],
    kind: Any,
    validity: list[Any],
    walk: Walk,
) -> None:
    """Feed the values of the chunks (of type ``kind``) to ``data``, and what frames them
    (text offsets, list lengths, field names) to ``h``."""
    import pyarrow as pa

    if pa.types.is_null(kind):
        return
    if pa.types.is_boolean(kind):
        _feed_booleans(data, chunks)
    elif _is_text(kind):
        h.update(_feed_text(data, chunks, kind))
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind) or _is_fixed_list(kind):
        h.update(_feed_lists(data, chunks, kind, walk))
    elif pa.types.is_struct(kind):
        fields = [c.flatten() for c in chunks]
        for i in range(kind.num_fields):
            field(h, text(kind.field(i).name))
            data.update(_chunks_digest([f[i] for f in fields], kind.field(i).type, walk))
    elif _fixed_width(kind):
        _feed_fixed_width(data, chunks, kind, validity)
    else:
        # Maps, unions, run-end encoded and the like: rare enough to go value by value.
        own = walk.fresh()
        for chunk in chunks:
            for item in chunk.to_pylist():
                data.update(own.digest(item, own))


def _feed_booleans(data: xxhash.xxh3_128, chunks: list[Any]) -> None:
    import numpy as np
    import pyarrow.compute as pc

    for chunk in chunks:
        filled = pc.fill_null(chunk, False) if chunk.null_count else chunk
        data.update(filled.to_numpy(zero_copy_only=False).view(np.uint8))


def _feed_text(data: xxhash.xxh3_128, chunks: list[Any], kind: Any) -> bytes:
    """Feed the bytes of text or binary values; return the digest of where each one ends."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

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
            values: Any = np.frombuffer(buffers[2], dtype=np.uint8)
            data.update(values[first:last])
    return ends.digest()


def _feed_lists(data: xxhash.xxh3_128, chunks: list[Any], kind: Any, walk: Walk) -> bytes:
    """Feed the digest of the lists' values; return the digest of their lengths."""
    import numpy as np
    import pyarrow.compute as pc

    lengths = xxhash.xxh3_128()
    children = []
    for chunk in chunks:
        sizes = pc.fill_null(chunk.value_lengths(), 0).to_numpy(zero_copy_only=False)
        lengths.update(sizes.astype(np.int64).view(np.uint8))
        children.append(chunk.flatten())
    data.update(_chunks_digest(children, kind.value_type, walk))
    return lengths.digest()


def _feed_fixed_width(
    data: xxhash.xxh3_128, chunks: list[Any], kind: Any, validity: list[Any]
) -> None:
    import numpy as np

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


def _canonical_type(kind: Any) -> str:
    # 32- and 64-bit offsets, and views, are layouts of the same values.
    return _WIDE_TYPE_NAMES.sub(lambda m: m.group(1) or m.group(2), str(kind))


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
