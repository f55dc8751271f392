"""A shot's full frame sequence -> stylized PNG sequence + H.264 MP4, published atomically.

One pass over the frames: each distinct source is decoded, stylized and PNG-encoded once (a held
drawing repeats its path, so it reuses the encoded bytes), each output frame's PNG is written into a
staging folder beside the version folder and its raw RGB is piped into ffmpeg's stdin. Only when
everything succeeded is the staging folder renamed to the version folder; on failure it is removed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np

from tasks.colour import Stylize, Stylizer
from tooncrafter_model.errors import UserError
from tooncrafter_model.frames import Frame, pixel_hash, read_frame
from tooncrafter_model.store import PNG_DIR, sequence_frame, sha256_file

FpsLike = Fraction | float | int | str
_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CACHED_SOURCES = 16  # distinct drawings kept encoded: covers holds and short cycles, bounds memory


class AssemblyError(UserError):
    """Bad input to an assembly (missing or corrupt image, mixed sizes, bad fps); names file and frame."""


class _EncoderError(Exception):
    """ffmpeg failed; the caller adds which output it was making."""


@dataclass(frozen=True)
class EncodeSettings:
    """Output settings; part of a shot version's assembly key.

    CRF 16 with x264's `animation` tune: ink lines on flat fills show ringing before photographic
    content does. On a 1024x576 synthetic cartoon, CRF 16 was within 0.2 dB of CRF 12 (error there is
    dominated by 4:2:0 chroma at the lines) for 30% fewer bits, while CRF 23 lost 1.1 dB and grew the
    worst line error by a third. The PNGs stay the lossless master. PNG level 1: as fast as any zlib
    level on these frames, and flat cartoons still compress well.
    """

    crf: int = 16
    preset: str = "medium"  # preset and tune are checked by x264 itself: its lists vary by version
    tune: str = "animation"
    png_compression: int = 1

    def __post_init__(self) -> None:
        for field, value, top in (("crf", self.crf, 51), ("png_compression", self.png_compression, 9)):
            if not isinstance(value, int) or not 0 <= value <= top:
                raise AssemblyError(f"{field}: must be an integer from 0 to {top}, got {value!r}")

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain values, for the assembly key and the provenance sidecar."""
        return asdict(self)


@dataclass(frozen=True)
class ShotOutputs:
    """What an assembly wrote: final paths, pixel hashes of the PNGs, the MP4's hash, rate and size."""

    dir: Path
    png_paths: tuple[Path, ...]
    mp4_path: Path
    frame_hashes: tuple[str, ...]
    mp4_sha256: str
    frame_count: int
    fps: Fraction
    lut_sha256: str | None
    padded: bool  # the MP4 has an extra column and/or row (edge copies) because yuv420p needs even sizes
    video_size: tuple[int, int]  # (width, height) of the MP4


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
    mp4_stem: str | None = None,
    settings: EncodeSettings = EncodeSettings(),
) -> ShotOutputs:
    """Write `out_dir/png/<stem>.0001.png ...` and `out_dir/<mp4_stem or stem>.mp4`, one frame per source.

    `palettes` (with palette lock): per source, the two keyframe images of an in-between, None for a
    keyframe. `out_dir` (the version folder) must not exist yet; it appears complete or not at all.
    """
    rate = parse_fps(fps)
    mp4_stem = stem if mp4_stem is None else mp4_stem
    for what, name in (("stem", stem), ("mp4_stem", mp4_stem)):
        if not _STEM.fullmatch(name):
            raise AssemblyError(f"{what}: {name!r} must be letters, digits, '.', '_' or '-' (no path)")
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

    created = _make_parents(final.parent)
    # Not mkdtemp: its 0700 mode would end up on the published version folder of a shared farm.
    staging = final.parent / f".{final.name}.staging-{uuid.uuid4().hex[:12]}"
    try:
        staging.mkdir()
        try:
            png_names, hashes, padded, size = _write_sequence(
                paths, first, rate, staging, stem, mp4_stem, stylizer, palettes, settings
            )
        except _EncoderError as e:
            raise AssemblyError(f"{final / f'{mp4_stem}.mp4'}: {e}") from None
        mp4_sha = sha256_file(staging / f"{mp4_stem}.mp4")
        try:
            os.rename(staging, final)
        except OSError as e:  # a non-empty folder appeared meanwhile: another assembly of this version
            raise AssemblyError(f"{final}: cannot publish the version folder ({e.strerror})") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for d in reversed(created):
            _rmdir_if_empty(d)
        raise
    return ShotOutputs(
        dir=final,
        png_paths=tuple(final / PNG_DIR / n for n in png_names),
        mp4_path=final / f"{mp4_stem}.mp4",
        frame_hashes=tuple(hashes),
        mp4_sha256=mp4_sha,
        frame_count=len(paths),
        fps=rate,
        lut_sha256=stylizer.lut_sha256,
        padded=padded,
        video_size=size,
    )


