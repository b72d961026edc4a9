"""The REST API of the server extension, through a real jupyter_server and a real store."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from jupyter_server.auth import Authorizer
from tornado.routing import PathMatches
from tornado.web import RequestHandler
from traitlets.config import Config

import jupyter_mlops
from jupyter_mlops import kernel_env
from jupyter_mlops import run as runs
from jupyter_mlops.server import api
from jupyter_mlops.server.handlers import AUTH_RESOURCE
from jupyter_mlops.store import Store, open_store

from .server_fixtures import API, UNKNOWN_ID, assert_error, get_json, make_run

# -- GET runs ----------------------------------------------------------------------------------


async def test_runs_newest_first_paginated_with_total(jp_fetch: Any, server_store: Store) -> None:
    ids = [make_run(server_store, f"run-{i}", params={"lr": i / 10}) for i in range(5)]
    code, body = await get_json(jp_fetch, "runs")
    assert code == 200
    assert [r["id"] for r in body["runs"]] == ids[::-1]
    assert body["total"] == 5 and body["store"] == str(server_store.directory)
    assert body["runs"][0]["params"] == {"lr": 0.4}

    _, first = await get_json(jp_fetch, "runs", params={"limit": "2"})
    _, rest = await get_json(jp_fetch, "runs", params={"limit": "2", "offset": "4"})
    assert [r["name"] for r in first["runs"]] == ["run-4", "run-3"]
    assert [r["name"] for r in rest["runs"]] == ["run-0"]
    assert first["total"] == rest["total"] == 5


async def test_runs_filtered_by_notebook_status_and_expression(
    jp_fetch: Any, server_store: Store, server_root: Path
) -> None:
    (server_root / "sub").mkdir()
    a = make_run(server_store, "a", notebook=server_root / "sub" / "a.ipynb", metrics={"acc": 0.9})
    b = make_run(
        server_store, "b", notebook=server_root / "b.ipynb", metrics={"acc": 0.5}, status="failed"
    )
    c = make_run(server_store, "c", notebook=server_root / "sub" / "a.ipynb", metrics={"acc": 0.7})

    _, body = await get_json(jp_fetch, "runs", params={"notebook": "sub/a.ipynb"})
    assert [r["id"] for r in body["runs"]] == [c, a] and body["total"] == 2
    assert body["runs"][0]["lab_path"] == "sub/a.ipynb"

    _, body = await get_json(jp_fetch, "runs", params={"status": "failed"})
    assert [r["id"] for r in body["runs"]] == [b]
    _, body = await get_json(jp_fetch, "runs", params={"status": "failed,finished"})
    assert body["total"] == 3

    _, body = await get_json(jp_fetch, "runs", params={"where": "metrics.acc > 0.6"})
    assert [r["id"] for r in body["runs"]] == [c, a]
    # The status filter narrows the expression, whatever the expression's own shape.
    _, body = await get_json(
        jp_fetch, "runs", params={"where": "name = a or name = b", "status": "finished"}
    )
    assert [r["id"] for r in body["runs"]] == [a]


async def test_runs_bad_queries_are_clear_400s(jp_fetch: Any, server_store: Store) -> None:
    make_run(server_store, "one")
    assert_error(
        *await get_json(jp_fetch, "runs", params={"where": "metrics.acc >"}),
        400,
        "bad_expression",
    )
    assert_error(
        *await get_json(jp_fetch, "runs", params={"status": "sleeping"}), 400, "invalid_value"
    )
    assert_error(*await get_json(jp_fetch, "runs", params={"limit": "ten"}), 400, "invalid_value")
    assert_error(
        *await get_json(jp_fetch, "runs", params={"limit": "100000"}), 400, "invalid_value"
    )
    assert_error(*await get_json(jp_fetch, "runs", params={"offset": "-1"}), 400, "invalid_value")
    code, body = await get_json(jp_fetch, "runs", params={"notebook": "../../etc/passwd"})
    assert_error(code, body, 400, "invalid_value")
    assert "outside" in body["message"]


async def test_no_store_yet_is_an_empty_list(jp_fetch: Any, server_root: Path) -> None:
    code, body = await get_json(jp_fetch, "runs")
    assert code == 200 and body["runs"] == [] and body["total"] == 0 and body["store"] is None
    assert_error(*await get_json(jp_fetch, "runs", UNKNOWN_ID), 404, "no_store")
    assert_error(
        *await get_json(jp_fetch, "runs", params={"where": "name ="}), 400, "bad_expression"
    )
    assert not (server_root / ".mlops").exists()  # reading never creates a store


async def test_store_found_from_a_parent_of_the_root(
    jp_fetch: Any, server_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server's root is a subfolder of the project that holds .mlops/.
    project_store = open_store(server_root.parent / ".mlops")
    make_run(project_store, "from-above", notebook=server_root.parent / "elsewhere.ipynb")
    make_run(project_store, "inside", notebook=server_root / "nb.ipynb")
    _, body = await get_json(jp_fetch, "runs")
    by_name = {r["name"]: r for r in body["runs"]}
    assert set(by_name) == {"from-above", "inside"}
    assert by_name["inside"]["lab_path"] == "nb.ipynb"
    assert by_name["from-above"]["lab_path"] is None  # outside the root: nothing to open


# -- GET runs/{id} and its metrics -------------------------------------------------------------


async def test_run_detail_is_the_whole_run(
    jp_fetch: Any, server_store: Store, server_root: Path
) -> None:
    run_id = make_run(
        server_store,
        "detail",
        notebook=server_root / "nb.ipynb",
        params={"lr": 0.01, "layers": [64, 32]},
        metrics={"acc": 0.93, "nan": float("nan")},
    )
    code, body = await get_json(jp_fetch, "runs", run_id)
    assert code == 200
    assert body["id"] == run_id and body["name"] == "detail"
    assert body["params"] == {"lr": 0.01, "layers": [64, 32]}
    assert body["metrics"] == {"acc": 0.93, "nan": "nan"}
    for key in ("cells", "datasets", "artifacts", "environment", "replays", "metric_series"):
        assert key in body
    assert body["metric_series_length"] == {"acc": 1, "nan": 1}
    assert body["lab_path"] == "nb.ipynb"


async def test_bad_and_unknown_run_ids(jp_fetch: Any, server_store: Store) -> None:
    make_run(server_store, "named")
    assert_error(*await get_json(jp_fetch, "runs", "named"), 400, "bad_run_id")
    assert_error(*await get_json(jp_fetch, "runs", "..%2F..%2Fetc"), 400, "bad_run_id")
    assert_error(*await get_json(jp_fetch, "runs", "ABC"), 400, "bad_run_id")
    assert_error(*await get_json(jp_fetch, "runs", UNKNOWN_ID), 404, "run_not_found")
    assert_error(
        *await get_json(jp_fetch, "runs", UNKNOWN_ID, "metrics", "acc"), 404, "run_not_found"
    )
    assert_error(
        *await get_json(jp_fetch, "runs", UNKNOWN_ID, method="DELETE"), 404, "run_not_found"
    )


async def test_metric_series_is_downsampled_keeping_extremes(
    jp_fetch: Any, server_store: Store
) -> None:
    run = runs.start_run(name="long", store=server_store)
    for step in range(10_000):
        value = 1.0 / (step + 1)
        if step == 5_123:
            value = 50.0  # a spike
        if step == 7_777:
            value = -3.0  # a dip
        run.log_metric("val/loss", value, step=step)
    run.end()
    code, body = await get_json(
        jp_fetch, "runs", run.id, "metrics", "val/loss", params={"max_points": "200"}
    )
    assert code == 200, body
    assert body["key"] == "val/loss" and body["length"] == 10_000 and body["downsampled"]
    points = body["points"]
    assert len(points) <= 200
    steps = [p["step"] for p in points]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 9_999
    assert {5_123, 7_777} <= set(steps)
    assert max(p["value"] for p in points) == 50.0 and min(p["value"] for p in points) == -3.0

    _, whole = await get_json(
        jp_fetch, "runs", run.id, "metrics", "val/loss", params={"max_points": "10000"}
    )
    assert len(whole["points"]) == 10_000 and not whole["downsampled"]
    _, detail = await get_json(jp_fetch, "runs", run.id)
    assert len(detail["metric_series"]["val/loss"]) <= api.DEFAULT_POINTS
    assert detail["metric_series_length"]["val/loss"] == 10_000

    assert_error(
        *await get_json(jp_fetch, "runs", run.id, "metrics", "nope"), 404, "metric_not_found"
    )
    assert_error(
        *await get_json(
            jp_fetch, "runs", run.id, "metrics", "val/loss", params={"max_points": "lots"}
        ),
        400,
        "invalid_value",
    )


async def test_a_thinned_series_keeps_a_stretch_of_nan(jp_fetch: Any, server_store: Store) -> None:
    run = runs.start_run(name="gaps", store=server_store)
    for step in range(1_000):
        run.log_metric("loss", float("nan") if 400 <= step < 600 else float(step % 7), step=step)
    run.end()
    code, body = await get_json(
        jp_fetch, "runs", run.id, "metrics", "loss", params={"max_points": "40"}
    )
    assert code == 200, body
    points = body["points"]
    assert len(points) <= 40 and points[0]["step"] == 0 and points[-1]["step"] == 999
    assert any(p["value"] == "nan" for p in points)  # the NaN stretch still shows
    assert {p["value"] for p in points} >= {0.0, 6.0}


# -- compare -----------------------------------------------------------------------------------


async def test_compare_two_and_more_runs(jp_fetch: Any, server_store: Store) -> None:
    a = make_run(server_store, "a", params={"lr": 0.1, "depth": 3}, metrics={"acc": 0.8})
    b = make_run(server_store, "b", params={"lr": 0.01, "depth": 3}, metrics={"acc": 0.9})
    c = make_run(server_store, "c", params={"lr": 0.1}, metrics={"acc": 0.8})
    code, body = await get_json(jp_fetch, "compare", params={"ids": f"{a},{b},{c}"})
    assert code == 200
    assert [r["id"] for r in body["runs"]] == [a, b, c]
    assert body["runs"][0]["metric_keys"] == ["acc"]
    assert "cells" not in body["runs"][0]
    first, second = body["diffs"]
    assert first["params"] == {"lr": [0.1, 0.01]}
    assert first["metrics"]["acc"]["delta"] == pytest.approx(0.1)
    assert second["params"] == {"depth": [3, None]}

    assert_error(*await get_json(jp_fetch, "compare", params={"ids": a}), 400, "invalid_value")
    assert_error(
        *await get_json(jp_fetch, "compare", params={"ids": f"{a},{a}"}), 400, "invalid_value"
    )
    assert_error(*await get_json(jp_fetch, "compare"), 400, "invalid_value")
    assert_error(
        *await get_json(jp_fetch, "compare", params={"ids": f"{a},x/y"}), 400, "bad_run_id"
    )
    assert_error(
        *await get_json(jp_fetch, "compare", params={"ids": f"{a},{UNKNOWN_ID}"}),
        404,
        "run_not_found",
    )


# -- PATCH and DELETE --------------------------------------------------------------------------


async def test_patch_renames_tags_and_notes(jp_fetch: Any, server_store: Store) -> None:
    run_id = make_run(server_store, "before")
    runs.update_run(run_id, tags={"old": "1"}, store=server_store)
    code, body = await get_json(
        jp_fetch,
        "runs",
        run_id,
        method="PATCH",
        body=json.dumps(
            {"name": "after", "tags": {"team": "vision"}, "remove_tags": ["old"], "note": "good"}
        ),
    )
    assert code == 200, body
    assert body["name"] == "after" and body["tags"] == {"team": "vision"}
    assert body["note"] == "good"
    assert runs.get_run(run_id, store=server_store).name == "after"


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        ('{"colour": "red"}', "invalid_value"),
        ('{"name": 3}', "invalid_value"),
        ('{"name": ""}', "invalid_value"),
        ('{"tags": {"k": 1}}', "invalid_value"),
        ('{"remove_tags": "k"}', "invalid_value"),
        ('{"note": ["x"]}', "invalid_value"),
    ],
)
async def test_patch_bad_bodies(
    jp_fetch: Any, server_store: Store, payload: str, error: str
) -> None:
    run_id = make_run(server_store, "keep")
    code, body = await get_json(jp_fetch, "runs", run_id, method="PATCH", body=payload)
    assert_error(code, body, 400, error)
    assert runs.get_run(run_id, store=server_store).name == "keep"


async def test_delete_a_run_but_not_a_running_one(jp_fetch: Any, server_store: Store) -> None:
    done = make_run(server_store, "done")
    code, body = await get_json(jp_fetch, "runs", done, method="DELETE")
    assert code == 200 and body == {"deleted": done}
    assert_error(*await get_json(jp_fetch, "runs", done), 404, "run_not_found")

    going = make_run(server_store, "going", status="running")
    code, body = await get_json(jp_fetch, "runs", going, method="DELETE")
    assert_error(code, body, 400, "invalid_value")
    assert "running" in body["message"]
    runs.end_run()


# -- replays -----------------------------------------------------------------------------------


async def test_replay_bad_requests(jp_fetch: Any, server_store: Store) -> None:
    run_id = make_run(server_store, "r")
    for payload in ('{"mode": "sideways"}', '{"rtol": "big"}', '{"atol": -1}', '{"x": 1}'):
        code, body = await get_json(jp_fetch, "runs", run_id, "replay", method="POST", body=payload)
        assert_error(code, body, 400, "invalid_value")
    code, body = await get_json(jp_fetch, "runs", "nope", "replay", method="POST", body="{}")
    assert_error(code, body, 400, "bad_run_id")
    assert_error(*await get_json(jp_fetch, "replays", "bad id!"), 400, "bad_replay_id")


async def test_replay_unknown_run_and_replay(jp_fetch: Any, server_store: Store) -> None:
    make_run(server_store, "r")
    code, body = await get_json(jp_fetch, "runs", UNKNOWN_ID, "replay", method="POST", body="{}")
    assert_error(code, body, 404, "run_not_found")
    assert_error(*await get_json(jp_fetch, "replays", "f" * 32), 404, "replay_not_found")


@pytest.mark.slow
async def test_replay_starts_in_the_background_and_reports(
    jp_fetch: Any, server_store: Store, server_root: Path
) -> None:
    import asyncio

    notebook = server_root / "tiny.ipynb"
    _write_tracked_notebook(notebook)
    original = _run_notebook_tracked(notebook, server_root)
    code, started = await get_json(jp_fetch, "runs", original, "replay", method="POST", body="{}")
    assert code == 202, started
    assert started["state"] == "running" and started["original_id"] == original
    deadline = time.monotonic() + 120
    state = started
    while state["state"] == "running" and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        _, state = await get_json(jp_fetch, "replays", started["id"])
    assert state["state"] == "done", state
    assert state["verdict"] in ("reproduced", "reproduced within tolerance")
    _, detail = await get_json(jp_fetch, "runs", original)
    assert detail["replays"][0]["id"] == started["id"]


def _write_tracked_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext jupyter_mlops\n%track start --name tiny"),
        nbformat.v4.new_code_cell("x = sum(range(10))\n%track metric x=x"),
        nbformat.v4.new_code_cell("%track end"),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def _run_notebook_tracked(path: Path, root: Path) -> str:
    """Run a notebook in a real kernel (the store found from its folder); the run's id."""
    import subprocess
    import sys

    env = kernel_env.untouched_env()
    env[kernel_env.NOTEBOOK] = str(path)
    subprocess.run(
        [sys.executable, "-m", "papermill", "--cwd", str(root), str(path), str(path)],
        check=True,
        env=env,
        capture_output=True,
    )
    found = runs.list_runs(where="name = tiny", store=open_store(root / ".mlops"))
    return str(found[0]["id"])


