"""Palette lock: how much injected tone drift it removes, and how little it touches clean in-betweens.

    .venv/bin/python bench/palette.py

Ground truth is exact: `tasks/synthetic.py` draws the true in-between at any time s, and the Lottie
triplets in /work/shared/data/lottie (when present) hold the true middle frame of two keyframes. A
drift (`tone_drift`: hue and lightness shifted in HLS) is injected into the true in-between; palette
lock with the keyframes' palette should bring it back. All ΔE are CIE 1976 (CIELAB, D65) against the
truth, per pixel, averaged over the pixels named by `pixels`:

- `all`: every pixel; `edges`: pixels of the truth that are not a flat palette colour (anti-aliased ink
  lines and fill borders); `highlights`: a small near-white spot painted on the character's head in
  keyframes and in-betweens alike, too small to be a palette colour (synthetic shots only).
- `clean`: the lock applied to the true in-between itself: `mean`/`p99`/`max` ΔE of the change and the
  share of pixels changed at all.
- `global`: the whole frame drifts; `local`: only the character's body fill (and its border) drifts.
- `video`: keyframes and in-betweens went through an H.264 (CRF 18, 4:2:0) encode and decode first, as
  keyframes cut from a rough animation video do; the truth is the decoded in-between.

One JSON line per case and drift, then one line of speed at 1024x576.

Palette lock is for shots whose keyframes share their paint. One Lottie triplet (`adrock_n111`) darkens
from one keyframe to the other (a fade): its true middle sits between two palettes, so the lock moves it,
and that triplet alone makes the `lottie` case's change on clean frames (the other eleven: none).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tasks.palette import PaletteLock, delta_e, key_palette, palette_lock, rgb8_to_oklab, tone_drift
from tasks.synthetic import Character, draw_frame, make_character, write_video
from tooncrafter_model.frames import Frame, read_frame

DRIFTS = [(8.0, 0.04), (-12.0, -0.05), (0.0, 0.06), (15.0, 0.0)]  # (hue degrees, HLS lightness)
TIMES = (0.25, 0.5, 0.75)
SEEDS = range(6)
SIZE = (512, 320)
LOTTIE = Path("/work/shared/data/lottie/triplets")
HIGHLIGHT = (255, 252, 244)


def _with_highlight(frame: Frame, ch: Character, colour: tuple[int, int, int]) -> tuple[Frame, np.ndarray]:
    """`frame` with a 2.5-pixel spot of `colour` on the head (up and left of its centre), and the spot's mask."""
    ys, xs = np.nonzero((frame == ch.head).all(axis=-1))
    cy, cx = ys.mean() - 4.0, xs.mean() - 4.0
    yy, xx = np.mgrid[: frame.shape[0], : frame.shape[1]]
    spot = (yy - cy) ** 2 + (xx - cx) ** 2 <= 2.5**2
    out = frame.copy()
    out[spot] = colour
    return out, spot


def _dilate(mask: np.ndarray, steps: int = 2) -> np.ndarray:
    out = mask.copy()
    for _ in range(steps):
        out[1:] |= out[:-1].copy()
        out[:-1] |= out[1:].copy()
        out[:, 1:] |= out[:, :-1].copy()
        out[:, :-1] |= out[:, 1:].copy()
    return out


def _decoded(frames: list[Frame], folder: Path) -> list[Frame]:
    """The frames after an H.264 CRF 18 yuv420p round trip (decoded with OpenCV)."""
    import cv2

    path = write_video(frames, folder / "clip.mp4", fps=24)
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        out.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    cap.release()
    return out


@dataclass
class Case:
    """Two keyframes, the true in-between, its drifted versions, and the pixels to measure apart."""

    a: Frame
    b: Frame
    truth: Frame
    drifted: dict[tuple[str, float, float], Frame]  # (how, hue, lightness) -> frame
    spot: np.ndarray | None  # the highlight's pixels


def _drift_rgb(rgb: tuple[int, int, int], hue: float, light: float) -> tuple[int, int, int]:
    r, g, b = tone_drift(np.array([[rgb]], np.uint8), hue, light)[0, 0].tolist()
    return (r, g, b)


def _synthetic(video: bool, folder: Path) -> Iterator[Case]:
    """Per seed and time: the drift on the finished pixels (`pixels`, edges drift as their own colour), and
    the in-between drawn with drifted paint (`repaint`, every colour; `repaint-body`, the body fill only),
    where an anti-aliased edge is the mix of its drifted fills, as a generator's would be."""
    width, height = SIZE

    for seed in SEEDS:
        ch = make_character(seed)

        def draw(s: float, hue: float = 0.0, light: float = 0.0, only: str | None = None) -> tuple[Frame, np.ndarray]:
            names = ("body", "head", "arm", "ink", "sky", "ground") if only is None else (only,)
            paints: dict[str, Any] = {n: _drift_rgb(getattr(ch, n), hue, light) for n in names}
            painted = replace(ch, **paints)
            spot = _drift_rgb(HIGHLIGHT, hue, light) if only in (None, "head") else HIGHLIGHT
            return _with_highlight(draw_frame(s, width=width, height=height, character=painted), painted, spot)

        (a, _), (b, _) = draw(0.0), draw(1.0)
        for s in TIMES:
            truth, spot = draw(s)
            drifted = {}
            for hue, light in DRIFTS:
                drifted[("pixels", hue, light)] = tone_drift(truth, hue, light)
                drifted[("repaint", hue, light)] = draw(s, hue, light)[0]
                drifted[("repaint-body", hue, light)] = draw(s, hue, light, "body")[0]
            if not video:
                yield Case(a, b, truth, drifted, spot)
                continue
            decoded = _decoded([a, b, truth, *drifted.values()], folder)
            yield Case(decoded[0], decoded[1], decoded[2], dict(zip(drifted, decoded[3:], strict=True)), spot)


