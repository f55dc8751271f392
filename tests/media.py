"""Test helpers for media files: read a video back the way a user's player would count it."""

from __future__ import annotations

import os
import re
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