# -- authentication ----------------------------------------------------------------------------


def _extension_routes(router: Any) -> list[tuple[str, type]]:
    """Every (pattern, handler) of this extension registered in the running app."""
    found = []
    for rule in getattr(router, "rules", []):
        target = rule.target
        if hasattr(target, "rules"):
            found.extend(_extension_routes(target))
        elif isinstance(rule.matcher, PathMatches) and API in rule.matcher.regex.pattern:
            found.append((rule.matcher.regex.pattern, target))
    return found


def _example_path(pattern: str) -> str:
    """A concrete URL path for a route pattern, each group filled with a plausible id."""
    path = pattern.rstrip("$").removesuffix("/?")
    return re.sub(r"\([^)]*\)", UNKNOWN_ID, path)


class DenyAll(Authorizer):
    """An authorizer that refuses everything and remembers what it was asked."""

    asked: ClassVar[list[tuple[str, str]]] = []

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        """Refuse, noting the action and resource."""
        DenyAll.asked.append((action, resource))
        return False


# Unauthenticated requests reach the handlers (the server's own default guard and the XSRF
# check are off), so only our handlers' decorators can refuse them.
OPEN_SERVER = Config(
    {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_mlops.server": True},
            "allow_unauthenticated_access": True,
            "disable_check_xsrf": True,
        }
    }
)
DENYING_SERVER = Config(
    {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_mlops.server": True},
            "authorizer_class": DenyAll,
        }
    }
)


