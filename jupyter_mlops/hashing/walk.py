"""The state of one content hash as it walks into a value, and why it can give up.

A walk carries the function that digests any value (``Walk.digest``), so that the digests of
arrays, frames, models and pickles can hash what they hold without importing the dispatch
that calls them.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import UnhashableError
from .data_types import type_name

__all__ = ["ADDRESS_MIN", "CYCLE", "IDENTITY", "TOO_LARGE", "Digest", "Walk"]

# Why an object is not hashed, as ``UnhashableError.reason``: callers tell these apart.
TOO_LARGE = "it is too large to hash cheaply"
IDENTITY = "its pickle depends on object identity, not only on content"
CYCLE = "its objects refer to each other in a cycle (or nest too deeply)"
# Below this, an int is not the address (``id``) of an object, nor its default hash.
ADDRESS_MIN = 1 << 16


class Walk:
    """The state of one ``content_hash``: containers entered (to catch cycles), the work left
    before the value counts as too large, and how deep inside a pickle the walk is."""

    __slots__ = (
        "active",
        "addresses",
        "data",
        "digest",
        "items",
        "pickle_bytes",
        "pickling",
        "read_paths",
        "seen",
    )

    def __init__(
        self,
        digest: Digest,
        max_items: int | None = None,
        max_pickle_bytes: int | None = None,
        read_paths: bool = True,
    ) -> None:
        # The 16-byte digest of any value, given the walk it is part of.
        self.digest = digest
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

    def fresh(self) -> Walk:
        """A new walk with the same digest and no limits, for a part hashed on its own."""
        return Walk(self.digest)

    def spend(self, items: int, obj: object) -> None:
        """Count ``items`` values about to be hashed one by one."""
        if self.items is not None:
            self.items -= items
            if self.items < 0:
                raise UnhashableError(type_name(obj), TOO_LARGE)


Digest = Callable[[object, Walk], bytes]
