"""Helpers for the reliability tests: `toonfarm render` as a user runs it (a subprocess, serverless
Prefect, local Ray, the zero-cost crossfade backend), stopped at a named point (tasks/testhook.py) and
killed there; and what the output root and the shot DB say afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import shot_db
from shot_db import ShotDB
from shot_db.models import BatchRun, BatchStatus, Render, RenderAttempt, RenderStatus, ShotVersion, VersionStatus
from sqlalchemy import func, select
from tooncrafter_model.store import version_numbers

from tests.flows.conftest import Shots, make_shots

TOONFARM = str(Path(sys.executable).with_name("toonfarm"))
CODES = ("sh010", "sh020")


def tiny_shots(folder: Path) -> Shots:
    """Two shots of 4 drawings on 2s (3 pairs of one in-between each), crossfaded: no model to load."""
    return make_shots(folder, {code: {"timing": [2] * 4} for code in CODES}, backend="crossfade")


@dataclass
class Farm:
    """One output root, its shot list, and the environment every run of it gets."""

    root: Path
    shots: Shots
    env: dict[str, str]
    db: str | None = None

    @classmethod
    def make(cls, tmp: Path, db: str | None = None) -> Farm:
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # serverless, as on a laptop
        env.update(PREFECT_HOME=str(tmp / "prefect"), TOONFARM_TEST_RUN=uuid.uuid4().hex)
        return cls(tmp / "out", tiny_shots(tmp / "in"), env, db)

    def args(self) -> list[str]:
        return [TOONFARM, "render", str(self.shots.path), "-o", str(self.root), "--actors", "1",
                *(["--db", self.db] if self.db else [])]

    def run(self, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.args(), env=self.env, capture_output=True, text=True, timeout=timeout)

    def start_paused(self, point: str, marker: Path) -> subprocess.Popen[bytes]:
        """A run that stops at `point` (it writes `marker` there and sleeps)."""
        env = {**self.env, "TOONFARM_TEST_PAUSE_AT": point, "TOONFARM_TEST_PAUSE_FILE": str(marker)}
        log = open(marker.with_suffix(".log"), "wb")  # noqa: SIM115 - the child writes it until killed
        return subprocess.Popen(self.args(), env=env, stdout=log, stderr=subprocess.STDOUT)

    def kill_at(self, point: str, tmp: Path, timeout: float = 240) -> None:
        """Run until `point`, then SIGKILL the driver, as the kernel's OOM killer or a `kill -9` would."""
        marker = tmp / f"paused-{point}"
        proc = self.start_paused(point, marker)
        deadline = time.monotonic() + timeout
        while not marker.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"never reached {point}: {marker.with_suffix('.log').read_text()[-3000:]}")
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def processes(self) -> list[str]:
        """The live processes started by this farm's runs (they carry its TOONFARM_TEST_RUN)."""
        mark = f"TOONFARM_TEST_RUN={self.env['TOONFARM_TEST_RUN']}".encode()
        found = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and mark in (proc / "environ").read_bytes().split(b"\0"):
                    stat = (proc / "stat").read_text()
                    if stat.rpartition(")")[2].split()[0] != "Z":
                        found.append(f"{proc.name} {(proc / 'cmdline').read_bytes()[:120]!r}")
            except OSError:
                continue
        return found

    def wait_no_processes(self, timeout: float = 30) -> list[str]:
        """Wait until none of this farm's processes runs; the ones still running after `timeout`."""
        deadline = time.monotonic() + timeout
        while (left := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.25)
        return left

    @property
    def url(self) -> str:
        return self.db or shot_db.default_url(self.root / "toonfarm.sqlite")

    def folder(self, code: str) -> Path:
        return self.root / "test" / "sq010" / code


@dataclass(frozen=True)
class State:
    """What the shot DB and the output root say after a run."""

    history: dict[str, list[int]]  # published version numbers per shot
    on_disk: dict[str, list[int]]  # version folders per shot
    hidden: list[str]  # anything else in the shot folders (staging folders)
    placing: int
    running_renders: int
    running_batches: int
    attempts: dict[str, int]  # render key -> attempts recorded
    finished: set[str]  # finished render keys


def state(farm: Farm) -> State:
    with ShotDB.open(farm.url) as db, db.transaction() as s:
        history = {
            c: [v.number for v in shot_db.shot_history(session=s, show="test", sequence="sq010", code=c)] for c in CODES
        }
        placing = s.scalar(select(func.count()).select_from(ShotVersion).where(ShotVersion.status == VersionStatus.placing))
        running = s.scalar(select(func.count()).select_from(Render).where(Render.status == RenderStatus.running))
        batches = s.scalar(select(func.count()).select_from(BatchRun).where(BatchRun.status == BatchStatus.running))
        attempts = dict(
            s.execute(select(Render.render_key, func.count(RenderAttempt.id)).outerjoin(RenderAttempt).group_by(Render.render_key)).all()
        )
        finished = set(s.scalars(select(Render.render_key).where(Render.status == RenderStatus.finished)))
    hidden = sorted(p.name for c in CODES if farm.folder(c).is_dir() for p in farm.folder(c).iterdir() if p.name.startswith("."))
    return State(history, {c: version_numbers(farm.folder(c)) for c in CODES}, hidden, placing or 0, running or 0,
                 batches or 0, attempts, finished)
