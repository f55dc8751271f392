"""A shot DB that is not there is one line and exit 2, said before Prefect or Ray start: a server that
refuses connections or a SQLite file that cannot be opened (a database that goes away later, mid-batch,
is transient: tests/reliability/test_db_restart.py)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from .runs import TOONFARM, tiny_shots


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("db", "status", "says"),
    [
        (f"postgresql+psycopg://farm@127.0.0.1:{_free_port()}/shots", 2, "unavailable (connection failed"),
        ("sqlite:////nonexistent/folder/shots.sqlite", 2, "cannot open the file"),
    ],
    ids=["refused", "no-folder"],
)
def test_a_shot_db_that_is_not_there_is_one_line(db: str, status: int, says: str, tmp_path: Path) -> None:
    shots = tiny_shots(tmp_path / "in")
    run = subprocess.run([TOONFARM, "render", str(shots.path), "-o", str(tmp_path / "out"), "--db", db],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == status, run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("toonfarm: shot DB at ") and says in line, line
    assert not (tmp_path / "out" / "store").exists()  # nothing started: no keyframe was even stored
