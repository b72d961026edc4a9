"""Values made fit for strict JSON: one place decides what NaN and the infinities become.

Strict JSON has no NaN and no infinities, and a browser's ``JSON.parse`` refuses them. The
doors (command line, REST API) and a recorded param write them as the text ``"nan"``,
``"inf"`` and ``"-inf"``; a data profile writes NaN as ``null`` (a statistic that has no
value), so the policy for NaN is an argument. Infinities are always text.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["NAN_TEXT", "json_float", "json_ready", "json_text"]

# What NaN becomes unless a caller says otherwise.
NAN_TEXT = "nan"


def json_float(value: float, *, nan: str | None = NAN_TEXT) -> float | str | None:
    """``value`` fit for strict JSON: finite as it is, ``"inf"``/``"-inf"``, NaN as ``nan``."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return nan
    return "inf" if value > 0 else "-inf"


def json_ready(value: Any, *, nan: str | None = NAN_TEXT) -> Any:
    """A copy of ``value`` fit for strict JSON: floats as ``json_float`` gives them, mapping
    keys as text, tuples as lists; any other value as it is."""
    if isinstance(value, float):
        return json_float(value, nan=nan)
    if isinstance(value, dict):
        return {str(k): json_ready(v, nan=nan) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v, nan=nan) for v in value]
    return value


def json_text(value: Any, *, indent: int | None = None) -> str:
    """``value`` as strict JSON text (``json_ready``; what JSON cannot hold as its ``str``)."""
    return json.dumps(json_ready(value), indent=indent, default=str, allow_nan=False)
