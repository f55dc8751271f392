"""The shot DB's PostgreSQL restarts mid-batch: a run waits for it (db_retry_s) and finishes; a database
gone for longer than that is one line, the batch's summary and exit 75; the next run completes, and
nothing is lost.

The test starts a PostgreSQL server of its own (initdb + pg_ctl into a temp folder, a free loopback
port): the shared one at 5432 is never restarted.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .runs import CODES, Farm, state

_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))


class PrivatePostgres:
    def __init__(self, folder: Path) -> None:
        self.data, self.log = folder / "data", folder / "pg.log"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.bin = Path(_BIN[-1]).parent
        # initdb refuses to run as root: run the server as `postgres` then.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        folder.chmod(0o777)  # the server's user (postgres, when the tests run as root) writes here
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "farm", "--no-sync")
        self.url = f"postgresql+psycopg://farm@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_user, str(self.bin / tool), *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off"
        self._run("pg_ctl", "start", "-w", "-D", str(self.data), "-l", str(self.log), "-o", opts)

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data))


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    if not _BIN:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
    folder = Path(tempfile.mkdtemp(prefix="toonfarm-pg-"))  # not under pytest's 0700 folders: postgres reads it
    try:
        pg = PrivatePostgres(folder)
        pg.start()
        yield pg
        subprocess.run([*pg.as_user, str(pg.bin / "pg_ctl"), "stop", "-m", "immediate", "-D", str(pg.data)],
                       capture_output=True, timeout=60)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _pause_then(farm: Farm, marker: Path, meanwhile: list[str]) -> subprocess.Popen[bytes]:
    proc = farm.start_paused("rendering", marker)
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, marker.with_suffix(".log").read_text()[-3000:]
        time.sleep(0.1)
    return proc


@pytest.mark.slow
def test_a_postgres_restart_mid_batch_is_waited_for_or_reported_in_one_line(postgres: PrivatePostgres, tmp_path: Path) -> None:
    farm = Farm.make(tmp_path, db=postgres.url)

    # Down for a few seconds while the batch renders: the run waits for it and finishes.
    marker = tmp_path / "paused-restart"
    proc = _pause_then(farm, marker, [])
    postgres.stop()
    marker.unlink()  # the run goes on while the database is down
    time.sleep(3)
    postgres.start()
    assert proc.wait(timeout=300) == 0, marker.with_suffix(".log").read_text()[-3000:]
    first = state(farm)
    assert first.history == first.on_disk == {c: [1] for c in CODES}

    # Down for longer than db_retry_s: one line, exit 75; back up, the next run completes.
    farm.shots.doc["defaults"]["render"] = {"seed": 7}  # new render keys: the batch has work to record
    farm.shots.write()
    farm.env["TOONFARM_DB_RETRY_S"] = "2"
    marker = tmp_path / "paused-down"
    proc = _pause_then(farm, marker, [])
    postgres.stop()
    marker.unlink()
    code = proc.wait(timeout=300)
    log = marker.with_suffix(".log").read_text()
    postgres.start()
    assert code == 75, log[-3000:]
    assert "Traceback" not in log
    (line,) = [x for x in log.splitlines() if x.startswith("toonfarm: ")]
    assert "shot DB" in line and "unavailable" in line and "the batch stopped, 2 shots not finished" in line, line
    # The batch's summary still comes, each shot accounted for, the stop said once rather than per shot.
    assert re.search(r"^0 shots new, 0 unchanged, 2 failed; rendered \d+ pairs", log, re.M), log[-3000:]
    assert not [x for x in log.splitlines() if x.startswith("error:")], log[-3000:]
    assert farm.wait_no_processes() == []

    rerun = farm.run()
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = state(farm)
    assert after.history == after.on_disk == {c: [1, 2] for c in CODES}
    assert after.placing == after.running_renders == after.running_batches == 0
    for key in first.finished:
        assert key in after.finished
