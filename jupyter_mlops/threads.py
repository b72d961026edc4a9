"""The tracker's background threads: daemons that leave the process's signals alone.

A signal the kernel gets (SIGINT for "interrupt", SIGTERM to stop) may be delivered to any
thread that does not block it; delivered to one of ours, it would not wake the main thread
from a blocking call (a cell in ``time.sleep``), so an interrupt or a stop would wait. Each
of our threads therefore blocks them first, and they reach the main thread at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["start_background"]

_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def start_background(target: Callable[..., Any], name: str, *args: Any) -> threading.Thread:
    """Start a daemon thread running ``target(*args)`` with SIGINT and SIGTERM blocked."""

    def run() -> None:
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        target(*args)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
