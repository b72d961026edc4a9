"""Sharing runs through an MLflow tracking server, with MLflow's own client.

Export (``export``) sends a run's params, metric series (with steps and times, in batches
within MLflow's request limits), tags, status and times, the notebook source tags MLflow's UI
shows, datasets as dataset inputs, artifacts, the recorded cells, the environment and the
executed notebook, and replay verdicts as tags. The MLflow run each run went to is kept in the
store with what was sent, so exporting again sends only what is new. Import (``importing``)
brings runs, params, metric histories and tags (and, for runs this tracker exported, their
cells, datasets and environment) into the store. MLflow is imported only there (``client``),
and only when used.
"""

from __future__ import annotations

from .client import CELLS_ARTIFACT, TAG_PREFIX, TAG_RUN_ID
from .export import export_mlflow
from .importing import import_mlflow

__all__ = [
    "CELLS_ARTIFACT",
    "TAG_PREFIX",
    "TAG_RUN_ID",
    "export_mlflow",
    "import_mlflow",
]
