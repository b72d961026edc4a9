"""Metrics that are clock readings: autologged fit times and system load.

They differ in every run, so they are no result to compare: a diff, a verdict and a sweep's
table leave them out. Autologging names them; everything that compares runs reads them here.
"""

from __future__ import annotations

__all__ = ["FIT_TIME_SUFFIX", "SYSTEM_PREFIX", "is_clock_metric"]

# The metrics of the system sampler (CPU, memory, GPU) start with this.
SYSTEM_PREFIX = "system/"
# A fit's wall-clock time is logged under the model's name with this ending.
FIT_TIME_SUFFIX = ".fit_time"


def is_clock_metric(key: str) -> bool:
    """Whether an autologged metric is a clock reading (a fit time, system load), which
    differs in every run and so is no result to compare."""
    return key.startswith(SYSTEM_PREFIX) or key.endswith(FIT_TIME_SUFFIX)
