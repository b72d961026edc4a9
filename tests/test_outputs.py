"""What a cell showed: text sanitized of run-specific parts, figures hashed by what they show."""

from __future__ import annotations

import base64
import datetime
import json
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

import jupyter_mlops as mlops
from jupyter_mlops.outputs import FIGURE_TYPES, figure_hash, figure_of, sanitize_output

from .conftest import run_child
from .test_values import replay_fixture

# -- sanitize_output -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<Model object at 0x7f3a2c1b9e80>", "<Model object at 0x…>"),
        ("saved 2024-05-01T12:30:45.123456+02:00 ok", "saved <timestamp> ok"),
        ("at 2024-05-01 12:30:45 and 2024-05-01 12:30:45,123", "at <timestamp> and <timestamp>"),
        ("Out[12]: 3", "Out[#]: 3"),
        ("In [3]: x", "In [#]: x"),
        ("took 1.23s", "took <duration>"),
        ("epoch done in 12.3 ms", "epoch done in <duration>"),
        ("CPU times: user 1.2 ms, sys: 0 ns, total: 1.2 ms", "CPU times: <duration>"),
        ("Wall time: 3.45 s", "Wall time: <duration>"),
        ('{"model_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90"}', '{"model_id": "<id>"}'),
        ("widget 0123456789abcdef0123456789abcdef", "widget <id>"),
        ("accuracy 0.93 on 2024-05-01", "accuracy 0.93 on 2024-05-01"),
        ("3 samples, 10 steps", "3 samples, 10 steps"),
        # time.ctime(), time.asctime() and datetime.ctime(): one format, days space-padded.
        ("started Sat Dec  6 20:13:45 2026", "started <timestamp>"),
        ("Mon Jan 12 09:05:01 2026 done", "<timestamp> done"),
        ("datetime.datetime(2026, 12, 6, 20, 13, 45, 123456)", "<timestamp>"),
        ("[datetime.datetime(2026, 1, 2, 0, 0)]", "[<timestamp>]"),
        (
            "datetime.datetime(2026, 12, 6, 20, 13, tzinfo=datetime.timezone("
            "datetime.timedelta(seconds=3600), 'CET'))!",
            "<timestamp>!",
        ),
        ("{'at': datetime(2026, 12, 6, 20, 13, 45)}", "{'at': <timestamp>}"),
        (
            "time.struct_time(tm_year=2026, tm_mon=12, tm_mday=6, tm_hour=20, tm_min=13, "
            "tm_sec=45, tm_wday=6, tm_yday=340, tm_isdst=0)",
            "<timestamp>",
        ),
        # A date alone is content (a fixed date in the data), as in ISO form above.
        ("datetime.date(2026, 12, 6)", "datetime.date(2026, 12, 6)"),
        ("Sat Dec 6", "Sat Dec 6"),
    ],
)
def test_sanitize_output(text: str, expected: str) -> None:
    assert sanitize_output(text) == expected


def test_sanitized_outputs_of_two_runs_compare_equal() -> None:
    first = "Out[4]: <Foo at 0x7f00aa11bb22> 2024-01-01 10:00:00\nWall time: 1.2 s\n"
    second = "Out[9]: <Foo at 0x7fcc33dd4455> 2024-06-30 23:59:59\nWall time: 950 ms\n"
    assert sanitize_output(first) == sanitize_output(second)
    assert sanitize_output("result 42") != sanitize_output("result 43")


def test_clock_prints_sanitize_to_the_same_text() -> None:
    def printed(moment: float) -> str:
        when = datetime.datetime.fromtimestamp(moment)
        return (
            f"{time.ctime(moment)}\n{time.asctime(time.localtime(moment))}\n{when!r}\n"
            f"{when}\n{when.isoformat()}\n{when.ctime()}\n{time.localtime(moment)}\n"
        )

    now = time.time()
    assert sanitize_output(printed(now)) == sanitize_output(printed(now - 86_400 * 40 - 3_723.5))
    assert "20" not in sanitize_output(printed(now)).replace("<timestamp>", "")


# -- figures: formats ------------------------------------------------------------------------

_DRAW = """
import io
from matplotlib.figure import Figure

def draw(values, fmt):
    fig = Figure(figsize=(3, 2))
    axes = fig.subplots(1, 2)
    axes[0].plot(values)
    axes[1].scatter(values, values[::-1])
    fig.suptitle("draw")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt)
    return buffer.getvalue()
"""


def draw(values: list[float], fmt: str) -> bytes:
    namespace: dict[str, Any] = {}
    exec(_DRAW, namespace)
    data: bytes = namespace["draw"](values, fmt)
    return data


