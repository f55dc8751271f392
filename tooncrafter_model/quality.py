"""Quality scores for in-betweens: cheap checks a render farm runs on every pair, on the CPU.

A generated in-between can be the right size, not black and not a copy of a keyframe, and still be
wrong in ways animators see at once. Each score below measures one of them from the keyframes and the
in-betweens alone (no ground truth), on a small analysis copy of every frame (long side at most
`ANALYSIS_SIDE` px), so a pair costs a few tens of milliseconds whatever the resolution:

| score     | what it measures, per in-between                                          | unit            |
|-----------|---------------------------------------------------------------------------|-----------------|
| `tone`    | mean distance of its flat-colour pixels to the nearest keyframe colour     | ΔE76 (CIELAB)   |
| `flicker` | how far its colour distribution is from its neighbours', at its time      | 8-bit levels    |
| `ghost`   | share of the moving area that is a see-through mix of the two keyframes   | fraction 0-1    |
| `lines`   | distance of its ink lines from the path between their matches in the two  | px of the       |
|           | neighbours (optical flow)                                                  | analysis copy   |
| `vanish`  | largest share of a painted colour's area (one both keyframes show, about  | fraction 0-1    |
|           | as large) that is missing                                                 |                 |

A frame is flagged when a score exceeds its threshold (`QAThresholds`); the defaults were chosen from
the evaluation set of `bench/quality.py` (ARCHITECTURE.md, "Quality control"). `hard_problems` holds
the checks that make a pair unusable whatever the scores: wrong count or size, all black, a copy of a
keyframe.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np

from tooncrafter_model.errors import UserError
from tooncrafter_model.frames import Frame

SCORES = ("tone", "flicker", "ghost", "lines", "vanish")

ANALYSIS_SIDE = 256  # long side of the analysis copy; the scores' px and areas refer to it
FLAT_RANGE = 6  # a pixel is "flat" when no RGB channel varies more than this in its 3x3 neighbourhood
INK_CONTRAST = 20.0  # L* a line pixel is darker than the closing of its neighbourhood
CHANGED_DE = 10.0  # ΔE between the keyframes above which a pixel is part of the motion
MIX_MARGIN = 0.15  # a see-through mix lies at least this far from both keyframes' colours (0-1 of the way)
COLOUR_TOL = 6.0  # ΔE within which a pixel counts as a keyframe colour's area
MAJOR_SHARE = 0.003  # a keyframe colour counts for `vanish` when it covers this share of both keyframes
LINE_COVERAGE = 0.3  # `lines` is measured when the flow can be followed on this share of the ink lines
TONE_SEARCH = 1024  # colours of a frame whose nearest keyframe colour is searched (the most common)
FLOW_MIN_SIDE = 16  # smaller frames have no lines score (the flow needs a few patches to match)
LINE_MOTION_SLACK = 0.01  # share of a line pixel's motion that `lines` forgives (arcs are not straight)


@dataclass(frozen=True)
class QAThresholds:
    """A frame is flagged when one of its scores is above the threshold of the same name."""

    tone: float = 1.0
    flicker: float = 3.0
    ghost: float = 0.1
    lines: float = 0.3
    vanish: float = 0.3

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise UserError(f"QAThresholds.{f.name}: must be a number > 0, got {value!r}")


@dataclass(frozen=True)
class FrameScores:
    """The scores of one in-between (see the module's table); `lines` is None where the motion between
    its neighbours could not be followed (too large, or nothing to follow)."""

    index: int  # 1-based, in the pair's output order
    t: float
    tone: float
    flicker: float
    ghost: float
    lines: float | None
    vanish: float
    motion: float | None  # mean distance its ink lines move to each neighbour, px of the analysis copy

    def as_json(self) -> dict[str, object]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> FrameScores:
        """The scores as `as_json` wrote them (a score missing from an older record is unmeasured)."""
        values: dict[str, Any] = {f.name: doc.get(f.name) for f in fields(cls)}
        return cls(**values)

    def severity(self, thresholds: QAThresholds) -> float:
        """The largest score / threshold ratio: above 1, the frame is flagged."""
        ratios = [getattr(self, s) / getattr(thresholds, s) for s in SCORES if getattr(self, s) is not None]
        return max(ratios, default=0.0)

    def over(self, thresholds: QAThresholds) -> list[str]:
        """`score value > threshold` for each score above its threshold."""
        out = []
        for score in SCORES:
            value = getattr(self, score)
            limit = getattr(thresholds, score)
            if value is not None and value > limit:
                out.append(f"{score} {value:.3g} > {limit:g}")
        return out


def frame_label(index: int, t: float) -> str:
    """How QA names the `index`-th (1-based) in-between at time `t` in its messages."""
    return f"frame {index:04d} (t={float(t):g})"


def judge(record: Mapping[str, Any] | None, thresholds: QAThresholds) -> tuple[tuple[str, ...], float]:
    """The flags and the severity (largest score / threshold ratio) of a pair's recorded scores
    (`PairQuality.as_json`) under `thresholds`; a pair without scores (none recorded, or scoring failed)
    is unmeasured: no flags, severity 0."""
    scores = [FrameScores.from_json(f) for f in (record or {}).get("frames", ())]
    flags = tuple(f"{frame_label(s.index, s.t)}: {line}" for s in scores for line in s.over(thresholds))
    return flags, max((s.severity(thresholds) for s in scores), default=0.0)


@dataclass(frozen=True)
class PairQuality:
    """What QA found in one pair's in-betweens: hard problems, scores, and the flags they raise."""

    problems: tuple[str, ...]  # the pair is unusable (wrong count or size, black, a copied keyframe)
    frames: tuple[FrameScores, ...]  # empty when the frames could not be scored (wrong count or size)
    flags: tuple[str, ...]  # scores above their thresholds
    seconds: float

    @property
    def flagged(self) -> bool:
        return bool(self.problems or self.flags)

    def as_json(self) -> dict[str, object]:
        """Plain JSON types only (it goes into result metadata, the shot DB and `--json` output)."""
        return {
            "problems": list(self.problems),
            "flags": list(self.flags),
            "frames": [f.as_json() for f in self.frames],
            "seconds": round(self.seconds, 4),
        }


# ----------------------------------------------------------------------------- hard problems


def hard_problems(frame_a: Frame, frame_b: Frame, times: Sequence[float], frames: Sequence[Frame]) -> list[str]:
    """One line per frame that must not be published: wrong count or size, all black, a copied keyframe.

    NaN cannot survive into uint8, so backends raise on non-finite values themselves. An all-black frame
    is a failed decode unless both keyframes are black (a fade held on black); a copy of a keyframe is a
    backend that silently held a drawing, unless the keyframes are so close that the true in-between
    rounds to the same pixels.
    """
    if len(frames) != len(times):
        return [f"expected {len(times)} frames, got {len(frames)}"]
    problems: list[str] = []
    keys_black = not frame_a.any() and not frame_b.any()
    # Largest change any pixel makes from A to B: a cross-fade at time t moves it t * spread levels
    # from A, so an exact copy of A (or B) is only suspicious when that is at least one level.
    spread = int(np.abs(frame_a.astype(np.int16) - frame_b.astype(np.int16)).max())
    for i, (t, frame) in enumerate(zip(times, frames, strict=True)):
        name = frame_label(i + 1, t)
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.shape != frame_a.shape:
            got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
            problems.append(f"{name}: expected uint8 {frame_a.shape}, got {got}")
            continue
        if not keys_black and not frame.any():
            problems.append(f"{name}: all black")
        elif spread * float(t) >= 1.0 and np.array_equal(frame, frame_a):
            problems.append(f"{name}: identical to keyframe A")
        elif spread * (1.0 - float(t)) >= 1.0 and np.array_equal(frame, frame_b):
            problems.append(f"{name}: identical to keyframe B")
    return problems


# ----------------------------------------------------------------------------- one frame, analysed once

_LEVELS = (np.arange(256) + 0.5) / 256  # quantile levels of the colour distributions
_PATH = np.linspace(0.0, 1.0, 33, dtype=np.float32)  # points tried along the neighbours' interpolation
_CELL_OFFSET = np.array([0.0, 128.0, 128.0], np.float32)
_CELL_SCALE = np.array([63.99 / 100, 1 / 4, 1 / 4], np.float32)
_CELLS = 1 << 18


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (L* 0-100) of uint8 or float (0-255) RGB, in float32."""
    return cv2.cvtColor(np.asarray(rgb, np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2Lab)


def _analysis_copy(frame: Frame) -> Frame:
    h, w = frame.shape[:2]
    scale = ANALYSIS_SIDE / max(h, w)
    if scale >= 1:
        return np.ascontiguousarray(frame)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _ink_radius(shape: tuple[int, ...]) -> int:
    # the black-hat finds dark strokes thinner than its disc: up to ~3% of the short side, at least 2 px
    return max(2, round(min(shape[:2]) / 50))


class _View:
    """A frame's analysis copy and what several scores need from it, computed once per pair."""

    def __init__(self, frame: Frame) -> None:
        rgb = _analysis_copy(frame)
        self.rgb = rgb
        self.shape = rgb.shape[:2]
        self.lab = _lab(rgb)
        self.grey = cv2.convertScaleAbs(self.lab[..., 0], alpha=255 / 100)  # L* as 8 bits, for the flow
        k = np.ones((3, 3), np.uint8)
        spread = cv2.split(cv2.subtract(cv2.dilate(rgb, k), cv2.erode(rgb, k)))
        self.flat = cv2.max(cv2.max(spread[0], spread[1]), spread[2]) <= FLAT_RANGE
        # cells of 1.6 L* x 4 a* x 4 b* (64 per axis): colours, with their mean and area
        q = np.clip((self.lab + _CELL_OFFSET) * _CELL_SCALE, 0, 63).astype(np.int32)
        self.cell = ((q[..., 0] << 6 | q[..., 1]) << 6 | q[..., 2]).ravel()
        # each RGB channel's quantile function (inverse CDF) at _LEVELS, in 8-bit levels
        cdfs = [np.cumsum(np.bincount(rgb[..., c].ravel(), minlength=256)) / self.cell.size for c in range(3)]
        self.quantiles = np.stack([np.searchsorted(cdf, _LEVELS) for cdf in cdfs], axis=1).astype(np.float32)
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * _ink_radius(rgb.shape) + 1,) * 2)
        self.ink = cv2.morphologyEx(self.lab[..., 0], cv2.MORPH_BLACKHAT, disc) > INK_CONTRAST
        self._all: _Colours | None = None

    def colours(self, where: np.ndarray | None = None) -> _Colours:
        """The distinct colours of the pixels in `where` (all pixels if None; computed once)."""
        if where is None and self._all is not None:
            return self._all
        cell = self.cell if where is None else self.cell[where.ravel()]
        lab = self.lab.reshape(-1, 3) if where is None else self.lab[where]
        counts = np.bincount(cell, minlength=_CELLS)
        ids = np.flatnonzero(counts)
        slot = np.zeros(_CELLS, np.int64)
        slot[ids] = np.arange(len(ids))
        inverse = slot[cell]
        means = np.stack([np.bincount(inverse, weights=lab[:, c], minlength=len(ids)) for c in range(3)], axis=1)
        found = _Colours(ids, (means / counts[ids, None]).astype(np.float32), counts[ids], inverse)
        if where is None:
            self._all = found
        return found


