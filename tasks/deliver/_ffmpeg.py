"""Movie deliverables through ffmpeg: raw RGB frames piped in, and the file read back with ffmpeg itself.

imageio-ffmpeg ships ffmpeg but no ffprobe, so the read-back asks ffmpeg to describe the file (`-i`) and
to list its video packets without decoding them (`-c copy -f framecrc`): the stream line gives codec,
profile, pixel format, range and colour tags; the packets give the exact frame count, time base and
each frame's duration. The `ffprobe` commands in README.md ("Deliverables") show the same facts.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from shot_db.records import OutputFile
from tasks.deliver.base import Deliverable, Delivered, DeliveryError, Picture, Take
from tooncrafter_model.frames import Frame
from tooncrafter_model.store import sha256_file

# ---------------------------------------------------------------------------------------- reading back

_STREAM = re.compile(
    r"Stream #\d+:\d+\S*: Video: (?P<codec>\w+)(?: \((?P<profile>[^)]*)\))?(?: \((?P<tag>\w+) / 0x[0-9A-Fa-f]+\))?, "
    r"(?P<pix_fmt>\w+)(?:\((?P<tags>[^)]*)\))?, (?P<width>\d+)x(?P<height>\d+)"
)
_TIMECODE = re.compile(r"^\s*timecode\s*:\s*(\d\d:\d\d:\d\d[:;]\d\d)\s*$", re.M)
_FIELD_ORDERS = {"progressive", "top first", "bottom first", "top coded first", "bottom coded first"}


@dataclass(frozen=True)
class VideoFacts:
    """A movie file's first video stream as ffmpeg reads it back."""

    codec: str
    profile: str | None
    tag: str | None  # the container's fourcc: avc1, ap4h...
    pix_fmt: str
    range: str | None  # tv (limited) or pc (full)
    colour: tuple[str, str, str] | None  # (matrix, primaries, transfer) as ffmpeg names them
    width: int
    height: int
    frame_count: int
    fps: Fraction | None  # None when the frames' durations differ (not a constant frame rate)
    timecode: str | None
    moov_first: bool  # an MP4/MOV's index before its media data: plays while it downloads

    def as_details(self) -> dict[str, Any]:
        """The facts an output row keeps."""
        return {
            "codec": self.codec, "profile": self.profile, "pix_fmt": self.pix_fmt, "range": self.range,
            "colour": "/".join(self.colour) if self.colour else None, "width": self.width, "height": self.height,
            "fps": str(self.fps) if self.fps is not None else None, "timecode": self.timecode,
        }  # fmt: skip


def read_back(path: Path) -> VideoFacts:
    """The facts of `path`'s first video stream; DeliveryError when ffmpeg cannot read it as a video."""
    import imageio_ffmpeg

    run = subprocess.run(  # noqa: S603 - our own ffmpeg binary, the path as one argument
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path),
         "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"],
        capture_output=True, text=True, errors="replace", timeout=600, check=False,
    )  # fmt: skip
    stream = _STREAM.search(run.stderr)
    base = re.search(r"^#tb 0: (\d+)/(\d+)$", run.stdout, re.M)
    if run.returncode != 0 or stream is None or base is None:
        lines = run.stderr.strip().splitlines()
        raise DeliveryError(f"{path}: read back: not a readable video ({lines[-1] if lines else 'no message'})")
    durations = {int(line.split(",")[3]) for line in run.stdout.splitlines() if line and not line.startswith("#")}
    count = sum(1 for line in run.stdout.splitlines() if line and not line.startswith("#"))
    fps = None
    if len(durations) == 1 and (d := durations.pop()) > 0:
        fps = 1 / (d * Fraction(int(base.group(1)), int(base.group(2))))
    range_, colour = _tags(stream.group("tags") or "")
    found = _TIMECODE.search(run.stderr)
    return VideoFacts(
        codec=stream.group("codec"), profile=stream.group("profile"), tag=stream.group("tag"),
        pix_fmt=stream.group("pix_fmt"), range=range_, colour=colour,
        width=int(stream.group("width")), height=int(stream.group("height")), frame_count=count, fps=fps,
        timecode=found.group(1) if found else None, moov_first=_moov_first(path),
    )  # fmt: skip


def _tags(text: str) -> tuple[str | None, tuple[str, str, str] | None]:
    """ffmpeg's "(tv, bt709, progressive)": the range, and the colour tags, which it writes once when the
    matrix, primaries and transfer share a name and as "matrix/primaries/transfer" otherwise."""
    range_, colour = None, None
    for item in (part.strip() for part in text.split(",")):
        if item in ("tv", "pc"):
            range_ = item
        elif "/" in item:
            matrix, primaries, transfer = (item.split("/") + ["", ""])[:3]
            colour = (matrix, primaries, transfer)
        elif item and item not in _FIELD_ORDERS:
            colour = (item, item, item)
    return range_, colour


def _moov_first(path: Path) -> bool:
    """Whether the file's top-level boxes put `moov` (the index) before `mdat` (the frames)."""
    with path.open("rb") as f:
        while header := f.read(8):
            if len(header) < 8:
                return False
            size, box = int.from_bytes(header[:4], "big"), header[4:]
            if box in (b"moov", b"mdat"):
                return box == b"moov"
            if size == 1:
                size = int.from_bytes(f.read(8), "big") - 8
            elif size == 0:
                return False
            f.seek(size - 8, 1)
    return False


