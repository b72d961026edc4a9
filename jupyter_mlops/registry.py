"""The model registry: numbered versions of a run's model under a name, and aliases.

A version is a run's model artifact (its content hash, so the bytes stay even if the run is
deleted), registered with the run's data hashes and its latest replay verdict. ``name@alias``
(``churn@prod``) and ``name/3`` name a version; ``name`` alone is the newest. Registering can
be refused for a run that has no replay verdict saying it reproduced.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import InvalidValueError, ModelNotFoundError
from .records import RunRecord, get_run
from .store import Store, open_store
from .validate import checked_name
from .vocabulary import REPRODUCED

__all__ = ["load_model", "model_version", "models", "register_model", "set_alias"]

# Artifacts that hold a model, by kind (autologged) or by the suffix of a logged file's name.
_MODEL_KINDS = ("model/skops", "model/xgboost", "model/lightgbm", "model/pickle")
_MODEL_SUFFIXES = (".pkl", ".pickle", ".joblib", ".skops")
# Classes of plain data: a pickle of them is no model.
_PLAIN_DATA_MODULES = ("builtins", "collections", "datetime", "decimal", "numpy", "pandas")


def register_model(
    name: str,
    run: str | RunRecord,
    artifact: str | None = None,
    *,
    require_reproduced: bool = False,
    store: Store | None = None,
) -> dict[str, Any]:
    """Register a run's model as the next version of ``name``; the version's record.

    ``artifact`` names the run's artifact (default: its one model: an autologged model, or a
    logged ``.pkl``/``.joblib``/``.skops`` file or pickled instance of a class that is not plain
    data). ``require_reproduced``
    refuses a run whose latest replay did not reproduce it (or that was never replayed)."""
    name = _model_name(name)
    record = run if isinstance(run, RunRecord) else get_run(run, store=store)
    row = _model_artifact(record, artifact)
    replays = record.replays()
    verdict = replays[0].get("verdict") if replays else None
    if require_reproduced and verdict not in REPRODUCED:
        said = f"its latest replay {verdict or replays[0]['state']}" if replays else "no replay"
        raise InvalidValueError(
            record.name,
            f"has {said}; replay it (jupyter mlops replay {record.id[:12]}) until it "
            "reproduces, or register without --require-reproduced",
        )
    version = {
        "name": name,
        "run_id": record.id,
        "artifact": row["name"],
        "hash": row["hash"],
        "kind": row["kind"],
        "verdict": verdict,
        "data_hashes": {d["name"]: d["hash"] for d in record.datasets()},
        "created": time.time(),
    }
    version["version"] = record.store.add_model_version(version)
    version["aliases"] = []
    return version


def set_alias(
    name: str, version: int | None, alias: str, *, store: Store | None = None
) -> dict[str, Any]:
    """Point ``alias`` (``prod``, ``staging``) at a version of ``name``, moving it from any
    other; ``version=None`` removes it. The version it now names (or None)."""
    store = store or open_store(create=False)
    alias = checked_name("alias", alias)
    if alias.isdigit() or any(c in alias for c in "@/"):
        raise InvalidValueError(alias, "an alias is a word, not a number, with no '@' or '/'")
    if not store.set_model_alias(name, alias, version):
        raise ModelNotFoundError(f"{name}/{version}", "no such version is registered")
    return {"name": name, "alias": alias, "version": version}


def models(name: str | None = None, *, store: Store | None = None) -> list[dict[str, Any]]:
    """Registered versions, by name then version (of one name when given), with aliases."""
    store = store or open_store(create=False)
    found = store.model_versions(name)
    if name is not None and not found:
        raise ModelNotFoundError(name, "no version of it is registered")
    return found


def model_version(ref: str, *, store: Store | None = None) -> dict[str, Any]:
    """The version ``name@alias``, ``name/VERSION`` or ``name`` (the newest) names."""
    store = store or open_store(create=False)
    name, at, alias = ref.partition("@")
    number: int | None = None
    if not at:
        name, slash, text = ref.rpartition("/")
        if not slash or not text.isdigit():
            name, number = ref, None
        else:
            number = int(text)
    versions = store.model_versions(name)
    if not versions:
        raise ModelNotFoundError(ref, f"no version of {name!r} is registered")
    if at:
        number = store.model_alias(name, alias)
        if number is None:
            known = sorted({a for v in versions for a in v["aliases"]}) or ["none"]
            raise ModelNotFoundError(ref, f"{name!r} has no alias {alias!r} ({', '.join(known)})")
    if number is None:
        return versions[-1]
    for version in versions:
        if version["version"] == number:
            return version
    raise ModelNotFoundError(ref, f"{name!r} has versions 1 to {versions[-1]['version']}")


def load_model(ref: str, *, trusted: Sequence[str] = (), store: Store | None = None) -> Any:
    """The model a registered version holds, loaded back (``trusted`` as for
    ``Artifact.load``): ``load_model("churn@prod")``, ``load_model("churn/3")``."""
    from .artifacts import Artifact

    store = store or open_store(create=False)
    version = model_version(ref, store=store)
    row = {"name": version["artifact"], "kind": version["kind"], "hash": version["hash"]}
    for logged in store.artifacts(version["run_id"]):
        if logged["name"] == version["artifact"] and logged["hash"] == version["hash"]:
            row = logged  # with its source (an XGBoost model names its class there)
    return Artifact(store, row).load(trusted)


def _holds_an_object(path: Path) -> bool:
    """Whether a pickle holds an instance of some library's or the notebook's class (a model),
    not plain data: read from its first class reference, without unpickling anything."""
    import pickletools

    texts: list[str] = []
    try:
        with path.open("rb") as stream:
            for opcode, argument, _ in pickletools.genops(stream):
                if opcode.name in ("GLOBAL", "STACK_GLOBAL"):
                    module = str(argument).split(" ")[0] if opcode.name == "GLOBAL" else texts[-2]
                    return not module.startswith(_PLAIN_DATA_MODULES)
                if isinstance(argument, str):
                    texts.append(argument)
    except (OSError, ValueError, IndexError):
        return False
    return False


def _model_name(name: str) -> str:
    name = checked_name("model", name)
    if any(c in name for c in "@/"):
        raise InvalidValueError(name, "a model name may not hold '@' or '/' (they name versions)")
    return name


def _model_artifact(record: RunRecord, artifact: str | None) -> dict[str, Any]:
    """The artifact row a version registers: the one named, or the run's one model."""
    if artifact is not None:
        return record.artifact(artifact).row
    latest = {row["name"]: row for row in record.artifacts()}  # the latest of each name
    candidates = [row for row in latest.values() if row["kind"] in _MODEL_KINDS]
    if not candidates:
        candidates = [
            row
            for row in latest.values()
            if Path(row["name"]).suffix.lower() in _MODEL_SUFFIXES
            or (row["kind"] == "pickle" and _holds_an_object(record.store.blob_path(row["hash"])))
        ]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise InvalidValueError(
            record.name,
            "has no model artifact (an autologged model, or a logged .pkl/.joblib/.skops file "
            "or object); log one, or name the artifact",
        )
    names = ", ".join(sorted(row["name"] for row in candidates))
    raise InvalidValueError(record.name, f"has several models ({names}); name the artifact")
