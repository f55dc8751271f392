"""Owners: a process is named by host, boot, pid and start time; it is dead when this host proves it gone,
or when its batches have been silent longer than `dead_after_s`."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from tasks.owner import DeadOwners, Owner, this_process
from tooncrafter_model.store import staging_folders, version_staging


def test_this_process_lives_an_exited_one_is_dead_another_hosts_is_not_known() -> None:
    is_dead = DeadOwners()  # nobody silent: this host's proof alone
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


def test_an_owner_silent_longer_than_dead_after_s_is_dead_on_any_host() -> None:
    far, near, old = (Owner("elsewhere", "b00t", pid, 7) for pid in (11, 12, 13))
    me = this_process()
    dead = DeadOwners.judge({far.token: 601.0, near.token: 599.0, me.token: 900.0}, dead_after_s=600)
    assert dead(far.token) and dead(far.slug)  # the slug a staging folder carries has the host hashed
    assert not dead(near.token) and not dead(near.slug)  # beat recently: alive, however long it runs
    assert not dead(old.token)  # never beat (a row from before heartbeats): not known
    assert dead(me.token)  # silent is dead even where this host sees the process (a stuck run)


def test_staging_folders_name_their_owner(tmp_path: Path) -> None:
    slug = this_process().slug
    mine = version_staging(tmp_path, slug)
    mine.mkdir()
    (tmp_path / f".{mine.name}.staging-0123456789ab").mkdir()  # the assembler's own, inside-out
    (tmp_path / "v001").mkdir()
    assert staging_folders(tmp_path) == [(tmp_path / f".{mine.name}.staging-0123456789ab", slug), (mine, slug)]