@dataclass(frozen=True)
class _Colours:
    """Colour cells present in some pixels: sorted cell ids, their mean Lab colour and pixel count, and
    each pixel's index into them."""

    ids: np.ndarray
    means: np.ndarray
    counts: np.ndarray
    inverse: np.ndarray


def _nearest(colours: np.ndarray, palette: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ΔE76 from each colour to its nearest palette colour, and that colour's index."""
    dist = np.empty(len(colours), np.float32)
    index = np.empty(len(colours), np.int64)
    step = max(1, (1 << 22) // max(1, len(palette)))  # bounds the temporary to ~4M distances
    for i in range(0, len(colours), step):
        d = colours[i : i + step, None, :] - palette[None, :, :]
        d2 = np.einsum("upc,upc->up", d, d)
        j = d2.argmin(axis=1)
        index[i : i + step] = j
        dist[i : i + step] = np.sqrt(d2[np.arange(len(j)), j])
    return dist, index


# ----------------------------------------------------------------------------- the scores


@dataclass(frozen=True)
class _Keys:
    """What the scores need from the two keyframes, computed once per pair."""

    a: _View
    b: _View
    palette_ids: np.ndarray  # colour cells present in either keyframe
    palette: np.ndarray  # their mean Lab colours
    majors: np.ndarray  # flat colours covering MAJOR_SHARE of both keyframes
    area_a: np.ndarray  # their share of each keyframe
    area_b: np.ndarray
    motion: np.ndarray  # pixels where something moved between A and B (see _keys)


def _keys(a: _View, b: _View) -> _Keys:
    col_a, col_b = a.colours(), b.colours()
    palette_ids, first = np.unique(np.concatenate([col_a.ids, col_b.ids]), return_index=True)
    # Major colours: flat pixels of either keyframe, merged greedily by area so that one painted colour
    # (rendered a level or two apart) is counted once.
    flat_a, flat_b = a.colours(a.flat), b.colours(b.flat)
    cand = np.concatenate([flat_a.means, flat_b.means])
    count = np.concatenate([flat_a.counts, flat_b.counts])
    order = np.argsort(-count)
    order = order[count[order] >= MAJOR_SHARE * a.cell.size]
    kept: list[np.ndarray] = []
    for i in order:
        if all(float(np.linalg.norm(cand[i] - k)) > COLOUR_TOL for k in kept):
            kept.append(cand[i])
    majors = np.array(kept, np.float32).reshape(-1, 3)
    # Motion: pixels that change by more than CHANGED_DE, from a colour B also shows to one A also shows
    # (something moved there); a colour changing in place (a fade, a light change) is a true blend.
    # Only where a keyframe is flat: across texture and shading a blend is what a small move of
    # the texture looks like, inside flat paint it is a double image.
    moved_a = _near_cells(col_a.ids, col_b.ids)[col_a.inverse]
    moved_b = _near_cells(col_b.ids, col_a.ids)[col_b.inverse]
    d = b.lab - a.lab
    changed = np.einsum("hwc,hwc->hw", d, d) > CHANGED_DE**2
    return _Keys(
        a=a, b=b, palette_ids=palette_ids, palette=np.concatenate([col_a.means, col_b.means])[first],
        majors=majors, area_a=_areas(a, majors), area_b=_areas(b, majors),
        motion=changed & (moved_a & moved_b).reshape(changed.shape) & (a.flat | b.flat),
    )


def _near_cells(ids: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Whether each colour cell in `ids` has a cell of `other` next to it (one cell along each axis:
    within about COLOUR_TOL)."""
    def axes(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # cell id = L << 12 | a << 6 | b; shifted by one into a grid with an empty border
        return ((cells >> 12) & 63) + 1, ((cells >> 6) & 63) + 1, (cells & 63) + 1

    grid = np.zeros((66, 66, 66), bool)
    grid[axes(other)] = True
    for axis in range(3):  # a 3x3x3 dilation, one axis at a time
        grid = grid | np.roll(grid, 1, axis) | np.roll(grid, -1, axis)
    return grid[axes(ids)]


def _areas(view: _View, colours: np.ndarray) -> np.ndarray:
    """Share of the frame within COLOUR_TOL of each colour (each pixel counted for its nearest one)."""
    if not len(colours):
        return np.zeros(0)
    col = view.colours()
    dist, index = _nearest(col.means, colours)
    near = dist <= COLOUR_TOL
    return np.bincount(index[near], weights=col.counts[near], minlength=len(colours)) / view.cell.size


def _tone(f: _View, keys: _Keys) -> float:
    if not f.flat.any():
        return 0.0
    col = f.colours(f.flat)
    dist = np.zeros(len(col.ids), np.float32)
    known = np.isin(col.ids, keys.palette_ids)
    # A colour in a keyframe's cell is within a cell's width of it; only the others are searched.
    pos = np.searchsorted(keys.palette_ids, col.ids[known])
    dist[known] = np.linalg.norm(col.means[known] - keys.palette[pos], axis=1)
    unknown = np.nonzero(~known)[0]
    if len(unknown):
        # Searched for the most common ones only (anime frames can have thousands of colours); the
        # rest get their mean distance.
        searched = unknown[np.argsort(-col.counts[unknown])[:TONE_SEARCH]]
        dist[searched] = _nearest(col.means[searched], keys.palette)[0]
        rest = np.setdiff1d(unknown, searched)
        if len(rest):
            dist[rest] = np.average(dist[searched], weights=col.counts[searched])
    # A pixel whose colour lies between A's and B's at the same place (blended in RGB, as a fade or
    # a light change is) is a colour changing in place: explained too.
    off = dist[col.inverse]
    far = np.zeros(f.flat.shape, bool)
    far[f.flat] = off > 0.5
    if far.any():
        a = keys.a.rgb[far].astype(np.float32)
        d = keys.b.rgb[far].astype(np.float32) - a
        e = f.rgb[far].astype(np.float32) - a
        lam = np.clip(np.einsum("pc,pc->p", e, d) / np.maximum(np.einsum("pc,pc->p", d, d), 1e-6), 0.0, 1.0)
        blend = _lab((a + lam[:, None] * d).reshape(-1, 1, 3)).reshape(-1, 3)
        off[off > 0.5] = np.minimum(off[off > 0.5], np.linalg.norm(f.lab[far] - blend, axis=1))
    return float(off.mean())


def _flicker(f: _View, prev: _View, nxt: _View) -> float:
    # Earth mover's distance of each RGB channel's distribution (the mean gap between quantile
    # functions) from the neighbours' displacement interpolation, at the point of it closest to f
    # (a fade may ease in or out). Motion moves colours around but keeps their amounts, and a fade
    # moves every quantile along a straight line: both stay on the interpolation. A flash or a tone
    # jump in one frame leaves it.
    e, d = f.quantiles - prev.quantiles, nxt.quantiles - prev.quantiles
    gaps = np.abs(e[None] - _PATH[:, None, None] * d[None]).mean(axis=1)  # path point, channel
    return float(np.linalg.norm(gaps, axis=1).min())


def _ghost(f: _View, keys: _Keys) -> float:
    moving = keys.motion
    area = int(moving.sum())
    if area < 0.001 * moving.size:
        return 0.0
    # Project each moving pixel's colour onto the segment from A's colour to B's: a ghost sits inside
    # the segment (lam between the margins) and close to it; a true in-between shows A's colour, B's,
    # or a third drawing's, except along anti-aliased edges, which the opening below removes.
    a, d = keys.a.lab[moving], keys.b.lab[moving] - keys.a.lab[moving]
    e = f.lab[moving] - a
    n2 = np.einsum("pc,pc->p", d, d)
    lam = np.einsum("pc,pc->p", e, d) / n2
    off = e - lam[:, None] * d
    near = np.einsum("pc,pc->p", off, off) < (0.2 * np.sqrt(n2) + 2.0) ** 2  # 20% of A->B, plus 2 ΔE
    mix = np.zeros(moving.shape, np.uint8)
    mix[moving] = (lam > MIX_MARGIN) & (lam < 1.0 - MIX_MARGIN) & near
    mix = cv2.morphologyEx(mix, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    return float(mix.sum() / area)


def _vanish(f: _View, keys: _Keys) -> float:
    # A part drawn in both keyframes keeps roughly its size (within a factor of two); a colour that
    # grows or shrinks more between them is a change of colour (a fade), not a part.
    a, b = keys.area_a, keys.area_b
    both = (a >= MAJOR_SHARE) & (b >= MAJOR_SHARE) & (a <= 2 * b) & (b <= 2 * a)
    if not both.any():
        return 0.0
    # In between, it covers at least about the smaller of its two areas, whatever the spacing.
    expected = np.minimum(a, b)[both]
    return float(max(0.0, np.max((expected - _areas(f, keys.majors)[both]) / expected)))


class _Flow:
    """Dense optical flow between two neighbouring frames' analysis copies (DIS, Kroeger et al. 2016),
    both ways."""

    def __init__(self, a: _View, b: _View) -> None:
        dis = cv2.DISOpticalFlow.create(cv2.DISOpticalFlow_PRESET_MEDIUM)
        self.ab = dis.calc(a.grey, b.grey, None)  # a(x) ~ b(x + ab(x))
        self.ba = dis.calc(b.grey, a.grey, None)

    @staticmethod
    def consistent(fwd: np.ndarray, bwd: np.ndarray, where: np.ndarray) -> np.ndarray:
        """At the pixels `where`: going there along `fwd` and back along `bwd` lands within a pixel (plus
        10% of the motion) of the start, so the match is neither occluded nor made up."""
        ok = np.zeros(where.shape, bool)
        ys, xs = np.nonzero(where)
        if not len(ys):
            return ok
        there = fwd[ys, xs]
        cols = (xs + there[:, 0]).astype(np.float32).reshape(-1, 1)
        rows = (ys + there[:, 1]).astype(np.float32).reshape(-1, 1)
        back = cv2.remap(bwd, cols, rows, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(-1, 2)
        ok[ys, xs] = np.linalg.norm(there + back, axis=1) < 1.0 + 0.1 * np.linalg.norm(there, axis=1)
        return ok


def _lines(f: _View, from_prev: _Flow, to_next: _Flow) -> tuple[float, float] | None:
    # Each ink pixel of f has a match in the previous frame and one in the next (the flows). Over one
    # short span a drawn line travels along a path from the one to the other: f's pixel lies on the
    # segment between its two matches, wherever the animator's spacing put it (ease in and out). The
    # score is the mean distance from that segment: a line that jumped, wobbled or boiled in f is off
    # its neighbours' path, however fast they move.
    to_prev, to_nxt = from_prev.ba, to_next.ab
    trusted = _Flow.consistent(to_prev, from_prev.ab, f.ink) & _Flow.consistent(to_nxt, to_next.ba, f.ink)
    if trusted.sum() < max(1.0, LINE_COVERAGE * float(f.ink.sum())):
        return None
    p, n = to_prev[trusted], to_nxt[trusted]  # the matches, relative to f's pixel
    d = n - p
    lam = np.clip(-np.einsum("pc,pc->p", p, d) / np.maximum(np.einsum("pc,pc->p", d, d), 1e-6), 0.0, 1.0)
    off = np.linalg.norm(p + lam[:, None] * d, axis=1) - LINE_MOTION_SLACK * np.linalg.norm(d, axis=1)
    motion = 0.5 * float((np.linalg.norm(p, axis=1) + np.linalg.norm(n, axis=1)).mean())
    return float(np.maximum(off, 0.0).mean()), motion


# ----------------------------------------------------------------------------- a pair


def score_pair(
    frame_a: Frame,
    frame_b: Frame,
    times: Sequence[float],
    frames: Sequence[Frame],
    thresholds: QAThresholds | None = None,
) -> PairQuality:
    """Hard problems, scores and flags of the in-betweens `frames` at `times` between two keyframes."""
    started = time.perf_counter()
    limits = thresholds or QAThresholds()
    problems = hard_problems(frame_a, frame_b, times, frames)
    if len(frames) != len(times) or any(not isinstance(f, np.ndarray) or f.shape != frame_a.shape for f in frames):
        return PairQuality(tuple(problems), (), (), time.perf_counter() - started)
    # The neighbours are the frames next in time; the output keeps the order the frames were given in.
    order = sorted(range(len(frames)), key=lambda i: float(times[i]))
    views = [_View(x) for x in (frame_a, *(frames[i] for i in order), frame_b)]
    ts = [0.0, *(float(times[i]) for i in order), 1.0]
    keys = _keys(views[0], views[-1])
    follow = min(views[0].shape) >= FLOW_MIN_SIDE
    flows = [_Flow(views[i], views[i + 1]) for i in range(len(views) - 1)] if follow else []
    scores: list[FrameScores] = []
    for i in range(1, len(views) - 1):
        prev, f, nxt = views[i - 1], views[i], views[i + 1]
        lines = _lines(f, flows[i - 1], flows[i]) if follow else None
        scores.append(FrameScores(
            index=order[i - 1] + 1, t=ts[i],
            tone=_tone(f, keys),
            flicker=_flicker(f, prev, nxt),
            ghost=_ghost(f, keys),
            lines=None if lines is None else lines[0],
            vanish=_vanish(f, keys),
            motion=None if lines is None else lines[1],
        ))
    scores.sort(key=lambda s: s.index)
    flags = tuple(f"{frame_label(s.index, s.t)}: {line}" for s in scores for line in s.over(limits))
    return PairQuality(tuple(problems), tuple(scores), flags, time.perf_counter() - started)
