"""Palette lock: hold a generated in-between to the colours of the two keyframes it was drawn between.

Generative in-betweeners drift in tone: a fill comes out a few ΔE lighter, or its hue slides. Flat
cartoon fills make the drift measurable, since every fill of the in-between is a palette colour of its
keyframes, moved. Colours are compared in OKLab (Ottosson 2020, "A perceptual color space for image
processing": Euclidean distance close to perceived difference, about 0.01 per CIELAB ΔE), and the
work is done on the frame's distinct colours rather than its pixels (a flat cartoon has few):

1. palette: the colours that peak in the keyframes' colour histogram with a real share of their pixels
   (anti-aliased edge mixes and small highlights are too few to count); anchors: where on screen both
   keyframes show the same palette colour;
2. drift: each palette colour's median in the in-between at its anchors (position, not nearness, so a
   drift that carries one fill towards another cannot swap them); a colour without anchors (it moved)
   is predicted by the affine OKLab map that takes the anchored ones home, then read from the
   in-between colours nearest that prediction;
3. correction, in sRGB-encoded values, where renderers blend: a fill's own colours (its noise too) move
   by its shift; every other pixel is read as the nearest mix of two fills painted within `reach` pixels
   of it, and moves by that mix of their shifts, so an anti-aliased edge comes back as the mix of the
   true fills. A colour that no nearby mix explains (a highlight, something new) is left alone.

A clean in-between has no drift to correct, so it comes back unchanged (`bench/palette.py` measures
both: drift removed, and the change on clean in-betweens).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tooncrafter_model.frames import Frame, check_frame

# ------------------------------------------------------------------------------------ colour spaces

# OKLab: linear sRGB -> LMS, cube root, -> Lab (Ottosson 2020, the published matrices).
_OK_M1 = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_OK_M2 = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)
_OK_M1_INV = np.linalg.inv(_OK_M1)
_OK_M2_INV = np.linalg.inv(_OK_M2)

# CIE XYZ of linear sRGB and the D65 white (IEC 61966-2-1), for CIELAB.
_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_D65 = _XYZ.sum(axis=1)


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] -> linear light (IEC 61966-2-1 transfer function)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    """Linear light -> sRGB-encoded values (not clipped)."""
    lin = np.asarray(lin, dtype=np.float64)
    magnitude = np.abs(lin)
    encoded = np.where(magnitude <= 0.0031308, magnitude * 12.92, 1.055 * magnitude ** (1 / 2.4) - 0.055)
    return np.asarray(np.sign(lin) * encoded)


def rgb8_to_oklab(rgb: np.ndarray) -> np.ndarray:
    """uint8 sRGB (..., 3) -> OKLab (..., 3), float64."""
    lms = srgb_to_linear(np.asarray(rgb) / 255.0) @ _OK_M1.T
    return np.asarray(np.cbrt(lms) @ _OK_M2.T)


def oklab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """OKLab (..., 3) -> sRGB-encoded values, 1 = full scale, neither rounded nor clipped."""
    lin = (np.asarray(lab, dtype=np.float64) @ _OK_M2_INV.T) ** 3 @ _OK_M1_INV.T
    return linear_to_srgb(lin)


def oklab_to_rgb8(lab: np.ndarray) -> np.ndarray:
    """OKLab (..., 3) -> uint8 sRGB, rounded and clipped to the gamut's cube."""
    return np.asarray(np.rint(np.clip(oklab_to_srgb(lab) * 255.0, 0.0, 255.0)).astype(np.uint8))


def rgb8_to_cielab(rgb: np.ndarray) -> np.ndarray:
    """uint8 sRGB (..., 3) -> CIELAB (..., 3) under D65, for ΔE measurements."""
    t = (srgb_to_linear(np.asarray(rgb) / 255.0) @ _XYZ.T) / _D65
    delta = 6.0 / 29.0
    f = np.where(t > delta**3, np.cbrt(t), t / (3 * delta**2) + 4.0 / 29.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], -1)


def delta_e(a: Frame, b: Frame) -> np.ndarray:
    """Per-pixel CIE 1976 ΔE (Euclidean CIELAB distance) between two uint8 RGB frames; 1 is about a JND."""
    return np.asarray(np.linalg.norm(rgb8_to_cielab(a) - rgb8_to_cielab(b), axis=-1))


