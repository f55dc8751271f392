"""Detect: a shot's hard cuts and held drawings, as keyframes and the pairs to in-between.

A video is decoded once. Every frame is compared with the frame before it, twice:

- PySceneDetect's content score (ContentDetector's mean HSV difference over the whole frame, read back
  from a StatsManager): at or above `cut_threshold` the frame starts a new scene (a hard cut), at or above
  `drawing_threshold` a new drawing;
- a local score, the largest mean difference over 8x8-pixel blocks: at or above `local_threshold` the
  frame starts a new drawing too. A blink or a mouth change moves a few pixels a lot, which the frame-wide
  mean dilutes below any usable threshold (a blink scored 0.13-0.21 there, and 33 here).

Anything else is a held drawing. A scan is remembered under `<store>/scans/`, keyed by the video's
content, the frame range and the thresholds, so re-running an unchanged shot list decodes nothing. Measured on `tasks.synthetic` cartoons written as H.264 (crf 18-28, at
128x80 and 1024x576): held frames score at most 0.22 (content) and 5.4 (local); pose changes at least 1.8
and 55; a hard cut about 42-84. At crf 35 on tiny frames, holds reach 1.06 and 31: raise the thresholds
for such sources.

Conventions: frame numbers are 0-based source frames, also inside a frame range. The range's first frame
always starts a drawing and is never listed as a cut; `cuts` are the later frames where a new scene
starts. Pairs join consecutive keyframes of one scene, never across a cut; the last drawing of a scene is
held to the scene's end. Keyframes are stored losslessly and content-addressed as
`<store>/keyframes/<pixel hash>.png`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tasks.shotlist import Shot
from tooncrafter_model.errors import UserError
from tooncrafter_model.frames import Frame, pixel_hash, read_frame, write_frame
from tooncrafter_model.store import Store, sha256_file, write_json


class MediaError(UserError):
    """A shot's media cannot be used; the message names the shot list, the field and the file, on one line."""


@dataclass(frozen=True)
class DetectConfig:
    """Thresholds on a frame's difference to the previous one (0-255 scales): content score and local score."""

    drawing_threshold: float = 1.0
    cut_threshold: float = 27.0  # ContentDetector's own default for hard cuts
    local_threshold: float = 12.0  # on the largest 8x8-block mean difference of BGR values
    # Frames wider than this are scored downscaled the way PySceneDetect's SceneManager does it (bilinear to
    # about 256 pixels wide; its thresholds are tuned there), which is 3x faster on HD; 0 = full resolution.
    analysis_width: int = 256

    def __post_init__(self) -> None:
        if not 0 < self.drawing_threshold < self.cut_threshold or self.local_threshold <= 0:
            raise ValueError("DetectConfig needs 0 < drawing_threshold < cut_threshold and local_threshold > 0")
        if self.analysis_width < 0:
            raise ValueError("DetectConfig.analysis_width must be >= 0")


@dataclass(frozen=True)
class Keyframe:
    """The first frame of a drawing: its source frame number, pixel hash and stored PNG."""

    frame: int
    pixel_hash: str
    path: Path


@dataclass(frozen=True)
class Pair:
    """Two consecutive drawings of one scene (keyframe frame numbers) and how many in-betweens go between."""

    a: int
    b: int
    inbetweens: int

    @property
    def times(self) -> tuple[float, ...]:
        """Where each in-between lies between a (0) and b (1): k / (n + 1) for k = 1..n."""
        n = self.inbetweens
        return tuple(k / (n + 1) for k in range(1, n + 1))


@dataclass(frozen=True)
class ShotPlan:
    """What a shot needs rendered: its frame range, scenes, keyframes and pairs."""

    shot: Shot
    frame_count: int  # frames in the range
    first_frame: int  # source frame number of the range's first frame
    width: int
    height: int
    cuts: list[int]
    keyframes: list[Keyframe]
    pairs: list[Pair]
    sketches: list[Keyframe] = field(default_factory=list)  # sketch guidance, stored like keyframes

    @property
    def last_frame(self) -> int:
        """Source frame number of the range's last frame."""
        return self.first_frame + self.frame_count - 1

    def to_json(self) -> dict[str, Any]:
        """The plan as plain JSON data: code, cuts, keyframe frames and pairs."""
        return {
            "code": self.shot.code,
            "cuts": list(self.cuts),
            "keyframes": [k.frame for k in self.keyframes],
            "pairs": [{"a": p.a, "b": p.b, "inbetweens": p.inbetweens} for p in self.pairs],
        }


# ----------------------------------------------------------------------------- frame layout


@dataclass(frozen=True)
class KeySlot:
    """An output frame that shows keyframe `keyframe` (an index into plan.keyframes)."""

    keyframe: int


@dataclass(frozen=True)
class InbetweenSlot:
    """An output frame that shows in-between `index` (0-based, at pair.times[index]) of pair `pair`."""

    pair: int
    index: int


