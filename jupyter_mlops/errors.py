"""The one exception hierarchy: every error a user can cause is an ``MlopsError``.

Doors (magics, CLI, server) turn these into a one-line message or a JSON error; each
carries the fields that say what was wrong, so callers can act on them as data.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousRunError",
    "ApiError",
    "ExpressionError",
    "InvalidValueError",
    "MagicUsageError",
    "MlopsError",
    "ModelNotFoundError",
    "NoActiveRunError",
    "ReplayNotFoundError",
    "RunNotFoundError",
    "RunVanishedError",
    "StoreCorruptError",
    "StoreError",
    "StoreFullError",
    "StoreGoneError",
    "StoreLockedError",
    "StoreNotFoundError",
    "StoreReadOnlyError",
    "UnhashableError",
]


class MlopsError(Exception):
    """Base of every error jupyter-mlops raises on purpose."""

    # What the REST API answers for it: ``{"error": code, "message": ...}`` with this status.
    # The codes are the API's stable words (openapi.yaml); a child names its own.
    code: str = "bad_request"
    http_status: int = 400


class StoreNotFoundError(MlopsError):
    """No tracking store where one was looked for."""

    code = "no_store"
    http_status = 404

    def __init__(self, searched: str) -> None:
        self.searched = searched
        super().__init__(
            f"no tracking store found (looked for .mlops/ from {searched}); "
            "start a run first or set JUPYTER_MLOPS_DIR"
        )


class RunNotFoundError(MlopsError):
    """A run reference matched no run."""

    code = "run_not_found"
    http_status = 404

    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(
            f"no run matches {ref!r} (give a run id, a unique id prefix or a run name)"
        )


class ModelNotFoundError(MlopsError):
    """A registered model reference (``name``, ``name/3``, ``name@alias``) matched nothing."""

    code = "not_found"
    http_status = 404

    def __init__(self, ref: str, reason: str) -> None:
        self.ref = ref
        self.reason = reason
        super().__init__(f"no registered model {ref!r}: {reason}")


class AmbiguousRunError(MlopsError):
    """A run id prefix matched more than one run."""

    code = "ambiguous_run"
    http_status = 400

    def __init__(self, ref: str, candidates: list[str], what: str = "run") -> None:
        self.ref = ref
        self.candidates = candidates
        shown = ", ".join(c[:12] for c in candidates[:5])
        super().__init__(
            f"{what} prefix {ref!r} is ambiguous: it matches {shown}; give more characters"
        )


class NoActiveRunError(MlopsError):
    """An operation needs an active run and there is none."""

    code = "bad_request"
    http_status = 400

    def __init__(self, action: str) -> None:
        self.action = action
        super().__init__(f"cannot {action}: no run is active (start one with %track start)")


class InvalidValueError(MlopsError):
    """A value cannot be recorded as given (a param, metric, name or tag)."""

    code = "invalid_value"
    http_status = 400

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}")


class UnhashableError(MlopsError):
    """An object has no content hash: its content cannot be read as bytes or pickled."""

    code = "bad_request"
    http_status = 400

    def __init__(self, type_name: str, reason: str) -> None:
        self.type_name = type_name
        self.reason = reason
        super().__init__(f"cannot hash a {type_name}: {reason}")


class ExpressionError(MlopsError):
    """A filter expression (``--where``) is malformed; ``position`` points at the spot."""

    code = "bad_expression"
    http_status = 400

    def __init__(self, expression: str, position: int, reason: str) -> None:
        self.expression = expression
        self.position = position
        self.reason = reason
        super().__init__(f"bad expression at column {position + 1}: {reason}: {expression!r}")


class MagicUsageError(MlopsError):
    """A ``%track`` line could not be understood."""

    code = "bad_request"
    http_status = 400


class ApiError(MlopsError):
    """A request the REST API cannot answer as asked: its status, its code, a message."""

    def __init__(self, http_status: int, code: str, message: str) -> None:
        self.http_status = http_status
        self.code = code
        super().__init__(message)


class ReplayNotFoundError(MlopsError):
    """No replay has this id."""

    code = "replay_not_found"
    http_status = 404

    def __init__(self, replay_id: str) -> None:
        self.replay_id = replay_id
        super().__init__(f"no replay with id {replay_id!r}")


class StoreError(MlopsError):
    """The store cannot be read or written as asked; ``path`` is its file."""

    code = "bad_request"
    http_status = 400

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(message)


class StoreReadOnlyError(StoreError):
    """A write to a store opened read-only (no write permission, or a read-only mount)."""

    code = "bad_request"
    http_status = 400

    def __init__(self, path: str) -> None:
        super().__init__(
            path, f"the store {path} is read-only: runs can be read but nothing is recorded"
        )


class StoreFullError(StoreError):
    """The disk holding the store is full."""

    code = "bad_request"
    http_status = 400

    def __init__(self, path: str) -> None:
        super().__init__(
            path, f"the disk holding the store {path} is full: free space to record again"
        )


class StoreLockedError(StoreError):
    """Another process held the store's write lock for longer than a write may wait."""

    code = "bad_request"
    http_status = 400

    def __init__(self, path: str, waited: float) -> None:
        self.waited = waited
        super().__init__(
            path,
            f"the store is locked by another process (waited {waited:g} s for {path}); "
            "nothing was lost: it is retried",
        )


class StoreCorruptError(StoreError):
    """The store's file is damaged or is not a store at all."""

    code = "bad_request"
    http_status = 400

    def __init__(self, path: str, detail: str) -> None:
        self.detail = detail
        super().__init__(
            path,
            f"the store {path} is damaged ({detail}); copy it aside and run "
            "`sqlite3 tracking.db .recover` on the copy",
        )


class StoreGoneError(StoreError):
    """The store's file was deleted, replaced or emptied under a live run."""

    code = "bad_request"
    http_status = 400

    def __init__(self, path: str, what: str) -> None:
        self.what = what
        super().__init__(path, f"the store {path} {what} while a run was recording into it")


class RunVanishedError(MlopsError):
    """A run was deleted from the store while its process was still recording."""

    code = "bad_request"
    http_status = 400

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(
            f"run {run_id[:12]} was deleted from the store while it ran; "
            "nothing more is recorded for it"
        )