def _lottie() -> Iterator[Case]:
    for mid in sorted(LOTTIE.glob("*_gt_mid_*.png")):
        stem = mid.name.split("_gt_mid_")[0]
        a = read_frame(next(LOTTIE.glob(f"{stem}_a_*.png")))
        b = read_frame(next(LOTTIE.glob(f"{stem}_b_*.png")))
        truth = read_frame(mid)
        yield Case(a, b, truth, {("pixels", h, li): tone_drift(truth, h, li) for h, li in DRIFTS}, None)


def _summary(values: list[np.ndarray]) -> dict[str, float]:
    v = np.concatenate([x.ravel() for x in values])
    return {"mean": round(float(v.mean()), 3), "p99": round(float(np.percentile(v, 99)), 3), "max": round(float(v.max()), 2)}


def _measure(name: str, cases: list[Case], lock: PaletteLock) -> None:
    clean: dict[str, list[np.ndarray]] = {}
    changed: list[float] = []
    drift: dict[tuple[str, float, float], dict[str, list[np.ndarray]]] = {}
    for case in cases:
        palette = key_palette(case.a, case.b, lock)
        lab = rgb8_to_oklab(case.truth)
        flat = np.zeros(case.truth.shape[:2], bool)
        for colour in palette.colours:  # truth pixels on (within about 1 ΔE of) a palette colour
            flat |= np.linalg.norm(lab - colour, axis=-1) < 0.01
        parts = {"all": np.ones_like(flat), "edges": ~flat if case.spot is None else ~flat & ~_dilate(case.spot, 1)}
        if case.spot is not None:
            parts["highlights"] = case.spot
        cleaned = palette_lock(case.truth, palette, lock)
        change = delta_e(cleaned, case.truth)
        for part, mask in parts.items():
            clean.setdefault(part, []).append(change[mask])
        changed.append(float((cleaned != case.truth).any(axis=-1).mean()))
        for key, frame in case.drifted.items():
            before, after = delta_e(frame, case.truth), delta_e(palette_lock(frame, palette, lock), case.truth)
            got = drift.setdefault(key, {})
            for part, mask in parts.items():
                got.setdefault(f"{part}_before", []).append(before[mask])
                got.setdefault(f"{part}_after", []).append(after[mask])
    print(json.dumps({"bench": "palette", "case": name, "frames": len(cases), "clean": {
        **{part: _summary(v) for part, v in clean.items()}, "pixels_changed": round(float(np.mean(changed)), 5),
    }}), flush=True)
    for (how, hue, light), got in drift.items():
        row: dict[str, object] = {"bench": "palette", "case": name, "drift": how, "hue_deg": hue, "lightness": light}
        for part in ("all", "edges", "highlights"):
            if f"{part}_before" in got:
                de_before = float(np.mean(np.concatenate(got[f"{part}_before"])))
                de_after = float(np.mean(np.concatenate(got[f"{part}_after"])))
                row[part] = {"de_before": round(de_before, 3), "de_after": round(de_after, 3),
                             "removed": round(1.0 - de_after / de_before, 4) if de_before > 0.01 else None}
        print(json.dumps(row), flush=True)


def _speed(lock: PaletteLock) -> None:
    ch = make_character(3)
    a, b = (draw_frame(s, width=1024, height=576, character=ch) for s in (0.0, 1.0))
    mid = tone_drift(draw_frame(0.5, width=1024, height=576, character=ch), 8.0, 0.04)
    t0 = time.perf_counter()
    palette = key_palette(a, b, lock)
    t1 = time.perf_counter()
    for _ in range(5):
        palette_lock(mid, palette, lock)
    t2 = time.perf_counter()
    print(json.dumps({"bench": "palette", "speed": "1024x576", "palette_ms": round((t1 - t0) * 1e3, 1),
                      "lock_ms_per_frame": round((t2 - t1) / 5 * 1e3, 1)}), flush=True)


def main() -> None:
    lock = PaletteLock()
    print(json.dumps({"bench": "palette", "lock": lock.as_dict(), "drifts": DRIFTS, "size": SIZE}), flush=True)
    with tempfile.TemporaryDirectory(prefix="tfpalette-") as tmp:
        _measure("synthetic", list(_synthetic(False, Path(tmp))), lock)
        _measure("synthetic-video", list(_synthetic(True, Path(tmp))), lock)
    if LOTTIE.is_dir():
        _measure("lottie", list(_lottie()), lock)
    _speed(lock)


if __name__ == "__main__":
    main()
