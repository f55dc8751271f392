"""Editorial cuts in and out: a cut read as a shot list, and a timeline of renders written back as a cut.

In: an OpenTimelineIO timeline (`.otio`) or a CMX 3600 EDL (`.edl`) is a shot list.

Each clip of the cut's first video track is a shot: its name is the code, its media file the source,
its source range the frame range (0-based frames of the file, counted from the media's own start
timecode). Gaps, transitions and black or bars events are not shots. Each shot keeps where it sat in
the cut (`Edit`), so a timeline of the rendered shots can be rebuilt with the same clips and timing.

Everything else a shot needs comes from defaults, as in a YAML shot list: a sidecar `CUT.otio.yaml`
(or `CUT.edl.yaml`) holding `defaults:`, and the command line's. An OTIO clip may also carry shot fields
in its metadata under `toonfarm` (`backend`, `prompt`, `render`, `colour`...). An EDL holds no frame
rate: `fps` must come from the defaults, and is then the rate of every timecode in it.

Out: `cut_timeline` lays clips on one video track at their record frames, gaps between them, from the
timeline's start timecode; `write_cut` writes it as OTIO or as an EDL whose record timecodes start where
the timeline does (tasks/export.py decides which version and file fills each clip).
"""

from __future__ import annotations

import re
import subprocess
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tooncrafter_model.errors import UserError
from tooncrafter_model.store import atomic_write

CUT_SUFFIXES = (".otio", ".edl")
_TIMECODE = re.compile(r"^\s*timecode\s*:\s*(\d\d:\d\d:\d\d[:;]\d\d)\s*$", re.M | re.I)  # MOV, MP4: timecode; MKV: TIMECODE


class CutError(UserError):
    """A cut that cannot be read as a shot list; one line naming the file and the clip or field."""


class Edit(BaseModel):
    """Where a shot sat in the cut it came from: enough to put its render back in the same place.

    Frames count at `rate` from timecode 00:00:00:00, so `record_in` includes the timeline's start
    timecode (often 01:00:00:00) and `source_in` is the media's own timecode of the first frame used.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    cut: str = Field(description="the timeline's name")
    clip: int = Field(ge=0, description="the clip's index among the video track's clips")
    name: str = Field(description="the clip's name in the cut")
    rate: str = Field(description="frames per second of the cut, exact: '24', '24000/1001'")
    record_in: int = Field(ge=0, description="the clip's first frame on the cut's timecode")
    duration: int = Field(gt=0, description="frames the clip lasts")
    source_in: int = Field(ge=0, description="the media's timecode of the first frame used, in frames")
    start: int = Field(0, ge=0, description="the cut's start timecode in frames: where its record timing begins")

    @property
    def record_timecode(self) -> str:
        """The clip's record in point, e.g. 01:00:04:12."""
        return _timecode(self.record_in, self.rate)

    @property
    def source_timecode(self) -> str:
        """The timecode of the clip's first source frame: the start timecode its render should carry."""
        return _timecode(self.source_in, self.rate)


def _timecode(frames: int, rate: str) -> str:
    import opentimelineio as otio

    fps = float(Fraction(rate))
    return str(otio.opentime.to_timecode(otio.opentime.RationalTime(frames, fps), fps))


@dataclass(frozen=True)
class CutShots:
    """A cut read as raw shot fields (validated by the shot list like YAML rows) and a label per shot."""

    shots: list[dict[str, Any]]
    labels: list[str]  # "clip 3 'sh030'", for error messages


def sidecar_of(cut: Path) -> Path:
    """The YAML file beside a cut that holds its defaults: `CUT.otio` -> `CUT.otio.yaml`."""
    return cut.with_name(cut.name + ".yaml")


