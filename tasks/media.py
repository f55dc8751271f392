"""Media: a shot's source read as numbered frames, whatever the studio handed over.

- **Videos** (MP4, MOV with ProRes or DNxHR, MKV...) are decoded with OpenCV's FFmpeg. Frame numbers are
  the decoded frame's index. A variable-frame-rate capture (a phone's) is placed on the shot's frame grid by
  its timestamps instead: output frame n shows the last frame whose timestamp rounds to n or before (a
  frame the phone skipped repeats the previous one; of two frames in one slot the first is kept). The container's
  frame count is checked against what decodes: a truncated file fails its shot instead of losing drawings.
  A damaged file that still decodes every frame (the decoder conceals the damage: broken pictures, full
  count) fails its shot too: ffmpeg decodes the same frames beside OpenCV, and what its decoder says names
  the damaged frame. Damage no decoder can notice (bits flipped into other valid data) is not seen.
  The start timecode is read from the container (`ffmpeg -i`), so plans and provenance can say where the
  shot sits in the edit.
- **Image sequences**: a folder, or a pattern (`sh010.####.png`, `sh010.%04d.png`) whose files carry their
  frame numbers (often from 1001). A missing number holds the previous drawing, as packages that export
  only the changed drawings write them.

Every problem is a MediaError: one line naming the shot list's field and the file.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tasks.shotlist import SEQUENCE_PATTERN, Shot
from tooncrafter_model.errors import UserError
from tooncrafter_model.frames import DecodedImage, Frame, ImageError, read_image


class MediaError(UserError):
    """A shot's media cannot be used; the message names the shot list, the field and the file, on one line."""


# ----------------------------------------------------------------------------- videos


@dataclass(frozen=True)
class VideoProbe:
    """What a video's container says about it, before anything is decoded."""

    frame_count: int  # as the container lists it (0 when it does not say)
    width: int
    height: int
    fps: float  # average frame rate
    timecode: str | None  # the start timecode (MOV/MXF tmcd track or metadata), e.g. "01:00:00:00"
    variable: bool  # the frames' timestamps are not on one regular grid


_STREAM = re.compile(r"Video: .*?(\d+(?:\.\d+)?)(k?) fps, (\d+(?:\.\d+)?)(k?) tbr")
_TIMECODE = re.compile(r"^\s*timecode\s*:\s*(\d\d[:;.]\d\d[:;.]\d\d[:;.]\d\d)\s*$", re.M)


def _container_metadata(video: Path) -> tuple[str | None, bool]:
    """(start timecode, variable frame rate) from ffmpeg's description of the file."""
    import imageio_ffmpeg

    run = subprocess.run(  # noqa: S603 - our own ffmpeg binary, the path as one argument
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(video)],
        capture_output=True, text=True, errors="replace", timeout=60, check=False,
    )  # fmt: skip
    text = run.stderr
    timecode = _TIMECODE.search(text)
    variable = False
    stream = _STREAM.search(text)
    if stream:
        # "28.57 fps, 30 tbr": the average rate is not the stream's base rate, so timestamps are irregular.
        avg = float(stream.group(1)) * (1000 if stream.group(2) else 1)
        base = float(stream.group(3)) * (1000 if stream.group(4) else 1)
        variable = base > 0 and abs(avg - base) / base > 0.01
    return (timecode.group(1) if timecode else None), variable


def _open(shot: Shot, video: Path) -> Any:
    import cv2

    shown = shot.shown(video)
    if not video.is_file():
        raise MediaError(f"{shot.where('source')}: {shown}: video file not found")
    # OpenCV prints its FFmpeg's messages on the farm's stderr, hundreds for one damaged frame: `_checked`
    # makes them the shot's one line instead. OpenCV reads this when it opens its first video.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        cap.release()
        raise MediaError(f"{shot.where('source')}: {shown}: not a readable video")
    return cap


def probe_video(shot: Shot, video: Path) -> VideoProbe:
    """The video's size, frame count, rate and timecode, checked against the shot's limits before decoding."""
    import cv2

    cap = _open(shot, video)
    try:
        count = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        cap.release()
    shown, limits = shot.shown(video), shot.limits
    if width * height > limits.max_image_pixels:
        raise MediaError(
            f"{shot.where('source')}: {shown}: {width}x{height} frames are over the limit of "
            f"{limits.max_image_pixels} pixels (setting limits.max_image_pixels)"
        )
    start = shot.start or 0
    last = shot.end if shot.end is not None else count - 1
    if last - start + 1 > limits.max_shot_frames:
        raise MediaError(
            f"{shot.where('source')}: {shown}: {last - start + 1} frames, over the limit of {limits.max_shot_frames} "
            "(setting limits.max_shot_frames); give the shot a start and an end"
        )
    timecode, variable = _container_metadata(video)
    return VideoProbe(count, width, height, fps, timecode, variable)


