"""The tracker's background threads leave SIGINT and SIGTERM to the main thread."""

from __future__ import annotations

import signal

from jupyter_mlops.threads import start_background


def test_background_threads_block_interrupt_and_terminate() -> None:
    seen: list[set[signal.Signals]] = []
    thread = start_background(
        lambda: seen.append(signal.pthread_sigmask(signal.SIG_BLOCK, [])), "probe"
    )
    thread.join(timeout=10)
    assert thread.daemon
    assert {signal.SIGINT, signal.SIGTERM} <= seen[0]
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
