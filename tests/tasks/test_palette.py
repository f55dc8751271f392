"""Palette lock: exact colour spaces, the keyframes' palette, drift removed, clean frames and highlights kept."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tasks.palette import (
    Palette,
    PaletteLock,
    delta_e,
    key_palette,
    oklab_to_rgb8,
    palette_lock,
    rgb8_to_cielab,
    rgb8_to_oklab,
    tone_drift,
)
from tasks.synthetic import Character, draw_frame, make_character, write_video

W, H = 256, 160  # the arm, the smallest paint, covers about 0.15% of two keyframes: above palette's floor
PAINTS = ("body", "head", "arm", "ink", "sky", "ground")


def _paint(ch: Character, hue: float, light: float, only: tuple[str, ...] = PAINTS) -> Character:
    """`ch` repainted with drifted colours: fills and their anti-aliased edges drift together."""
    def drift(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
        r, g, b = tone_drift(np.array([[rgb]], np.uint8), hue, light)[0, 0].tolist()
        return (r, g, b)

    return dataclasses.replace(ch, **{name: drift(getattr(ch, name)) for name in only})  # type: ignore[arg-type]


def _shot(seed: int = 0) -> tuple[Character, np.ndarray, np.ndarray]:
    ch = make_character(seed)
    return ch, draw_frame(0.0, width=W, height=H, character=ch), draw_frame(1.0, width=W, height=H, character=ch)


# ------------------------------------------------------------------------------------ colour spaces


def test_oklab_round_trips_every_grey_and_random_colours_exactly() -> None:
    rng = np.random.default_rng(0)
    colours = np.concatenate([np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1), rng.integers(0, 256, (4096, 3), dtype=np.uint8)])
    np.testing.assert_array_equal(oklab_to_rgb8(rgb8_to_oklab(colours)), colours)
    white, black = rgb8_to_oklab(np.array([[255, 255, 255], [0, 0, 0]], np.uint8))
    np.testing.assert_allclose(white, [1.0, 0.0, 0.0], atol=1e-4)  # OKLab's white is L = 1, a = b = 0
    np.testing.assert_allclose(black, [0.0, 0.0, 0.0], atol=1e-9)


def test_cielab_matches_published_srgb_values() -> None:
    lab = rgb8_to_cielab(np.array([[255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]], np.uint8))
    expected = np.array([[100, 0, 0], [53.24, 80.09, 67.20], [87.73, -86.18, 83.18], [32.30, 79.19, -107.86], [53.59, 0, 0]])
    np.testing.assert_allclose(lab, expected, atol=0.02)
    a = np.zeros((1, 2, 3), np.uint8)
    b = np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8)
    np.testing.assert_allclose(delta_e(a, b), [[0.0, 100.0]], atol=1e-6)


# ------------------------------------------------------------------------------------------ palette


def test_palette_is_the_paint_of_the_keyframes_and_not_their_edges() -> None:
    ch, a, b = _shot(0)
    palette = key_palette(a, b)
    assert sorted(map(tuple, oklab_to_rgb8(palette.colours).tolist())) == sorted(getattr(ch, n) for n in PAINTS)
    sky = [tuple(c) for c in oklab_to_rgb8(palette.colours).tolist()].index(ch.sky)
    assert (palette.anchors == sky).sum() > 0.5 * W * H  # the sky both keyframes show
    assert palette.anchors[0, 0] == sky and palette.anchors.shape == (H, W)
    moved = (a == ch.body).all(axis=-1) & (b == ch.sky).all(axis=-1)  # the body left, the sky came back
    assert moved.sum() > 100 and (palette.anchors[moved] == -1).all()


def test_palette_of_video_decoded_keyframes_finds_the_noisy_thin_ink_too(tmp_path: Path) -> None:
    import cv2

    ch = make_character(0)
    a, b = (draw_frame(s, width=512, height=320, character=ch) for s in (0.0, 1.0))  # 4:2:0 eats thinner lines
    cap = cv2.VideoCapture(str(write_video([a, b], tmp_path / "keys.mp4")))
    decoded = [cap.read()[1][:, :, ::-1].copy() for _ in range(2)]
    cap.release()
    assert len(np.unique(decoded[0].reshape(-1, 3), axis=0)) > 200  # H.264 noise: many colours per paint
    palette = oklab_to_rgb8(key_palette(*decoded).colours).astype(int)
    assert len(palette) == len(PAINTS)
    for name in PAINTS:  # each entry within a few levels of its paint (4:2:0 shifts thin lines a little)
        assert np.abs(palette - getattr(ch, name)).max(axis=1).min() <= 6, name


def test_keyframes_of_different_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="keyframes must have one size"):
        key_palette(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8))


# --------------------------------------------------------------------------------------------- lock


@pytest.mark.parametrize("s", [0.25, 0.5, 0.75])
def test_clean_inbetweens_come_back_unchanged(s: float) -> None:
    ch, a, b = _shot(1)
    truth = draw_frame(s, width=W, height=H, character=ch)
    np.testing.assert_array_equal(palette_lock(truth, key_palette(a, b)), truth)


@pytest.mark.parametrize(("seed", "hue", "light"), [(0, 8.0, 0.04), (1, -12.0, -0.05), (4, 0.0, 0.06), (3, 15.0, 0.0)])
def test_drifted_paint_is_pulled_back_edges_included(seed: int, hue: float, light: float) -> None:
    ch, a, b = _shot(seed)
    truth = draw_frame(0.5, width=W, height=H, character=ch)
    drifted = draw_frame(0.5, width=W, height=H, character=_paint(ch, hue, light))
    before, after = delta_e(drifted, truth), delta_e(palette_lock(drifted, key_palette(a, b)), truth)
    assert before.mean() > 5.0  # several ΔE of drift went in
    assert after.mean() < 0.05 * before.mean()
    edges = ~np.any([(truth == getattr(ch, n)).all(axis=-1) for n in PAINTS], axis=0)
    assert after[edges].mean() < 0.25 * before[edges].mean()  # anti-aliased ink lines follow their fills


def test_drift_applied_to_finished_pixels_is_removed_from_the_fills() -> None:
    ch, a, b = _shot(4)
    truth = draw_frame(0.5, width=W, height=H, character=ch)
    drifted = tone_drift(truth, 10.0, 0.05)
    after = delta_e(palette_lock(drifted, key_palette(a, b)), truth)
    fills = np.any([(truth == getattr(ch, n)).all(axis=-1) for n in PAINTS], axis=0)
    assert delta_e(drifted, truth)[fills].mean() > 5.0 and after[fills].mean() < 0.3


def test_one_drifted_fill_is_fixed_and_the_others_are_not_touched() -> None:
    ch, a, b = _shot(5)
    truth = draw_frame(0.5, width=W, height=H, character=ch)
    drifted = draw_frame(0.5, width=W, height=H, character=_paint(ch, 0.0, -0.06, only=("body",)))
    locked = palette_lock(drifted, key_palette(a, b))
    body = (truth == ch.body).all(axis=-1)
    assert delta_e(drifted, truth)[body].mean() > 4.0 and delta_e(locked, truth)[body].max() < 0.5
    others = np.any([(truth == getattr(ch, n)).all(axis=-1) for n in PAINTS if n != "body"], axis=0)
    np.testing.assert_array_equal(locked[others], truth[others])  # the other fills keep their pixels
    shared = (drifted == truth).all(axis=-1) & ~others  # edges between other fills: near a body mix at worst
    change = delta_e(locked, truth)[shared]
    assert change.mean() < 0.1 and change.max() < 4.0, (change.mean(), change.max())


def test_a_highlight_is_left_alone_clean_or_drifted() -> None:
    ch, a, b = _shot(6)
    yy, xx = np.mgrid[:H, :W]

    def spotted(s: float, painted: Character, colour: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The drawing at `s` with a 2.5-pixel spot of `colour` on the head: too small to be paint."""
        ys, xs = np.nonzero((draw_frame(s, width=W, height=H, character=ch) == ch.head).all(axis=-1))
        spot = (yy - ys.mean() + 3) ** 2 + (xx - xs.mean() + 3) ** 2 <= 2.5**2
        frame = draw_frame(s, width=W, height=H, character=painted)
        frame[spot] = colour
        return frame, spot

    palette = key_palette(spotted(0.0, ch, (255, 252, 244))[0], spotted(1.0, ch, (255, 252, 244))[0])
    truth, spot = spotted(0.5, ch, (255, 252, 244))
    np.testing.assert_array_equal(palette_lock(truth, palette), truth)
    drifted, _ = spotted(0.5, _paint(ch, 0.0, 0.06), (255, 255, 255))
    locked = palette_lock(drifted, palette)
    np.testing.assert_array_equal(locked[spot], drifted[spot])  # still the brightest thing there
    assert delta_e(locked, truth)[~spot].mean() < 0.3


def test_without_anchors_fills_are_matched_by_nearness() -> None:
    ch, a, b = _shot(7)
    found = key_palette(a, b)
    blind = Palette(found.colours, np.full_like(found.anchors, -1))  # a camera move: nothing stays put
    truth = draw_frame(0.5, width=W, height=H, character=ch)
    drifted = draw_frame(0.5, width=W, height=H, character=_paint(ch, 6.0, 0.03))
    assert delta_e(palette_lock(drifted, blind), truth).mean() < 0.1 * delta_e(drifted, truth).mean()


def test_nothing_to_lock_to_returns_the_frame() -> None:
    ch, a, b = _shot(8)
    assert len(key_palette(a, b, PaletteLock(share=0.9)).colours) == 0  # no colour covers 90%
    frame = draw_frame(0.5, width=W, height=H, character=_paint(ch, 5.0, 0.05))
    empty = Palette(np.empty((0, 3)), np.full((H, W), -1))
    assert palette_lock(frame, empty) is frame
    with pytest.raises(ValueError, match="must be an HxWx3 uint8 RGB array"):
        palette_lock(frame.astype(np.float32), key_palette(a, b))
