"""Fitted models as artifacts: stored when the run ends (loaded back by ``artifacts``).

Where a well-kept library offers a format that loads without running arbitrary code, that
is the one used: skops for scikit-learn (types outside scikit-learn, NumPy and SciPy are
refused on load unless named as trusted), XGBoost's own UBJSON and LightGBM's own text
model. Anything else (an estimator class of the notebook's own) is pickled.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import run as runs
from ..artifacts import LIGHTGBM, PICKLE, SKOPS, TRUSTED_MODULES, XGBOOST

__all__ = ["model_payload", "save_final_models"]


def save_final_models(run: runs.Run, namespace: Mapping[str, Any]) -> None:
    """Store the last fitted model of each variable, and its content hash as a param."""
    from ..hashing import content_hash
    from .record import log_artifact_bytes, log_params_kept, run_state

    state = run_state(run)
    hashes: dict[str, Any] = {}
    for name, estimator in state.models.items():
        payload, kind = model_payload(estimator)
        cls = type(estimator)
        log_artifact_bytes(
            run, f"{name}.model", payload, kind, f"{cls.__module__}.{cls.__qualname__}"
        )
        # A search's cv_results_ holds fit times: its best model is what should reproduce.
        model = getattr(estimator, "best_estimator_", estimator)
        hashes[f"{name}.model_hash"] = content_hash(model)
    if hashes:
        log_params_kept(run, state, hashes)


def model_payload(estimator: Any) -> tuple[bytes, str]:
    """The bytes of a fitted model, and which format they are in."""
    module = type(estimator).__module__
    if module.startswith("xgboost.") and hasattr(estimator, "save_model"):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.ubj"
            estimator.save_model(str(path))
            return path.read_bytes(), XGBOOST
    booster = getattr(estimator, "booster_", None) if module.startswith("lightgbm.") else None
    if booster is not None:
        return booster.model_to_string().encode(), LIGHTGBM
    try:
        import skops.io as sio
    except ImportError:
        sio = None
    if sio is not None:
        try:
            payload = sio.dumps(estimator)
            untrusted = sio.get_untrusted_types(data=payload)
        except Exception:
            payload, untrusted = b"", ["?"]
        if all(name.startswith(TRUSTED_MODULES) for name in untrusted):
            return payload, SKOPS
    return pickle.dumps(estimator, protocol=5), PICKLE
