"""Stored artifacts read back: a run's artifact by name, its stored copy, and ``load()``.

Models are stored in a format that loads without running arbitrary code where a well-kept
library offers one: skops for scikit-learn (types outside scikit-learn, NumPy and SciPy are
refused on load unless named as trusted), XGBoost's own UBJSON and LightGBM's own text
model. Anything else is pickled.
"""

from __future__ import annotations

import importlib
import pickle
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import hashing
from .errors import InvalidValueError
from .store import Store
from .validate import check_artifact, checked_name, user_path

__all__ = [
    "LIGHTGBM",
    "PICKLE",
    "SKOPS",
    "TRUSTED_MODULES",
    "XGBOOST",
    "Artifact",
    "store_artifact",
    "store_bytes",
]

# The kinds of a stored model: which format its bytes are in.
SKOPS = "model/skops"
XGBOOST = "model/xgboost"
LIGHTGBM = "model/lightgbm"
PICKLE = "model/pickle"
# Types skops may rebuild without being told: the libraries whose models it stores.
TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.", "xgboost.", "lightgbm.", "collections.")


def store_artifact(store: Store, source: Any, name: str | None = None) -> dict[str, Any]:
    """Put a file (a path) or a picklable object into the store's blobs by content hash; the
    artifact's name, kind, size, source and hash."""
    if isinstance(source, (str, Path)):
        check_artifact(source)
        path = user_path(source)
        name = checked_name("artifact", name or path.name)
        digest = hashing.hash_file(path)
        store.put_blob(digest, path)
        return {
            "name": name,
            "kind": "file",
            "size_bytes": path.stat().st_size,
            "source": str(path.resolve()),
            "hash": digest,
        }
    label = name or type(source).__name__
    try:
        payload = pickle.dumps(source, protocol=5)
    except Exception as exc:
        raise InvalidValueError(label, f"cannot be pickled: {exc}") from exc
    return store_bytes(store, checked_name("artifact", label), payload, "pickle", None)


def store_bytes(
    store: Store, name: str, payload: bytes, kind: str, source: str | None
) -> dict[str, Any]:
    """Put bytes into the store's blobs by content hash, as an artifact of a kind
    ``Artifact.load()`` knows; the artifact's name, kind, size, source and hash."""
    digest = hashing.hash_bytes(payload)
    store.put_blob(digest, payload)
    return {
        "name": name,
        "kind": kind,
        "size_bytes": len(payload),
        "source": source,
        "hash": digest,
    }


class Artifact:
    """A stored artifact of a run: its row, the path of its stored copy, and ``load()``."""

    def __init__(self, store: Store, row: Mapping[str, Any]) -> None:
        self.store = store
        self.row = dict(row)
        self.name: str = row["name"]
        self.kind: str = row["kind"]
        self.hash: str = row["hash"]

    def __repr__(self) -> str:
        return f"<Artifact {self.name!r} {self.kind} {self.row.get('size_bytes')} bytes>"

    @property
    def path(self) -> Path:
        """Where the stored copy is (content-addressed, under the store's ``blobs/``)."""
        return self.store.blob_path(self.hash)

    def read_bytes(self) -> bytes:
        """The stored content, byte for byte as it was logged."""
        return self._stored().read_bytes()

    def _stored(self) -> Path:
        path = self.path
        if not path.is_file():
            raise InvalidValueError(self.name, f"its stored copy is missing ({path})")
        return path

    def load(self, trusted: Sequence[str] = ()) -> Any:
        """The object back: a model, a table, a pickled object; a stored file by its suffix
        (``.pkl``/``.pickle``, ``.joblib``, ``.skops``, ``.json``), else its stored path.

        ``trusted`` names more types a skops file may rebuild (only for models of your own).
        """
        path = self._stored()
        if self.kind == "file":
            return _load_file(self.name, path, trusted)
        if self.kind == "table":
            import pandas as pd

            return pd.read_csv(path)
        if self.kind in ("pickle", PICKLE):
            return pickle.loads(path.read_bytes())
        if self.kind == SKOPS:
            return _load_skops(self.name, path.read_bytes(), trusted)
        if self.kind == XGBOOST:
            return _load_xgboost(self.name, path, self.row.get("source") or "")
        if self.kind == LIGHTGBM:
            import lightgbm

            return lightgbm.Booster(model_str=path.read_text())
        raise InvalidValueError(self.name, f"has kind {self.kind!r}, which cannot be loaded")


def _load_file(name: str, path: Path, trusted: Sequence[str]) -> Any:
    """A logged file read back by what its name says it holds; any other file is its path."""
    suffix = Path(name).suffix.lower()
    if suffix in (".pkl", ".pickle"):
        return pickle.loads(path.read_bytes())
    if suffix == ".joblib":
        import joblib

        return joblib.load(path)
    if suffix == ".skops":
        return _load_skops(name, path.read_bytes(), trusted)
    if suffix == ".json":
        import json

        return json.loads(path.read_text(encoding="utf-8"))
    return path


def _load_skops(name: str, payload: bytes, trusted: Sequence[str]) -> Any:
    import skops.io as sio

    untrusted = sio.get_untrusted_types(data=payload)
    refused = [t for t in untrusted if not t.startswith(TRUSTED_MODULES) and t not in trusted]
    if refused:
        raise InvalidValueError(
            name,
            f"holds types that are not trusted: {', '.join(refused)}; "
            "pass them as load(trusted=[...]) if you know where this model came from",
        )
    return sio.loads(payload, trusted=list(untrusted))


def _load_xgboost(name: str, path: Path, source: str) -> Any:
    module_name, _, class_name = source.rpartition(".")
    if not module_name.startswith("xgboost"):
        raise InvalidValueError(name, f"names no XGBoost class ({source!r})")
    cls = getattr(importlib.import_module(module_name), class_name)
    model = cls()
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "model.ubj"
        copy.write_bytes(path.read_bytes())
        model.load_model(str(copy))
    return model
