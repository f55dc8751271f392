"""The output root's layout and its writes: one definition of every path, of a finished render, of a hash."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tooncrafter_model.store import (
    Store,
    atomic_write,
    complete_frames,
    frame_paths,
    sha256_file,
    shot_folder,
    version_file,
    version_folder,
    write_json,
)

KEY = "ab" + "c" * 62


def test_the_layout_of_an_output_root(tmp_path: Path) -> None:
    store = Store.under(tmp_path)
    assert store.keyframe("f00d") == tmp_path / "store/keyframes/f00d.png"
    assert store.sketch("f00d") == tmp_path / "store/sketches/f00d.png"
    assert store.render(KEY) == tmp_path / "store/renders/ab" / KEY
    assert store.scan("beef") == tmp_path / "store/scans/beef.json"
    shot = shot_folder(tmp_path, "demo", "sq010", "sh0010")
    assert version_folder(shot, 3) == tmp_path / "demo/sq010/sh0010/v003"
    assert version_file("sh0010", 3, ".mp4") == "sh0010_v003.mp4"


def test_a_render_is_complete_with_exactly_its_frames(tmp_path: Path) -> None:
    folder = Store.under(tmp_path).render(KEY)
    assert complete_frames(folder, 2) is None  # missing
    folder.mkdir(parents=True)
    (folder / "0001.png").write_bytes(b"1")
    assert complete_frames(folder, 2) is None  # partial
    (folder / "0002.png").write_bytes(b"2")
    assert complete_frames(folder, 2) == frame_paths(folder, 2) == [folder / "0001.png", folder / "0002.png"]
    (folder / "0003.png").write_bytes(b"3")
    assert complete_frames(folder, 2) is None  # another render's count: not this one


def test_atomic_writes_leave_the_old_file_or_the_new_one(tmp_path: Path) -> None:
    target = tmp_path / "deep/er/file.json"
    write_json(target, {"b": 1, "a": [1, 2]})
    assert target.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    with pytest.raises(RuntimeError), atomic_write(target, "w") as f:
        f.write("half of it")
        raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"a": [1, 2], "b": 1}
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.json"]  # no temp file left behind


def test_writes_take_the_umask_of_a_process_that_never_set_the_farms(tmp_path: Path) -> None:
    """Without `share_files` (a worker whose config keeps the process's umask), every atomic write gets the
    mode the process's own umask gives, as any file it creates does (mkstemp alone would give 0600)."""
    code = (
        "import sys\nfrom tooncrafter_model.store import atomic_write\n"
        "for name in 'ab':\n    with atomic_write(f'{sys.argv[1]}/{name}') as f:\n        f.write(b'x')\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], umask=0o027, check=True)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()} == {"a": 0o640, "b": 0o640}


def test_file_hash_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000  # more than one read chunk
    (tmp_path / "w.bin").write_bytes(data)
    assert sha256_file(tmp_path / "w.bin", chunk=4096) == hashlib.sha256(data).hexdigest()
