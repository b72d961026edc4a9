"""The files a cell reads and writes, recorded by themselves through an audit hook on ``open``.

Every ``open`` in Python (``open()``, ``io.open``, ``os.open``, and so whatever pandas, numpy
or pickle call) raises an audit event. One hook per process (audit hooks cannot be removed)
appends the event's arguments to a list while a cell is being recorded, and returns at once
otherwise. Everything else (which paths count, their sizes and content hashes) happens when
the cell's row is completed in the store's writer, off the cell's thread.
"""

from __future__ import annotations

import os
import site
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from stat import S_ISREG
from typing import Any

from . import hashing

__all__ = ["Opened", "install", "start", "stop"]

# The open events of the cell being recorded; None when no cell is.
_sink: list[tuple[Any, Any, Any]] | None = None
# Threads hashing opened files: their own opens are not the cell's.
_hashing_threads: set[int] = set()
_installed = False
_install_lock = threading.Lock()
_get_ident = threading.get_ident
# The system's own files (fonts, time zones, locales ...), never a notebook's data.
_SYSTEM: tuple[str, ...] = ("/proc", "/dev", "/sys", "/etc", "/run", "/usr/share", "/usr/lib")
_SYSTEM += ("/usr/lib64", "/usr/local/share", "/usr/local/lib", "/var/lib", "/var/cache")
# A cell that reads a folder of images one by one records the first ten thousand: the writer
# hashes every one of them, and a replay needs only the one that changed.
MAX_FILES = 10_000
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open":
        sink = _sink
        if sink is not None and _get_ident() not in _hashing_threads:
            sink.append(args)


def install() -> None:
    """Add the audit hook to this process, once."""
    global _installed
    with _install_lock:
        if not _installed:
            _installed = True
            try:
                sys.addaudithook(_audit)
            except Exception:
                return  # another hook refuses new ones: cells are captured without their files


def start() -> None:
    """Collect the files opened from now on (a cell that is being recorded begins)."""
    global _sink
    _sink = []


def stop() -> list[tuple[Any, Any, Any]]:
    """Stop collecting; the open events collected since ``start`` (empty if none)."""
    global _sink
    sink, _sink = _sink, None
    return sink or []


class Opened:
    """A cell's open events, turned into ``files_read`` and ``files_written`` at completion."""

    __slots__ = ("cwd", "events", "store_dir")

    def __init__(self, events: list[tuple[Any, Any, Any]], cwd: str, store_dir: Path) -> None:
        self.events = events
        self.cwd = cwd
        self.store_dir = store_dir

    def fill(self, row: dict[str, Any]) -> None:
        """Set the row's ``files_read`` and ``files_written`` (path, size and content hash)."""
        ident = _get_ident()
        _hashing_threads.add(ident)
        try:
            read, written = self._paths()
            row["files_read"] = _described(p for p in read if p not in written) or None
            row["files_written"] = _described(written) or None
        finally:
            _hashing_threads.discard(ident)

    def _paths(self) -> tuple[dict[str, None], dict[str, None]]:
        read: dict[str, None] = {}
        written: dict[str, None] = {}
        excluded = _excluded_roots(self.store_dir)
        for path, mode, flags in self.events:
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            elif isinstance(path, os.PathLike):
                path = os.fspath(path)
            if not isinstance(path, str) or not path:
                continue  # a file descriptor, or nothing to name
            full = os.path.normpath(os.path.join(self.cwd, path))
            if full in read or full in written or _left_out(full, excluded, self.cwd):
                continue
            (written if _writes(mode, flags) else read)[full] = None
            if len(read) + len(written) >= MAX_FILES:
                break
        return read, written


def _writes(mode: Any, flags: Any) -> bool:
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def _left_out(path: str, excluded: tuple[str, ...], cwd: str) -> bool:
    """The interpreter's files, the store's, the system's and hidden folders' (caches,
    settings): none of them is the notebook's data. A hidden folder the notebook itself
    works in (a project under ``~/.work``) does not count."""
    if path.startswith(excluded):
        return True
    folder = os.path.dirname(path)
    if "/." not in folder:
        return False
    shared = os.path.commonpath([folder, cwd]) if os.path.isabs(cwd) else ""
    return "/." in folder[len(shared) :]


_ROOTS: tuple[str, ...] | None = None


def _excluded_roots(store_dir: Path) -> tuple[str, ...]:
    global _ROOTS
    if _ROOTS is None:
        roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
        try:
            roots.update(site.getsitepackages())
            roots.add(site.getusersitepackages())
        except AttributeError:
            pass  # a virtualenv's old site module
        roots.update(p for p in sys.path if "site-packages" in p or "dist-packages" in p)
        resolved = {os.path.realpath(r) for r in roots if r} | {r for r in roots if r}
        _ROOTS = tuple(r.rstrip("/") + "/" for r in resolved if r not in ("", "/"))
        _ROOTS += tuple(s + "/" for s in _SYSTEM)
    store = str(store_dir).rstrip("/") + "/"
    return (*_ROOTS, store, os.path.realpath(store_dir) + "/")


def _described(paths: Iterable[str]) -> list[dict[str, Any]]:
    files = []
    for path in paths:
        try:
            stat = os.stat(path)
            if not S_ISREG(stat.st_mode):
                continue  # a folder, a pipe, a socket
            digest = hashing.hash_file(Path(path))
        except OSError:
            continue  # gone already (a temporary file), or never made
        files.append({"path": path, "size": stat.st_size, "hash": digest})
    return files
