"""Hashes of numpy arrays and scalars, and of runs of Python objects (object arrays)."""

from __future__ import annotations

import math
import sys
from typing import Any

import xxhash

from .arrow import arrow_digest
from .framing import field, hasher, tagged, u64
from .walk import Walk

__all__ = ["ndarray_digest", "numpy_digest", "object_values_digest"]

# Non-contiguous arrays are copied this many bytes at a time rather than whole.
_ARRAY_CHUNK = 16 << 20


def numpy_digest(obj: Any, walk: Walk) -> bytes | None:
    """The digest of a numpy array or scalar; None for other numpy objects."""
    import numpy as np

    if isinstance(obj, np.ndarray):
        # numpy.ma is imported lazily by numpy; a masked array in hand means it is loaded.
        ma = sys.modules.get("numpy.ma")
        if ma is not None and isinstance(obj, ma.MaskedArray):
            h = hasher(b"numpy.MaskedArray")
            h.update(ndarray_digest(np.ma.getmaskarray(obj), walk, fresh=True))
            h.update(ndarray_digest(obj.filled(), walk))
            return h.digest()
        return ndarray_digest(obj, walk)
    if isinstance(obj, np.generic):
        return tagged(b"numpy.scalar", ndarray_digest(np.asarray(obj), walk, fresh=True))
    return None


def ndarray_digest(arr: Any, walk: Walk, *, fresh: bool = False) -> bytes:
    """The digest of an array's shape, dtype and values; with ``fresh``, the objects of an
    object array are hashed on a walk of their own (no limits), not on ``walk``."""
    import numpy as np

    arr = np.asarray(arr).view(np.ndarray)
    dtype = arr.dtype
    h = hasher(b"numpy.ndarray")
    field(h, b",".join(str(n).encode() for n in arr.shape))
    if dtype.names is not None:
        # Fields one by one: padding bytes between fields are uninitialised memory.
        field(h, b"struct:" + "\0".join(dtype.names).encode("utf-8", "surrogatepass"))
        for name in dtype.names:
            h.update(ndarray_digest(arr[name], walk, fresh=fresh))
        return h.digest()
    if dtype.kind in "OT":
        # Object (and numpy 2 StringDType) arrays hold pointers, not values.
        field(h, b"object")
        values = arr.astype(object, copy=False).ravel()
        h.update(object_values_digest(values, walk.fresh() if fresh else walk))
        return h.digest()
    if not dtype.isnative:
        arr = arr.astype(dtype.newbyteorder("="))
    field(h, arr.dtype.str.encode())
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


def object_values_digest(values: Any, walk: Walk) -> bytes:
    """Digest a 1-D sequence of Python objects: vectorized through Arrow when all are text."""
    arrow = _arrow_strings(values)
    if arrow is not None:
        return tagged(b"text-values", arrow_digest(arrow, walk))
    h = hasher(b"object-values")
    h.update(u64(len(values)))
    walk.spend(len(values), values)
    digest = walk.digest
    for item in values:
        h.update(digest(item, walk))
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
