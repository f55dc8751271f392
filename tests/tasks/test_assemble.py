"""Shot assembly: every deliverable (by default the PNG sequence + H.264 MP4), exact frame counts and rates,
LUT, atomic publish, clear errors."""

from __future__ import annotations

import hashlib
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tasks.assemble import AssemblyError, ShotOutputs, assemble_shot, parse_fps
from tasks.colour import Stylize, apply_lut, lut_hash, read_cube, warm_look_table, write_cube
from tasks.deliver import DeliverSpec, DeliveryError, build
from tests.media import probe_video
from tooncrafter_model.frames import pixel_hash, read_frame, write_frame


def _drawings(folder: Path, count: int, width: int, height: int, seed: int = 0) -> list[Path]:
    """`count` distinct cartoon-ish drawings: flat background, a moving coloured block, some noise."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        frame = np.empty((height, width, 3), np.uint8)
        frame[:] = (200, 220, 240)
        x = 4 + i * 5 % max(1, width - 24)
        frame[height // 4 : height // 4 + 20, x : x + 20] = (230, 90, 40)
        frame[-6:] = rng.integers(0, 256, (6, width, 3), dtype=np.uint8)
        paths.append(write_frame(folder / f"drawing{i}.png", frame))
    return paths


def _decode_mp4(path: Path) -> np.ndarray:
    """All frames of an MP4 as (N, H, W, 3) RGB, decoded by ffmpeg (the test's independent reader)."""
    import ffmpeg
    import imageio_ffmpeg

    _, width, height = probe_video(path)[1:]
    out, _ = (
        ffmpeg.input(str(path))
        .output("pipe:", format="rawvideo", pix_fmt="rgb24")
        .run(cmd=imageio_ffmpeg.get_ffmpeg_exe(), capture_stdout=True, capture_stderr=True)
    )
    return np.frombuffer(out, np.uint8).reshape(-1, height, width, 3)


def _file(out: ShotOutputs, kind: str) -> Path:
    (path,) = [Path(o.path) for o in out.outputs if o.kind == kind]
    return path


def _tree(folder: Path) -> dict[str, str]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.parametrize(
    ("width", "height", "fps", "expected_fps"),
    [
        (96, 64, 24, Fraction(24)),
        (97, 61, "24000/1001", Fraction(24000, 1001)),
        (97, 61, 23.976, Fraction(24000, 1001)),
    ],
)
def test_assembles_held_drawings_into_pngs_and_an_mp4(
    tmp_path: Path, width: int, height: int, fps: object, expected_fps: Fraction
) -> None:
    a, b, c = _drawings(tmp_path / "src", 3, width, height)
    sources = [a, a, b, b, b, c, a]  # drawings held on 2s and 3s, then back to the first
    out = assemble_shot(sources, fps, tmp_path / "sh010" / "v001", "sh010")  # type: ignore[arg-type]

    assert out.dir == tmp_path / "sh010" / "v001" and out.frame_count == 7 and out.fps == expected_fps
    assert [o.kind for o in out.outputs] == ["png", "h264"] and all(o.frame_count == 7 for o in out.outputs)
    assert out.frame_files is not None and _file(out, "png") == out.dir / "png"
    assert [p.name for p in out.frame_files] == [f"sh010.{i:04d}.png" for i in range(1, 8)]
    assert sorted(p.name for p in (out.dir / "png").iterdir()) == [p.name for p in out.frame_files]
    for png, src, recorded in zip(out.frame_files, sources, out.frame_hashes, strict=True):
        pixels = read_frame(png)
        np.testing.assert_array_equal(pixels, read_frame(src))
        assert recorded == pixel_hash(pixels)
    assert out.frame_hashes[0] == out.frame_hashes[1] == out.frame_hashes[6] != out.frame_hashes[2]
    assert out.lut_sha256 is None
    mp4 = _file(out, "h264")
    assert mp4 == out.dir / "sh010.mp4"
    assert out.outputs[1].sha256 == hashlib.sha256(mp4.read_bytes()).hexdigest()

    odd = width % 2 or height % 2
    size = (width + width % 2, height + height % 2)
    details = out.outputs[1].details
    assert details["padded"] == bool(odd) and (details["width"], details["height"]) == size
    assert tuple(probe_video(mp4)) == (7, expected_fps, *size)
    assert mp4.read_bytes()[4:8] == b"ftyp"
    assert mp4.read_bytes().find(b"moov") < mp4.read_bytes().find(b"mdat")  # +faststart
    video = _decode_mp4(mp4)
    for frame, src in zip(video, sources, strict=True):
        # Lossy (CRF, 4:2:0), so close rather than equal, away from the noise rows that 4:2:0 can't keep;
        # the background must come back as itself (same BT.709 matrix both ways); padding repeats the edge.
        src_pixels = read_frame(src).astype(int)[: height - 8]
        got = frame[: height - 8].astype(int)
        assert np.abs(got[:, :width] - src_pixels).mean() < 2.5
        orange = (src_pixels == (230, 90, 40)).all(axis=-1)
        assert np.median(np.abs(got[:, :width][orange] - (230, 90, 40))) <= 2  # a BT.601/709 mix-up is ~10
        assert np.abs(got[:2, :2] - (200, 220, 240)).max() <= 2
        if width % 2:
            assert np.abs(got[:, width] - src_pixels[:, -1]).mean() < 2.5
    assert sorted(p.name for p in (tmp_path / "sh010").iterdir()) == ["v001"]  # no staging folder left


def test_lut_is_applied_to_every_png_and_recorded(tmp_path: Path) -> None:
    sources = _drawings(tmp_path / "src", 2, 33, 20)
    lut_path = write_cube(tmp_path / "warm.cube", warm_look_table(9), title="warm")
    order = [sources[0], sources[1], sources[1]]
    out = assemble_shot(order, 12, tmp_path / "v001", "sh", stylize=Stylize(lut=lut_path))
    lut = read_cube(lut_path)
    assert out.frame_files is not None
    for png, src in zip(out.frame_files, order, strict=True):
        np.testing.assert_array_equal(read_frame(png), apply_lut(read_frame(src), lut))
    assert not np.array_equal(read_frame(out.frame_files[0]), read_frame(sources[0]))
    assert out.lut_sha256 == lut_hash(lut_path)
    assert probe_video(_file(out, "h264")).frame_count == 3


def test_drawings_evicted_from_the_cache_are_read_again_correctly(tmp_path: Path) -> None:
    sources = _drawings(tmp_path / "src", 20, 16, 12)
    order = sources + sources[::-1]  # 20 distinct drawings: more than are kept encoded
    out = assemble_shot(order, 24, tmp_path / "v001", "cycle")
    assert out.frame_hashes == tuple(pixel_hash(read_frame(p)) for p in order)
    assert probe_video(_file(out, "h264")).frame_count == 40


def test_failure_mid_shot_leaves_nothing_and_keeps_earlier_versions(tmp_path: Path) -> None:
    shot = tmp_path / "show" / "seq" / "sh020"
    sources = _drawings(tmp_path / "src", 3, 24, 16)
    earlier = assemble_shot(sources, 24, shot / "v001", "sh020")
    before = _tree(earlier.dir)
    corrupt = tmp_path / "src" / "torn.png"
    corrupt.write_bytes(sources[1].read_bytes()[:60])  # a PNG cut off after its header
    bad = [sources[0]] * 4 + [corrupt] + [sources[2]] * 4

    with pytest.raises(AssemblyError, match=rf"^{re.escape(str(corrupt))}: not a readable image .* \(frame 5\)$"):
        assemble_shot(bad, 24, shot / "v002", "sh020")
    assert sorted(p.name for p in shot.iterdir()) == ["v001"]
    assert _tree(earlier.dir) == before

    # A version folder in a shot folder that did not exist: the failure removes the folders it made too.
    with pytest.raises(AssemblyError, match=r"\(frame 5\)"):
        assemble_shot(bad, 24, tmp_path / "show" / "seq" / "sh030" / "v001", "sh030")
    assert sorted(p.name for p in (tmp_path / "show" / "seq").iterdir()) == ["sh020"]


def test_ffmpeg_failure_is_one_line_and_cleans_up(tmp_path: Path) -> None:
    sources = _drawings(tmp_path / "src", 2, 16, 16)
    mp4 = re.escape(str(tmp_path / "shot" / "v001" / "sh.mp4"))
    why = "invalid preset 'no-such-preset'"
    with pytest.raises(DeliveryError, match=rf"^{mp4}: ffmpeg (failed|stopped early).*: .*{why}$"):
        bad_preset = build([DeliverSpec(kind="png"), DeliverSpec(kind="h264", settings={"preset": "no-such-preset"})])
        assemble_shot(sources * 3, 24, tmp_path / "shot" / "v001", "sh", deliver=bad_preset)
    assert not (tmp_path / "shot").exists()


def test_bad_inputs_name_the_file_and_frame(tmp_path: Path) -> None:
    small = _drawings(tmp_path / "a", 2, 24, 16)
    large = _drawings(tmp_path / "b", 1, 26, 16)
    missing = tmp_path / "nowhere.png"
    out = tmp_path / "shot" / "v001"
    with pytest.raises(AssemblyError, match=rf"^{re.escape(str(missing))}: frame 3: source image not found$"):
        assemble_shot([small[0], small[1], missing], 24, out, "sh")
    wrong_size = rf"^{re.escape(str(large[0]))}: frame 3: size 26x16, expected 24x16 like frame 1$"
    with pytest.raises(AssemblyError, match=wrong_size):
        assemble_shot([small[0], small[1], large[0], small[0]], 24, out, "sh")
    with pytest.raises(AssemblyError, match=r"stem: '\.\./x' must be letters"):
        assemble_shot(small, 24, out, "../x")
    with pytest.raises(AssemblyError, match=r"no frames to assemble"):
        assemble_shot([], 24, out, "sh")
    with pytest.raises(AssemblyError, match=r"^fps: not a frame rate: 'fast'"):
        assemble_shot(small, "fast", out, "sh")
    with pytest.raises(ValueError, match=r"nope\.cube: LUT file not found"):
        assemble_shot(small, 24, out, "sh", stylize=Stylize(lut=tmp_path / "nope.cube"))
    assert not (tmp_path / "shot").exists()

    existing = tmp_path / "v009"
    existing.mkdir()
    (existing / "keep.txt").write_text("earlier")
    never_overwritten = rf"^{re.escape(str(existing))}: already exists \(versions are never overwritten\)$"
    with pytest.raises(AssemblyError, match=never_overwritten):
        assemble_shot(small, 24, existing, "sh")
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (24, Fraction(24)),
        ("25", Fraction(25)),
        (12.5, Fraction(25, 2)),
        ("24000/1001", Fraction(24000, 1001)),
        (23.976, Fraction(24000, 1001)),
        ("23.98", Fraction(24000, 1001)),
        (29.97, Fraction(30000, 1001)),
        ("59.94", Fraction(60000, 1001)),
        (Fraction(30000, 1001), Fraction(30000, 1001)),
        (24.0, Fraction(24)),
    ],
)
def test_parse_fps_gives_exact_rationals(value: object, expected: Fraction) -> None:
    assert parse_fps(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -24, "abc", "24/0", "1/x", 5000, None])
def test_parse_fps_rejects_nonsense(value: object) -> None:
    with pytest.raises(AssemblyError, match=r"^fps: "):
        parse_fps(value)  # type: ignore[arg-type]