class _Encoded(NamedTuple):
    png: bytes
    raw: bytes  # RGB24 for ffmpeg, padded to even sizes
    hash: str


def _write_sequence(
    paths: list[Path],
    first: Frame,
    rate: Fraction,
    staging: Path,
    stem: str,
    mp4_stem: str,
    stylize: Stylizer,
    palettes: Sequence[tuple[Path, Path] | None],
    settings: EncodeSettings,
) -> tuple[list[str], list[str], bool, tuple[int, int]]:
    import cv2

    h, w = first.shape[:2]
    pad_h, pad_w = h % 2, w % 2
    size = (w + pad_w, h + pad_h)
    png_dir = staging / PNG_DIR
    png_dir.mkdir()
    png_params = [cv2.IMWRITE_PNG_COMPRESSION, settings.png_compression]
    cache: OrderedDict[Path, _Encoded] = OrderedDict()

    def encode(path: Path, index: int) -> _Encoded:
        frame = first if index == 1 else _read(path, index)
        if frame.shape != first.shape:
            got = f"{frame.shape[1]}x{frame.shape[0]}"
            raise AssemblyError(f"{path}: frame {index}: size {got}, expected {w}x{h} like frame 1")
        frame = stylize(frame, palettes[index - 1] if palettes else None)
        ok, png = cv2.imencode(".png", np.ascontiguousarray(frame[:, :, ::-1]), png_params)
        if not ok:
            raise AssemblyError(f"{path}: frame {index}: PNG encoding failed")
        video = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge") if pad_h or pad_w else frame
        return _Encoded(png.tobytes(), np.ascontiguousarray(video).tobytes(), pixel_hash(frame))

    names: list[str] = []
    hashes: list[str] = []
    args = _ffmpeg_args(staging / f"{mp4_stem}.mp4", size, rate, settings)
    with tempfile.TemporaryFile() as log, _Encoder(args, log) as enc:
        for index, path in enumerate(paths, start=1):
            item = cache.get(path)
            if item is None:
                item = cache[path] = encode(path, index)
                if len(cache) > _CACHED_SOURCES:
                    cache.popitem(last=False)
            cache.move_to_end(path)
            name = sequence_frame(stem, index)
            (png_dir / name).write_bytes(item.png)
            enc.write(item.raw)
            names.append(name)
            hashes.append(item.hash)
        enc.finish()
    return names, hashes, bool(pad_h or pad_w), size


def _ffmpeg_args(mp4: Path, size: tuple[int, int], rate: Fraction, settings: EncodeSettings) -> list[str]:
    import ffmpeg
    import imageio_ffmpeg

    r = f"{rate.numerator}/{rate.denominator}"
    stream = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{size[0]}x{size[1]}", framerate=r)
    # RGB -> BT.709 limited-range YUV, tagged as such, so players don't guess BT.601 for small frames.
    stream = stream.filter("scale", out_color_matrix="bt709", out_range="tv")
    stream = stream.filter("setparams", color_primaries="bt709", color_trc="bt709", colorspace="bt709", range="tv")
    stream = stream.output(
        str(mp4),
        vcodec="libx264",
        pix_fmt="yuv420p",
        crf=settings.crf,
        preset=settings.preset,
        tune=settings.tune,
        r=r,
        movflags="+faststart",
    )
    args: list[str] = stream.overwrite_output().compile(cmd=imageio_ffmpeg.get_ffmpeg_exe())
    return [args[0], "-hide_banner", "-nostats", "-loglevel", "error", *args[1:]]


class _Encoder:
    """An ffmpeg process fed raw frames on stdin; its messages go to `log` (a file: no pipe to drain)."""

    def __init__(self, args: list[str], log: IO[bytes]) -> None:
        self.log = log
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)

    def __enter__(self) -> _Encoder:
        return self

    def write(self, raw: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(raw)
        except BrokenPipeError:
            self.proc.wait()
            raise _EncoderError(f"ffmpeg stopped early: {self._message()}") from None

    def finish(self) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        if self.proc.wait() != 0:
            raise _EncoderError(f"ffmpeg failed (exit {self.proc.returncode}): {self._message()}")

    def _message(self) -> str:
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").strip().splitlines()
        return lines[0] if lines else "no message"  # the first error is the cause; the rest is fallout

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:  # an error in our loop: stop ffmpeg, don't wait for a whole encode
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass


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
