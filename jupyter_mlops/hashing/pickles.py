"""Hashes of other objects, through pickle: without pickle's memo, with sets, dicts, models
and data written as their content hash, and refused when the pickle shows object identity."""

from __future__ import annotations

from typing import Any

import xxhash

from ..errors import UnhashableError
from .data_types import is_data, type_name
from .framing import field, hasher, text, u64
from .models import is_model
from .walk import ADDRESS_MIN, CYCLE, IDENTITY, TOO_LARGE, Walk

__all__ = ["pickle_digest"]


class _HashWriter:
    """A file-like sink that feeds pickle's output straight into a hasher, within a budget."""

    def __init__(self, h: xxhash.xxh3_128, walk: Walk, obj: object) -> None:
        if walk.pickle_bytes is None:
            self.write = h.update
            return
        update = h.update

        def write(data: Any) -> None:
            left = walk.pickle_bytes
            assert left is not None
            walk.pickle_bytes = left - len(data)
            if walk.pickle_bytes < 0:
                raise UnhashableError(type_name(obj), TOO_LARGE)
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
            def __init__(self, sink: _HashWriter, walk: Walk, buffers: list[Any]) -> None:
                super().__init__(sink, protocol=5, buffer_callback=buffers.append)
                # No memo: with it, the stream depends on which equal values are one object
                # (interned strings, shared tuples), which a copy or another process need not
                # repeat. An object that refers to itself then recurses, and is not hashed.
                self.fast = True
                self.walk = walk

            def persistent_id(self, item: Any) -> str | None:
                kind = type(item)
                if kind is int:
                    if item > ADDRESS_MIN:
                        self.walk.addresses.append(item)
                    return None
                walk = self.walk
                walk.seen.add(id(item))
                if kind is dict or kind is set or kind is frozenset:
                    return "content:" + walk.digest(item, walk).hex()
                if is_data(item):
                    known = walk.data.get(id(item))
                    if known is None:
                        known = walk.data[id(item)] = (item, walk.digest(item, walk))
                    return "content:" + known[1].hex()
                if is_model(kind):
                    return "model:" + walk.digest(item, walk).hex()
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


def pickle_digest(obj: object, walk: Walk) -> bytes:
    """The digest of ``obj``'s pickle; refused when the pickle depends on object identity."""
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
            raise UnhashableError(type_name(obj), IDENTITY)
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
            raise UnhashableError(type_name(obj), IDENTITY)
    return digest


def _pickled_digest(obj: object, walk: Walk) -> bytes:
    cls = type(obj)
    h = hasher(b"pickle")
    field(h, text(f"{cls.__module__}.{cls.__qualname__}"))
    stream = xxhash.xxh3_128()
    buffers: list[Any] = []
    walk.pickling += 1
    try:
        _picklers()[0](_HashWriter(stream, walk, obj), walk, buffers).dump(obj)
    except UnhashableError:
        raise
    except RecursionError:
        raise UnhashableError(type_name(obj), CYCLE) from None
    except Exception as exc:  # pickling runs arbitrary __reduce__ code; any failure means "no"
        if "fast mode" in str(exc):  # the pickler found a cycle before the recursion limit
            raise UnhashableError(type_name(obj), CYCLE) from None
        raise UnhashableError(type_name(obj), f"it cannot be pickled: {_first_line(exc)}") from None
    finally:
        walk.pickling -= 1
    # Out-of-band buffers (protocol 5) are hashed where they lie instead of copied into the pickle.
    h.update(u64(len(buffers)))
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
        raise UnhashableError(type_name(obj), CYCLE) from None
    except Exception as exc:
        raise UnhashableError(
            type_name(obj), f"it cannot be copied by pickling: {_first_line(exc)}"
        ) from None


def _first_line(exc: BaseException) -> str:
    message = str(exc).strip()
    reason = message.splitlines()[0] if message else type(exc).__name__
    return reason if len(reason) <= 160 else reason[:157] + "..."
