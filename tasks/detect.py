"""Detect: a shot's hard cuts and held drawings, as keyframes and the pairs to in-between.

Every frame is compared with the frame before it (tasks/scores.py): PySceneDetect's content score finds
hard cuts, and a local block score, taken after denoising and matching exposure, finds new drawings.

The local threshold adapts to the clip's own noise (`adaptive_threshold`): at least `local_threshold`, at
least `noise_factor` times the typical score of the pairs below it (the holds: on a clean export about 0,
on a captured pencil test the grain and compression left after denoising), then settled into the clearest
gap between the scores near it. A clip with no pair near the noise (drawings on 1s) keeps the floor. The
margin between the strongest hold and the weakest change is reported per shot (`Margin`), and `plan` warns
when it is thin or when noise pushed the threshold up. Measured by bench/linetests.py on
`tasks.synthetic.line_test` at 512x320, H.264 crf 30: holds at most 7-9 and changes at least 19.7 with
grain 2-4 and 2-3 % flicker; grain 8 with 6 % flicker brings holds to 14.7 (a margin of 1.3-1.7).

A video is decoded twice (tasks/media.py): once to score every frame, once to store the keyframes the
whole clip's scores chose. A scan is remembered under `<store>/scans/`, keyed by the source's content, the
frame range, fps, background, exposure sheet and thresholds, so re-running an unchanged shot list decodes
nothing. An exposure sheet (`xsheet:`) gives the drawings exactly and overrides detection; where the two
disagree is reported.

Conventions: frame numbers are the source's own (0-based for a video, the file names' for an image
sequence), also inside a frame range. The range's first frame always starts a drawing and is never listed
as a cut; `cuts` are the later frames where a new scene starts. Pairs join consecutive keyframes of one
scene, never across a cut; the last drawing of a scene is held to the scene's end. Keyframes are stored
losslessly and content-addressed as `<store>/keyframes/<pixel hash>.png`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tasks.media import MediaError, find_sequence, probe_video, read_picture, video_frames
from tasks.scores import DetectConfig, Margin, Scorer, decide
from tasks.shotlist import Shot
from tasks.xsheet import read_xsheet
from tooncrafter_model.frames import DecodedImage, Frame, pixel_hash, write_frame
from tooncrafter_model.store import Store, sha256_file, write_json

__all__ = ["DetectConfig", "Ingest", "Keyframe", "Margin", "MediaError", "Pair", "ShotPlan", "detect_shot",
           "frame_layout"]  # fmt: skip


@dataclass(frozen=True)
class Keyframe:
    """The first frame of a drawing: its source frame number, pixel hash and stored PNG."""

    frame: int
    pixel_hash: str
    path: Path
    origin: str = field(default="", compare=False)  # where it was drawn: "/shots/a.mp4#frame=12" or an image file


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
class Ingest:
    """What reading a shot's media found and did, for `plan` and the provenance sidecar."""

    margin: Margin | None = None  # None when nothing was detected (keyframe images)
    timecode: str | None = None  # the source's start timecode
    gaps: tuple[tuple[int, int], ...] = ()  # missing image-sequence frames (first, last), holding the one before
    disagreements: tuple[str, ...] = ()  # where detection and the exposure sheet differ
    notes: tuple[str, ...] = ()  # conversions and resampling done to the source's pictures
    warnings: tuple[str, ...] = ()  # what a wrangler should look at (thin margin, fps mismatch)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "margin": self.margin.as_dict() if self.margin else None,
            "timecode": self.timecode,
            "gaps": [list(g) for g in self.gaps],
            "disagreements": list(self.disagreements),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ingest:
        """The inverse of to_json."""
        m = data["margin"]
        return cls(
            margin=Margin(m["threshold"], m["hold"], m["change"]) if m else None,
            timecode=data["timecode"],
            gaps=tuple((a, b) for a, b in data["gaps"]),
            disagreements=tuple(data["disagreements"]),
            notes=tuple(data["notes"]),
            warnings=tuple(data["warnings"]),
        )


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
    ingest: Ingest = field(default_factory=Ingest)

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

Scan = tuple[int, int, tuple[int, int], list[int], list[Keyframe], Ingest]
_SCAN_VERSION = 2  # bump when scanning changes what it finds


