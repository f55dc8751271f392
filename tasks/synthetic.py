"""A tiny synthetic cartoon: flat colours, ink outlines and known poses, so every true in-between is known.

A character is a body (ellipse), a head (circle) and an arm (a capsule swinging from the shoulder),
filled with flat colours and outlined in ink, standing on a flat ground band in front of a flat sky.
Its pose is linear in s in [0, 1] (position, body tilt, arm swing, scale), so `draw_frame(s)` is the exact
in-between of `draw_frame(0)` and `draw_frame(1)` at time s.

Edges are anti-aliased by default (cv2.LINE_AA with sub-pixel coordinates): a pose that moves a third of
a pixel still changes the picture, so motion is continuous the way a real ink line is, and interpolation
errors are not swamped by stair-step aliasing. `antialias=False` draws hard edges whose pixels are exactly
the palette colours, for tests that count colours.
"""

from __future__ import annotations

import colorsys
import math
import random
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from tooncrafter_model.frames import Frame, write_frame

RGB = tuple[int, int, int]

# cv2 draws with integer coordinates; a 4-bit shift gives 1/16-pixel positions.
_SHIFT = 4
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class Pose:
    """Where the character is: centre (fractions of width, height), tilt and arm angle in degrees, scale."""

    x: float
    y: float
    tilt: float
    arm: float
    scale: float

    def lerp(self, other: Pose, s: float) -> Pose:
        """The pose a fraction `s` of the way from this one to `other`."""
        return Pose(*(a + (b - a) * s for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def astuple(self) -> tuple[float, float, float, float, float]:
        return (self.x, self.y, self.tilt, self.arm, self.scale)


@dataclass(frozen=True)
class Character:
    """A character's palette and its motion from pose `start` (s=0) to pose `end` (s=1)."""

    body: RGB
    head: RGB
    arm: RGB
    ink: RGB
    sky: RGB
    ground: RGB
    start: Pose
    end: Pose

    def pose(self, s: float) -> Pose:
        """The pose at time s (0 = start, 1 = end; values outside extrapolate linearly)."""
        return self.start.lerp(self.end, s)


def make_character(seed: int = 0) -> Character:
    """A character with a seeded palette and motion; the same seed always gives the same character."""
    rng = random.Random(seed)

    def colour(lo: int, hi: int) -> RGB:
        return (rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(lo, hi))

    def hue(h: float, saturation: float, value: float) -> RGB:
        r, g, b = colorsys.hsv_to_rgb(h % 1.0, saturation, value)
        return (round(r * 255), round(g * 255), round(b * 255))

    # Consecutive seeds get skies far apart in hue, saturation and brightness: a cut between them is a clear
    # scene change (PySceneDetect's content score above 60 for every pair of seeds from -5 to 200).
    sky_hue = seed * 0.382
    sky_sat, sky_value = (0.25, 0.95) if seed % 2 == 0 else (0.6, 0.62)

    x0 = rng.uniform(0.25, 0.4)
    start = Pose(x=x0, y=0.55, tilt=rng.uniform(-15.0, 0.0), arm=rng.uniform(-50.0, -30.0), scale=1.0)
    end = Pose(
        x=x0 + rng.uniform(0.2, 0.3),
        y=0.5,
        tilt=rng.uniform(5.0, 20.0),
        arm=rng.uniform(30.0, 60.0),
        scale=rng.uniform(1.05, 1.2),
    )
    return Character(
        body=colour(150, 255),
        head=colour(180, 255),
        arm=colour(60, 200),
        ink=colour(0, 40),
        sky=hue(sky_hue, sky_sat, sky_value),
        ground=hue(sky_hue + 0.5, 0.5, 0.45),
        start=start,
        end=end,
    )


# ----------------------------------------------------------------------------- drawing


def _fixed(x: float, y: float) -> tuple[int, int]:
    return (round(x * _ONE), round(y * _ONE))


def draw_frame(
    s: float,
    *,
    width: int = 128,
    height: int = 80,
    character: Character | None = None,
    seed: int = 0,
    antialias: bool = True,
    pencil: RGB | None = None,
    blink: bool = False,
    arm: float = 0.0,
) -> Frame:
    """Draw the character at pose `s` as an HxWx3 uint8 RGB frame (`character` wins over `seed`).

    `pencil` draws the outlines alone in that colour on white paper, as an animator's rough drawing;
    `blink` closes the eye (a line instead of a dot) and `arm` adds degrees to the arm's swing: the small
    changes between two drawings that a detector must still see.
    """
    if width < 8 or height < 8:
        raise ValueError(f"frame size must be at least 8x8, got {width}x{height}")
    ch = character if character is not None else make_character(seed)
    pose = ch.pose(s)
    pose = Pose(pose.x, pose.y, pose.tilt, pose.arm + arm, pose.scale)
    line = cv2.LINE_AA if antialias else cv2.LINE_8
    img = np.empty((height, width, 3), np.uint8)
    if pencil is not None:
        paper: RGB = (255, 255, 255)
        img[:] = paper
        ch = replace(ch, body=paper, head=paper, arm=paper, ink=pencil)
    else:
        img[:] = ch.sky
        img[round(height * 0.78) :] = ch.ground

    unit = min(width, height) * 0.16 * pose.scale  # body half-height in pixels
    ink = max(1, round(min(width, height) / 64))
    cx, cy = pose.x * width, pose.y * height
    tilt = math.radians(pose.tilt)
    up = (math.sin(tilt), -math.cos(tilt))  # the body's axis, pointing at the head

    def ellipse(centre: tuple[float, float], axes: tuple[float, float], angle: float, fill: RGB) -> None:
        c, a = _fixed(*centre), _fixed(*axes)
        cv2.ellipse(img, c, a, angle, 0, 360, fill, -1, line, _SHIFT)
        cv2.ellipse(img, c, a, angle, 0, 360, ch.ink, ink, line, _SHIFT)

    ellipse((cx, cy), (unit * 0.62, unit), pose.tilt, ch.body)
    # The arm is a capsule in front of the body, swinging from the shoulder by `pose.arm` (0 = straight out).
    shoulder = (cx + up[0] * unit * 0.4 - up[1] * unit * 0.3, cy + up[1] * unit * 0.4 + up[0] * unit * 0.3)
    swing = math.radians(pose.arm - pose.tilt)  # counter-clockwise on screen; tilt is clockwise
    length, half = unit * 1.25, max(1.5, unit * 0.16)
    hand = (shoulder[0] + math.cos(swing) * length, shoulder[1] - math.sin(swing) * length)
    nx, ny = math.sin(swing) * half, math.cos(swing) * half
    quad = np.array(
        [
            _fixed(shoulder[0] + nx, shoulder[1] + ny),
            _fixed(hand[0] + nx, hand[1] + ny),
            _fixed(hand[0] - nx, hand[1] - ny),
            _fixed(shoulder[0] - nx, shoulder[1] - ny),
        ],
        np.int32,
    )
    cv2.fillPoly(img, [quad], ch.arm, line, _SHIFT)
    cv2.polylines(img, [quad], True, ch.ink, ink, line, _SHIFT)
    ellipse(hand, (half * 1.4, half * 1.4), 0.0, ch.arm)
    head = (cx + up[0] * unit * 1.55, cy + up[1] * unit * 1.55)
    ellipse(head, (unit * 0.58, unit * 0.58), 0.0, ch.head)
    # An eye, so a head turn or tilt is visible.
    eye = (head[0] + unit * 0.22, head[1] - unit * 0.08)
    radius = unit * 0.12
    if blink:
        lid = (_fixed(eye[0] - radius * 1.2, eye[1]), _fixed(eye[0] + radius * 1.2, eye[1]))
        cv2.line(img, *lid, ch.ink, ink, line, _SHIFT)
    else:
        cv2.circle(img, _fixed(*eye), max(_ONE, round(radius * _ONE)), ch.ink, -1, line, _SHIFT)
    return img


# ----------------------------------------------------------------------------- shots


@dataclass(frozen=True)
class Animation:
    """A rough animation with known ground truth: the frames as drawn (held), and what a detector should find."""

    frames: list[Frame]
    keyframes: list[int]  # first frame of every drawing, 0-based
    cuts: list[int]  # first frame of every scene after the first
    poses: list[float]  # s of the drawing shown on each frame
    smooth: list[float]  # s each frame would have on 1s: the true in-between's pose
    characters: list[Character]  # who is on each frame
    width: int
    height: int

    def truth(self, frame: int, *, antialias: bool = True) -> Frame:
        """The exact on-1s frame at `frame`: what a perfect in-betweener would draw there."""
        return draw_frame(
            self.smooth[frame],
            width=self.width,
            height=self.height,
            character=self.characters[frame],
            antialias=antialias,
        )


def animate(
    timing: Sequence[int],
    *,
    width: int = 128,
    height: int = 80,
    character: Character | None = None,
    seed: int = 0,
    cut_at: int | None = None,
    cut_character: Character | None = None,
    antialias: bool = True,
) -> Animation:
    """Draw a shot whose drawings are held for `timing[k]` frames each (2 = on 2s), optionally cut at a frame.

    The motion is linear in time within a scene: a drawing starting at frame f shows s = (f - scene start) /
    (scene length - 1). `cut_at` must be the first frame of a drawing; from there `cut_character` (default:
    `make_character(seed + 1)`, a different scene) starts its own motion from s = 0.
    """
    if not timing or any(int(n) < 1 for n in timing):
        raise ValueError(f"timing must be a non-empty list of hold lengths >= 1, got {list(timing)}")
    starts = [sum(timing[:k]) for k in range(len(timing))]
    total = sum(timing)
    if cut_at is not None and (cut_at not in starts or cut_at == 0):
        raise ValueError(f"cut_at must be the first frame of a drawing after the first, one of {starts[1:]}")
    first = character if character is not None else make_character(seed)
    second = cut_character if cut_character is not None else make_character(seed + 1)
    scene_start = [0] if cut_at is None else [0, cut_at]
    scene_end = [total] if cut_at is None else [cut_at, total]

    def scene(f: int) -> int:
        return 1 if cut_at is not None and f >= cut_at else 0

    def smooth_s(f: int) -> float:
        i = scene(f)
        return (f - scene_start[i]) / max(1, scene_end[i] - scene_start[i] - 1)

    frames: list[Frame] = []
    poses: list[float] = []
    characters: list[Character] = []
    for start, hold in zip(starts, timing, strict=True):
        ch = second if scene(start) else first
        s = smooth_s(start)
        drawing = draw_frame(s, width=width, height=height, character=ch, antialias=antialias)
        for _ in range(hold):
            frames.append(drawing.copy())
            poses.append(s)
            characters.append(ch)
    return Animation(
        frames=frames,
        keyframes=starts,
        cuts=[] if cut_at is None else [cut_at],
        poses=poses,
        smooth=[smooth_s(f) for f in range(total)],
        characters=characters,
        width=width,
        height=height,
    )


# ----------------------------------------------------------------------------- line tests


@dataclass(frozen=True)
class Capture:
    """How a pencil test reached the computer (a camera over the desk, or a scanner): what changes from
    frame to frame though the drawing does not. Levels on the 0-255 scale."""

    grain: float = 4.0  # sensor noise: standard deviation per pixel
    flicker: float = 0.03  # exposure gain drifts by up to this fraction from one frame to the next
    paper: RGB = (232, 224, 200)  # the paper's tone under the lamp
    graphite: RGB = (72, 68, 64)


def line_test(
    timing: Sequence[int],
    *,
    width: int = 256,
    height: int = 160,
    seed: int = 0,
    capture: Capture = Capture(),
) -> Animation:
    """A captured pencil test: drawings held `timing[k]` frames each, every frame with its own grain and exposure.

    The drawings cycle through the kinds of change a detector must see: a pose change, then a blink (the
    same pose, eye closed), then the arm swung 4 degrees further, then the next pose... `frames` are the
    captured pictures (write them with `write_video(crf=30)` for a phone or webcam's compression);
    `keyframes` is where each drawing starts. The capture is seeded: the same arguments give the same frames.
    """
    if not timing or any(int(n) < 1 for n in timing):
        raise ValueError(f"timing must be a non-empty list of hold lengths >= 1, got {list(timing)}")
    ch = make_character(seed)
    rng = np.random.default_rng(seed)
    # The paper's own texture and the lamp's fall-off are the same on every frame.
    tooth = cv2.GaussianBlur(rng.normal(0.0, 1.0, (height, width)).astype(np.float32), (0, 0), 3.0)
    tooth *= 4.0 / max(float(tooth.std()), 1e-6)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    lamp = 1.0 - 0.12 * (((xx / width - 0.5) ** 2 + (yy / height - 0.5) ** 2) / 0.5)
    paper = (np.array(capture.paper, np.float32) + tooth[..., None]) * lamp[..., None]
    ink = np.array(capture.graphite, np.float32) / 255.0

    starts = [sum(timing[:k]) for k in range(len(timing))]
    total = sum(timing)
    frames: list[Frame] = []
    poses: list[float] = []
    s, blink, arm = 0.0, False, 0.0
    for k, hold in enumerate(timing):
        kind = k % 3
        if k and kind == 0:
            s, blink, arm = min(1.0, s + 1.0 / max(1, len(timing) // 3)), False, 0.0
        elif kind == 1:
            blink = True
        elif kind == 2:
            blink, arm = False, arm + 4.0
        drawing = draw_frame(s, width=width, height=height, character=ch, pencil=(0, 0, 0), blink=blink, arm=arm)
        # Graphite darkens the paper where the (white-background) drawing is dark.
        cover = 1.0 - drawing[..., :1].astype(np.float32) / 255.0
        drawn = paper * (1.0 - cover) + paper * ink * cover
        for _ in range(hold):
            gain = 1.0 + capture.flicker * float(rng.uniform(-1.0, 1.0))
            grain = rng.normal(0.0, capture.grain, drawn.shape).astype(np.float32)
            frames.append(np.clip(drawn * gain + grain, 0, 255).round().astype(np.uint8))
            poses.append(s)
    return Animation(
        frames=frames,
        keyframes=starts,
        cuts=[],
        poses=poses,
        smooth=[f / max(1, total - 1) for f in range(total)],
        characters=[ch] * total,
        width=width,
        height=height,
    )


# ----------------------------------------------------------------------------- files


def write_video(
    frames: Sequence[Frame],
    path: str | Path,
    fps: float | str = 24.0,
    *,
    lossless: bool = False,
    crf: int = 18,
    codec: str = "h264",
    timecode: str | None = None,
) -> Path:
    """Encode RGB frames to a video: H.264 yuv420p MP4, or lossless H.264 RGB (libx264rgb -qp 0) if asked.

    The lossless file decodes to exactly the frames given, which is what pixel-comparing tests need; the
    default is what a studio's rough animation export looks like (holds are not bit-identical after decoding).
    `codec` "prores" (ProRes 422 HQ, 10-bit) or "dnxhr" (DNxHR LB; at least 256x120) write what an editing
    suite exports, in a .mov; "png" (PNG in a .mov, as compositing packages export lossless), "mjpeg" (Photo-JPEG,
    as capture software writes line tests) and "mpeg4" (MPEG-4 Part 2) the other files studios hand over.
    `fps` may be a ratio ("24000/1001"); `timecode` is the start timecode.
    """
    import ffmpeg
    import imageio_ffmpeg

    if not frames:
        raise ValueError(f"{path}: no frames to write")
    height, width = frames[0].shape[:2]
    if any(f.shape != (height, width, 3) or f.dtype != np.uint8 for f in frames):
        raise ValueError(f"{path}: all frames must be {height}x{width}x3 uint8")
    if not lossless and (width % 2 or height % 2):
        raise ValueError(f"{path}: yuv420p needs an even width and height, got {width}x{height}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, str | int] = {"timecode": timecode} if timecode else {}
    if codec == "prores":
        options.update(vcodec="prores_ks", profile=3, pix_fmt="yuv422p10le")
    elif codec == "dnxhr":
        options.update({"vcodec": "dnxhd", "profile:v": "dnxhr_lb", "pix_fmt": "yuv422p"})
    elif codec == "png":
        options.update(vcodec="png", pix_fmt="rgb24")
    elif codec == "mjpeg":
        options.update({"vcodec": "mjpeg", "q:v": 3, "pix_fmt": "yuvj422p"})
    elif codec == "mpeg4":
        options.update({"vcodec": "mpeg4", "q:v": 3, "pix_fmt": "yuv420p"})
    elif codec != "h264":
        raise ValueError(f"{path}: codec must be h264, prores, dnxhr, png, mjpeg or mpeg4, got {codec!r}")
    elif lossless:
        options.update(vcodec="libx264rgb", qp=0, pix_fmt="rgb24", preset="veryfast")
    else:
        options.update(vcodec="libx264", crf=crf, pix_fmt="yuv420p", preset="veryfast")
    stream = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=fps)
    stream = ffmpeg.output(stream, str(out), **options).overwrite_output()
    try:
        ffmpeg.run(
            stream,
            cmd=imageio_ffmpeg.get_ffmpeg_exe(),
            input=b"".join(np.ascontiguousarray(f).tobytes() for f in frames),
            capture_stdout=True,
            capture_stderr=True,
        )
    except ffmpeg.Error as exc:
        last = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        raise ValueError(f"{out}: ffmpeg failed: {last[-1] if last else exc}") from None
    return out


def write_vfr_video(frames: Sequence[Frame], times: Sequence[float], path: str | Path) -> Path:
    """A variable-frame-rate capture, as a phone records one: frame k shown from `times[k]` seconds on
    (lossless H.264 RGB, so decoded pixels equal the frames given). The concat demuxer that writes it keeps
    times on a 1/25 s grid exactly (0, 0.04, 0.08...); others land on that grid."""
    import imageio_ffmpeg

    if len(frames) != len(times) or sorted(times) != list(times) or not frames:
        raise ValueError(f"{path}: give one increasing time per frame")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # The concat demuxer gives every picture its own duration: the timestamps survive into the file.
        listing = []
        for k, frame in enumerate(frames):
            picture = write_frame(Path(tmp) / f"{k:05d}.png", frame)
            duration = (times[k + 1] - times[k]) if k + 1 < len(times) else 0.04
            listing += [f"file '{picture}'", f"duration {duration:.6f}"]
        (Path(tmp) / "list.txt").write_text("\n".join(listing) + "\n")
        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "concat",
                   "-safe", "0", "-i", str(Path(tmp) / "list.txt"), "-fps_mode", "passthrough",
                   "-enc_time_base", "demux", "-video_track_timescale", "1000", "-c:v", "libx264rgb",
                   "-qp", "0", "-pix_fmt", "rgb24", str(out)]  # fmt: skip
        run = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - our own ffmpeg
        if run.returncode:
            raise ValueError(f"{out}: ffmpeg failed: {run.stderr.strip().splitlines()[-1:]}")
    return out


def write_keyframe_images(
    frames: Sequence[Frame], keyframes: Sequence[int], folder: str | Path, *, prefix: str = "key"
) -> list[tuple[int, Path]]:
    """Write frames[k] for each k in `keyframes` as `<folder>/<prefix>_<k:04d>.png`; return (k, path) pairs."""
    out = Path(folder)
    return [(k, write_frame(out / f"{prefix}_{k:04d}.png", frames[k])) for k in keyframes]


# ----------------------------------------------------------------------------- in-betweens with ground truth


@dataclass(frozen=True)
class InbetweenCase:
    """Two drawings of one motion and the exact in-betweens between them: what a perfect in-betweener returns."""

    key_a: Frame
    key_b: Frame
    times: tuple[float, ...]  # evenly spaced in (0, 1)
    truth: list[Frame]  # the drawing at each time


def inbetween_case(
    gap: float,
    inbetweens: int,
    *,
    start: float = 0.0,
    width: int = 128,
    height: int = 80,
    character: Character | None = None,
    seed: int = 0,
) -> InbetweenCase:
    """Keyframes at poses `start` and `start + gap` (gap 1 is the character's whole move) and the true
    drawings at `inbetweens` evenly spaced times between them."""
    if inbetweens < 1:
        raise ValueError(f"inbetweens must be >= 1, got {inbetweens}")
    ch = character if character is not None else make_character(seed)
    times = tuple((i + 1) / (inbetweens + 1) for i in range(inbetweens))

    def draw(s: float) -> Frame:
        return draw_frame(start + gap * s, width=width, height=height, character=ch)

    return InbetweenCase(draw(0.0), draw(1.0), times, [draw(t) for t in times])
