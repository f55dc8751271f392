"""A test hook: stop this process at a named point so that a test can kill it exactly there.

`TOONFARM_TEST_PAUSE_AT=placed` (a comma-separated list of points) makes the process write the point's
name to the file `TOONFARM_TEST_PAUSE_FILE` when it reaches that point, and wait there while that file
exists; tests/reliability SIGKILLs it then, or restarts its database and removes the file to let it go on. Points: `planned` (render rows claimed), `rendering` (a pair's result recorded),
`assembling` (the encoders running), `reserved` (the version row recorded, its folder not renamed),
`placed` (the folder renamed, the row not yet published). Unset, it does nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


_passed: set[str] = set()  # each point pauses once per process


def pause_at(point: str) -> None:
    if point in _passed or point not in os.environ.get("TOONFARM_TEST_PAUSE_AT", "").split(","):
        return
    _passed.add(point)
    marker = Path(os.environ["TOONFARM_TEST_PAUSE_FILE"])
    marker.write_text(point)
    while marker.exists():
        time.sleep(0.1)
