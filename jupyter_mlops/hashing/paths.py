"""Hashes of files and folders: a file by its bytes, a folder by its names and file contents."""

from __future__ import annotations

import os
from pathlib import Path

import xxhash

from ..errors import UnhashableError
from .framing import field, hasher, tagged, u64

__all__ = ["directory_entries", "file_digest", "hash_file", "path_digest"]

# Files are read in chunks of this size so a multi-gigabyte file never sits in memory.
_FILE_CHUNK = 1 << 20


def hash_file(path: Path) -> str:
    """Return the xxh3_128 hex digest of a file's bytes (equal to ``hash_bytes`` of them)."""
    return file_digest(Path(path)).hex()


def file_digest(path: Path) -> bytes:
    """The 16-byte digest of a file's bytes, read in chunks."""
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


def directory_entries(root: Path) -> list[tuple[str, str]]:
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


def path_digest(path: Path) -> bytes:
    """The digest of what ``path`` names: a file's bytes, or a folder's names and files."""
    if path.is_file():
        return tagged(b"file", file_digest(path))
    if path.is_dir():
        h = hasher(b"directory")
        entries = directory_entries(path)
        h.update(u64(len(entries)))
        for rel, kind in entries:
            field(h, kind.encode() + os.fsencode(rel))
            if kind == "f":
                h.update(file_digest(path / rel))
        return h.digest()
    raise UnhashableError(type(path).__name__, f"{path} does not exist or is not a regular file")
