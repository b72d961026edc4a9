"""What the command line writes: JSON for tools, and our errors as one line with exit status 2."""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from ..errors import MlopsError
from ..jsonable import json_ready, json_text

__all__ = ["emit", "emit_json", "emit_json_streaming", "friendly_errors"]

F = TypeVar("F", bound=Callable[..., Any])


def emit_json(data: Any) -> None:
    """Print ``data`` as indented strict JSON (the stable shapes the README documents)."""
    click.echo(json_text(data, indent=2))


def emit(data: Any, output_format: str, text: Callable[[Any], str]) -> None:
    """Print ``data`` as JSON with ``--format json``, else as ``text`` writes it for people."""
    if output_format == "json":
        emit_json(data)
    else:
        click.echo(text(data))


def _point_json(point: dict[str, Any]) -> str:
    """One metric point as ``json.dumps(json_ready(point))`` writes it, a few times faster."""
    value = point["value"]
    shown = repr(value) if math.isfinite(value) else json.dumps(json_ready(value))
    cell = "null" if point["cell"] is None else int(point["cell"])
    at = "null" if point["time"] is None else repr(float(point["time"]))
    return f'{{"step": {int(point["step"])}, "value": {shown}, "time": {at}, "cell": {cell}}}'


def emit_json_streaming(
    detail: dict[str, Any], points_of: Callable[[str, str], Iterable[dict[str, Any]]]
) -> None:
    """A run's JSON with its ``metric_series`` written point by point as they are read, so
    memory does not grow with the series (same shape as ``emit_json`` gives)."""
    out = sys.stdout
    head = {key: value for key, value in detail.items() if key != "metric_series"}
    text = json_text(head, indent=2)
    out.write(text[: text.rindex("}")].rstrip() + ',\n  "metric_series": {')
    for number, key in enumerate(detail["metrics"]):
        out.write(("," if number else "") + f"\n    {json.dumps(key)}: [")
        batch: list[str] = []
        for index, point in enumerate(points_of(detail["id"], key)):
            batch.append(("," if index else "") + "\n      " + _point_json(point))
            if len(batch) >= 1_000:
                out.write("".join(batch))
                batch.clear()
        out.write("".join(batch) + "\n    ]")
    out.write("\n  }\n}\n")
    out.flush()


def friendly_errors(command: F) -> F:
    """Turn our errors into a one-line message and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except MlopsError as exc:
            message = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            click.echo(f"Error: {message}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]