def _requests(app: Any, base_url: str) -> list[tuple[str, str, str]]:
    """(method, URL path, pattern) for every method of every route of this extension."""
    routes = _extension_routes(app.default_router)
    assert len(routes) >= 6, routes
    found = []
    for pattern, handler in routes:
        path = _example_path(pattern)
        assert path.startswith(base_url), (path, base_url)
        for method in ("GET", "POST", "PATCH", "DELETE", "PUT"):
            if getattr(handler, method.lower()) is not getattr(RequestHandler, method.lower()):
                found.append((method, path, pattern))
    return found


@pytest.mark.parametrize("jp_server_config", [OPEN_SERVER])
async def test_every_route_refuses_a_stranger(
    jp_serverapp: Any, http_server_client: Any, jp_base_url: str, server_store: Store
) -> None:
    requests = _requests(jp_serverapp.web_app, jp_base_url)
    assert len(requests) >= 8
    for method, path, pattern in requests:
        for headers in ({}, {"Authorization": "token wrong"}):
            response = await http_server_client.fetch(
                path,
                method=method,
                body="{}" if method in ("POST", "PATCH", "PUT") else None,
                headers=headers,
                raise_error=False,
                follow_redirects=False,
            )
            assert response.code in (401, 403), (method, pattern, response.code, response.body)
            assert json.loads(response.body)["error"] == "forbidden"


