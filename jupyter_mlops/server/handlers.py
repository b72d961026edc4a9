"""Tornado handlers of the REST API under ``/jupyter-mlops/api/``: thin, all authenticated.

Each handler reads its arguments, calls one function of ``api`` in a worker thread (so a
large query never stalls the server's event loop) and writes JSON. One base handler turns
our errors into a one-line JSON answer with a 4xx status. Every argument is range-checked
here or in ``api`` (numbers, text lengths, counts of tags and ids, the body's size and its
Unicode), so no request a client can send gets a 500.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from ..errors import ApiError, MlopsError
from ..jsonable import json_text
from ..vocabulary import MAX_PAGE
from . import api

__all__ = ["API_PREFIX", "AUTH_RESOURCE", "KERNELS_RESOURCE", "MlopsHandler", "route_table"]

API_PREFIX = "jupyter-mlops/api"
# The resource name an authorizer sees for every endpoint of this extension.
AUTH_RESOURCE = "jupyter_mlops"
# A replay starts a kernel and runs code in it: it asks what jupyter_server's kernel
# handlers ask (``write`` on ``kernels`` to start one, ``execute`` to run code in it).
KERNELS_RESOURCE = "kernels"
ROOT_SETTING = "jupyter_mlops_root"
# Text in a query argument, and a request body: far above what the sidebar sends.
MAX_TEXT = 4_096
MAX_BODY_BYTES = 1_048_576
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,20}")

T = TypeVar("T")
# One worker: the store's SQLite connection is used by one thread at a time, in order. No
# request holds it long: a filter stops after ``api.FILTER_SECONDS``, series are thinned in SQL.
_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jupyter-mlops-api")


class MlopsHandler(APIHandler):
    """The base of every handler here: the server's root, JSON answers, JSON errors."""

    auth_resource = AUTH_RESOURCE

    @property
    def root(self) -> Path:
        """The server's root folder, where the store is looked for."""
        return Path(self.settings[ROOT_SETTING])

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking API function in the worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_WORKER, functools.partial(function, *args, **kwargs))

    async def answer(
        self, function: Callable[..., Any], *args: Any, status: int = 200, **kwargs: Any
    ) -> None:
        """Call an API function and write its result, or our error as JSON with a 4xx."""
        try:
            result = await self.call(function, *args, **kwargs)
        except MlopsError as exc:
            self.finish_error(exc)
            return
        self.set_status(status)
        self.finish_json(result)

    def finish_error(self, exc: MlopsError) -> None:
        """Write one of our errors as a one-line JSON error with its status."""
        if exc.http_status == 429:
            self.set_header("Retry-After", "10")
        self.finish_json_error(exc.http_status, exc.code, str(exc))

    def finish_json(self, data: Any) -> None:
        """Write strict JSON (non-finite numbers as "nan", "inf", "-inf")."""
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json_text(data))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors raised outside ``answer`` (refused auth, bad methods) in the same shape."""
        exc_info = kwargs.get("exc_info")
        message = self._reason
        if exc_info and isinstance(exc_info[1], tornado.web.HTTPError):
            message = exc_info[1].log_message or message
        elif status_code >= 500:
            message = "internal error; see the server's log"
        error = "forbidden" if status_code in (401, 403) else f"http_{status_code}"
        self.finish_json_error(status_code, error, str(message))

    def finish_json_error(self, status: int, error: str, message: str) -> None:
        """Write ``{"error": error, "message": its first line}`` with ``status``: every error
        this API answers has this one shape."""
        self.set_status(status)
        lines = message.splitlines()
        self.finish_json({"error": error, "message": lines[0] if lines else error})

    def query_text(self, name: str, max_length: int = MAX_TEXT) -> str | None:
        """A query argument as text, None when absent or empty, or a 400 when too long.

        Text that is not UTF-8 never gets here: tornado answers it with a 400.
        """
        value = self.get_query_argument(name, None)
        if value is None:
            return None
        if len(value) > max_length:
            raise ApiError(400, "invalid_value", f"{name}: longer than {max_length} characters")
        return value.strip() or None

    def query_list(self, name: str) -> list[str]:
        """A comma-separated query argument as a list (empty when absent)."""
        return [part.strip() for part in (self.query_text(name) or "").split(",") if part.strip()]

    def query_int(self, name: str, default: int, low: int, high: int) -> int:
        """A query argument as a whole number between ``low`` and ``high``, or a 400 naming it."""
        value = self.get_query_argument(name, None)
        if value is None or not value.strip():
            return default
        text = value.strip()
        # ASCII digits only, and few of them: int() would take "٣" or a million digits.
        if not _WHOLE_NUMBER.fullmatch(text):
            raise ApiError(400, "invalid_value", f"{name}: {value[:40]!r} is not a whole number")
        number = int(text)
        if not low <= number <= high:
            raise ApiError(400, "invalid_value", f"{name}: must be between {low} and {high}")
        return number

    def body_object(self) -> dict[str, Any]:
        """The request body as a JSON object (empty when there is none), or a 4xx."""
        if not self.request.body:
            return {}
        if len(self.request.body) > MAX_BODY_BYTES:
            raise ApiError(413, "body_too_large", f"the body is over {MAX_BODY_BYTES:,} bytes")
        try:
            body = json.loads(self.request.body)
        except RecursionError:
            raise ApiError(400, "bad_json", "the body is nested too deeply") from None
        except ValueError as exc:
            raise ApiError(400, "bad_json", f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "bad_json", "the body must be a JSON object")
        field = _surrogate_field(body)
        if field is not None:
            raise ApiError(
                400, "invalid_value", f"{field}: text is not valid Unicode (a lone surrogate)"
            )
        return body

    def max_points(self) -> int:
        """The ``max_points`` argument of a series, within its bounds."""
        return self.query_int("max_points", api.DEFAULT_POINTS, api.MIN_POINTS, api.MAX_POINTS)

    def parsed(self, parse: Callable[[], T]) -> T | None:
        """Parse request arguments; on a bad one write the 4xx and return None."""
        try:
            return parse()
        except ApiError as exc:
            self.finish_error(exc)
            return None


def _surrogate_field(body: dict[str, Any]) -> str | None:
    """The top-level field of a JSON body holding text with a lone surrogate (JSON's
    ``\\ud800`` decodes to one; SQLite cannot store it), or None."""
    for field, value in body.items():
        pending: list[Any] = [field, value]
        while pending:
            item = pending.pop()
            if isinstance(item, str):
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return str(field.encode("utf-8", "backslashreplace").decode()[:80])
            elif isinstance(item, dict):
                pending.extend(item.keys())
                pending.extend(item.values())
            elif isinstance(item, list):
                pending.extend(item)
    return None


class RunsHandler(MlopsHandler):
    """``GET runs``: a page of runs, newest first, filtered by notebook, status, expression."""

    @tornado.web.authenticated
    @authorized(resource=AUTH_RESOURCE)
    async def get(self) -> None:
        """A page of runs and the total that match."""

        def parse() -> dict[str, Any]:
            return {
                "notebook": self.query_text("notebook"),
                "where": self.query_text("where"),
                "statuses": self.query_list("status"),
                "kinds": self.query_list("kind"),
                "replays": self.query_int("replays", 1, 0, 1) == 1,
                "limit": self.query_int("limit", api.DEFAULT_PAGE, 1, MAX_PAGE),
                "offset": self.query_int("offset", 0, 0, api.MAX_OFFSET),
            }

        arguments = self.parsed(parse)
        if arguments is not None:
            await self.answer(api.runs_page, self.root, **arguments)


class RunHandler(MlopsHandler):
    """``GET``, ``PATCH`` and ``DELETE runs/{id}``."""

    @tornado.web.authenticated
    @authorized(resource=AUTH_RESOURCE)
    async def get(self, run_id: str) -> None:
        """The whole run."""
        points = self.parsed(self.max_points)
        if points is not None:
            await self.answer(api.run_detail, self.root, run_id, max_points=points)

    @tornado.web.authenticated
    @authorized(resource=AUTH_RESOURCE)
    async def patch(self, run_id: str) -> None:
        """Rename, tag, untag or annotate the run."""
        body = self.parsed(self.body_object)
        if body is not None:
            await self.answer(api.update_run, self.root, run_id, body)

    @tornado.web.authenticated
    @authorized(resource=AUTH_RESOURCE)
    async def delete(self, run_id: str) -> None:
        """Delete the run (refused while it runs)."""
        await self.answer(api.delete_run, self.root, run_id)


class MetricHandler(MlopsHandler):
    """``GET runs/{id}/metrics/{key}``: a step series, thinned for charts."""

    @tornado.web.authenticated
    @authorized(resource=AUTH_RESOURCE)
    async def get(self, run_id: str, key: str) -> None:
        """One metric's series."""
        points = self.parsed(self.max_points)
        if points is not None:
            await self.answer(
                api.metric_series,
                self.root,
                run_id,
                key,
                max_points=points,
            )