def hash_in_a_child(values: list[float], fmt: str, mime: str) -> str:
    code = (
        _DRAW
        + "from jupyter_mlops.outputs import figure_hash\n"
        + f"print(figure_hash({mime!r}, draw({values!r}, {fmt!r})))"
    )
    return run_child(code, timeout=120, MPLBACKEND="agg", PYTHONHASHSEED="7").strip()


VALUES = [0.5, 2.0, 1.25, 3.0, 2.5]


def test_a_png_figure_drawn_in_two_processes_hashes_the_same() -> None:
    pytest.importorskip("matplotlib")
    here = figure_hash("image/png", draw(VALUES, "png"))
    assert here == hash_in_a_child(VALUES, "png", "image/png")
    changed = [*VALUES[:-1], 2.6]
    assert figure_hash("image/png", draw(changed, "png")) != here


def test_png_notes_are_not_content_and_base64_is_the_same_image() -> None:
    pytest.importorskip("matplotlib")
    png = draw(VALUES, "png")
    noted = add_png_chunk(png, b"tEXt", b"Creation Time\x002026-12-06 20:13:45")
    noted = add_png_chunk(noted, b"tIME", struct.pack(">HBBBBB", 2026, 12, 6, 20, 13, 45))
    assert noted != png
    assert figure_hash("image/png", noted) == figure_hash("image/png", png)
    # A notebook file or a kernel message carries it as base64 text.
    assert figure_hash("image/png", base64.b64encode(png).decode()) == figure_hash("image/png", png)
    # The same pixels compressed differently are the same image.
    assert figure_hash("image/png", recompress(png)) == figure_hash("image/png", png)


def add_png_chunk(png: bytes, kind: bytes, body: bytes) -> bytes:
    """Insert a chunk right after IHDR (8-byte signature + 25-byte IHDR chunk)."""
    crc = struct.pack(">I", zlib.crc32(kind + body))
    return png[:33] + struct.pack(">I", len(body)) + kind + body + crc + png[33:]