@pytest.mark.parametrize("jp_server_config", [DENYING_SERVER])
async def test_every_route_asks_the_authorizer_about_our_resource(
    jp_serverapp: Any,
    http_server_client: Any,
    jp_base_url: str,
    jp_auth_header: Any,
    server_store: Store,
) -> None:
    DenyAll.asked.clear()
    requests = _requests(jp_serverapp.web_app, jp_base_url)
    for method, path, pattern in requests:
        response = await http_server_client.fetch(
            path,
            method=method,
            body="{}" if method in ("POST", "PATCH", "PUT") else None,
            headers=jp_auth_header,
            raise_error=False,
        )
        assert response.code == 403, (method, pattern, response.code)
    assert len(DenyAll.asked) == len(requests)
    assert {resource for _, resource in DenyAll.asked} == {AUTH_RESOURCE}
    assert {action for action, _ in DenyAll.asked} == {"read", "write"}


def test_the_shipped_config_enables_the_extension() -> None:
    config = Path(jupyter_mlops.__file__).parent.parent / "jupyter-config" / "server-config"
    data = json.loads((config / "jupyter_mlops.json").read_text())
    assert data == {"ServerApp": {"jpserver_extensions": {"jupyter_mlops.server": True}}}
    from jupyter_mlops.server import _jupyter_server_extension_points

    assert _jupyter_server_extension_points() == [{"module": "jupyter_mlops.server"}]