class ArtifactHandler(MlopsHandler):
    """``GET runs/{id}/artifacts/{name}``: the artifact's bytes, as an attachment."""

    @tornado.web.authenticated
    @authorized(resource=AUTH_RESOURCE)
    async def get(self, run_id: str, name: str) -> None:
        """The stored copy of the artifact, read in chunks."""
        try:
            found = await self.call(api.artifact_file, self.root, run_id, name)
        except MlopsError as exc:
            self.finish_error(exc)
            return
        self.set_header("Content-Type", found["content_type"])
        self.set_header("Content-Length", str(found["size"]))
        self.set_header("Content-Disposition", _attachment(found["filename"]))
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")
        with open(found["path"], "rb") as stream:
            while chunk := stream.read(1 << 20):
                self.write(chunk)
                await self.flush()
        self.finish()


def _attachment(filename: str) -> str:
    """A Content-Disposition naming the file for every browser (RFC 6266 and 5987)."""
    plain = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


class CompareHandler(MlopsHandler):
    """``GET compare?ids=a,b,...``."""

    @tornado.web.authenticated
    @authorized(resource=AUTH_RESOURCE)
    async def get(self) -> None:
        """Runs side by side and their diffs."""
        ids = self.parsed(self.run_ids)
        if ids is not None:
            await self.answer(api.compare_runs, self.root, ids)

    def run_ids(self) -> list[str]:
        """The ``ids`` argument as a list (as long as a URL the server reads; the API checks
        how many)."""
        text = self.query_text("ids", max_length=65_536) or ""
        return [i.strip() for i in text.split(",") if i.strip()]


