"""Hashes of fitted models (scikit-learn's sense: ``get_params`` and ``fit``) by their learned
state: params and fitted attributes by content, wall-clock timings left out."""

from __future__ import annotations

import re
from typing import Any

from ..errors import UnhashableError
from .data_types import type_name
from .framing import field, hasher, text, u64
from .walk import Walk

__all__ = ["is_model", "model_digest"]

_MODEL_TYPE_CACHE: dict[type, bool] = {}
# Wall-clock timings a model keeps (GridSearchCV's mean_fit_time, refit_time_) are not learned.
_TIMING_NAME = re.compile(r"(?:^|_)times?_?$")


def is_model(cls: type) -> bool:
    """Whether instances of ``cls`` are models in scikit-learn's sense (get_params and fit)."""
    known = _MODEL_TYPE_CACHE.get(cls)
    if known is None:
        known = callable(getattr(cls, "get_params", None)) and callable(getattr(cls, "fit", None))
        if len(_MODEL_TYPE_CACHE) < 4096:
            _MODEL_TYPE_CACHE[cls] = known
    return known


def _untimed(mapping: dict[Any, Any]) -> dict[Any, Any]:
    return {k: v for k, v in mapping.items() if not (isinstance(k, str) and _TIMING_NAME.search(k))}


def model_digest(obj: Any, walk: Walk) -> bytes | None:
    """Digest a model by its learned state: its params and fitted attributes, by content.

    scikit-learn keeps both as instance attributes (params by name, fitted ones ending in
    ``_``); all attributes are taken, as other libraries keep fitted state in private ones.
    """
    state = getattr(obj, "__dict__", None)
    if type(state) is not dict:
        return None
    marker = id(obj)
    if marker in walk.active:
        raise UnhashableError(type_name(obj), "it contains itself")
    walk.spend(len(state), obj)
    walk.active.add(marker)
    if walk.pickling:
        walk.seen.add(marker)
    try:
        cls = type(obj)
        h = hasher(b"model")
        field(h, text(f"{cls.__module__}.{cls.__qualname__}"))
        names = sorted(k for k in state if isinstance(k, str) and not _TIMING_NAME.search(k))
        h.update(u64(len(names)))
        for name in names:
            value = state[name]
            field(h, text(name))
            h.update(walk.digest(_untimed(value) if type(value) is dict else value, walk))
        return h.digest()
    finally:
        walk.active.discard(marker)
