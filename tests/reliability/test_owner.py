"""Owners: a process is named by host, boot, pid and start time; only this host's gone processes are dead."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from tasks.owner import Owner, is_dead, this_process
from tooncrafter_model.store import staging_folders, version_staging


def test_this_process_lives_an_exited_one_is_dead_another_hosts_is_not_known() -> None:
    me = this_process()
    assert not is_dead(me.token) and not is_dead(me.slug)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    gone = replace(me, pid=child.pid)
    assert is_dead(gone.token) and is_dead(gone.slug)
    assert is_dead(replace(me, start=me.start + 1).token)  # the same pid, another process
    assert is_dead(replace(me, boot="0" * 12).token)  # this host rebooted since
    assert not is_dead(replace(gone, host="elsewhere").token)
    assert not is_dead("not an owner") and Owner.parse("a/b/c/d") is None
    assert Owner.parse(me.token) == me and len(me.token) <= 128


def test_staging_folders_name_their_owner(tmp_path: Path) -> None:
    slug = this_process().slug
    mine = version_staging(tmp_path, slug)
    mine.mkdir()
    (tmp_path / f".{mine.name}.staging-0123456789ab").mkdir()  # the assembler's own, inside-out
    (tmp_path / "v001").mkdir()
    assert staging_folders(tmp_path) == [(tmp_path / f".{mine.name}.staging-0123456789ab", slug), (mine, slug)]
