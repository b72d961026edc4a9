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

This package is on the hot path of every captured cell, so importing it must stay cheap: numpy,
pandas, pyarrow and polars are never imported here at module level. Objects are recognised by
``type(obj).__module__`` and class name, and a library is imported inside a function only once
an object of that library is in hand (so it is already loaded and the import is a dict lookup).
Profiles of data (what ``log_data`` records beside the hash) are in ``profiles``.

By concern: ``content`` (the dispatch, plain values), ``arrays`` (numpy), ``frames`` (pandas,
polars), ``arrow`` (Arrow arrays and tables), ``models`` (fitted models), ``pickles`` (other
objects), ``paths`` (files and folders), with ``framing``, ``walk`` and ``data_types`` below.
"""

from __future__ import annotations

from .content import content_hash
from .data_types import is_data
from .framing import hash_bytes
from .paths import hash_file
from .walk import IDENTITY, TOO_LARGE

__all__ = [
    "IDENTITY",
    "TOO_LARGE",
    "content_hash",
    "hash_bytes",
    "hash_file",
    "is_data",
]
