"""A test hook: stop this process at a named point so that a test can kill it exactly there.

`TOONFARM_TEST_PAUSE_AT=placed` (a comma-separated list of points) makes the process write the point's
name to the file `TOONFARM_TEST_PAUSE_FILE` and sleep when it reaches that point; tests/reliability
SIGKILLs it then. Points: `planned` (render rows claimed), `rendering` (a pair's result recorded),
`assembling` (the encoders running), `reserved` (the version row recorded, its folder not renamed),
`placed` (the folder renamed, the row not yet published). Unset, it does nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def pause_at(point: str) -> None:
    if point not in os.environ.get("TOONFARM_TEST_PAUSE_AT", "").split(","):
        return
    Path(os.environ["TOONFARM_TEST_PAUSE_FILE"]).write_text(point)
    while True:
        time.sleep(60)
