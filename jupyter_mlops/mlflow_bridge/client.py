"""The MLflow side of the bridge: MLflow's client (imported only when used), the server it
talks to, and the tags and artifacts of ours that export writes and import reads back."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

from ..errors import InvalidValueError, MlopsError

__all__ = [
    "CELLS_ARTIFACT",
    "ENVIRONMENT_ARTIFACT",
    "TAG_PREFIX",
    "TAG_RUN_ID",
    "TAG_TEXT_PARAMS",
    "Server",
    "check_reachable",
    "looks_json",
    "mlflow_package",
    "server_uri",
]

# Our tags on an MLflow run; the ``mlflow.*`` ones are those MLflow's UI reads.
TAG_PREFIX = "jupyter_mlops."
TAG_RUN_ID = TAG_PREFIX + "run_id"
TAG_TEXT_PARAMS = TAG_PREFIX + "text_params"
CELLS_ARTIFACT = "jupyter_mlops/cells.json"
ENVIRONMENT_ARTIFACT = "jupyter_mlops/environment.json"


def mlflow_package() -> Any:
    """The mlflow package, or one line saying which extra to install."""
    # MLflow's client prints a link to every run it ends; an export of many runs is one line.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    try:
        import mlflow
    except ImportError:
        raise MlopsError(
            "sharing runs through MLflow needs the mlflow extra: "
            'pip install "jupyter-mlops[mlflow]"'
        ) from None
    return mlflow


def server_uri(given: str | None) -> str:
    """The tracking server's address: the one given, else ``MLFLOW_TRACKING_URI``."""
    uri = given or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise InvalidValueError(
            "tracking uri", "give the MLflow server with --tracking-uri (or MLFLOW_TRACKING_URI)"
        )
    return uri.rstrip("/")


def check_reachable(uri: str) -> None:
    """Fail in one line at once when an HTTP tracking server does not answer (MLflow's client
    would retry for minutes first)."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri + "/health", timeout=10) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:
        if exc.code < 500 and exc.code != 404:
            raise MlopsError(f"the MLflow server at {uri} refused: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MlopsError(f"the MLflow server at {uri} cannot be reached ({reason})") from None


class Server:
    """An MLflow client that counts its calls and says a server's refusal in one line."""

    def __init__(self, uri: str) -> None:
        mlflow_package()
        from mlflow.tracking import MlflowClient

        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        self.calls = 0
        self.done = 0

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the client's method ``name``; a refusal becomes one line (``MlopsError``)."""
        self.calls += 1
        try:
            return getattr(self.client, name)(*args, **kwargs)
        except MlopsError:
            raise
        except Exception as exc:
            message = " ".join(str(exc).split())[:300]
            raise MlopsError(
                f"the MLflow server at {self.uri} refused {name}: {message}; "
                f"{self.done} run(s) done before stay done, run it again to go on"
            ) from None


def looks_json(text: str) -> bool:
    """Whether a param's text is JSON (so that it reads back as the value it stands for)."""
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
