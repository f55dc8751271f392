"""Defects put into clean in-betweens on purpose: the quality scores' evaluation set, and what the
simulated backend gets wrong when asked to.

Each is a failure users of generative in-betweeners report (ToonCrafter's issue tracker, studio
dailies), made at a chosen strength:

| defect    | what is done                                                          | strength                    |
|-----------|-----------------------------------------------------------------------|-----------------------------|
| `tone`    | every in-between's colours shifted by one CIELAB offset                | ΔE76 of the offset          |
| `flicker` | one in-between blended toward mid grey (a grey flash)                  | weight of the grey, 0-1     |
| `ghost`   | every in-between blended with the farther keyframe (a double image)    | opacity of the ghost, 0-1   |
| `lines`   | one in-between warped by a smooth random displacement (lines jump)     | largest shift, share of the |
|           |                                                                        | frame's short side          |
| `vanish`  | a part drawn in both keyframes (and its outline) painted over with the | opacity of the removal, 0-1 |
|           | colour around it, in every in-between                                  |                             |

The seed picks the offset's direction, the frame that flickers or jumps, the displacement field and
the part that vanishes: the same seed gives the same defect. OpenCV is imported where it is used (as in
frames.py): the backend registry reads `DEFECTS`, and checking a shot list must not pay for loading it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tooncrafter_model.errors import UserError
from tooncrafter_model.frames import Frame

DEFECTS = ("tone", "flicker", "ghost", "lines", "vanish")
DEFAULT_STRENGTH = {"tone": 8.0, "flicker": 0.3, "ghost": 0.4, "lines": 0.04, "vanish": 1.0}
_LIMITS = {"tone": 100.0, "flicker": 1.0, "ghost": 1.0, "lines": 0.5, "vanish": 1.0}


def check_defect(defect: str, strength: float) -> None:
    """Raise UserError naming the defect or strength that `inject` would not accept."""
    if defect not in DEFECTS:
        raise UserError(f"unknown defect {defect!r}; choose one of {', '.join(DEFECTS)}")
    limit = _LIMITS[defect]
    if not 0.0 < float(strength) <= limit:
        raise UserError(f"defect_strength for {defect} must be in (0, {limit:g}], got {strength!r}")


def inject(
    defect: str,
    frame_a: Frame,
    frame_b: Frame,
    times: Sequence[float],
    frames: Sequence[Frame],
    *,
    strength: float | None = None,
    seed: int = 0,
) -> list[Frame]:
    """Return copies of `frames` (the in-betweens at `times`) with `defect` put in.

    `vanish` returns the frames unchanged when the keyframes share no compact painted part.
    """
    value = DEFAULT_STRENGTH[defect] if strength is None and defect in DEFAULT_STRENGTH else strength
    check_defect(defect, value if value is not None else 0.0)
    s = float(value or 0.0)
    rng = np.random.default_rng(seed)
    out = [f.copy() for f in frames]
    if not out:
        return out
    if defect == "tone":
        direction = rng.normal(size=3)
        offset = (direction / np.linalg.norm(direction) * s).astype(np.float32)
        return [_from_lab(_to_lab(f) + offset) for f in out]
    if defect == "flicker":
        k = int(rng.integers(len(out)))
        out[k] = _blend(out[k], np.full_like(out[k], 128), s)
        return out
    if defect == "ghost":
        return [_blend(f, frame_b if float(t) < 0.5 else frame_a, s) for f, t in zip(out, times, strict=True)]
    if defect == "lines":
        k = int(rng.integers(len(out)))
        out[k] = _jump(out[k], s, rng)
        return out
    colour = _shared_part_colour(frame_a, frame_b, rng)
    if colour is None:
        return out
    for i, f in enumerate(out):
        part = _part(f, colour)
        if part is not None:
            out[i] = _blend(f, _painted_over(f, part), s, part)
    return out


# ----------------------------------------------------------------------------- helpers


def _to_lab(frame: Frame) -> np.ndarray:
    import cv2

    return cv2.cvtColor(frame.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2Lab)


def _from_lab(lab: np.ndarray) -> Frame:
    import cv2

    rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _blend(frame: Frame, other: Frame, weight: float, mask: np.ndarray | None = None) -> Frame:
    w = np.float32(weight) if mask is None else mask.astype(np.float32)[..., None] * np.float32(weight)
    mixed = (1 - w) * frame.astype(np.float32) + w * other.astype(np.float32)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def _jump(frame: Frame, strength: float, rng: np.random.Generator) -> Frame:
    """Warp by a smooth random field (a few bumps across the frame) whose largest shift is `strength`
    of the short side."""
    import cv2

    h, w = frame.shape[:2]
    cell = max(4, min(h, w) // 4)
    coarse = rng.normal(size=(2, h // cell + 2, w // cell + 2)).astype(np.float32)
    dx, dy = (cv2.resize(c, (w, h), interpolation=cv2.INTER_CUBIC) for c in coarse)
    scale = strength * min(h, w) / max(float(np.sqrt(dx * dx + dy * dy).max()), 1e-6)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(frame, xs + dx * scale, ys + dy * scale, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _regions(frame: Frame, colour: np.ndarray) -> list[np.ndarray]:
    """Compact regions of `colour` (ΔE76 <= 6) away from the frame's border, largest first."""
    import cv2

    h, w = frame.shape[:2]
    near = (np.linalg.norm(_to_lab(frame) - colour, axis=2) <= 6.0).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(near, connectivity=8)
    found = []
    for j in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[j])
        inside = x > 0 and y > 0 and x + bw < w and y + bh < h
        # compact: fills much of its box (a filled shape, not an outline or a thin stroke)
        if inside and area >= 0.003 * h * w and area >= 0.4 * bw * bh:
            found.append((area, labels == j))
    return [mask for _, mask in sorted(found, key=lambda m: -m[0])]


def _shared_part_colour(frame_a: Frame, frame_b: Frame, rng: np.random.Generator) -> np.ndarray | None:
    """The colour of a part drawn in both keyframes, picked by `rng` among those there are."""
    lab_a = _to_lab(frame_a)
    pixels = lab_a.reshape(-1, 3)
    cells = (pixels / 6.0).round().astype(np.int32)
    _, group, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    group = group.ravel()
    shared = []
    for g in np.nonzero(counts >= 0.003 * len(pixels))[0]:
        colour = pixels[group == g].mean(axis=0)
        if _regions(frame_a, colour) and _regions(frame_b, colour):
            shared.append(colour)
    return shared[int(rng.integers(len(shared)))] if shared else None


def _painted_over(frame: Frame, part: np.ndarray) -> Frame:
    """`frame` with `part` filled with the colour most of its surroundings have (the paint behind it)."""
    import cv2

    ring = cv2.dilate(part, np.ones((7, 7), np.uint8)).astype(bool) & ~part.astype(bool)
    out = frame.copy()
    out[part.astype(bool)] = np.median(frame[ring], axis=0).astype(np.uint8)
    return out


def _part(frame: Frame, colour: np.ndarray) -> np.ndarray | None:
    """The largest region of `colour` with its outline, as a mask."""
    import cv2

    regions = _regions(frame, colour)
    if not regions:
        return None
    # the outline goes too: twice a synthetic ink line (tasks/synthetic.py) and its anti-aliasing
    r = 2 * max(1, round(min(frame.shape[:2]) / 64)) + 2
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(regions[0].astype(np.uint8), disc)