def detect_shot(shot: Shot, store_dir: str | os.PathLike[str], config: DetectConfig = DetectConfig()) -> ShotPlan:
    """Find the shot's cuts and drawings, store its keyframes under `<store_dir>/keyframes/`, and plan its pairs.

    Raises MediaError (one line naming the shot list field and the file) for missing, unreadable, empty or
    mismatched media, a frame range outside the source, and anything over the shot's limits.
    """
    store = Store(Path(store_dir))
    if shot.source.images is not None:
        first, count, size, cuts, drawings, ingest = _scan_images(shot, store.keyframe)
    else:
        first, count, size, cuts, drawings, ingest = _scan_cached(shot, config, store)
    if count > shot.limits.max_shot_frames:
        raise MediaError(
            f"{shot.where('end')}: {count} frames from frame {first}, over the limit of "
            f"{shot.limits.max_shot_frames} (setting limits.max_shot_frames)"
        )
    sketches = []
    for i, sketch in enumerate(shot.sketches):
        picture = _picture(shot, f"sketches[{i}].image", sketch.image, size, None)
        sketches.append(_store(picture.frame, sketch.frame, store.sketch, str(sketch.image)))
    pairs = []
    for a, b in zip(drawings, drawings[1:], strict=False):
        if b.frame in cuts:
            continue
        n = shot.render.inbetweens if shot.render.inbetweens is not None else b.frame - a.frame - 1
        if n > shot.limits.max_inbetweens:
            raise MediaError(
                f"{shot.where('source')}: the drawings at frames {a.frame} and {b.frame} leave {n} in-betweens, "
                f"over the limit of {shot.limits.max_inbetweens} (setting limits.max_inbetweens)"
            )
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
        ingest=ingest,
    )


def _picture(shot: Shot, name: str, path: Path, size: tuple[int, int] | None, size_of: Path | None) -> DecodedImage:
    """An image of the shot list, or MediaError naming the field; its size must match `size` (of `size_of`)."""
    picture = read_picture(shot, name, path)
    here = (picture.frame.shape[1], picture.frame.shape[0])
    if size is not None and here != size:
        of = f"{shot.shown(size_of)}'s" if size_of is not None else "the first keyframe's"
        raise MediaError(
            f"{shot.where(name)}: {shot.shown(path)}: size {here[0]}x{here[1]} differs from {of} {size[0]}x{size[1]}"
        )
    return picture


def _store(frame: Frame, number: int, path_of: Callable[[str], Path], origin: str) -> Keyframe:
    digest = pixel_hash(frame)
    path = path_of(digest)
    if not path.exists():
        write_frame(path, frame)
    return Keyframe(number, digest, path, origin)


def _conversions(shot: Shot, notes: Iterable[str]) -> tuple[str, ...]:
    """What was done to the source's pictures, once per kind, the background colour named."""
    colour = "#{:02x}{:02x}{:02x}".format(*shot.background)
    done = {note.replace("over the background", f"over {colour}"): None for note in notes}
    return tuple(done)


# ----------------------------------------------------------------------------- sources