def read_cut(name: str, text: str, suffix: str, root: Path, fps: Any = None) -> CutShots:
    """The shots of a cut's first video track. `fps` (from the defaults) is an EDL's rate; an OTIO
    timeline carries its own. Raises CutError, one line naming `name` and the clip."""
    import opentimelineio as otio

    if suffix == ".edl":
        if fps is None:
            raise CutError(f"{name}: fps: an EDL holds no frame rate; set defaults.fps in {sidecar_of(Path(name)).name} or --default fps=24")
        try:
            rate = float(Fraction(str(fps)))
        except (ValueError, ZeroDivisionError):
            raise CutError(f"{name}: fps: must be a positive number (got {fps!r})") from None
    try:
        if suffix == ".edl":
            timeline = otio.adapters.read_from_string(text, "cmx_3600", rate=rate)
        else:
            timeline = otio.adapters.read_from_string(text, "otio_json")
    except Exception as exc:  # the adapters raise ValueError, OTIOError, and plain errors on odd input
        raise CutError(f"{name}: not a readable {suffix[1:].upper()} cut ({_first_line(exc)})") from None
    if not isinstance(timeline, otio.schema.Timeline):
        raise CutError(f"{name}: holds a {type(timeline).__name__}, not a timeline")
    tracks = list(timeline.video_tracks())
    if not tracks:
        raise CutError(f"{name}: the cut has no video track")
    track = tracks[0]
    placed = track.range_of_all_children()
    # The first frame of the track on the cut's timecode: a timeline's start timecode, or (an EDL read by
    # OTIO) a track trimmed to start that many frames before zero.
    offset = timeline.global_start_time or otio.opentime.RationalTime(0, 24)
    if track.source_range is not None:
        offset -= track.source_range.start_time
    shots: list[dict[str, Any]] = []
    labels: list[str] = []
    for item in track:
        if isinstance(item, (otio.schema.Gap, otio.schema.Transition)):
            continue
        label = f"clip {len(labels) + 1} {item.name!r}"
        if not isinstance(item, otio.schema.Clip):
            raise CutError(f"{name}: {label}: a nested {type(item).__name__}; flatten the cut to one video track of clips")
        if isinstance(item.media_reference, otio.schema.GeneratorReference):
            continue  # black or bars: filler, not a shot
        labels.append(label)
        shots.append(_shot(item, placed[item], offset, timeline.name or Path(name).stem, len(shots), root, f"{name}: {label}"))
    if not shots:
        raise CutError(f"{name}: no clips on the first video track")
    return CutShots(shots, labels)


def _shot(clip: Any, placed: Any, offset: Any, cut: str, index: int, root: Path, where: str) -> dict[str, Any]:
    import opentimelineio as otio

    if len(clip.effects):
        kinds = ", ".join(sorted({type(e).__name__ for e in clip.effects}))
        raise CutError(f"{where}: effects: {kinds}; a retimed or frozen clip cannot be in-betweened as cut")
    media = clip.media_reference
    if isinstance(media, otio.schema.ImageSequenceReference):
        raise CutError(f"{where}: media: an image sequence; each shot's source must be one video file")
    if not isinstance(media, otio.schema.ExternalReference) or not media.target_url:
        raise CutError(f"{where}: media: the clip names no media file (in an EDL: a '* FROM CLIP:' comment)")
    source = _local_path(media.target_url, where)
    used = clip.source_range if clip.source_range is not None else media.available_range
    if used is None:
        raise CutError(f"{where}: source range: the clip has none, and its media no available range")
    rate = used.start_time.rate
    source_in = round(used.start_time.value)
    duration = round(used.duration.rescaled_to(rate).value)
    if media.available_range is not None:
        media_in = round(media.available_range.start_time.rescaled_to(rate).value)
    else:
        media_in = media_timecode((root / source) if not Path(source).is_absolute() else Path(source), rate) or 0
    start = source_in - media_in
    if start < 0:
        raise CutError(f"{where}: source range: starts at {_tc(source_in, rate)}, before the media's first frame at {_tc(media_in, rate)}")
    record_in = (placed.start_time + offset).rescaled_to(rate).to_frames()
    cut_start = max(0, offset.rescaled_to(rate).to_frames())
    extra = clip.metadata.get("toonfarm", {})
    if not hasattr(extra, "items"):
        raise CutError(f"{where}: metadata.toonfarm: must be a mapping of shot fields")
    exact = Fraction(rate).limit_denominator(1001)
    return {
        **_plain(extra),
        "code": clip.name,
        "source": source,
        "fps": f"{exact.numerator}/{exact.denominator}",
        "start": start,
        "end": start + duration - 1,
        "edit": {
            "cut": cut, "clip": index, "name": clip.name, "rate": f"{exact.numerator}/{exact.denominator}",
            "record_in": record_in, "duration": duration, "source_in": source_in, "start": cut_start,
        },
    }


