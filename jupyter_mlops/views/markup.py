"""Small HTML pieces of the views: escaping, badges, tables and notes as HTML strings.

Text from runs (names, params, sources) reaches the page only through ``esc``: the HTML
widget sets ``innerHTML``. Nothing here imports ipywidgets or plotly.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from ..text import format_value
from ..vocabulary import STATUSES, VERDICTS

__all__ = [
    "BORDER",
    "DIFF_BACKGROUND",
    "FONT",
    "MONO",
    "STATUS_COLOURS",
    "VERDICT_COLOURS",
    "badge",
    "error_html",
    "esc",
    "html_table",
    "linear_html",
    "note_html",
    "section_html",
    "status_badge",
    "value_html",
    "verdict_badge",
]

# Colours in the order of the words they paint.
STATUS_COLOURS = dict(
    zip(STATUSES, ("#1a73e8", "#188038", "#d93025", "#e37400", "#8e24aa"), strict=True)
)
VERDICT_COLOURS = dict(zip(VERDICTS, ("#188038", "#5f9e2f", "#e37400", "#d93025"), strict=True))
DIFF_BACKGROUND = "rgba(255, 193, 7, 0.28)"
FONT = "font-family: var(--jp-ui-font-family, sans-serif); font-size: 12px"
MONO = "font-family: var(--jp-code-font-family, monospace); font-size: 12px"
BORDER = "var(--jp-border-color2, #e0e0e0)"


def esc(value: Any) -> str:
    """Text made safe to put inside HTML (element text or a quoted attribute)."""
    return html.escape(str(value), quote=True)


def badge(text: str, colour: str) -> str:
    """A coloured pill with escaped text."""
    return (
        f'<span style="background:{colour};color:#fff;border-radius:9px;padding:1px 8px;'
        f'{FONT};font-size:11px;white-space:nowrap">{esc(text)}</span>'
    )


def status_badge(status: str) -> str:
    """A run's status as a coloured pill."""
    return badge(status, STATUS_COLOURS.get(status, "#5f6368"))


def verdict_badge(verdict: str | None) -> str:
    """A replay verdict as a coloured pill."""
    if not verdict:
        return badge("no verdict yet", "#5f6368")
    return badge(verdict, VERDICT_COLOURS.get(verdict, "#5f6368"))


def html_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    highlight: Sequence[bool] | None = None,
) -> str:
    """An HTML table; cells are given as HTML already escaped by the caller."""
    head = "".join(
        f'<th style="text-align:left;padding:3px 10px;border-bottom:1px solid {BORDER}">'
        f"{esc(h)}</th>"
        for h in headers
    )
    body = []
    for index, row in enumerate(rows):
        marked = highlight is not None and highlight[index]
        style = f' style="background:{DIFF_BACKGROUND}"' if marked else ""
        cells = "".join(
            f'<td style="padding:3px 10px;vertical-align:top;border-bottom:1px solid {BORDER}">'
            f"{cell}</td>"
            for cell in row
        )
        body.append(f"<tr{style}>{cells}</tr>")
    return (
        f'<table style="border-collapse:collapse;{FONT}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def value_html(value: Any, width: int = 60) -> str:
    """A param or metric value as escaped text; a missing one as a grey dash."""
    if value is None:
        return '<span style="opacity:0.5">-</span>'
    return esc(format_value(value, width))


def note_html(text: str) -> str:
    """A quiet line of text."""
    return f'<div style="{FONT};opacity:0.7;margin:6px 0">{esc(text)}</div>'


def section_html(title: str) -> str:
    """A section's title."""
    return f'<div style="{FONT};font-weight:600;margin:10px 0 4px">{esc(title)}</div>'


def linear_html(run: dict[str, Any]) -> str:
    """Whether a run was linear, and if not, why not."""
    linear = run.get("linear")
    if linear is None:
        return '<span style="opacity:0.6">not known yet</span>'
    if linear:
        return "yes"
    reasons = run.get("linear_reasons") or []
    listed = "".join(f"<li>{esc(reason)}</li>" for reason in reasons)
    return f'no<ul style="margin:2px 0 0 0;padding-left:18px">{listed}</ul>'


def error_html(text: str) -> str:
    """A one-line error in red."""
    return f'<div style="{FONT};color:#d93025;margin:2px 0">{esc(text)}</div>'