def video_frames(
    shot: Shot, video: Path, probe: VideoProbe, only: set[int] | None = None, *, check: bool = True
) -> Iterator[tuple[int, Frame | None]]:
    """(frame number, RGB frame) from the video's first frame on; None repeats the previous frame.

    Frames before the shot's start are skipped without being converted; decoding stops after its end.
    With `only` (a constant-rate video), frames with other numbers are not converted either (None).
    Raises MediaError when fewer frames decode than the container lists, or, with `check`, once they are all
    read, when ffmpeg's decoder noticed damage in one (`_checked`).
    """
    frames = _frames(shot, video, probe, only)
    return _checked(shot, video, probe, frames) if check else frames


# With -debug_ts, the thread that runs the decoder logs "decoder -> pts:..." for each frame it outputs, after
# "corrupt decoded frame" when the decoder flagged that frame. With -threads 1 the decoder's own messages
# come from that thread too, so an error is followed by the frame it was found in (or one that waited for it).
_DECODED = "] decoder -> pts:"
_CORRUPT = "corrupt decoded frame"
_ERROR = re.compile(r"\[(?:error|fatal|panic)\] (.*)")
# Frames a decoder may decode before it shows an earlier one (H.264's and HEVC's most): a shot's last frames
# may be drawn from a reference that many frames after its end.
_REORDER = 16


def _checked(
    shot: Shot, video: Path, probe: VideoProbe, frames: Iterator[tuple[int, Frame | None]]
) -> Iterator[tuple[int, Frame | None]]:
    """`frames`, while ffmpeg decodes the same ones on another core; MediaError at the end when its decoder
    noticed damage it concealed (the file still decodes every frame, some of them broken)."""
    import imageio_ffmpeg

    # The shot's frames and the references its last ones may use; then as many more, whose flags may name the
    # frame an error was found in.
    limit = None if shot.end is None or probe.variable else shot.end + 1 + _REORDER
    stop = ["-frames:v", str(limit + _REORDER)] if limit else []
    # Its pictures are thrown away: H.264's deblocking (an eighth of its decoding) is skipped.
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+info",
               "-debug_ts", "-threads", "1", "-skip_loop_filter", "all", "-i", str(video), "-map", "0:v:0", *stop,
               "-f", "null", "-"]  # fmt: skip
    # The log goes to a file: no pipe to drain while the frames are read, and a long shot's costs no memory.
    with tempfile.TemporaryFile() as log, subprocess.Popen(  # noqa: S603 - our own ffmpeg, the path as one argument
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
    ) as decoder:
        try:
            yield from frames
        except BaseException:  # the frames failed, or the reader stopped early: the verdict is not wanted
            decoder.kill()
            raise
        decoder.wait()
        log.seek(0)
        damage = _damage(io.TextIOWrapper(log, errors="replace"), limit)
    if damage:
        count = f" of {probe.frame_count}" if probe.frame_count else ""
        raise MediaError(
            f"{shot.where('source')}: {shot.shown(video)}: frame {damage[0]}{count} is damaged (decoder: "
            f"{damage[1]}); re-export the video"
        )


def _damage(log: Iterable[str], limit: int | None) -> tuple[int, str] | None:
    """(the damaged frame's index, what the decoder said) from `_checked`'s log when it is one of the first `limit`
    frames (any when None); None when the decoder said nothing of them.

    The frame is the one the decoder flags corrupt after its first error (H.264, ProRes and MPEG-4 flag theirs,
    up to `_REORDER` frames later), else the first it output after that error (codecs that flag nothing, DNxHR
    or Motion JPEG, are intra-only). A flag with no error before it is damage too.
    """
    decoded, flagged, said = 0, False, ""
    first: int | None = None
    found: int | None = None
    for line in log:
        if _DECODED in line:
            if flagged:
                found, said = decoded, said or _CORRUPT
                break
            if first is not None and decoded == first + _REORDER:  # no flag came: a codec that flags nothing
                break
            decoded += 1
        elif _CORRUPT in line:
            flagged = True
        elif first is None and (error := _ERROR.search(line)):
            first, said = decoded, error.group(1).strip()  # the first symptom; what follows is its fallout
    found = first if found is None else found
    return None if found is None or (limit is not None and found >= limit) else (found, said)