def _plain(value: Any) -> Any:
    """OTIO's metadata containers as plain dicts and lists."""
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "AnyVector":  # OTIO's list type
        return [_plain(v) for v in value]
    return value


def _local_path(url: str, where: str) -> str:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("", "file"):
        return urllib.parse.unquote(parsed.path) if parsed.scheme else url
    raise CutError(f"{where}: media: {url!r} is not a local file")


def _tc(frames: int, rate: float) -> str:
    import opentimelineio as otio

    return str(otio.opentime.to_timecode(otio.opentime.RationalTime(frames, rate), rate))


def media_timecode(path: Path, rate: float) -> int | None:
    """The start timecode a video file carries (as ffmpeg reports it), in frames at `rate`; None when
    the file has none or cannot be read (detection reports unreadable media per shot)."""
    import imageio_ffmpeg
    import opentimelineio as otio

    if not path.is_file():
        return None
    run = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True
    )  # no output named: ffmpeg only describes the input (and exits 1, which is expected)
    found = _TIMECODE.search(run.stderr)
    if found is None:
        return None
    return int(otio.opentime.from_timecode(found.group(1), rate).to_frames())


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


# ------------------------------------------------------------------------------------- writing a cut


@dataclass(frozen=True)
class CutClip:
    """One clip as a written cut places it: where (record frame and length, at the timeline's rate) and
    what fills it: a file whose first frame carries timecode `media_start` (in frames), or nothing (a gap
    keeps the place of a shot with nothing to show)."""

    name: str
    record_in: int
    duration: int
    media: Path | None = None
    media_start: int = 0
    media_frames: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)


def cut_timeline(name: str, rate: Fraction, start: int, clips: Sequence[CutClip]) -> Any:
    """An OTIO timeline starting at timecode `start` (frames at `rate`) with one video track: each clip at
    its record frame, gaps where nothing is placed. Clips must not overlap."""
    import opentimelineio as otio

    fps = float(rate)

    def span(frames: int) -> Any:
        return otio.opentime.RationalTime(frames, fps)

    timeline = otio.schema.Timeline(name=name, global_start_time=span(start))
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    cursor = start
    for clip in sorted(clips, key=lambda c: c.record_in):
        if clip.record_in < cursor:
            raise CutError(f"{name}: {clip.name}: starts at {_tc(clip.record_in, fps)}, inside the clip before it")
        if clip.record_in > cursor:
            track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(span(0), span(clip.record_in - cursor))))
        if clip.media is None:
            track.append(otio.schema.Gap(name=clip.name, source_range=otio.opentime.TimeRange(span(0), span(clip.duration))))
        else:
            available = otio.opentime.TimeRange(span(clip.media_start), span(clip.media_frames or clip.duration))
            media = otio.schema.ExternalReference(target_url=clip.media.as_uri(), available_range=available)
            used = otio.opentime.TimeRange(span(clip.media_start), span(clip.duration))
            track.append(otio.schema.Clip(name=clip.name, media_reference=media, source_range=used,
                                          metadata=dict(clip.metadata)))  # fmt: skip
        cursor = clip.record_in + clip.duration
    return timeline


def write_cut(timeline: Any, path: Path) -> None:
    """`timeline` as an OTIO file or a CMX 3600 EDL, by `path`'s suffix; written atomically."""
    import copy

    import opentimelineio as otio

    suffix = path.suffix.lower()
    if suffix not in CUT_SUFFIXES:
        raise CutError(f"{path}: a cut is written as .otio or .edl")
    if suffix == ".otio":
        text = otio.adapters.write_to_string(timeline, "otio_json")
    else:
        # The EDL writer counts record time from the track's own start: trim the track to begin at the
        # timeline's start timecode (as OTIO reads an EDL that starts at 01:00:00:00) so the record
        # timecodes come out as on the timeline.
        edl = copy.deepcopy(timeline)
        (track,) = edl.video_tracks()
        start = edl.global_start_time or otio.opentime.RationalTime(0, track.duration().rate)
        track.source_range = otio.opentime.TimeRange(-start, track.duration())
        text = otio.adapters.write_to_string(edl, "cmx_3600", rate=start.rate)
    with atomic_write(path, "w") as f:
        f.write(text)
