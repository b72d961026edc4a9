"""The environment a run ran in: Python, platform, installed packages, git state, env vars.

Capturing happens at every run start, so it must stay fast: the expensive modules
(``importlib.metadata``, ``platform``, ``subprocess``) are imported on first capture, not
when this module is imported.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import IO, TYPE_CHECKING

import xxhash

if TYPE_CHECKING:
    import subprocess
    from importlib.metadata import Distribution
    from pathlib import Path

__all__ = [
    "DIFF_LIMIT",
    "DIFF_TRUNCATED_MARKER",
    "ENV_VARS",
    "capture_environment",
    "environment_id",
    "package_changes",
]

# Variables that change numeric results or their determinism; nothing else is recorded,
# because the rest of the environment may hold secrets.
ENV_VARS = (
    "PYTHONHASHSEED",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "TF_DETERMINISTIC_OPS",
    "CUBLAS_WORKSPACE_CONFIG",
)

DIFF_LIMIT = 100_000
DIFF_TRUNCATED_MARKER = f"[jupyter-mlops: diff truncated to its first {DIFF_LIMIT} bytes]"

# One budget for all git calls of a capture: a hung git (network file system, a lock)
# must not stall the user's run start for longer than this.
GIT_TIMEOUT = 3.0

# The store lives in .mlops/ (often inside the work tree); its files appearing must not
# make two otherwise equal runs look different.
_STORE_DIR_NAME = ".mlops"

_NAME_SEPARATORS = re.compile(r"[-_.]+")


def capture_environment(cwd: Path | None = None) -> dict[str, object]:
    """Describe the running interpreter, platform, installed packages and git state."""
    import platform

    where = os.fspath(cwd) if cwd is not None else os.getcwd()
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": _installed_packages(),
        "git": _git_state(where),
        "env_vars": {name: os.environ[name] for name in ENV_VARS if name in os.environ},
        "cpu_count": os.cpu_count(),
    }


def environment_id(env: dict[str, object]) -> str:
    """Content hash of an environment: equal environments get equal ids."""
    canonical = json.dumps(env, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return xxhash.xxh3_128_hexdigest(canonical.encode("utf-8"))


def package_changes(
    a: dict[str, object], b: dict[str, object]
) -> dict[str, tuple[str | None, str | None]]:
    """Packages whose version differs between two environments, as (version in a, in b)."""
    before = _packages_of(a)
    after = _packages_of(b)
    return {
        name: (before.get(name), after.get(name))
        for name in sorted(before.keys() | after.keys())
        if before.get(name) != after.get(name)
    }


def _packages_of(env: dict[str, object]) -> dict[str, str]:
    packages = env.get("packages")
    return packages if isinstance(packages, dict) else {}


def _canonical_name(name: str) -> str:
    # PEP 503 normalization, so "Foo_Bar" and "foo-bar" are one package.
    return _NAME_SEPARATORS.sub("-", name).lower()


def _installed_packages() -> dict[str, str]:
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        try:
            name, version = _name_and_version(dist)
        except Exception:
            # A half-installed or hand-edited distribution must not stop a run from starting.
            continue
        if name and version:
            # distributions() follows sys.path order, so the first one found is the one imported.
            found.setdefault(_canonical_name(name), version)
    return dict(sorted(found.items()))


def _name_and_version(dist: Distribution) -> tuple[str | None, str | None]:
    from pathlib import Path

    # Parsing METADATA as a whole email message costs about 0.6 ms a package; the two
    # fields needed sit in its first lines, so read only up to them when it is a plain file.
    path = getattr(dist, "_path", None)
    if isinstance(path, Path) and path.name.endswith(".dist-info"):
        return _read_metadata_head(os.path.join(path, "METADATA"))
    meta = dist.metadata
    return meta["Name"], meta["Version"]


def _read_metadata_head(path: str) -> tuple[str | None, str | None]:
    name = version = None
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if not line.strip():
                break
            field, _, value = line.partition(":")
            field = field.lower()
            if field == "name":
                name = value.strip()
            elif field == "version":
                version = value.strip()
            if name and version:
                break
    return name, version


def _git_state(cwd: str) -> dict[str, object] | None:
    import time

    deadline = time.monotonic() + GIT_TIMEOUT
    status = _run_git(
        cwd, ["status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all"], deadline
    )
    if status is None:
        return None
    commit, branch, dirty, untracked = _parse_status(status[0])
    if commit is None:
        # No commit yet: nothing to point at or diff against, and callers rely on a sha.
        return None
    diff = ""
    if dirty:
        result = _run_git(
            cwd,
            ["diff", "HEAD", "--no-color", "--no-ext-diff", "--no-textconv"],
            deadline,
            limit=DIFF_LIMIT,
        )
        if result is None:
            return None
        diff = _diff_text(*result)
    return {
        "commit": commit,
        "branch": branch,
        "dirty": dirty,
        "diff": diff,
        "untracked": untracked,
    }


def _parse_status(output: bytes) -> tuple[str | None, str | None, bool, int]:
    commit: str | None = None
    branch: str | None = None
    dirty = False
    untracked = 0
    records = iter(output.decode("utf-8", errors="replace").split("\0"))
    for record in records:
        if record.startswith("# branch.oid "):
            oid = record[len("# branch.oid ") :]
            commit = None if oid == "(initial)" else oid
        elif record.startswith("# branch.head "):
            head = record[len("# branch.head ") :]
            branch = None if head == "(detached)" else head
        elif record.startswith(("1 ", "u ")):
            dirty = True
        elif record.startswith("2 "):
            dirty = True
            # With -z a rename's original path is a record of its own; it is not an entry.
            next(records, None)
        elif record.startswith("? ") and _STORE_DIR_NAME not in record[2:].split("/"):
            untracked += 1
    return commit, branch, dirty, untracked


def _diff_text(output: bytes, truncated: bool) -> str:
    if not truncated:
        return output.decode("utf-8", errors="replace")
    kept = output[:DIFF_LIMIT]
    # Cut at a line end so the kept part is a readable diff and no UTF-8 sequence is split.
    last_newline = kept.rfind(b"\n")
    if last_newline >= 0:
        kept = kept[: last_newline + 1]
    else:
        kept += b"\n"
    return kept.decode("utf-8", errors="replace") + DIFF_TRUNCATED_MARKER + "\n"


def _run_git(
    cwd: str, args: list[str], deadline: float, limit: int | None = None
) -> tuple[bytes, bool] | None:
    """Run git in cwd; its stdout (at most limit + 1 bytes) and whether it was cut, or None."""
    import threading
    import time

    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return None
    proc = _start_git(cwd, args)
    if proc is None:
        return None
    stdout = proc.stdout
    assert stdout is not None  # _start_git gives only a process with a pipe
    # A watchdog thread rather than communicate(timeout=...): it works the same on every
    # platform and lets the reader stop after limit bytes instead of buffering a huge diff.
    timed_out = threading.Event()

    def kill_on_deadline() -> None:
        timed_out.set()
        proc.kill()

    watchdog = threading.Timer(remaining, kill_on_deadline)
    watchdog.daemon = True
    watchdog.start()
    try:
        output, truncated = _read_git(proc, stdout, limit)
        returncode = proc.wait()
    except OSError:
        proc.kill()
        proc.wait()
        return None
    finally:
        watchdog.cancel()
        stdout.close()
    if timed_out.is_set() or (returncode != 0 and not truncated):
        return None
    return output, truncated


def _start_git(cwd: str, args: list[str]) -> subprocess.Popen[bytes] | None:
    """git started in cwd with its stdout piped, or None when it cannot be."""
    import subprocess

    # Never wait for a credential prompt nobody will see.
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    try:
        proc = subprocess.Popen(
            ["git", "-C", cwd, "--no-pager", "--no-optional-locks", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
    except (OSError, ValueError):
        return None
    if proc.stdout is None:  # only to satisfy the type: stdout=PIPE always gives a pipe
        proc.kill()
        proc.wait()
        return None
    return proc


def _read_git(
    proc: subprocess.Popen[bytes], stdout: IO[bytes], limit: int | None
) -> tuple[bytes, bool]:
    """git's output, and whether it was cut (git killed) past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = stdout.read(65536)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
        if limit is not None and size > limit:
            proc.kill()
            return b"".join(chunks), True
