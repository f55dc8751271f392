"""The disk under a SQLite shot DB fills up mid-batch: the run says so in one line with the batch's
summary (exit 75), nothing it rendered or published is lost, and once space is freed the next run
completes.

The disk is real: a 4 MiB tmpfs mounted over the shot DB's folder in a mount namespace of the test's own
(`unshare`), so nothing outside the test sees it and it goes when the test's processes end. A machine
that allows no mount namespace skips the test.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import shot_db

from .runs import CODES, Farm, state

# The run pauses at `rendering` (tasks/testhook.py), the disk is filled, the run goes on; then space is
# freed and the batch runs again. The shot DB is copied out at the end: the mount goes with the namespace.
SCRIPT = r"""
set -u
mount -t tmpfs -o size=4m,mode=0755 toonfarm-full "$DBDIR"
"$@" > "$OUT/full.log" 2>&1 &
run=$!
while [ ! -e "$TOONFARM_TEST_PAUSE_FILE" ]; do kill -0 $run 2>/dev/null || break; sleep 0.1; done
head -c 8m /dev/zero > "$DBDIR/filler" 2>/dev/null
df -k "$DBDIR" > "$OUT/df.txt"
rm -f "$TOONFARM_TEST_PAUSE_FILE"
wait $run; echo $? > "$OUT/full.rc"
rm "$DBDIR/filler"
env -u TOONFARM_TEST_PAUSE_AT "$@" > "$OUT/rerun.log" 2>&1; echo $? > "$OUT/rerun.rc"
cp "$DBDIR/shots.db" "$OUT/shots.db"
"""


def _namespace() -> list[str]:
    """How this machine runs a command in a mount namespace of its own, where it may mount a tmpfs."""
    for cmd in (["unshare", "--mount"], ["unshare", "--user", "--map-root-user", "--mount"]):
        if shutil.which("unshare") and subprocess.run([*cmd, "mount", "-t", "tmpfs", "t", "/mnt"], capture_output=True).returncode == 0:
            return cmd
    pytest.skip("no mount namespace here (unshare --mount refused): the full disk cannot be made")


@pytest.mark.slow
def test_a_full_disk_under_the_sqlite_shot_db_is_one_line_and_the_summary(tmp_path: Path) -> None:
    namespace = _namespace()
    disk, out = tmp_path / "db", tmp_path / "logs"
    disk.mkdir()
    out.mkdir()
    farm = Farm.make(tmp_path, db=shot_db.default_url(disk / "shots.db"))
    env = {**farm.env, "DBDIR": str(disk), "OUT": str(out), "TOONFARM_DB_RETRY_S": "2",
           "TOONFARM_TEST_PAUSE_AT": "rendering", "TOONFARM_TEST_PAUSE_FILE": str(tmp_path / "paused")}
    subprocess.run([*namespace, "bash", "-c", SCRIPT, "full-disk", *farm.args()], env=env, check=True, timeout=600)

    log = (out / "full.log").read_text()
    assert (out / "full.rc").read_text().strip() == "75", log[-3000:]
    assert re.search(r"\s0\s+\d+%", (out / "df.txt").read_text().splitlines()[-1])  # the disk was full
    assert "Traceback" not in log and "(raylet)" not in log  # no noise from the pool it closed early
    (line,) = [x for x in log.splitlines() if x.startswith("toonfarm: ")]
    assert "shot DB" in line and "disk is full" in line and "the batch stopped" in line, line
    assert re.search(r"^0 shots new, 0 unchanged, 2 failed; rendered \d+ pairs", log, re.M), log[-3000:]

    rerun = (out / "rerun.log").read_text()
    assert (out / "rerun.rc").read_text().strip() == "0", rerun[-3000:]
    farm.db = shot_db.default_url(out / "shots.db")
    after = state(farm)
    assert after.history == after.on_disk == {c: [1] for c in CODES}
    assert after.placing == after.running_renders == 0
    assert farm.wait_no_processes() == []
