"""Atomic publication of a pair's frames: a temp folder beside the final one, then one rename.

Readers of the output root only ever see a missing folder or a complete one. A worker killed mid-write
leaves a hidden `.<name>.tmp-*` sibling behind, which `sweep_temp` removes once the pair is settled.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tooncrafter_model.frames import Frame, write_frame
from tooncrafter_model.store import complete_frames, frame_names, shared_mode


def _staging_prefix(out_dir: Path) -> str:
    return f".{out_dir.name}.tmp-"


def publish(out_dir: Path, frames: Sequence[Frame]) -> tuple[list[Path], bool]:
    """Write `frames` to `out_dir` atomically; returns (paths, kept_existing).

    An `out_dir` that already holds a complete render of as many frames wins (idempotent re-runs, or
    two workers racing on one key); an incomplete one is replaced whole, never merged into.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_staging_prefix(out_dir), dir=out_dir.parent))
    names = frame_names(len(frames))
    try:
        shared_mode(tmp, folder=True)  # it becomes the render folder every node reads
        for name, frame in zip(names, frames, strict=True):
            write_frame(tmp / name, frame)
        if complete_frames(out_dir, len(frames)) is not None:
            return [out_dir / n for n in names], True
        try:
            os.rename(tmp, out_dir)  # also replaces an empty folder
        except OSError:
            if complete_frames(out_dir, len(frames)) is not None:  # another worker won the race
                return [out_dir / n for n in names], True
            old = Path(tempfile.mkdtemp(prefix=_staging_prefix(out_dir), dir=out_dir.parent))
            os.rename(out_dir, old / "old")
            os.rename(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        return [out_dir / n for n in names], False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sweep_temp(out_dir: Path) -> list[Path]:
    """Remove staging folders left beside `out_dir` by killed workers; returns what was removed."""
    removed: list[Path] = []
    try:
        siblings = list(out_dir.parent.iterdir())
    except FileNotFoundError:
        return removed
    for path in siblings:
        if path.name.startswith(_staging_prefix(out_dir)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
