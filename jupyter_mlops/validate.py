"""Checks of what a run records: every name, number and value is made storable or refused.

A value is checked where it is logged, so a bad one is refused there with one line naming it
and never reaches the store's writer, where it would hold up every later row. SQLite stores
integers of 64 bits and UTF-8 text: out-of-range integers, lone surrogates (what ``os.listdir``
gives for a file name that is not UTF-8) and values Python cannot even print are dealt with
here. Names are refused; free text (tag values, a cell's source and error) is escaped.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import InvalidValueError
from .jsonable import json_float

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_TEXT_BYTES",
    "STEP_MAX",
    "STEP_MIN",
    "check_artifact",
    "check_metrics",
    "check_params",
    "checked_name",
    "error_text",
    "jsonable",
    "metric_number",
    "metric_step",
    "param_json",
    "path_kind",
    "shown_text",
    "storable_text",
    "tag_value",
    "user_path",
]

MAX_KEY_LENGTH = 250
MAX_TEXT_BYTES = 64 * 1024
# SQLite's INTEGER is a signed 64-bit number.
STEP_MIN = -(2**63)
STEP_MAX = 2**63 - 1


def shown_text(value: str) -> str:
    """A value as it appears in an error line: quoted, escaped, cut short."""
    text = ascii(value) if not value.isascii() else repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _described(value: Any) -> str:
    """A value for an error line, even one whose repr fails or is enormous."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, str):
        return shown_text(value)
    try:
        text = repr(value)
    except Exception:
        return f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "…"


def checked_name(what: str, key: Any) -> str:
    """``key`` if it can name a param, metric, tag, run, dataset or artifact; else one line."""
    if not isinstance(key, str):
        raise InvalidValueError(
            shown_text(str(key)), f"a {what} name must be text, not {type(key).__name__}"
        )
    if not key or key.strip() != key:
        raise InvalidValueError(
            shown_text(key), f"a {what} name must be non-empty with no outer spaces"
        )
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidValueError(
            shown_text(key), f"a {what} name may have at most {MAX_KEY_LENGTH} characters"
        )
    if not key.isascii():
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidValueError(
                shown_text(key),
                f"a {what} name must be valid text; it holds bytes that are not UTF-8 "
                "(decode the file name, or name it yourself)",
            ) from None
    if any(ord(c) < 32 for c in key):
        raise InvalidValueError(
            shown_text(key), f"a {what} name may not contain control characters"
        )
    return key


def storable_text(text: str) -> str:
    """``text`` as UTF-8 can hold it: lone surrogates become backslash escapes."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def error_text(error: BaseException, limit: int) -> str:
    """What an exception says, storable and at most ``limit`` characters (never raises)."""
    try:
        text = str(error)
    except Exception:  # an exception whose __str__ fails still gets recorded by its type
        text = f"<{type(error).__name__} that cannot be shown>"
    return storable_text(text[:limit])


def tag_value(key: str, value: Any) -> str:
    """A tag's value as stored text (non-text values as JSON)."""
    text = storable_text(value) if isinstance(value, str) else param_json(key, value)
    if len(text) > MAX_TEXT_BYTES:
        raise InvalidValueError(key, "tag value is too long (at most 64 KB)")
    return text


def param_json(key: str, value: Any) -> str:
    """A param's value as JSON text, or one line naming why it cannot be stored."""
    plain = jsonable(key, value)
    try:
        text = json.dumps(plain, allow_nan=True, ensure_ascii=False)
    except ValueError:  # an integer too long to print (Python's digit limit)
        raise InvalidValueError(
            key, "holds an integer too long to store (over 4300 digits); log it as an artifact"
        ) from None
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        # JSON escapes keep lone surrogates, and read back as the same string.
        text = json.dumps(plain, allow_nan=True)
        size = len(text)
    if size > MAX_TEXT_BYTES:
        raise InvalidValueError(
            key,
            f"param value is {size / 1e6:.1f} MB, over the 64 KB limit; "
            "log it as an artifact or data instead",
        )
    return text