def test_the_openapi_file_lists_every_route() -> None:
    import yaml

    from jupyter_mlops.server import OPENAPI
    from jupyter_mlops.server.handlers import route_table

    spec = yaml.safe_load(OPENAPI.read_text())
    documented = set()
    for path, operations in spec["paths"].items():
        for method in operations:
            if method in ("get", "post", "patch", "delete", "put"):
                documented.add((method.upper(), re.sub(r"\{[^}]+\}", "X", path).strip("/")))
    served = set()
    for pattern, handler in route_table("/"):
        path = re.sub(r"\([^)]*\)", "X", pattern.rstrip("$").removesuffix("/?"))
        path = path.removeprefix("/" + API + "/")
        for method in ("GET", "POST", "PATCH", "DELETE", "PUT"):
            if getattr(handler, method.lower()) is not getattr(RequestHandler, method.lower()):
                served.add((method, path))
    assert documented == served


def test_the_readme_documents_every_route_and_command() -> None:
    from jupyter_mlops.server.handlers import route_table

    project = Path(jupyter_mlops.__file__).resolve().parent.parent
    readme = (project / "README.md").read_text()
    section = readme.split("## The JupyterLab sidebar", 1)[1].split("\n## ", 1)[0]
    for pattern, handler in route_table("/"):
        path = pattern.rstrip("$").removesuffix("/?").removeprefix("/" + API + "/")
        shown = (
            re.sub(r"\([^)]*\)", "{id}", path)
            .replace("{id}/metrics/{id}", "{id}/metrics/{key}")
            .replace("{id}/artifacts/{id}", "{id}/artifacts/{name}")
        )
        for method in ("GET", "POST", "PATCH", "DELETE", "PUT"):
            if getattr(handler, method.lower()) is not getattr(RequestHandler, method.lower()):
                assert f"`{method} {shown}" in section, f"{method} {shown} is not in the README"
    # The sidebar's command ids are declared in one module of its own.
    source = (project / "labextension" / "src" / "commands.ts").read_text()
    commands = set(re.findall(r"'(jupyter-mlops:[a-z-]+)'", source)) - {"jupyter-mlops:plugin"}
    commands.discard("jupyter-mlops:runs")  # the icon's name
    assert len(commands) >= 8
    for command in sorted(commands):
        assert f"`{command}`" in section, f"command {command} is not in the README"