def _frames(
    shot: Shot, video: Path, probe: VideoProbe, only: set[int] | None
) -> Iterator[tuple[int, Frame | None]]:
    """`video_frames`' frames as OpenCV decodes them, the frame count checked."""
    import cv2

    cap = _open(shot, video)
    start = shot.start or 0
    end = shot.end
    decoded = 0
    try:
        slot, first_ms = 0, None
        while True:
            if not cap.grab():
                break
            decoded += 1
            if probe.variable:
                ms = float(cap.get(cv2.CAP_PROP_POS_MSEC))
                first_ms = ms if first_ms is None else first_ms
                number = round((ms - first_ms) / 1000.0 * shot.fps)
                if number < slot:
                    continue  # a second frame in a slot already shown
            else:
                number = decoded - 1
            if end is not None and number > end:
                return
            # Slots the capture skipped show the frame before them.
            for held in range(slot, number):
                if held >= start:
                    yield held, None
            slot = number + 1
            if number < start:
                continue
            if only is not None and not probe.variable and number not in only:
                yield number, None
                continue
            ok, bgr = cap.retrieve()
            if not ok or bgr is None:
                break
            yield number, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
    # A container that lists more frames than decode is a truncated or damaged file; its missing frames
    # would silently become a held drawing. MOV/MP4 list the exact count; others may round their estimate.
    slack = 0 if video.suffix.lower() in (".mov", ".mp4", ".m4v") else 1
    if probe.frame_count and decoded + slack < probe.frame_count:
        raise MediaError(
            f"{shot.where('source')}: {shot.shown(video)}: decoded {decoded} of the {probe.frame_count} frames "
            "its container lists (truncated or damaged file)"
        )


# ----------------------------------------------------------------------------- images and image sequences

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".tga", ".jpg", ".jpeg", ".bmp")
_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<digits>\d+)(?P<suffix>\.[A-Za-z]+)$")


def read_picture(shot: Shot, field: str, path: Path) -> DecodedImage:
    """An image of the shot (keyframe, sketch or sequence frame) under its limits and background colour."""
    try:
        return read_image(path, background=shot.background, max_pixels=shot.limits.max_image_pixels)
    except ImageError as exc:
        raise MediaError(f"{shot.where(field)}: {shot.shown(path)}: {exc.reason}") from None


@dataclass(frozen=True)
class ImageSequence:
    """The files of an image sequence by frame number (taken from their names)."""

    files: dict[int, Path]

    @property
    def first(self) -> int:
        """The lowest frame number on disk."""
        return min(self.files)

    @property
    def last(self) -> int:
        """The highest frame number on disk."""
        return max(self.files)

    def gaps(self, first: int, last: int) -> list[tuple[int, int]]:
        """Runs of missing frame numbers within [first, last], as (first missing, last missing)."""
        runs: list[tuple[int, int]] = []
        for n in range(first, last + 1):
            if n in self.files:
                continue
            if runs and runs[-1][1] == n - 1:
                runs[-1] = (runs[-1][0], n)
            else:
                runs.append((n, n))
        return runs

    def showing(self, number: int) -> Path:
        """The file shown at frame `number`: its own, or the last one before it (a held drawing)."""
        return self.files[max(n for n in self.files if n <= number)]


def _pattern(name: str) -> tuple[re.Pattern[str], int]:
    match = SEQUENCE_PATTERN.search(name)
    assert match is not None
    token = match.group(0)
    width = len(token) if token.startswith("#") else int(match.group(1) or 0)
    regex = re.escape(name[: match.start()]) + r"(?P<digits>\d+)" + re.escape(name[match.end() :])
    return re.compile(regex + r"\Z"), width


def find_sequence(shot: Shot, spec: Path) -> ImageSequence:
    """The numbered files of a folder or a pattern; MediaError when there are none, or several sequences."""
    shown = shot.shown(spec)
    where = shot.where("source")
    files: dict[int, Path] = {}
    if SEQUENCE_PATTERN.search(spec.name):
        folder = spec.parent
        if not folder.is_dir():
            raise MediaError(f"{where}: {shown}: folder {shot.shown(folder)} not found")
        regex, width = _pattern(spec.name)
        for path in folder.iterdir():
            match = regex.match(path.name)
            digits = match.group("digits") if match else ""
            # "####" means at least four digits, zero-padded: 1001 and 10001 match, 01001 does not.
            if match and (len(digits) == width or (len(digits) > width and not digits.startswith("0"))):
                files[int(digits)] = path
    else:
        if not spec.is_dir():
            raise MediaError(f"{where}: {shown}: folder not found")
        groups: dict[tuple[str, str], dict[int, Path]] = {}
        for path in spec.iterdir():
            match = _NUMBERED.match(path.name)
            if match and match.group("suffix").lower() in IMAGE_SUFFIXES:
                groups.setdefault((match.group("prefix"), match.group("suffix")), {})[int(match.group("digits"))] = path
        if len(groups) > 1:
            names = sorted(f"{prefix}#{suffix}" for prefix, suffix in groups)
            raise MediaError(
                f"{where}: {shown}: holds {len(groups)} image sequences ({', '.join(names[:3])}); "
                "name one with a pattern such as rough/sh010.####.png"
            )
        files = next(iter(groups.values()), {})
    if not files:
        raise MediaError(f"{where}: {shown}: no numbered image files found")
    highest = max(files)
    if highest > shot.limits.max_frame:
        raise MediaError(
            f"{where}: {shot.shown(files[highest])}: frame number {highest} is over the limit of "
            f"{shot.limits.max_frame} (setting limits.max_frame)"
        )
    return ImageSequence(dict(sorted(files.items())))
