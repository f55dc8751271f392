"""Test helpers for media files: read a video back the way a user's player would count it; damage one of its
frames the way a bad copy does."""

from __future__ import annotations

import os
import re
import struct
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple


class VideoProbe(NamedTuple):
    """A video file read back: decoded frame count, mean frame rate, size."""

    frame_count: int
    fps: Fraction
    width: int
    height: int


def probe_video(path: str | os.PathLike[str]) -> VideoProbe:
    """Decode a video's first video stream with ffmpeg (no ffprobe needed): frames, exact mean fps, size."""
    import ffmpeg
    import imageio_ffmpeg

    p = Path(path)
    # framecrc prints the stream time base, the size, then one line per decoded frame with its duration.
    args = ffmpeg.input(str(p)).output("-", format="framecrc", map="0:v:0").compile(cmd=imageio_ffmpeg.get_ffmpeg_exe())
    run = subprocess.run([args[0], "-hide_banner", "-nostats", "-loglevel", "error", *args[1:]], capture_output=True,
                         text=True, check=True)
    tb = re.search(r"^#tb 0: (\d+)/(\d+)$", run.stdout, re.M)
    dims = re.search(r"^#dimensions 0: (\d+)x(\d+)$", run.stdout, re.M)
    durations = [int(line.split(",")[3]) for line in run.stdout.splitlines() if line and not line.startswith("#")]
    assert tb and dims and durations and sum(durations) > 0, f"{p}: no decodable video frames"
    fps = Fraction(len(durations)) / (sum(durations) * Fraction(int(tb.group(1)), int(tb.group(2))))
    return VideoProbe(len(durations), fps, int(dims.group(1)), int(dims.group(2)))


def damage_frame(path: str | os.PathLike[str], packet: int) -> Path:
    """Zero the second half of the video's `packet`-th packet (one frame's data, in file order), in place: a block
    lost in a copy, the container and every other frame intact. For a one-stream MOV/MP4, as write_video writes
    it: its packets lie one after the other in its one `mdat` box."""
    import imageio_ffmpeg

    p = Path(path)
    # framecrc with stream copy lists the packets as stored, each with its size.
    copy = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(p), "-map", "0:v:0", "-c", "copy",
            "-f", "framecrc", "-"]  # fmt: skip
    run = subprocess.run(copy, capture_output=True, text=True, check=True)  # noqa: S603 - our own ffmpeg
    sizes = [int(line.split(",")[4]) for line in run.stdout.splitlines() if line and not line.startswith("#")]
    data = bytearray(p.read_bytes())
    box = 0
    while data[box + 4 : box + 8] != b"mdat":  # top-level boxes: 32-bit size, then type
        box += struct.unpack(">I", data[box : box + 4])[0]
    start = box + 8 + sum(sizes[:packet])
    data[start + sizes[packet] // 2 : start + sizes[packet]] = bytes(sizes[packet] - sizes[packet] // 2)
    p.write_bytes(bytes(data))
    return p