# ------------------------------------------------------------------------------------------ encoding


class _Encoder:
    """An ffmpeg process fed raw frames on stdin; its messages go to a temporary file (no pipe to drain)."""

    def __init__(self, args: list[str]) -> None:
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.log)  # noqa: S603

    def write(self, raw: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(raw)
        except BrokenPipeError:
            self.proc.wait()
            raise DeliveryError(f"ffmpeg stopped early: {self._message()}") from None

    def finish(self) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            if self.proc.wait() != 0:
                raise DeliveryError(f"ffmpeg failed (exit {self.proc.returncode}): {self._message()}")
        finally:
            self.log.close()

    def kill(self) -> None:
        """Stop at once: after an error elsewhere there is no point waiting for a whole encode."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        self.log.close()

    def _message(self) -> str:
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").strip().splitlines()
        return lines[0] if lines else "no message"  # the first error is the cause; the rest is fallout


@dataclass(frozen=True)
class _Writing:
    """A movie being written: its take, its file, the padding to even sizes, the encoder."""

    take: Take
    path: Path
    pad: tuple[int, int]  # (rows, columns) of edge copies
    encoder: _Encoder


def rgb_to_bt709(stream: Any) -> Any:
    """RGB -> BT.709 limited-range YUV, tagged as such (matrix, primaries, transfer, range), so that
    players do not guess BT.601 for small frames."""
    stream = stream.filter("scale", out_color_matrix="bt709", out_range="tv")
    return stream.filter("setparams", color_primaries="bt709", color_trc="bt709", colorspace="bt709", range="tv")


def _shown(want: object) -> str:
    return " or ".join(sorted(repr(w) for w in want)) if isinstance(want, frozenset) else repr(want)


class FfmpegMovie(Deliverable):
    """A movie file written by ffmpeg from raw RGB frames. Subclasses give the file's suffix, the encoder's
    output options, and what the file must read back as (`expect`)."""

    suffix: ClassVar[str]
    even: ClassVar[bool] = False  # the codec needs even sizes: odd frames get an edge-copied column/row

    def output_options(self, take: Take) -> dict[str, Any]:
        """ffmpeg's output options (codec, pixel format, rate...) for this take."""
        raise NotImplementedError

    def expect(self, take: Take) -> Mapping[str, object]:
        """What the file must read back as: `VideoFacts` field -> its value, or a frozenset of those allowed."""
        raise NotImplementedError

    _writing: _Writing | None = None

    def start(self, folder: Path, take: Take) -> None:
        import ffmpeg
        import imageio_ffmpeg

        path = folder / f"{take.stem}{self.suffix}"
        pad = (take.height % 2, take.width % 2) if self.even else (0, 0)
        size = f"{take.width + pad[1]}x{take.height + pad[0]}"
        rate = f"{take.fps.numerator}/{take.fps.denominator}"
        stream = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=size, framerate=rate)
        stream = rgb_to_bt709(stream).output(str(path), **self.output_options(take))
        args: list[str] = stream.overwrite_output().compile(cmd=imageio_ffmpeg.get_ffmpeg_exe())
        encoder = _Encoder([args[0], "-hide_banner", "-nostats", "-loglevel", "error", *args[1:]])
        self._writing = _Writing(take, path, pad, encoder)

    def _open(self) -> _Writing:
        if self._writing is None:
            raise RuntimeError(f"{self.kind}: add or finish before start")
        return self._writing

    def add(self, picture: Picture) -> None:
        w = self._open()
        try:
            w.encoder.write(picture.encoded(("rgb24", w.pad), lambda frame: _padded(frame, w.pad)))
        except DeliveryError as e:
            raise DeliveryError(f"{w.path}: {e}") from None

    def finish(self) -> Delivered:
        w = self._open()
        try:
            w.encoder.finish()
        except DeliveryError as e:
            raise DeliveryError(f"{w.path}: {e}") from None
        facts = read_back(w.path)
        wrong = [
            f"{name} {getattr(facts, name)!r}, expected {_shown(want)}"
            for name, want in self.expect(w.take).items()
            if not (getattr(facts, name) in want if isinstance(want, frozenset) else getattr(facts, name) == want)
        ]
        if wrong:
            raise DeliveryError(f"{w.path}: read back: " + "; ".join(wrong))
        details = {**facts.as_details(), "bytes": w.path.stat().st_size, "padded": any(w.pad)}
        return Delivered(OutputFile(self.kind, str(w.path), sha256_file(w.path), facts.frame_count, details))

    def abort(self) -> None:
        if self._writing is not None:
            self._writing.encoder.kill()


def _padded(frame: Frame, pad: tuple[int, int]) -> bytes:
    """RGB24 bytes of `frame` with `pad` rows and columns of edge copies (4:2:0 needs even sizes)."""
    rows, columns = pad
    out = np.pad(frame, ((0, rows), (0, columns), (0, 0)), mode="edge") if rows or columns else frame
    return np.ascontiguousarray(out).tobytes()
