"""How bytes are fed to a hash: every digest is xxh3_128, framed so no two values collide.

Framing rule: a hasher is fed a NUL-terminated type tag, then fixed-size or length-prefixed
fields, and at most one variable-length stream, last. That keeps every encoding prefix-free,
so two different values cannot feed the same bytes.
"""

from __future__ import annotations

import xxhash

__all__ = ["field", "hash_bytes", "hasher", "tagged", "text", "u64"]


def hash_bytes(data: bytes | str) -> str:
    """Return the xxh3_128 hex digest of raw bytes (a str is encoded as UTF-8)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return xxhash.xxh3_128_hexdigest(data)


def hasher(tag: bytes) -> xxhash.xxh3_128:
    """A hasher already fed the NUL-terminated ``tag``."""
    h = xxhash.xxh3_128()
    h.update(tag + b"\0")
    return h


def u64(n: int) -> bytes:
    """``n`` as 8 little-endian bytes: a fixed-size field."""
    return n.to_bytes(8, "little")


def field(h: xxhash.xxh3_128, data: bytes) -> None:
    """Feed ``data`` as a length-prefixed field."""
    h.update(u64(len(data)))
    h.update(data)


def text(value: str) -> bytes:
    """The bytes of ``value`` as hashed (UTF-8, lone surrogates kept)."""
    return value.encode("utf-8", "surrogatepass")


def tagged(tag: bytes, payload: bytes) -> bytes:
    """The digest of ``payload`` under ``tag``, in one call."""
    return xxhash.xxh3_128_digest(tag + b"\0" + payload)
