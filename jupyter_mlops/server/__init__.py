"""The jupyter-mlops server extension: the REST API the JupyterLab sidebar talks to.

Enabled by ``pip install`` alone: the wheel ships ``jupyter_mlops.json`` under
``etc/jupyter/jupyter_server_config.d/``. The API is written down in ``openapi.yaml`` here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["OPENAPI", "_jupyter_server_extension_points", "_load_jupyter_server_extension"]

OPENAPI = Path(__file__).with_name("openapi.yaml")


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Where jupyter_server finds this extension."""
    return [{"module": "jupyter_mlops.server"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    """Register the API's handlers; the store is found from the server's root folder."""
    from .handlers import ROOT_SETTING, route_table

    web_app = server_app.web_app
    root = Path(server_app.root_dir).expanduser().resolve()
    web_app.settings[ROOT_SETTING] = str(root)
    web_app.add_handlers(".*$", route_table(web_app.settings["base_url"]))
    server_app.log.info(
        "jupyter-mlops: REST API at %sjupyter-mlops/api/", web_app.settings["base_url"]
    )