def _scan_key(shot: Shot, config: DetectConfig) -> str | None:
    """A hash of everything a scan depends on, or None when the source is missing (the scan reports it)."""
    source = shot.source
    if source.video is not None:
        if not source.video.is_file():
            return None
        content: Any = sha256_file(source.video)
    else:
        assert source.sequence is not None
        try:
            sequence = find_sequence(shot, source.sequence)
        except MediaError:
            return None
        content = [[n, sha256_file(p)] for n, p in sequence.files.items()]
    sheet = shot.xsheet
    blob = json.dumps(
        {"source": content, "start": shot.start, "end": shot.end, "fps": shot.fps, "background": shot.background,
         "xsheet": sha256_file(sheet) if sheet is not None and sheet.is_file() else str(sheet),
         "config": asdict(config), "v": _SCAN_VERSION},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()


def _scan_cached(shot: Shot, config: DetectConfig, store: Store) -> Scan:
    """`_scan_video` or `_scan_sequence`, remembered by the source's content (not its name or mtime), range,
    fps, background, sheet and thresholds: a re-run over unchanged sources decodes nothing."""
    source = shot.source
    key = _scan_key(shot, config)
    memo = store.scan(key) if key is not None else None
    if memo is not None and memo.is_file():
        data = json.loads(memo.read_text())
        drawings = [Keyframe(k["frame"], k["pixel_hash"], Path(k["path"]), k["origin"]) for k in data["keyframes"]]
        if all(k.path.is_file() for k in drawings):
            size = (data["width"], data["height"])
            return data["first"], data["count"], size, data["cuts"], drawings, Ingest.from_json(data["ingest"])
    if source.video is not None:
        scan = _scan_video(shot, source.video, config, store.keyframe)
    else:
        assert source.sequence is not None
        scan = _scan_sequence(shot, source.sequence, config, store.keyframe)
    if memo is not None:
        first, count, size, cuts, drawings, ingest = scan
        record = {"first": first, "count": count, "width": size[0], "height": size[1], "cuts": cuts,
                  "ingest": ingest.to_json(),
                  "keyframes": [{"frame": k.frame, "pixel_hash": k.pixel_hash, "path": str(k.path), "origin": k.origin}
                                for k in drawings]}  # fmt: skip
        write_json(memo, record, indent=None)
    return scan


def _score_all(frames: Iterator[tuple[int, Frame | None]], scorer: Scorer) -> tuple[int, int, tuple[int, int], dict[int, tuple[float, float]]]:
    """Score every frame against the one before; None frames (repeats) are holds and are not scored."""
    first, last, size = -1, -1, (0, 0)
    scores: dict[int, tuple[float, float]] = {}
    for number, rgb in frames:
        if first < 0:
            if rgb is None:
                continue
            first, size = number, (rgb.shape[1], rgb.shape[0])
        last = number
        if rgb is None:
            continue
        content, local = scorer(number, rgb)
        if number != first:
            scores[number] = (content, local)
    return first, last, size, scores


def _timing(
    shot: Shot, first: int, last: int, scores: dict[int, tuple[float, float]], config: DetectConfig
) -> tuple[list[int], list[int], Margin, tuple[str, ...], tuple[str, ...]]:
    """Drawings, cuts, margin, disagreements with the exposure sheet, and warnings."""
    decision = decide(first, scores, config)
    warnings: list[str] = []
    disagreements: list[str] = []
    drawings, cuts = decision.drawings, decision.cuts
    if shot.xsheet is not None:
        sheet = read_xsheet(shot, shot.xsheet)
        listed = [f for f in sheet if f <= first]
        if not listed:
            raise MediaError(
                f"{shot.where('xsheet')}: {shot.shown(shot.xsheet)}: its first drawing, at frame {min(sheet)}, "
                f"comes after the shot's first frame {first}"
            )
        timed = [first] + [f for f in sheet if first < f <= last]
        seen, told = set(drawings), set(timed)
        name = {f: sheet[max(g for g in sheet if g <= f)] for f in range(first, last + 1) if f in seen | told}
        disagreements += [f"frame {f}: detection sees a new drawing, the sheet holds {name[f]}" for f in sorted(seen - told)]
        disagreements += [f"frame {f}: the sheet starts {name[f]}, detection sees a hold" for f in sorted(told - seen)]
        drawings, cuts = timed, [c for c in cuts if c in told]
    margin = decision.margin
    hold = "none" if margin.hold is None else f"{margin.hold:.1f}"
    change = "none" if margin.change is None else f"{margin.change:.1f}"
    advice = "check its keyframes or give it an exposure sheet (xsheet:)"
    if margin.ratio < config.thin_margin:
        warnings.append(
            f"thin detection margin: strongest hold {hold}, weakest change {change} (threshold "
            f"{margin.threshold:.1f}); {advice}"
        )
    elif margin.threshold > 2 * config.local_threshold:
        # So much noise that a small change (a blink scores about 20) could hide under the threshold.
        warnings.append(
            f"noisy source: its noise raised the detection threshold to {margin.threshold:.1f} (from "
            f"{config.local_threshold:g}; strongest hold {hold}, weakest change {change}); {advice}"
        )
    return drawings, cuts, margin, tuple(disagreements), tuple(warnings)


def _scan_video(shot: Shot, video: Path, config: DetectConfig, keyframe: Callable[[str], Path]) -> Scan:
    probe = probe_video(shot, video)
    first, last, size, scores = _score_all(video_frames(shot, video, probe), Scorer(config, shot.fps))
    shown = shot.shown(video)
    if first < 0:
        start = shot.start or 0
        if start and probe.frame_count and start >= probe.frame_count:
            raise MediaError(f"{shot.where('start')}: frame {start} is after the last frame {probe.frame_count - 1} of {shown}")
        raise MediaError(f"{shot.where('source')}: {shown}: not a readable video (no frames decoded)")
    if shot.end is not None and shot.end > last:
        raise MediaError(f"{shot.where('end')}: frame {shot.end} is after the last frame {last} of {shown}")
    drawings, cuts, margin, disagreements, warnings = _timing(shot, first, last, scores, config)
    keyframes: list[Keyframe] = []
    wanted = set(drawings)
    shown_frame: Frame | None = None
    for number, rgb in video_frames(shot, video, probe, only=wanted, check=False):  # checked while scoring
        shown_frame = rgb if rgb is not None else shown_frame
        if number in wanted and shown_frame is not None:
            keyframes.append(_store(shown_frame, number, keyframe, f"{video}#frame={number}"))
        if number >= drawings[-1]:
            break
    notes: list[str] = []
    if probe.variable:
        notes.append(f"variable frame rate: frames placed by their timestamps on the {shot.fps:g} fps grid")
    elif probe.fps and abs(probe.fps - shot.fps) > 0.001 * shot.fps:
        warnings += (f"{shown} runs at {probe.fps:.3f} fps; the shot list says {shot.fps:.3f}",)
    ingest = Ingest(margin, probe.timecode, (), disagreements, tuple(notes), warnings)
    return first, last - first + 1, size, cuts, keyframes, ingest


def _scan_sequence(shot: Shot, spec: Path, config: DetectConfig, keyframe: Callable[[str], Path]) -> Scan:
    sequence = find_sequence(shot, spec)
    first = shot.start if shot.start is not None else sequence.first
    last = shot.end if shot.end is not None else sequence.last
    if first < sequence.first:
        raise MediaError(f"{shot.where('start')}: frame {first} comes before the sequence's first frame {sequence.first}")
    if last < first:
        raise MediaError(f"{shot.where('end')}: frame {last} comes before the shot's first frame {first}")
    if last - first + 1 > shot.limits.max_shot_frames:
        raise MediaError(
            f"{shot.where('source')}: {shot.shown(spec)}: frames {first}-{last} are over the limit of "
            f"{shot.limits.max_shot_frames} (setting limits.max_shot_frames)"
        )
    notes: list[str] = []  # each picture's conversions, as it goes: the pictures themselves are not kept
    size: list[tuple[tuple[int, int], Path]] = []

    def frames() -> Iterator[tuple[int, Frame | None]]:
        for number in range(first, last + 1):
            path = sequence.files.get(number) if number > first else sequence.showing(number)
            if path is None:
                yield number, None
                continue
            picture = _picture(shot, "source", path, size[0][0] if size else None, size[0][1] if size else None)
            if not size:
                size.append(((picture.frame.shape[1], picture.frame.shape[0]), path))
            notes.extend(c for c in picture.conversions if c not in notes)
            yield number, picture.frame

    first_seen, last_seen, dims, scores = _score_all(frames(), Scorer(config, shot.fps))
    drawings, cuts, margin, disagreements, warnings = _timing(shot, first, last, scores, config)
    keyframes = []
    for number in drawings:
        path = sequence.showing(number)
        keyframes.append(_store(read_picture(shot, "source", path).frame, number, keyframe, str(path)))
    gaps = tuple(sequence.gaps(first, last))
    ingest = Ingest(margin, None, gaps, disagreements, _conversions(shot, notes), warnings)
    return first, last - first + 1, dims, cuts, keyframes, ingest


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
    size_of: Path | None = None
    drawings: list[Keyframe] = []
    notes: list[str] = []
    for i in range(showing, len(images)):
        key = images[i]
        if key.frame > last:
            break
        picture = _picture(shot, f"source.images[{i}].image", key.image, size, size_of)
        notes += picture.conversions
        if size is None:
            size, size_of = (picture.frame.shape[1], picture.frame.shape[0]), key.image
        drawings.append(_store(picture.frame, max(key.frame, first), keyframe, str(key.image)))
    assert size is not None
    cuts = [c for c in shot.source.cuts if first < c <= last]
    return first, last - first + 1, size, cuts, drawings, Ingest(notes=_conversions(shot, notes))