@dataclass(frozen=True)
class HoldSlot:
    """An output frame that holds keyframe `keyframe` (the last drawing of a scene, held to its end)."""

    keyframe: int


Slot = KeySlot | InbetweenSlot | HoldSlot


def frame_layout(plan: ShotPlan) -> list[Slot]:
    """What every output frame shows, in order: a keyframe, an in-between of a pair, or a held keyframe."""
    # With in-betweens derived from the gaps there are plan.frame_count entries. A fixed count per gap
    # re-spaces the timeline; only the holds that end a scene keep their source length.
    pairs_from = {p.a: (i, p) for i, p in enumerate(plan.pairs)}
    scene_ends = [c - 1 for c in plan.cuts] + [plan.last_frame]
    layout: list[Slot] = []
    for k, key in enumerate(plan.keyframes):
        layout.append(KeySlot(k))
        if key.frame in pairs_from:
            p, pair = pairs_from[key.frame]
            layout.extend(InbetweenSlot(p, j) for j in range(pair.inbetweens))
        else:
            end = next(e for e in scene_ends if e >= key.frame)
            layout.extend(HoldSlot(k) for _ in range(end - key.frame))
    return layout


# ----------------------------------------------------------------------------- detection


def detect_shot(shot: Shot, store_dir: str | os.PathLike[str], config: DetectConfig = DetectConfig()) -> ShotPlan:
    """Find the shot's cuts and drawings, store its keyframes under `<store_dir>/keyframes/`, and plan its pairs.

    Raises MediaError (one line naming the shot list field and the file) for missing, unreadable, empty or
    mismatched media and for a frame range outside the source.
    """
    store = Store(Path(store_dir))
    if shot.source.video is not None:
        first, count, size, cuts, drawings = _scan_video_cached(shot, shot.source.video, config, store)
    else:
        first, count, size, cuts, drawings = _scan_images(shot, store.keyframe)
    sketches = [
        _store(_read_image(shot, f"sketches[{i}].image", s.image, size), s.frame, store.sketch)
        for i, s in enumerate(shot.sketches)
    ]
    pairs = []
    for a, b in zip(drawings, drawings[1:], strict=False):
        if b.frame in cuts:
            continue
        n = shot.render.inbetweens if shot.render.inbetweens is not None else b.frame - a.frame - 1
        pairs.append(Pair(a.frame, b.frame, n))
    return ShotPlan(
        shot=shot,
        frame_count=count,
        first_frame=first,
        width=size[0],
        height=size[1],
        cuts=cuts,
        keyframes=drawings,
        pairs=pairs,
        sketches=sketches,
    )


def _read_image(shot: Shot, name: str, path: Path, size: tuple[int, int] | None) -> Frame:
    """An image of the shot list, or MediaError naming the field; `size` (w, h) is enforced when given."""
    try:
        frame = read_frame(path)
    except ValueError:
        reason = "image file not found" if not path.is_file() else "not a readable image"
        raise MediaError(f"{shot.where(name)}: {shot.shown(path)}: {reason}") from None
    here = (frame.shape[1], frame.shape[0])
    if size is not None and here != size:
        raise MediaError(
            f"{shot.where(name)}: {shot.shown(path)}: size {here[0]}x{here[1]} differs from the "
            f"first keyframe's {size[0]}x{size[1]}"
        )
    return frame


def _store(frame: Frame, number: int, path_of: Callable[[str], Path]) -> Keyframe:
    digest = pixel_hash(frame)
    path = path_of(digest)
    if not path.exists():
        write_frame(path, frame)
    return Keyframe(number, digest, path)


Scan = tuple[int, int, tuple[int, int], list[int], list[Keyframe]]
_SCAN_VERSION = 1  # bump when scanning changes what it finds


def _scan_video_cached(shot: Shot, video: Path, config: DetectConfig, store: Store) -> Scan:
    """`_scan_video`, remembered by the video's content (not its name or mtime), range and thresholds:
    a re-run over unchanged sources decodes nothing."""
    if not video.is_file():
        return _scan_video(shot, video, config, store.keyframe)  # raises the MediaError
    blob = json.dumps(
        {"video": sha256_file(video), "start": shot.start, "end": shot.end, "config": asdict(config), "v": _SCAN_VERSION},
        sort_keys=True,
    )
    memo = store.scan(hashlib.sha256(blob.encode()).hexdigest())
    if memo.is_file():
        data = json.loads(memo.read_text())
        drawings = [Keyframe(k["frame"], k["pixel_hash"], Path(k["path"])) for k in data["keyframes"]]
        if all(k.path.is_file() for k in drawings):
            return data["first"], data["count"], (data["width"], data["height"]), data["cuts"], drawings
    first, count, size, cuts, drawings = _scan_video(shot, video, config, store.keyframe)
    record = {"first": first, "count": count, "width": size[0], "height": size[1], "cuts": cuts,
              "keyframes": [{"frame": k.frame, "pixel_hash": k.pixel_hash, "path": str(k.path)} for k in drawings]}
    write_json(memo, record, indent=None)
    return first, count, size, cuts, drawings