class ReplayStartHandler(MlopsHandler):
    """``POST runs/{id}/replay``: starts a replay in the background."""

    @tornado.web.authenticated
    @authorized(resource=AUTH_RESOURCE)
    @authorized("write", resource=KERNELS_RESOURCE)
    @authorized("execute", resource=KERNELS_RESOURCE)
    async def post(self, run_id: str) -> None:
        """Start a replay (it needs the permissions of starting a kernel); 202 with its row."""
        body = self.parsed(self.body_object)
        if body is not None:
            await self.answer(api.start_replay, self.root, run_id, body, status=202)


class ReplayHandler(MlopsHandler):
    """``GET replays/{id}``: progress and verdict."""

    @tornado.web.authenticated
    @authorized(resource=AUTH_RESOURCE)
    async def get(self, replay_id: str) -> None:
        """The replay's state."""
        await self.answer(api.replay_state, self.root, replay_id)


_ROUTES: list[tuple[str, type[MlopsHandler]]] = [
    ("runs", RunsHandler),
    (r"runs/([^/]+)", RunHandler),
    (r"runs/([^/]+)/metrics/(.+)", MetricHandler),
    (r"runs/([^/]+)/replay", ReplayStartHandler),
    (r"runs/([^/]+)/artifacts/(.+)", ArtifactHandler),
    ("compare", CompareHandler),
    (r"replays/([^/]+)", ReplayHandler),
]


def route_table(base_url: str) -> list[tuple[str, type[MlopsHandler]]]:
    """The URL patterns of the API under the server's base URL."""
    prefix = url_path_join(base_url, API_PREFIX)
    return [(url_path_join(prefix, pattern) + "/?$", handler) for pattern, handler in _ROUTES]
