"""The process a background replay runs in: ``python -m jupyter_mlops.replay_worker``.

``replays.start_replay`` inserts the replay's row and starts this module in a process of its
own (so the server or notebook that asked does not wait); the worker runs the replay under
that id, which writes its progress and verdict to the row. What it prints goes to the
replay's log, whose last line says why when the worker ends without a verdict.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .compare import DEFAULT_ATOL, DEFAULT_RTOL
from .errors import MlopsError
from .jsonable import json_text
from .vocabulary import MODES

__all__ = ["main"]


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m jupyter_mlops.replay_worker",
        description="Run a replay whose row replays.start_replay inserted.",
    )
    parser.add_argument("replay_id")
    parser.add_argument("run_id")
    parser.add_argument("--store", type=Path, required=True, help="The store's folder.")
    parser.add_argument("--mode", choices=MODES, default=MODES[0])
    parser.add_argument("--rtol", type=float, default=DEFAULT_RTOL)
    parser.add_argument("--atol", type=float, default=DEFAULT_ATOL)
    parser.add_argument("--timeout", type=float, default=None, help="Seconds per cell.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one background replay; 0 when it reproduced, 1 when not, 2 for an error of ours."""
    from .execute import skip_slow_optional_imports

    skip_slow_optional_imports()
    args = _arguments(argv)
    from .replays import replay
    from .store import open_store
    from .verdicts import verdict_exit_code

    try:
        report = replay(
            args.run_id,
            mode=args.mode,
            rtol=args.rtol,
            atol=args.atol,
            timeout=args.timeout,
            progress=False,
            replay_id=args.replay_id,
            store=open_store(args.store, create=False),
        )
    except MlopsError as exc:
        message = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"Error: {message}", file=sys.stderr)
        return 2
    print(json_text(report, indent=2))
    return verdict_exit_code(report)


if __name__ == "__main__":
    sys.exit(main())
