"""Which process runs a batch, and whether it is still alive: how the next run knows what a killed one
left behind (its `placing` versions, its `running` rows, its staging folders) without guessing by age.

An owner is (host, boot id, process id, process start time). A process id alone is reused, a start time
alone repeats after a reboot; together they name one process. This host can prove its own processes
gone; a process on another host is known dead by its silence: its running batch beats (its row stamped
with the shot DB's clock every `heartbeat_s`, tasks/heartbeat.py), and an owner whose batches have not
beaten for `dead_after_s` is dead. `DeadOwners` is the one place that rule lives.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class Owner:
    host: str
    boot: str  # the kernel's boot id: a process id and start time repeat across reboots
    pid: int
    start: int  # clock ticks since boot (/proc/<pid>/stat field 22); 0 where unknown

    @property
    def token(self) -> str:
        """How the shot DB records it (at most 128 characters)."""
        return f"{self.host[:64]}/{self.boot}/{self.pid}/{self.start}"

    @property
    def slug(self) -> str:
        """How a folder name carries it: no slashes, the host as a short hash."""
        return f"{_short(self.host)}-{self.boot}-{self.pid}-{self.start}"

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        """The owner a token (or a slug, with `host` hashed) names; None for anything else."""
        parts = text.split("/") if "/" in text else text.split("-")
        if len(parts) != 4 or not parts[2].isdigit() or not parts[3].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]), int(parts[3]))


def _short(host: str) -> str:
    return hashlib.sha256(host.encode()).hexdigest()[:8]


@cache
def _boot() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:12]
    except OSError:
        return "noboot"


def _start(pid: int) -> int | None:
    """The process's start time, 0 where /proc is missing, None when no such process exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[19])  # fields after the command name; 22 is the start time


def this_process() -> Owner:
    pid = os.getpid()
    return Owner(socket.gethostname(), _boot(), pid, _start(pid) or 0)


@dataclass(frozen=True)
class DeadOwners:
    """Which owners are dead, as a run judges at its start: called with a token or a slug, True when this
    host proves its process gone (it no longer runs, or the host rebooted since), or when it is among the
    `silent` ones. Unknown formats, and another host's owners that never beat (rows from before
    heartbeats), are not known to be dead. Never by age: a slow run that beats is alive."""

    silent: frozenset[str] = frozenset()  # tokens and slugs of owners whose batches stopped beating

    @classmethod
    def judge(cls, beat_ages: Mapping[str, float], dead_after_s: float) -> DeadOwners:
        """The verdict given how long each owner's batches have been silent (shot_db.beat_ages, by the shot
        DB's clock): longer than `dead_after_s`, dead."""
        silent = (Owner.parse(token) for token, age in beat_ages.items() if age > dead_after_s)
        return cls(frozenset(name for o in silent if o is not None for name in (o.token, o.slug)))

    def __call__(self, text: str) -> bool:
        return text in self.silent or _gone_here(text)


def _gone_here(text: str) -> bool:
    """True when `text` names a process of this host that no longer runs."""
    owner = Owner.parse(text)
    if owner is None:
        return False
    host = socket.gethostname()
    if owner.host not in (host[:64], _short(host)):
        return False
    if owner.boot != _boot():
        return True  # this host rebooted since
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    start = _start(owner.pid)
    return start is None or (start != 0 and owner.start != 0 and start != owner.start)
