"""The HTML card of a run: what a run record shows as when it is a cell's result.

It registers itself with the run records on import, so a record shows as a card once a
view or the ``%load_ext`` door has been loaded. No ipywidgets, no plotly: a card is HTML.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..records import register_card

if TYPE_CHECKING:
    from ..records import RunRecord

__all__ = ["run_html"]


def run_html(record: RunRecord) -> str:
    """A run as an HTML card: name, status, when, linear, params and latest metrics."""
    # Imported when a card is first drawn, not when %load_ext registers it: the text
    # formatting under the pieces imports tabulate, which would slow every kernel's start.
    from ..text import format_duration, run_duration, when
    from .markup import (
        FONT,
        MONO,
        esc,
        html_table,
        linear_html,
        section_html,
        status_badge,
        value_html,
    )

    data = record.to_dict()
    head = (
        f'<div style="{FONT};font-size:14px;font-weight:600;margin-bottom:4px">'
        f"{esc(data['name'])} {status_badge(data['status'])} "
        f'<span style="{MONO};opacity:0.6">{esc(data["id"][:12])}</span></div>'
    )
    facts = [
        ["notebook", esc(data.get("notebook") or "-")],
        ["started", esc(when(data["start_time"]))],
        ["duration", esc(format_duration(run_duration(data)))],
        ["linear", linear_html(data)],
    ]
    if data.get("tags"):
        facts.append(["tags", esc(", ".join(f"{k}={v}" for k, v in data["tags"].items()))])
    parts = [head, html_table(["", ""], facts)]
    if data["params"]:
        rows = [[esc(k), value_html(v)] for k, v in data["params"].items()]
        parts += [section_html("params"), html_table(["key", "value"], rows)]
    if data["metrics"]:
        rows = [[esc(k), value_html(v)] for k, v in data["metrics"].items()]
        parts += [section_html("metrics (latest)"), html_table(["key", "value"], rows)]
    return f'<div style="padding:4px 0">{"".join(parts)}</div>'


register_card(run_html)
