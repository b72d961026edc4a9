"""What a cell showed: its text output with run-specific parts sanitized, and its figures.

Two runs of the same cell should show the same thing, yet some of what is shown changes from
run to run without meaning anything: memory addresses, clock times, durations, widget ids,
execution counts in text; creation dates, generated ids and software notes in figures. Text
is sanitized before it is hashed (``sanitize_output``); figures are hashed by what they show
(``figure_hash``): a PNG by its pixels' encoded rows and its critical chunks (text and time
chunks left out), an SVG without its metadata and with its generated ids renamed in order of
appearance, a plotly figure by its JSON without trace uids.

Imports stay cheap (no plotting library is imported): this module is used in the tracker's
writer thread, for every captured cell.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import zlib
from collections.abc import Mapping
from typing import Any

import xxhash

__all__ = ["FIGURE_TYPES", "figure_hash", "figure_of", "sanitize_output"]

# The figure formats a display bundle may carry, richest first: a bundle is one figure, hashed
# in the first of these formats it has.
FIGURE_TYPES = (
    "application/vnd.plotly.v1+json",
    "image/svg+xml",
    "image/png",
    "image/jpeg",
)


def sanitize_output(text: str) -> str:
    """Replace run-specific parts of cell output (addresses, times, ids, counts) by placeholders."""
    for hint, pattern, replacement in _SANITIZERS:
        # Most outputs contain none of these; a substring test is far cheaper than a regex scan.
        if hint is None or (hint in text if isinstance(hint, str) else hint.search(text)):
            text = pattern.sub(replacement, text)
    return text


def figure_of(data: Mapping[str, Any]) -> tuple[str, Any] | None:
    """The figure a display bundle carries, as (MIME type, payload), or None."""
    for mime in FIGURE_TYPES:
        payload = data.get(mime)
        if payload is not None:
            return mime, payload
    return None


def figure_hash(mime: str, payload: Any) -> str:
    """Hash a figure by what it shows, leaving out what changes from run to run."""
    if mime == "application/vnd.plotly.v1+json":
        return _tagged("plotly", _plotly_bytes(payload))
    if mime == "image/svg+xml":
        return _tagged("svg", _svg_text(_as_text(payload)).encode("utf-8", "surrogatepass"))
    raw = _as_bytes(payload)
    if mime == "image/png":
        return _tagged("png", _png_content(raw))
    return _tagged(mime, raw)


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------

_DURATION_UNITS = r"(?:ns|[µμu]s|ms|s|secs?|seconds?|mins?|minutes?|hours?)"
_DAYS = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_MONTHS = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
# A call's arguments, allowing two levels of nested parentheses (a tzinfo in a datetime repr).
_ARGUMENTS = r"\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)"
# (hint that must occur for the pattern to match, or None; pattern; replacement). Order matters:
# whole `%time` lines first, timestamps before the bare durations their digits would give.
_SANITIZERS: list[tuple[str | re.Pattern[str] | None, re.Pattern[str], str]] = [
    (" time", re.compile(r"^(CPU times:|Wall time:).*$", re.MULTILINE), r"\1 <duration>"),
    ("0x", re.compile(r"\b0x[0-9a-fA-F]{6,16}\b"), "0x…"),
    # repr() of a datetime or a time.struct_time: datetime.datetime(2026, 12, 6, 20, 13, 45).
    (
        re.compile(r"datetime\(|struct_time\("),
        re.compile(
            rf"\b(?:datetime\.)?datetime\(\d{{4}}, ?\d{{1,2}}, ?\d{{1,2}}, ?\d{{1,2}}, ?\d{{1,2}}"
            rf"(?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)"
            rf"|\b(?:time\.)?struct_time{_ARGUMENTS}"
        ),
        "<timestamp>",
    ),
    # time.ctime(), time.asctime(), datetime.ctime() and "%c": Sat Dec  6 20:13:45 2026.
    (
        re.compile(r"\d\d:\d\d:\d\d \d{4}"),
        re.compile(rf"\b{_DAYS} {_MONTHS} [ \d]\d \d\d:\d\d:\d\d \d{{4}}\b"),
        "<timestamp>",
    ),
    (
        re.compile(r"-\d\d-\d\d[T ]\d\d:\d\d"),
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
            r"(?:\s?(?:Z|UTC|[+-]\d{2}:?\d{2}))?(?![\d:])"
        ),
        "<timestamp>",
    ),
    ("model_id", re.compile(r"""(model_id["']?\s*[:=]\s*["']?)[^"'\s,}]+"""), r"\1<id>"),
    (
        re.compile(r"-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"),
        re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"),
        "<id>",
    ),
    # 32 hex digits (uuid4().hex, as widgets use), at least one a letter: not a long number.
    (
        None,
        re.compile(r"(?<![0-9a-zA-Z_])(?=[0-9]{0,31}[a-fA-F])[0-9a-fA-F]{32}(?![0-9a-zA-Z_])"),
        "<id>",
    ),
    ("[", re.compile(r"\b(In|Out)( ?)\[\d+\]"), r"\1\2[#]"),
    # tqdm's "[00:01<00:02, 95.2it/s]" tail: elapsed, remaining and rate.
    ("<", re.compile(r"\[\d+:\d{2}(?::\d{2})?<[^\]\n]*\]"), "[<progress>]"),
    ("/s", re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?(?:it|B|[kKMG]B)/s\b"), "<rate>"),
    # `%timeit` picks its loop count from how fast the code happened to be.
    (" loop", re.compile(r"\b\d[\d,]* loops? each"), "N loops each"),
    (None, re.compile(rf"(?<![\w.])\d+(?:\.\d+)?\s?{_DURATION_UNITS}(?![\w])"), "<duration>"),
]


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def _tagged(tag: str, payload: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(tag.encode() + b"\0" + payload)


def _as_text(payload: Any) -> str:
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload).decode("utf-8", "replace")
    return str(payload)


def _as_bytes(payload: Any) -> bytes:
    """A binary image's bytes: display bundles carry them raw, or base64 once sent as JSON."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload)
    text = str(payload)
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return text.encode("utf-8", "surrogatepass")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Ancillary chunks that say when and with what an image was made, not what it shows.
_PNG_NOTES = frozenset({b"tEXt", b"zTXt", b"iTXt", b"tIME"})