def jsonable(key: str, value: Any) -> Any:
    """A JSON-ready copy of a param value, or InvalidValueError naming what cannot be stored."""
    try:
        return _jsonable(key, value, set())
    except RecursionError:
        raise InvalidValueError(key, "is nested too deeply to store as a param") from None


def _jsonable(key: str, value: Any, inside: set[int]) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return json_float(value)
    if isinstance(value, (list, tuple, set, frozenset, Mapping)):
        if id(value) in inside:
            raise InvalidValueError(key, f"the {type(value).__name__} contains itself")
        inside.add(id(value))
        try:
            if isinstance(value, Mapping):
                return {str(k): _jsonable(key, v, inside) for k, v in value.items()}
            items = [_jsonable(key, v, inside) for v in value]
            return items if isinstance(value, (list, tuple)) else sorted(items, key=repr)
        finally:
            inside.discard(id(value))
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    # numpy scalars and small arrays know how to become plain Python values.
    to_list = getattr(value, "tolist", None)
    if callable(to_list) and type(value).__module__.startswith("numpy"):
        return _jsonable(key, to_list(), inside)
    raise InvalidValueError(
        key,
        f"a {type(value).__name__} is not a JSON value; log its settings "
        "(a number, text, list or dict) or use log_artifact for the object",
    )


def metric_number(key: str, value: Any) -> float:
    """A metric's value as a float, or one line naming why it is not a number."""
    if isinstance(value, (bool, str, bytes)):
        raise InvalidValueError(key, f"a metric must be a number, not {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:
        raise InvalidValueError(key, "the metric is too large for a float") from None
    except Exception:
        raise InvalidValueError(
            key, f"a metric must be a number, not {type(value).__name__}"
        ) from None


def metric_step(key: str, step: Any) -> int:
    """A metric's step as a 64-bit integer, or one line naming why it is not one."""
    if isinstance(step, bool):
        raise InvalidValueError(key, "step must be an integer, not bool")
    try:
        as_int = int(step)
        exact = bool(as_int == step)
    except Exception:  # not a number, inf, NaN, or an object whose int() fails
        exact = False
    if not exact:
        raise InvalidValueError(key, f"step must be an integer, not {_described(step)}")
    if not STEP_MIN <= as_int <= STEP_MAX:
        raise InvalidValueError(key, "step must fit in 64 bits (between -2**63 and 2**63-1)")
    return as_int


def user_path(text: str | Path) -> Path:
    """A path a user gave, ``~`` expanded where it can be (one that cannot be expanded, or
    that holds a NUL, is kept as given and is then found not to exist)."""
    path = Path(text)
    try:
        return path.expanduser()
    except (RuntimeError, ValueError):
        return path


def path_kind(path: Path) -> str | None:
    """``"file"``, ``"folder"``, or None for a path that does not exist or cannot be looked at
    (a name too long for the file system, a folder without permission)."""
    try:
        if path.is_dir():
            return "folder"
        return "file" if path.is_file() else None
    except (OSError, ValueError):
        return None


def check_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Params as stored (JSON text by checked name), or the error that refuses one."""
    return {checked_name("param", key): param_json(key, value) for key, value in params.items()}


def check_metrics(metrics: Mapping[str, Any], step: Any = None) -> None:
    """Raise the error ``log_metrics`` would give for these metrics and step, logging nothing."""
    for key, value in metrics.items():
        checked_name("metric", key)
        if type(value) is not float and type(value) is not int:
            metric_number(key, value)
        if step is not None:
            metric_step(key, step)


def check_artifact(source: Any) -> None:
    """Raise the error ``log_artifact`` would give for a path that is no file."""
    if isinstance(source, (str, Path)):
        kind = path_kind(user_path(source))
        if kind != "file":
            reason = "is a folder; log a file (or the folder as data)" if kind else "no such file"
            raise InvalidValueError(shown_text(str(source)), reason)