def _distinct(frame: Frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frame's distinct colours (K, 3) uint8, each pixel's index into them, and each colour's pixel count."""
    packed = (frame[..., 0].astype(np.uint32) << 16) | (frame[..., 1].astype(np.uint32) << 8) | frame[..., 2]
    values, inverse, counts = np.unique(packed.ravel(), return_inverse=True, return_counts=True)
    colours = np.stack([(values >> 16) & 255, (values >> 8) & 255, values & 255], axis=-1).astype(np.uint8)
    return colours, inverse.reshape(frame.shape[:2]), counts


# ------------------------------------------------------------------------------------------ the lock

@dataclass(frozen=True)
class PaletteLock:
    """Palette lock's parameters (distances in OKLab units, where 0.01 is about one CIELAB ΔE).

    All of them go into a version's assembly key, so tuning them makes new versions.
    """

    share: float = 0.001  # a keyframe colour covering this fraction of both keyframes' pixels is in the palette
    merge: float = 0.02  # keyframe colours closer than this are one palette colour (video noise, dithering)
    capture: float = 0.12  # an in-between colour this close to a palette colour is that fill, drifted
    mix: float = 0.05  # a colour this close (sRGB, 1 = full scale) to a mix of two fills is that mix, drifted
    reach: int = 2  # pixels around an edge pixel whose fills it may be a mix of
    edge: float = 0.02  # a sparse keyframe colour this close (sRGB) to a mix of two paints is an edge, not paint
    ridge: float = 0.05  # pull of the affine drift estimate towards the identity, relative to the fills' weight

    def as_dict(self) -> dict[str, Any]:
        """The parameters as plain values, for the assembly key and the provenance sidecar."""
        return {"space": "oklab", **asdict(self)}


@dataclass(frozen=True, eq=False)
class Palette:
    """Two keyframes' palette, and where on screen both keyframes agree on a palette colour."""

    colours: np.ndarray  # (K, 3) OKLab, most-used first
    anchors: np.ndarray  # (H, W) int: index of the colour both keyframes show there, -1 where they differ


def key_palette(key_a: Frame, key_b: Frame, lock: PaletteLock = PaletteLock()) -> Palette:
    """The palette of two keyframes of one size, and their anchors (see `Palette`)."""
    key_a, key_b = check_frame(key_a, "keyframe a"), check_frame(key_b, "keyframe b")
    if key_a.shape != key_b.shape:
        raise ValueError(f"keyframes must have one size, got {key_a.shape[:2]} and {key_b.shape[:2]}")
    colours, inverse, counts = _distinct(np.concatenate([key_a, key_b]))  # stacked: b's rows below a's
    lab = rgb8_to_oklab(colours)
    centres = _founders(lab, colours / 255.0, counts, lock, lock.share * counts.sum())
    if not centres:
        return Palette(np.empty((0, 3)), np.full(key_a.shape[:2], -1))
    # Each entry becomes the weighted median of the colours within `merge` of it: a noisy (decoded video)
    # fill is many near colours, and an exact fill keeps its exact colour despite its edge pixels.
    near = _distances(lab, np.asarray(centres)) <= lock.merge
    palette = np.asarray([_weighted_median(lab[near[:, k]], counts[near[:, k]]) for k in range(len(centres))])
    index, dist = _nearest(lab, palette)
    label = np.where(dist <= lock.merge, index, -1)[inverse]
    height = key_a.shape[0]
    return Palette(palette, _inner(np.where(label[:height] == label[height:], label[:height], -1)))


def _inner(labels: np.ndarray) -> np.ndarray:
    """`labels` where the 3x3 neighbourhood agrees, -1 elsewhere: the inside of shared fills, where an
    in-between almost surely shows the same fill; a thin ink line two keyframes happen to share is not."""
    padded = np.pad(labels, 1, mode="edge")
    height, width = labels.shape
    same = np.ones(labels.shape, bool)
    for dy, dx in np.ndindex(3, 3):
        same &= padded[dy : dy + height, dx : dx + width] == labels
    return np.where(same, labels, -1)


def _founders(lab: np.ndarray, rgb: np.ndarray, counts: np.ndarray, lock: PaletteLock, floor: float) -> list[np.ndarray]:
    """One colour per palette entry, densest first: the most used colour of each `merge`-sized OKLab cell
    that holds no fewer pixels than any of its 26 neighbours (a peak) and whose neighbourhood holds at
    least `floor` pixels, unless it lies within `merge` of an entry already founded or, holding fewer
    than `floor` itself, on the mix of two (within `edge`).

    Counting neighbourhoods rather than exact colours lets a noisy fill (decoded video spreads one ink
    colour over hundreds of values) found an entry, and keeps a fill split by a cell border whole.
    """
    cell = np.floor(lab / lock.merge).astype(np.int64)
    cell -= cell.min(axis=0) - 1  # an empty cell on every side: rolling wraps into emptiness
    shape = tuple(int(n) for n in cell.max(axis=0) + 2)
    flat = np.ravel_multi_index(tuple(cell.T), shape)
    hist = np.bincount(flat, weights=counts, minlength=int(np.prod(shape))).reshape(shape)
    shifts = [tuple(d - 1 for d in shift) for shift in np.ndindex(3, 3, 3)]
    density = np.sum([np.roll(hist, shift, axis=(0, 1, 2)) for shift in shifts], axis=0)
    peak = np.max([np.roll(hist, shift, axis=(0, 1, 2)) for shift in shifts], axis=0) <= hist
    occupied = np.unique(flat)
    # A peak holds a quarter of the floor itself: spread-out noise (a photograph, grain) has no paints.
    keep = (density.ravel()[occupied] >= floor) & peak.ravel()[occupied] & (hist.ravel()[occupied] >= floor / 4)
    occupied = occupied[keep]
    order = np.lexsort((-counts, flat))  # by cell, then most used first
    best = order[np.searchsorted(flat[order], occupied)]  # each peak cell's most used colour
    centres: list[int] = []
    for i in best[np.argsort(-hist.ravel()[occupied], kind="stable")]:
        if centres and _distances(lab[i : i + 1], lab[centres]).min() <= lock.merge:
            continue
        sparse = hist.ravel()[flat[i]] < floor
        if sparse and len(centres) > 1 and _mixes(rgb[i : i + 1], rgb[centres])[1][0] <= lock.edge:
            continue  # a few pixels on the mix of two paints: an anti-aliased edge (small frames have many)
        centres.append(int(i))
    return [lab[i] for i in centres]


def _distances(lab: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(N, K) OKLab distances, without the (N, K, 3) difference array a noisy keyframe would make huge."""
    squared = (lab**2).sum(axis=1)[:, None] + (palette**2).sum(axis=1)[None] - 2.0 * lab @ palette.T
    return np.asarray(np.sqrt(np.maximum(squared, 0.0)))


def _nearest(lab: np.ndarray, palette: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dist = _distances(lab, palette)
    index = dist.argmin(axis=1)
    return index, dist[np.arange(len(lab)), index]


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-column median of `values` (N, 3) where row i counts `weights[i]` times."""
    out = np.empty(values.shape[1])
    for c in range(values.shape[1]):
        order = np.argsort(values[:, c])
        cumulative = np.cumsum(weights[order])
        out[c] = values[order[np.searchsorted(cumulative, cumulative[-1] / 2.0)], c]
    return out


def _anchored(
    lab: np.ndarray, inverse: np.ndarray, palette: Palette, capture: float, floor: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Palette colours found at their anchors: (indices, the in-between's median there, pixels counted).

    Position, not colour, makes the match: a drift can carry a fill closer to another palette colour
    (a pink sky lightened towards a pink face), but the sky is still where the keyframes had sky. The
    character moving across a few anchors is outvoted by the median.
    """
    found, medians, weights = [], [], []
    if inverse.shape == palette.anchors.shape:
        for k in range(len(palette.colours)):
            seen = np.bincount(inverse[palette.anchors == k], minlength=len(lab))
            if seen.sum() < floor:
                continue
            median = _weighted_median(lab[seen > 0], seen[seen > 0])
            if np.linalg.norm(median - palette.colours[k]) <= capture:  # else something else covers it now
                found.append(k)
                medians.append(median)
                weights.append(float(seen.sum()))
    return np.asarray(found, dtype=int), np.asarray(medians).reshape(-1, 3), np.asarray(weights)


def _near(
    lab: np.ndarray, counts: np.ndarray, centres: np.ndarray, radius: float, floor: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres with enough colours nearest them within `radius`: (indices, those colours' median, pixels)."""
    index, dist = _nearest(lab, centres)
    found, medians, weights = [], [], []
    for k in range(len(centres)):
        member = (index == k) & (dist <= radius)
        if counts[member].sum() >= floor:
            found.append(k)
            medians.append(_weighted_median(lab[member], counts[member]))
            weights.append(float(counts[member].sum()))
    return np.asarray(found, dtype=int), np.asarray(medians).reshape(-1, 3), np.asarray(weights)


def _affine_to_palette(drifted: np.ndarray, target: np.ndarray, weights: np.ndarray, ridge: float) -> np.ndarray:
    """The (3, 4) affine map A minimizing sum_k w_k |A [m_k, 1] - c_k|^2 + ridge * sum(w) * |A - [I | 0]|^2.

    Square-root weights: the sky must not outvote the ink. The penalty makes the identity the answer
    whenever the medians already sit on the palette, and keeps A sane when few colours constrain it.
    """
    w = np.sqrt(weights)
    x = np.hstack([drifted, np.ones((len(drifted), 1))])  # (K, 4)
    prior = np.hstack([np.eye(3), np.zeros((3, 1))])  # (3, 4)
    lam = ridge * w.sum()
    gram = x.T @ (w[:, None] * x) + lam * np.eye(4)
    rhs = x.T @ (w[:, None] * target) + lam * prior.T
    return np.asarray(np.linalg.solve(gram, rhs).T)


def _drifted_palette(
    lab: np.ndarray, inverse: np.ndarray, counts: np.ndarray, palette: Palette, lock: PaletteLock, floor: float
) -> np.ndarray | None:
    """Where each palette colour sits in this in-between (K, 3) OKLab; None when no fill can be found.

    Colours found at their anchors are read there. The others are predicted by the affine map that takes
    the found ones home (inverted), then read from the in-between's colours nearest that prediction.
    """
    home = palette.colours
    found, medians, weights = _anchored(lab, inverse, palette, lock.capture, floor)
    if len(found) == 0:  # no anchors (a camera move): match by nearness alone
        found, medians, weights = _near(lab, counts, home, lock.capture, floor)
        if len(found) == 0:
            return None
    affine = _affine_to_palette(medians, home[found], weights, lock.ridge)
    drifted = np.linalg.solve(affine[:, :3], (home - affine[:, 3]).T).T
    drifted[found] = medians
    missing = np.setdiff1d(np.arange(len(home)), found)
    if len(missing):
        near, near_medians, _ = _near(lab, counts, drifted, lock.capture, floor)
        keep = np.isin(near, missing)
        drifted[near[keep]] = near_medians[keep]
    return np.asarray(drifted)


def _mixes(
    rgb: np.ndarray, ends: np.ndarray, allowed: np.ndarray | None = None, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Each colour as the nearest mix of two palette colours (a point on a segment between two of `ends`),
    in sRGB-encoded values, where renderers blend anti-aliased edges: (N, K) mix weights, (N,) distance.

    `allowed` (N, K): the palette colours each colour may be a mix of (those painted nearby). A colour
    whose nearest point is an end (it is beyond a fill, not between two) counts twice as far; one with
    nothing allowed is infinitely far.
    """
    k = len(ends)
    pairs = [(i, j) for i in range(k) for j in range(i, k)]  # (i, i): the colour itself
    first = np.array([i for i, _ in pairs])
    second = np.array([j for _, j in pairs])
    start, span = ends[first], ends[second] - ends[first]  # (P, 3)
    length = np.maximum((span**2).sum(axis=1), 1e-12)
    weights = np.zeros((len(rgb), k))
    distance = np.empty(len(rgb))
    for lo in range(0, len(rgb), chunk):
        x = rgb[lo : lo + chunk, None, :] - start[None]  # (n, P, 3)
        t = np.clip((x * span[None]).sum(axis=-1) / length, 0.0, 1.0)  # (n, P) position along each segment
        gap = np.linalg.norm(x - t[..., None] * span[None], axis=-1)
        gap[(t == 0.0) | (t == 1.0)] *= 2.0  # beyond a fill, not between two: a highlight is no mix
        if allowed is not None:
            gap[~(allowed[lo : lo + chunk, first] & allowed[lo : lo + chunk, second])] = np.inf
        best = gap.argmin(axis=1)
        rows = np.arange(len(best))
        along = t[rows, best]
        np.add.at(weights, (lo + rows, first[best]), 1.0 - along)
        np.add.at(weights, (lo + rows, second[best]), along)
        distance[lo : lo + chunk] = gap[rows, best]
    return weights, distance


def _grow(mask: np.ndarray, radius: int) -> np.ndarray:
    """`mask` dilated by a (2 radius + 1)-pixel square, rows then columns."""
    out = mask
    for axis in (0, 1):
        padded = np.moveaxis(np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)]), axis, 0)
        size = out.shape[axis]
        grown = padded[:size].copy()
        for d in range(1, 2 * radius + 1):
            grown |= padded[d : d + size]
        out = np.moveaxis(grown, 0, axis)
    return out


def _rgb8(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(np.rint(np.clip(rgb * 255.0, 0.0, 255.0)).astype(np.uint8))


def palette_lock(frame: Frame, palette: Palette, lock: PaletteLock = PaletteLock()) -> Frame:
    """`frame` (an in-between of the keyframes `palette` came from) with its drifted fills pulled back
    onto the palette (see the module doc)."""
    frame = check_frame(frame)
    if len(palette.colours) == 0:
        return frame
    colours, inverse, counts = _distinct(frame)
    lab = rgb8_to_oklab(colours)
    floor = lock.share * frame.shape[0] * frame.shape[1] / 2  # half the keyframes' floor: a fill can shrink
    drifted = _drifted_palette(lab, inverse, counts, palette, lock, floor)
    if drifted is None:
        return frame
    home = palette.colours
    rgb, ends = colours / 255.0, oklab_to_srgb(drifted)
    shift = oklab_to_srgb(home) - ends  # (K, 3), in sRGB-encoded values like the blends
    # A fill's own colours (and its noise) move with it, colour by colour.
    gap = _distances(rgb, ends)
    fill = gap.argmin(axis=1)
    own = gap[np.arange(len(rgb)), fill] <= lock.mix / 2
    out = _rgb8(rgb + own[:, None] * shift[fill])[inverse]
    if np.abs(shift).max() <= 1e-9:
        return np.asarray(out)
    # Every other pixel as a mix of the fills painted within `reach` pixels of it: shifting a mix of two
    # drifted fills by that mix of their shifts gives the mix of the true fills, so an anti-aliased
    # edge comes back as it was blended; a colour no nearby mix explains (a highlight) stays.
    edge = ~own[inverse]
    labels = np.where(own, fill, -1)[inverse]
    near = np.stack([_grow(labels == k, lock.reach)[edge] for k in range(len(home))], axis=-1)  # (edge pixels, K)
    x = rgb[inverse[edge]]
    weights, distance = _mixes(x, ends, near)
    trust = np.clip(2.0 - distance / lock.mix, 0.0, 1.0)  # 1 within `mix`, fading to 0 at twice that
    out[edge] = _rgb8(x + trust[:, None] * (weights @ shift))
    return np.asarray(out)


# ----------------------------------------------------------------------------------- measuring it


def tone_drift(frame: Frame, hue: float, lightness: float, where: np.ndarray | None = None) -> Frame:
    """The drift that tests and `bench/palette.py` inject: hue rotated by `hue` degrees and lightness
    shifted by `lightness` (of 1) in HLS, everywhere or only where the mask `where` is true.

    HLS, not OKLab, so the lock is never measured against its own model of drift.
    """
    import cv2

    hls = cv2.cvtColor(check_frame(frame).astype(np.float32) / 255.0, cv2.COLOR_RGB2HLS)  # H in degrees
    hls[..., 0] = (hls[..., 0] + hue) % 360.0
    hls[..., 1] = np.clip(hls[..., 1] + lightness, 0.0, 1.0)
    drifted = np.rint(np.clip(cv2.cvtColor(hls, cv2.COLOR_HLS2RGB) * 255.0, 0.0, 255.0)).astype(np.uint8)
    return drifted if where is None else np.where(where[..., None], drifted, frame)