def recompress(png: bytes) -> bytes:
    """The same PNG with its image data compressed at another level, in two IDAT chunks."""
    position, chunks, data = 8, [], b""
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind, body = png[position + 4 : position + 8], png[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IDAT":
            data += body
        else:
            chunks.append((kind, body))
    packed = zlib.compress(zlib.decompress(data), 1)
    half = len(packed) // 2
    out = png[:8]
    for kind, body in chunks:
        if kind == b"IEND":
            for part in (packed[:half], packed[half:]):
                out += struct.pack(">I", len(part)) + b"IDAT" + part
                out += struct.pack(">I", zlib.crc32(b"IDAT" + part))
        out += (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )
    return out


def test_an_svg_figure_drawn_in_two_processes_hashes_the_same() -> None:
    pytest.importorskip("matplotlib")
    svg = draw(VALUES, "svg")
    again = draw(VALUES, "svg")
    # matplotlib dates the file and names clip paths and markers with a random salt.
    assert svg != again
    here = figure_hash("image/svg+xml", svg.decode())
    assert figure_hash("image/svg+xml", again) == here
    assert hash_in_a_child(VALUES, "svg", "image/svg+xml") == here
    assert figure_hash("image/svg+xml", draw([*VALUES[:-1], 2.6], "svg")) != here


def test_svg_ids_are_renamed_in_order_and_references_follow() -> None:
    def svg(first: str, second: str, radius: int = 3) -> str:
        return (
            f'<svg><defs><clipPath id="{first}"><rect/></clipPath><path id="{second}"/></defs>'
            f'<g clip-path="url(#{first})"><use xlink:href="#{second}" fill="#ff0000"/>'
            f'<circle r="{radius}"/></g></svg>'
        )

    base = figure_hash("image/svg+xml", svg("p1a2b3", "m9f8e7"))
    assert figure_hash("image/svg+xml", svg("pzzzzz", "mqqqqq")) == base
    # Swapping which id is referenced where is a different drawing.
    swapped = svg("p1a2b3", "m9f8e7").replace("url(#p1a2b3)", "url(#m9f8e7)")
    assert figure_hash("image/svg+xml", swapped) != base
    assert figure_hash("image/svg+xml", svg("p1a2b3", "m9f8e7", radius=4)) != base


def plotly_bundle(values: list[float], uid: str) -> dict[str, Any]:
    go = pytest.importorskip("plotly.graph_objects")
    import plotly.io as pio

    fig = go.Figure(go.Scatter(y=values, name="loss", uid=uid))
    fig.update_layout(title="training")
    return {"application/vnd.plotly.v1+json": json.loads(pio.to_json(fig)), "text/html": "…"}


def test_a_plotly_figure_hashes_without_its_trace_uids() -> None:
    first = figure_of(plotly_bundle(VALUES, "5c1a"))
    second = figure_of(plotly_bundle(VALUES, "77e0"))
    assert first is not None and second is not None
    assert first[0] == second[0] == "application/vnd.plotly.v1+json"
    assert figure_hash(*first) == figure_hash(*second)
    # As JSON text (a saved notebook) it is the same figure.
    assert figure_hash(first[0], json.dumps(first[1])) == figure_hash(*first)
    changed = figure_of(plotly_bundle([*VALUES[:-1], 2.6], "5c1a"))
    assert changed is not None and figure_hash(*changed) != figure_hash(*first)


def test_a_bundle_is_one_figure_in_its_richest_format() -> None:
    assert figure_of({"text/plain": "<Figure size 640x480 with 1 Axes>"}) is None
    bundle = {"text/plain": "x", "image/png": b"png", "image/svg+xml": "<svg/>"}
    assert figure_of(bundle) == ("image/svg+xml", "<svg/>")
    assert FIGURE_TYPES[0] == "application/vnd.plotly.v1+json"
    # Other binary formats are hashed as they are.
    assert figure_hash("image/jpeg", b"\xff\xd8jpeg") == figure_hash("image/jpeg", b"\xff\xd8jpeg")
    assert figure_hash("image/jpeg", b"\xff\xd8jpeg") != figure_hash("image/png", b"\xff\xd8jpeg")


def test_importing_outputs_loads_no_plotting_library() -> None:
    code = (
        "import sys, jupyter_mlops.outputs\n"
        "print(sorted(m for m in ('matplotlib', 'plotly', 'numpy', 'PIL') if m in sys.modules))"
    )
    assert run_child(code).strip() == "[]"


# -- figures: what a tracked cell showed ------------------------------------------------------


@pytest.fixture
def rich_shell(shell: Any) -> Any:
    """The shell formatting every MIME type, as a kernel does (a terminal shows text only)."""
    formatter = shell.display_formatter
    saved = list(formatter.active_types)
    formatter.active_types = list(formatter.formatters)
    yield shell
    formatter.active_types = saved


def test_tracked_cells_record_the_figures_they_show(rich_shell: Any) -> None:
    pytest.importorskip("matplotlib_inline")
    shell = rich_shell
    for source in (
        "%matplotlib inline",
        "%track start --name figures",
        "import matplotlib.pyplot as plt\nfrom IPython.display import SVG, display",
        "plt.plot([1, 2, 3]);",
        "plt.plot([1, 2, 3]);",
        "plt.plot([1, 2, 4]);",
        'display(SVG(\'<svg><circle id="c1" r="3"/></svg>\'))',
        "display({'application/vnd.plotly.v1+json': {'data': [{'y': [1], 'uid': 'a'}]}}, raw=True)",
        "print('no figure')",
        "%track end",
    ):
        shell.run_cell(source, store_history=True)
    cells = {c["source"]: c for c in mlops.get_run("figures").cells()}
    start = cells["%track start --name figures"]
    assert start["figure_hashes"] is None  # the run began inside it: what it showed is unknown
    shown = [cells[s]["figure_hashes"] for s in cells if s.startswith("plt.plot")]
    assert [len(f) for f in shown] == [1, 1] and shown[0] != shown[1]
    same = [
        c["figure_hashes"] for c in mlops.get_run("figures").cells() if "[1, 2, 3]" in c["source"]
    ]
    assert same[0] == same[1]
    svg = next(c for s, c in cells.items() if s.startswith("display(SVG"))
    assert svg["figure_hashes"] == [
        figure_hash("image/svg+xml", '<svg><circle id="x" r="3"/></svg>')
    ]
    plotly = next(c for s, c in cells.items() if "plotly" in s)
    assert plotly["figure_hashes"] == [
        figure_hash("application/vnd.plotly.v1+json", {"data": [{"y": [1]}]})
    ]
    assert cells["print('no figure')"]["figure_hashes"] == []
    shell.run_cell("plt.close('all')\n%matplotlib agg")


# -- end to end: replays in real kernels -----------------------------------------------------


@pytest.mark.slow
def test_randomness_only_in_a_figure_diverges_naming_the_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    report = replay_fixture("figure_random", tmp_path, monkeypatch)
    assert report["verdict"] == "diverged"
    first = report["first_cell"]
    assert first["position"] == 3
    assert first["reasons"] == ["figure"]
    assert "Diverged at cell 3" in report["summary"]
    assert "the figure it showed differs" in report["summary"]
    assert any("np.random.rand(20)" in cause for cause in report["causes"])


@pytest.mark.slow
def test_a_cell_printing_the_clock_reproduces_with_no_difference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = replay_fixture("ctime_print", tmp_path, monkeypatch)
    assert report["verdict"] == "reproduced", report["summary"]
    assert report["comparison"]["cells"]["differences"] == []