def _png_content(raw: bytes) -> bytes:
    """What a PNG shows: its chunks less text and time, image data decompressed.

    The image data is compared decompressed so that two encoders (or zlib builds) writing the
    same pixels agree. Anything that does not parse as a PNG is taken whole.
    """
    if not raw.startswith(_PNG_SIGNATURE):
        return raw
    h = xxhash.xxh3_128()
    image = zlib.decompressobj()
    position = len(_PNG_SIGNATURE)
    try:
        while position + 8 <= len(raw):
            (length,) = struct.unpack(">I", raw[position : position + 4])
            kind = raw[position + 4 : position + 8]
            body = raw[position + 8 : position + 8 + length]
            position += 12 + length
            if kind in _PNG_NOTES:
                continue
            if kind == b"IDAT":
                h.update(image.decompress(body))
                continue
            h.update(kind + struct.pack(">I", len(body)) + body)
            if kind == b"IEND":
                break
        h.update(image.flush())
    except zlib.error:
        return raw
    return h.digest()


_SVG_METADATA = re.compile(r"<metadata\b.*?</metadata>", re.DOTALL)
_SVG_DATE = re.compile(r"<dc:date>.*?</dc:date>", re.DOTALL)
_SVG_ID = re.compile(r"""\bid=(["'])([^"']+)\1""")
_SVG_REFERENCE = re.compile(r"""(\bid=["']|#)([^"'()\s;,]+)""")


def _svg_text(svg: str) -> str:
    """An SVG without its metadata (dates, creator) and with its ids renamed in order.

    matplotlib (and others) name clip paths and markers with random or salted hashes; renaming
    every id to its place in the document, and every ``#id`` reference with it, keeps the
    structure and drops the accident of naming.
    """
    svg = _SVG_DATE.sub("", _SVG_METADATA.sub("", svg))
    names: dict[str, str] = {}
    for match in _SVG_ID.finditer(svg):
        names.setdefault(match.group(2), f"id{len(names)}")
    if not names:
        return svg

    def rename(match: re.Match[str]) -> str:
        name = names.get(match.group(2))
        return match.group(0) if name is None else match.group(1) + name

    return _SVG_REFERENCE.sub(rename, svg)


def _plotly_bytes(payload: Any) -> bytes:
    """A plotly figure's JSON, keys sorted, without the uids traces get when they are made."""
    if isinstance(payload, (str, bytes, bytearray)):
        try:
            payload = json.loads(payload)
        except ValueError:
            return _as_text(payload).encode("utf-8", "surrogatepass")
    return json.dumps(
        _without_uids(payload), sort_keys=True, separators=(",", ":"), default=str
    ).encode()


def _without_uids(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_uids(v) for k, v in value.items() if k != "uid"}
    if isinstance(value, (list, tuple)):
        return [_without_uids(v) for v in value]
    return value