def _open_video(shot: Shot, video: Path) -> Any:
    """Open the shot's video with PySceneDetect (OpenCV backend), or raise MediaError naming the field."""
    from scenedetect import open_video
    from scenedetect.video_stream import VideoOpenFailure

    shown = shot.shown(video)
    if not video.is_file():
        raise MediaError(f"{shot.where('source')}: {shown}: video file not found")
    try:
        return open_video(str(video))
    except (OSError, VideoOpenFailure, ValueError) as exc:
        raise MediaError(f"{shot.where('source')}: {shown}: not a readable video ({type(exc).__name__})") from None


def _scan_video(
    shot: Shot, video: Path, config: DetectConfig, keyframe: Callable[[str], Path]
) -> tuple[int, int, tuple[int, int], list[int], list[Keyframe]]:
    from scenedetect import FrameTimecode, StatsManager
    from scenedetect.detectors import ContentDetector

    stream = _open_video(shot, video)
    detector = ContentDetector(threshold=config.cut_threshold, min_scene_len=0)
    stats = StatsManager()
    detector.stats_manager = stats  # the detector records each frame's score here
    start = shot.start or 0
    end = shot.end
    cuts: list[int] = []
    drawings: list[Keyframe] = []
    size = (0, 0)
    previous: np.ndarray | None = None
    count = 0  # frames decoded so far
    while end is None or count <= end:
        bgr = stream.read(decode=count >= start)
        if bgr is False:
            break
        number, count = count, count + 1
        if number < start:
            continue
        if number == start:
            size = (bgr.shape[1], bgr.shape[0])
        timecode = FrameTimecode(number, stream.frame_rate)
        view = _analysis_view(bgr, config.analysis_width)
        detector.process_frame(timecode, view)
        score = float(stats.get_metrics(timecode, [ContentDetector.FRAME_SCORE_KEY])[0] or 0.0)
        local = 0.0 if previous is None else _local_score(previous, view)
        previous = view
        if number == start or score >= config.drawing_threshold or local >= config.local_threshold:
            if number > start and score >= config.cut_threshold:
                cuts.append(number)
            drawings.append(_store(np.ascontiguousarray(bgr[:, :, ::-1]), number, keyframe))
    shown = shot.shown(video)
    if count == 0:
        raise MediaError(f"{shot.where('source')}: {shown}: not a readable video (no frames decoded)")
    if start >= count:
        raise MediaError(f"{shot.where('start')}: frame {start} is after the last frame {count - 1} of {shown}")
    if end is not None and end >= count:
        raise MediaError(f"{shot.where('end')}: frame {end} is after the last frame {count - 1} of {shown}")
    return start, count - start, size, cuts, drawings


def _analysis_view(bgr: np.ndarray, width: int) -> np.ndarray:
    if not width or bgr.shape[1] <= width:
        return bgr
    factor = bgr.shape[1] / width
    small = (max(1, round(bgr.shape[1] / factor)), max(1, round(bgr.shape[0] / factor)))
    out: np.ndarray = cv2.resize(bgr, small, interpolation=cv2.INTER_LINEAR)
    return out


def _local_score(a: np.ndarray, b: np.ndarray, block: int = 8) -> float:
    """The largest mean absolute difference over `block`-pixel squares: high when a small area changes a lot."""
    diff = cv2.absdiff(a, b).mean(axis=2, dtype=np.float32)
    grid = (max(1, diff.shape[1] // block), max(1, diff.shape[0] // block))
    return float(cv2.resize(diff, grid, interpolation=cv2.INTER_AREA).max())


def _scan_images(shot: Shot, keyframe: Callable[[str], Path]) -> Scan:
    assert shot.source.images is not None
    images = shot.source.images
    first = shot.start if shot.start is not None else images[0].frame
    last = shot.end if shot.end is not None else max(images[-1].frame, first)
    if first < images[0].frame:
        raise MediaError(f"{shot.where('start')}: no keyframe image at or before frame {first}")
    if last < first:
        raise MediaError(f"{shot.where('end')}: frame {last} comes before the first keyframe image, at frame {first}")
    # The image showing at the range's first frame starts the range's first drawing.
    showing = max(i for i, key in enumerate(images) if key.frame <= first)
    size: tuple[int, int] | None = None
    drawings: list[Keyframe] = []
    for i in range(showing, len(images)):
        key = images[i]
        if key.frame > last:
            break
        frame = _read_image(shot, f"source.images[{i}].image", key.image, size)
        size = (frame.shape[1], frame.shape[0])
        drawings.append(_store(frame, max(key.frame, first), keyframe))
    assert size is not None
    cuts = [c for c in shot.source.cuts if first < c <= last]
    return first, last - first + 1, size, cuts, drawings
