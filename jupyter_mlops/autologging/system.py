"""System metrics: a sampler thread records the process's CPU and memory (and the GPU's)
as step series of the active run.

A sample reads two counters the kernel keeps anyway (``os.times()`` and
``/proc/self/statm``) and, when NVML is there, two GPU queries: some tens of microseconds
every interval (10 s by default), far under 1% of a core. ``cpu_seconds`` says what the
thread itself has used, so that can be checked.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any

from .. import run as runs
from ..threads import start_background

__all__ = ["METRICS", "Sampler", "start", "stop"]

METRICS = ("system/cpu_percent", "system/rss_mb", "system/gpu_util", "system/gpu_mem_mb")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# A final sample when the run ends, unless the last one is this recent.
_MIN_FINAL_GAP_S = 1.0


class Sampler:
    """One sampler thread: samples every ``interval`` seconds while a run is active."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.cpu_seconds = 0.0  # what this thread used, by its own clock
        self.samples = 0
        self._stop = threading.Event()
        self._last = (_process_cpu(), time.monotonic())
        self._gpu = _Gpu.open()
        self._thread = start_background(self._loop, "jupyter-mlops-system")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            started = time.thread_time()
            with contextlib.suppress(Exception):  # a sample that fails is skipped
                self.sample()
            self.cpu_seconds += time.thread_time() - started

    def sample(self) -> None:
        """Record one point of each system metric on the active run."""
        run = runs.active_run()
        cpu, now = _process_cpu(), time.monotonic()
        last_cpu, last_time = self._last
        self._last = (cpu, now)
        if run is None or now <= last_time:
            return
        values = {
            "system/cpu_percent": 100.0 * (cpu - last_cpu) / (now - last_time),
            "system/rss_mb": _rss_bytes() / 1e6,
        }
        values.update(self._gpu.read())
        for key, value in values.items():
            run.log_metric(key, value)
        self.samples += 1

    def stop(self) -> None:
        """Stop the thread, with a last sample when the previous one is not recent."""
        self._stop.set()
        if time.monotonic() - self._last[1] >= _MIN_FINAL_GAP_S:
            with contextlib.suppress(Exception):
                self.sample()
        self._gpu.close()


class _Gpu:
    """NVML, when ``pynvml`` is installed and a GPU answers; else nothing."""

    def __init__(self, nvml: Any, handles: list[Any]) -> None:
        self.nvml = nvml
        self.handles = handles

    @classmethod
    def open(cls) -> _Gpu:
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception:
            return cls(None, [])
        return cls(pynvml, handles)

    def read(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for index, handle in enumerate(self.handles):
            suffix = "" if index == 0 else str(index)
            try:
                utilization = self.nvml.nvmlDeviceGetUtilizationRates(handle).gpu
                memory = self.nvml.nvmlDeviceGetMemoryInfo(handle).used
            except Exception:
                continue
            out[f"system/gpu{suffix}_util"] = float(utilization)
            out[f"system/gpu{suffix}_mem_mb"] = memory / 1e6
        return out

    def close(self) -> None:
        if self.nvml is not None:
            with contextlib.suppress(Exception):
                self.nvml.nvmlShutdown()
            self.nvml = None
            self.handles = []


_current: list[Sampler] = []


def start(interval: float) -> Sampler:
    """Start the process's sampler (or keep the running one if its interval is the same)."""
    if _current and _current[0].interval == interval and not _current[0]._stop.is_set():
        return _current[0]
    stop()
    sampler = Sampler(interval)
    _current[:] = [sampler]
    return sampler


def stop() -> None:
    """Stop the process's sampler, if one runs."""
    if _current:
        _current.pop().stop()


def _process_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # the peak, at least
