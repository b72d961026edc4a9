"""The fixed words of the record: statuses, kinds, replay states and modes, verdicts, limits.

Every layer imports them from here, so a word is spelt once. Nothing here imports anything.
"""

from __future__ import annotations

__all__ = [
    "DATA_CONTEXTS",
    "DEFAULT_KERNEL",
    "KINDS",
    "MAX_PAGE",
    "MODES",
    "PARTIAL_OUTPUT",
    "REPLAY_STATES",
    "REPRODUCED",
    "STATUSES",
    "VERDICTS",
]

# What a run's status can be; "running" is the only status that is not an ending.
STATUSES = ("running", "finished", "failed", "killed", "crashed")
# How a run came about.
KINDS = ("interactive", "replay", "sweep", "script")
# What a dataset is for: what a model learnt from, or what it is served.
DATA_CONTEXTS = ("training", "serving")

# What a replay runs: the cells as they ran, or the saved notebook file top to bottom.
MODES = ("recorded", "file")
# Where a replay is: still running, done with a verdict, or stopped by an error.
REPLAY_STATES = ("running", "done", "error")
# What a replay concludes; the first two count as reproduced.
VERDICTS = ("reproduced", "reproduced within tolerance", "diverged", "failed")
REPRODUCED = frozenset(VERDICTS[:2])

# The output hash of a cell whose outputs were not all seen (a display updated later):
# it is never a difference.
PARTIAL_OUTPUT = "partial"
# The kernel a notebook runs in when neither the run nor the notebook names one.
DEFAULT_KERNEL = "python3"

# The most runs one page of a listing holds (REST API and sidebar).
MAX_PAGE = 500