async def test_an_encoded_metric_key_reaches_the_handler(
    http_server_client: Any, jp_base_url: str, jp_auth_header: Any, server_store: Store
) -> None:
    # The sidebar sends keys encoded (`val%2Floss`), as a browser would.
    run = runs.start_run(name="encoded", store=server_store)
    run.log_metric("val/loss", 0.5, step=0)
    run.log_metric("val/loss", 0.25, step=1)
    run.end()
    response = await http_server_client.fetch(
        f"{jp_base_url}{API}/runs/{run.id}/metrics/val%2Floss",
        headers=jp_auth_header,
        raise_error=False,
    )
    assert response.code == 200, response.body
    assert [p["value"] for p in json.loads(response.body)["points"]] == [0.5, 0.25]


async def test_a_filtered_total_is_counted_up_to_a_cap(
    jp_fetch: Any, server_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(4):
        make_run(server_store, f"cap-{index}", metrics={"acc": 0.9})
    monkeypatch.setattr(api, "COUNT_CAP", 2)
    _, body = await get_json(jp_fetch, "runs", params={"where": "metrics.acc > 0.5"})
    assert body["total"] == 2 and body["total_capped"] and len(body["runs"]) == 4
    _, body = await get_json(jp_fetch, "runs")
    assert body["total"] == 4 and not body["total_capped"]  # unfiltered: exact, and cheap
