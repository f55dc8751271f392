"""A shot's full frame sequence -> stylized frames -> every deliverable the shot asks for, published atomically.

One pass over the frames: each distinct source is decoded and stylized once (a held drawing repeats its
path, so it reuses the picture and every encoding of it), and each output frame goes to every deliverable
(tasks/deliver/) writing into a staging folder beside the version folder. Each deliverable reads its file
back when it finishes. Only when everything succeeded is the staging folder renamed to the version
folder; on failure it is removed.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from shot_db.records import OutputFile
from tasks.colour import Stylize, Stylizer
from tasks.deliver import DEFAULT_DELIVER, Deliverable, DeliveryError, DeliverSpec, build
from tasks.deliver.base import Picture, Take
from tasks.testhook import pause_at
from tooncrafter_model.errors import UserError
from tooncrafter_model.frames import Frame, read_frame

FpsLike = Fraction | float | int | str
_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CACHED_SOURCES = 16  # distinct drawings kept with their encodings: covers holds and short cycles, bounds memory


class AssemblyError(UserError):
    """Bad input to an assembly (missing or corrupt image, mixed sizes, bad fps); names file and frame."""


@dataclass(frozen=True)
class ShotOutputs:
    """What an assembly wrote: each deliverable's output (paths in the version folder), and per output
    frame its pixel hash and, when an image sequence was delivered, its file."""

    dir: Path
    outputs: tuple[OutputFile, ...]
    frame_files: tuple[Path, ...] | None
    frame_hashes: tuple[str, ...]
    frame_count: int
    fps: Fraction
    lut_sha256: str | None


# ------------------------------------------------------------------------------------------ frame rate


def parse_fps(value: FpsLike) -> Fraction:
    """A frame rate as an exact fraction: 24, 12.5, "24000/1001"; 23.976, 29.97, 59.94 mean x000/1001."""
    try:
        if isinstance(value, str) and "/" in value:
            num, den = value.split("/", 1)
            fps = Fraction(int(num), int(den))
        else:
            fps = Fraction(str(value)) if not isinstance(value, Fraction) else value
            k = round(fps * Fraction(1001, 1000))
            ntsc = Fraction(k * 1000, 1001)
            if fps.denominator != 1 and abs(fps - ntsc) < Fraction(5, 1000):  # 23.976 or 23.98 typed for 24000/1001
                fps = ntsc
    except (ValueError, ZeroDivisionError, TypeError):
        raise AssemblyError(f"fps: not a frame rate: {value!r} (e.g. 24, 23.976, '24000/1001')") from None
    if not 0 < fps <= 1000:
        raise AssemblyError(f"fps: must be above 0 and at most 1000, got {value!r}")
    return fps


# ------------------------------------------------------------------------------------------- assembly


def assemble_shot(
    sources: Sequence[str | os.PathLike[str]],
    fps: FpsLike,
    out_dir: str | os.PathLike[str],
    stem: str,
    *,
    stylize: Stylize = Stylize(),
    palettes: Sequence[tuple[Path, Path] | None] = (),
    deliver: Sequence[Deliverable] | None = None,
    timecode: str | None = None,
) -> ShotOutputs:
    """Write every deliverable of `deliver` (default: the PNG sequence and the H.264 MP4) into `out_dir`,
    one output frame per source: `png/<stem>.0001.png ...`, `<stem>.mp4`...

    `palettes` (with palette lock): per source, the two keyframe images of an in-between, None for a
    keyframe. `timecode`: the shot's start timecode in the edit it came from, for the formats that carry
    one. `out_dir` (the version folder) must not exist yet; it appears complete or not at all.
    """
    rate = parse_fps(fps)
    if not _STEM.fullmatch(stem):
        raise AssemblyError(f"stem: {stem!r} must be letters, digits, '.', '_' or '-' (no path)")
    deliverables = list(deliver) if deliver is not None else build([DeliverSpec(kind=k) for k in DEFAULT_DELIVER])
    paths = [Path(s) for s in sources]
    if not paths:
        raise AssemblyError(f"{out_dir}: no frames to assemble")
    if palettes and len(palettes) != len(paths):
        raise AssemblyError(f"{out_dir}: {len(palettes)} palettes for {len(paths)} frames")
    final = Path(out_dir)
    if final.exists():
        raise AssemblyError(f"{final}: already exists (versions are never overwritten)")
    for i, p in enumerate(paths, start=1):
        if not p.is_file():
            raise AssemblyError(f"{p}: frame {i}: source image not found")

    first = _read(paths[0], 1)
    pixels = first.shape[0] * first.shape[1] * len(set(paths))  # each distinct drawing is stylized once
    stylizer = Stylizer(stylize, expected_pixels=pixels)
    take = Take(stem, first.shape[1], first.shape[0], len(paths), rate, timecode)

    created = _make_parents(final.parent)
    # Not mkdtemp: its 0700 mode would end up on the published version folder of a shared farm.
    staging = final.parent / f".{final.name}.staging-{uuid.uuid4().hex[:12]}"
    started: list[Deliverable] = []
    try:
        staging.mkdir()
        try:
            for d in deliverables:
                started.append(d)
                d.start(staging, take)
            pause_at("assembling")
            hashes = _write_frames(paths, first, stylizer, palettes, started)
            delivered = [d.finish() for d in started]
        except DeliveryError as e:  # name the file where it will be, not the staging folder
            raise DeliveryError(str(e).replace(str(staging), str(final))) from None
        try:
            os.rename(staging, final)
        except OSError as e:  # a non-empty folder appeared meanwhile: another assembly of this version
            raise AssemblyError(f"{final}: cannot publish the version folder ({e.strerror})") from None
    except BaseException:
        for writer in started:
            writer.abort()
        shutil.rmtree(staging, ignore_errors=True)
        for folder in reversed(created):
            _rmdir_if_empty(folder)
        raise

    def moved(path: str | Path) -> Path:
        return final / Path(path).relative_to(staging)

    sequence = next((d.frame_files for d in delivered if d.frame_files), None)
    return ShotOutputs(
        dir=final,
        outputs=tuple(
            OutputFile(d.output.kind, str(moved(d.output.path)), d.output.sha256, d.output.frame_count, d.output.details)
            for d in delivered
        ),
        frame_files=tuple(moved(p) for p in sequence) if sequence else None,
        frame_hashes=tuple(hashes),
        frame_count=len(paths),
        fps=rate,
        lut_sha256=stylizer.lut_sha256,
    )


def _write_frames(
    paths: list[Path],
    first: Frame,
    stylize: Stylizer,
    palettes: Sequence[tuple[Path, Path] | None],
    deliverables: list[Deliverable],
) -> list[str]:
    """Every output frame, stylized once per distinct source, to every deliverable; the frames' pixel hashes."""
    h, w = first.shape[:2]
    cache: OrderedDict[Path, Picture] = OrderedDict()
    hashes: list[str] = []
    for index, path in enumerate(paths, start=1):
        picture = cache.get(path)
        if picture is None:
            frame = first if index == 1 else _read(path, index)
            if frame.shape != first.shape:
                got = f"{frame.shape[1]}x{frame.shape[0]}"
                raise AssemblyError(f"{path}: frame {index}: size {got}, expected {w}x{h} like frame 1")
            picture = cache[path] = Picture(stylize(frame, palettes[index - 1] if palettes else None))
            if len(cache) > _CACHED_SOURCES:
                cache.popitem(last=False)
        cache.move_to_end(path)
        for d in deliverables:
            d.add(picture)
        hashes.append(picture.hash)
    return hashes


def _read(path: Path, index: int) -> Frame:
    try:
        return read_frame(path)
    except ValueError as e:
        raise AssemblyError(f"{e} (frame {index})") from None


def _make_parents(folder: Path) -> list[Path]:
    """mkdir -p that returns the folders it created, outermost first, so a failure can remove them."""
    missing = [d for d in (folder, *folder.parents) if not d.exists()][::-1]
    for d in missing:
        d.mkdir(exist_ok=True)
    return missing


def _rmdir_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass
