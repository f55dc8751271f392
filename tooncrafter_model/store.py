"""The output root on disk: where every file the farm writes lives, and how a file is written.

One output root, a folder every node mounts at the same path (ARCHITECTURE.md, "Output layout"):

    <root>/store/keyframes/<pixel hash>.png                content-addressed keyframes
    <root>/store/sketches/<pixel hash>.png                 content-addressed sketch guidance
    <root>/store/renders/<key[:2]>/<render key>/0001.png   one folder per rendered pair
    <root>/store/scans/<digest>.json                       remembered video scans
    <root>/store/qa/<key[:2]>/<render key>.<frame>.jpg     a flagged pair's frame strip (the dashboard's)
    <root>/<show>/<sequence>/<shot>/v001/png/<shot>.0001.png, <shot>_v001.mp4 (.mov...), provenance.json
    <root>/<show>/<sequence>/<shot>/.staging-<owner>-<random>/  a version being assembled
    <root>/toonfarm.sqlite                                 the default shot DB

Tasks (detect, plan, publish) and the Ray workers (cluster) both read and write it, so it lives in the
lowest package both import. Every write is atomic: a temp file beside the target, then a rename.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

SIDECAR = "provenance.json"
PNG_DIR = "png"


@dataclass(frozen=True)
class Store:
    """`<output root>/store`: content-addressed files shared by every shot and version."""

    root: Path

    @classmethod
    def under(cls, output_root: str | os.PathLike[str]) -> Store:
        return cls(Path(output_root) / "store")

    def keyframe(self, pixel_hash: str) -> Path:
        return self.root / "keyframes" / f"{pixel_hash}.png"

    def sketch(self, pixel_hash: str) -> Path:
        return self.root / "sketches" / f"{pixel_hash}.png"

    def render(self, key: str) -> Path:
        """The folder of render `key`'s frames (see `frame_paths`)."""
        return self.root / "renders" / key[:2] / key

    def scan(self, digest: str) -> Path:
        return self.root / "scans" / f"{digest}.json"

    def qa_strip(self, key: str, frame_a: int) -> Path:
        """The picture of render `key` between its keyframes, as the pair starting at `frame_a` shows it."""
        return self.root / "qa" / key[:2] / f"{key}.{frame_a}.jpg"


def shot_db_file(output_root: str | os.PathLike[str]) -> Path:
    """The default shot DB: a SQLite file in the output root."""
    return Path(output_root) / "toonfarm.sqlite"


# ------------------------------------------------------------------------------------- a render's frames


def frame_names(n: int) -> list[str]:
    """File names of a render's in-betweens in time order: 0001.png, 0002.png, ..."""
    return [f"{i:04d}.png" for i in range(1, n + 1)]


def frame_paths(folder: Path, n: int) -> list[Path]:
    return [folder / name for name in frame_names(n)]


def complete_frames(folder: Path, n: int) -> list[Path] | None:
    """The frame paths when `folder` holds exactly the n frames of a finished render, else None."""
    try:
        names = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return None
    return frame_paths(folder, n) if n and names == frame_names(n) else None


# ---------------------------------------------------------------------------------------- shot versions


def shot_folder(output_root: str | os.PathLike[str], show: str, sequence: str, code: str) -> Path:
    return Path(output_root) / show / sequence / code


def version_name(number: int) -> str:
    """How version `number` is named, on disk and wherever it is shown: v001, v002, ..."""
    return f"v{number:03d}"


def version_folder(shot: Path, number: int) -> Path:
    return shot / version_name(number)


def version_numbers(shot: Path) -> list[int]:
    """The numbers of the version folders in a shot's folder, lowest first."""
    try:
        names = os.listdir(shot)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(int(n[1:]) for n in names if len(n) >= 4 and n[0] == "v" and n[1:].isdigit())


STAGING = ".staging-"  # a version being assembled: `.staging-<owner>-<random>` beside its version folders


def version_staging(shot: Path, owner: str) -> Path:
    """A new staging folder's path for a version assembled by `owner` (a process, tasks/owner.py)."""
    return shot / f"{STAGING}{owner}-{uuid.uuid4().hex[:8]}"


def staging_folders(shot: Path) -> list[tuple[Path, str]]:
    """The staging folders in a shot's folder, each with the owner its name carries: a version's, and
    the assembler's own inside-out copy of it (`..staging-<owner>-<random>.staging-<random>`)."""
    try:
        names = os.listdir(shot)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [n for n in sorted(names) if n.startswith((STAGING, "." + STAGING))]
    return [(shot / n, n.lstrip(".")[len(STAGING) - 1 :].split(".", 1)[0].rpartition("-")[0]) for n in found]


def previews_folder(version: Path) -> Path:
    """Where a version's dashboard pictures (contact sheet, thumbnail) live: inside the version folder, so
    they are written and removed with it, and the preview server can serve them."""
    return version / "preview"


def version_file(code: str, number: int, suffix: str) -> str:
    """A version's file named by its version, e.g. `sh010_v003.mp4`: it keeps saying which take it is
    wherever it is copied to (an editor's bin, a review tool)."""
    return f"{code}_{version_name(number)}{suffix}"


def sequence_frame(stem: str, number: int) -> str:
    """The name of output frame `number` (1-based) in a version's PNG sequence."""
    return f"{stem}.{number:04d}.png"


# -------------------------------------------------------------------------------------------- writing

_umask: int | None = None  # the farm's umask, once `share_files` has set it in this process


def share_files(umask: int) -> None:
    """Make `umask` this process's: a shared farm's nodes (other users, other machines) must read what
    this one writes. Drivers set it from the settings, Ray workers from their config."""
    global _umask
    os.umask(umask)
    _umask = umask


def _current_umask() -> int:
    return _umask if _umask is not None else _started_umask()


@functools.cache
def _started_umask() -> int:
    """The umask the process started with, read once: only `share_files` changes it, and then `_umask` says."""
    # Linux reports it without changing it; os.umask() can only read it by setting it, which would race
    # with the threads writing files meanwhile.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def shared_mode(path: str | os.PathLike[str], *, folder: bool = False) -> None:
    """Give a file (or folder) made by `tempfile` the mode the umask gives any new one: mkstemp creates
    0600 and mkdtemp 0700 whatever the umask, and the rename that publishes them keeps the mode."""
    os.chmod(path, (0o777 if folder else 0o666) & ~_current_umask())



@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """A file to write `path`'s new content into: it replaces `path` when the block ends, and is removed
    if the block raises, so readers see the old file or the whole new one, never a part."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        shared_mode(tmp)
        with os.fdopen(fd, mode) as f:
            yield f
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike[str], data: Any, *, indent: int | None = 2) -> Path:
    """`data` as JSON (keys sorted, one trailing newline), written atomically."""
    with atomic_write(path, "w") as f:
        json.dump(data, f, indent=indent, sort_keys=True, default=str)
        f.write("\n")
    return Path(path)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in chunks (a 10 GB checkpoint never sits in memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
