"""A run's own processes never outlive it: a small process that waits for the CLI to end, then stops
what the CLI started and left behind.

A driver killed by SIGKILL runs no handler: Prefect's temporary API server (uvicorn) and Ray's local
processes, started by the driver, are re-parented to PID 1 and run on. So `toonfarm render` starts this
reaper first. It holds the read end of a pipe whose write end only the driver has (close-on-exec, so no
child inherits it); the kernel closes that end however the driver ends, and the reaper reads EOF. Until
then it notes the driver's descendants every half second (process id and start time: a reused id is not
mistaken for them); then it sends SIGTERM to those still running and to their own descendants, and
SIGKILL to whatever is left after a grace period.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])  # where `flows` imports from
_SCAN_S = 0.5
_GRACE_S = 5.0


def start_reaper() -> None:
    """Start the reaper of this process's descendants (Linux; elsewhere nothing happens)."""
    if not sys.platform.startswith("linux"):
        return
    read, write = os.pipe()  # both close-on-exec: only this process holds `write`
    subprocess.Popen(
        [sys.executable, "-m", "flows.cli.reaper", str(os.getpid())], stdin=read, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=_ROOT,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": _ROOT},  # none of the run's settings: it is not the run's
    )
    os.close(read)
    _keep.append(write)  # never written, never closed: it closes when this process ends


_keep: list[int] = []


def _table() -> tuple[dict[int, list[int]], dict[int, str]]:
    """Every process's children, and every process's start time, from /proc."""
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if fields[0] == "Z":
            continue
        children.setdefault(int(fields[1]), []).append(pid)
        started[pid] = fields[19]
    return children, started


def _descendants(roots: list[int], children: dict[int, list[int]], started: dict[int, str]) -> dict[int, str]:
    found: dict[int, str] = {}
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and child in started:
                found[child] = started[child]
                todo.append(child)
    return found


def _alive(known: dict[int, str]) -> list[int]:
    _, started = _table()
    return [pid for pid, start in known.items() if started.get(pid) == start]


def _signal(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def reap(driver: int, pipe: int) -> None:
    """Note the driver's descendants until `pipe` reaches EOF, then stop those still running."""
    me = os.getpid()
    known: dict[int, str] = {}
    while not select.select([pipe], [], [], _SCAN_S)[0]:
        children, started = _table()
        known.update(_descendants([driver], children, started))
        known.pop(me, None)
    if os.read(pipe, 1):
        return  # nothing is ever written; data would mean someone else holds the pipe
    children, started = _table()
    left = {pid: start for pid, start in known.items() if started.get(pid) == start}
    left.update(_descendants(list(left), children, started))
    left.pop(me, None)
    _signal(list(left), signal.SIGTERM)
    deadline = time.monotonic() + _GRACE_S
    while _alive(left) and time.monotonic() < deadline:
        time.sleep(0.1)
    _signal(_alive(left), signal.SIGKILL)


if __name__ == "__main__":
    reap(int(sys.argv[1]), sys.stdin.fileno())
