"""Show looks: strict .cube parsing, exact identity, known transforms, the baked path agreeing bit for bit,
ffmpeg's own LUT filters agreeing; OpenColorIO transforms from a config the test writes; the stylize order."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from tasks.colour import (
    BakedLut,
    ColourError,
    Lut,
    LutError,
    OcioLook,
    OcioTransform,
    Stylize,
    Stylizer,
    apply_lut,
    identity_table,
    lut_hash,
    read_cube,
    stylize_identity,
    table_from_function,
    warm_look,
    warm_look_table,
    write_cube,
    write_example_ocio,
)


def _ramp_frame() -> np.ndarray:
    """Every uint8 value on every channel, plus random colours: 32x24 pixels."""
    rng = np.random.default_rng(7)
    frame = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    frame.reshape(-1, 3)[:256] = np.arange(256, dtype=np.uint8)[:, None]
    frame.reshape(-1, 3)[256:512, 0] = np.arange(256, dtype=np.uint8)[::-1]
    return frame


def _cube(tmp_path: Path, text: str, name: str = "look.cube") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------------------ parsing


def test_parses_3d_cube_with_title_comments_domain_and_red_fastest_order(tmp_path: Path) -> None:
    # Entry k of the data block is lattice point (r, g, b) = (k % 2, k // 2 % 2, k // 4): red fastest.
    entries = "\n".join(f"{k / 10:.1f} {k / 100:.2f} 0.5  # entry {k}" for k in range(8))
    path = _cube(
        tmp_path,
        f'# made by hand\n\nTITLE "Show look 01"\nLUT_3D_SIZE 2\n\nDOMAIN_MIN 0 0 0\nDOMAIN_MAX 1 1 1.0\n{entries}\n\n',
    )
    lut = read_cube(path)
    assert (lut.dims, lut.size, lut.title) == (3, 2, "Show look 01")
    assert lut.domain_min == (0.0, 0.0, 0.0) and lut.domain_max == (1.0, 1.0, 1.0)
    for k in range(8):
        r, g, b = k % 2, k // 2 % 2, k // 4
        assert lut.table[r, g, b].tolist() == [k / 10, k / 100, 0.5]


def test_parses_1d_cube_with_input_range_and_tabs(tmp_path: Path) -> None:
    path = _cube(tmp_path, "LUT_1D_SIZE\t3\nLUT_1D_INPUT_RANGE 0.0 2.0\n0 0 0\n0.25 0.5 0.75\n1e0 1 +1.0\n")
    lut = read_cube(path)
    assert (lut.dims, lut.size, lut.title) == (1, 3, "")
    assert lut.domain_min == (0.0, 0.0, 0.0) and lut.domain_max == (2.0, 2.0, 2.0)
    assert lut.table.tolist() == [[0, 0, 0], [0.25, 0.5, 0.75], [1, 1, 1]]


def test_3d_input_range_sets_the_domain(tmp_path: Path) -> None:
    body = "\n".join("0 0 0" for _ in range(8))
    lut = read_cube(_cube(tmp_path, f"LUT_3D_SIZE 2\nLUT_3D_INPUT_RANGE -0.5 1.5\n{body}\n"))
    assert lut.domain_min == (-0.5,) * 3 and lut.domain_max == (1.5,) * 3


_EIGHT = "\n".join("0 0 0" for _ in range(8))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"TITLE \"x\"\n{_EIGHT}\n", r"look\.cube: LUT_3D_SIZE \(or LUT_1D_SIZE\) missing"),
        ("LUT_3D_SIZE 2\n" + "0 0 0\n" * 7, r"look\.cube:1: LUT_3D_SIZE 2 needs 8 table entries, found 7"),
        ("LUT_3D_SIZE 2\n" + "0 0 0\n" * 9, r"look\.cube:1: LUT_3D_SIZE 2 needs 8 table entries, found 9"),
        ("LUT_1D_SIZE 4\n" + "0 0 0\n" * 3, r"look\.cube:1: LUT_1D_SIZE 4 needs 4 table entries, found 3"),
        ("LUT_3D_SIZE 2\n0 0 0\n0 zero 0\n", r"look\.cube:3: expected three numbers \(R G B\), got '0 zero 0'"),
        ("LUT_3D_SIZE 2\n0 0\n", r"look\.cube:2: expected three numbers \(R G B\), got '0 0'"),
        ("LUT_3D_SIZE 2\n0 0 0 0\n", r"look\.cube:2: expected three numbers"),
        ("LUT_3D_SIZE 2\n0 1_0 0\n", r"look\.cube:2: expected three numbers"),
        ("LUT_3D_SIZE 2\n0 1e999 0\n", r"look\.cube:2: table entry out of float range"),
        ("LUT_3D_SIZE 2\nnan 0 0\n", r"look\.cube:2: unknown keyword 'nan'"),
        ("LUT_3D_SIZE 2\nLUT_IN_VIDEO_RANGE\n", r"look\.cube:2: unknown keyword 'LUT_IN_VIDEO_RANGE'"),
        (
            f"LUT_3D_SIZE 2\n0 0 0\nDOMAIN_MIN 0 0 0\n{_EIGHT}",
            r"look\.cube:3: keyword DOMAIN_MIN after the first table entry",
        ),
        (f"LUT_3D_SIZE 2\nLUT_3D_SIZE 2\n{_EIGHT}", r"look\.cube:2: LUT_3D_SIZE given twice \(first on line 1\)"),
        (f"LUT_3D_SIZE 2.5\n{_EIGHT}", r"look\.cube:1: LUT_3D_SIZE must be an integer from 2 to 256, got '2\.5'"),
        (f"LUT_3D_SIZE 1\n{_EIGHT}", r"look\.cube:1: LUT_3D_SIZE must be an integer from 2 to 256, got '1'"),
        (f"LUT_3D_SIZE 300\n{_EIGHT}", r"look\.cube:1: LUT_3D_SIZE must be an integer from 2 to 256"),
        (f"LUT_3D_SIZE\n{_EIGHT}", r"look\.cube:1: LUT_3D_SIZE must be an integer from 2 to 256, got ''"),
        (f"TITLE look\nLUT_3D_SIZE 2\n{_EIGHT}", r"look\.cube:1: TITLE must be a quoted string"),
        (f"LUT_3D_SIZE 2\nDOMAIN_MIN 0 0\n{_EIGHT}", r"look\.cube:2: DOMAIN_MIN needs 3 number\(s\), got '0 0'"),
        (f"LUT_3D_SIZE 2\nDOMAIN_MAX 1 1 x\n{_EIGHT}", r"look\.cube:2: DOMAIN_MAX needs 3 number\(s\), got '1 1 x'"),
        (
            f"LUT_3D_SIZE 2\nDOMAIN_MIN 0 0.5 0\nDOMAIN_MAX 1 0.5 1\n{_EIGHT}",
            r"look\.cube: DOMAIN_MIN/DOMAIN_MAX: minimum .* must be below maximum",
        ),
        (
            f"LUT_3D_SIZE 2\nLUT_3D_INPUT_RANGE 1 0\n{_EIGHT}",
            r"look\.cube: LUT_3D_INPUT_RANGE: minimum .* must be below maximum",
        ),
        (
            f"LUT_3D_SIZE 2\nLUT_3D_INPUT_RANGE 0 1\nDOMAIN_MAX 1 1 1\n{_EIGHT}",
            r"look\.cube:2: give DOMAIN_MIN/DOMAIN_MAX or LUT_3D_INPUT_RANGE, not both",
        ),
        (f"LUT_3D_SIZE 2\nLUT_1D_INPUT_RANGE 0 1\n{_EIGHT}", r"look\.cube:2: LUT_1D_INPUT_RANGE in a 3D LUT"),
        (f"LUT_1D_SIZE 2\nLUT_3D_SIZE 2\n{_EIGHT}", r"look\.cube:2: both LUT_1D_SIZE and LUT_3D_SIZE"),
    ],
)
def test_every_malformed_cube_gets_one_line_naming_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = _cube(tmp_path, text)
    with pytest.raises(LutError, match=expected) as info:
        read_cube(path)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert message.startswith(str(path)) and "\n" not in message


def test_unreadable_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(LutError, match=r"nope\.cube: LUT file not found"):
        read_cube(tmp_path / "nope.cube")
    binary = tmp_path / "binary.cube"
    binary.write_bytes(b"LUT_3D_SIZE 2\n\xff\xfe\x00")
    with pytest.raises(LutError, match=r"binary\.cube: not a text \.cube file \(byte 14 is not UTF-8\)"):
        read_cube(binary)


# ------------------------------------------------------------------------------------ writing, hashing


def test_write_cube_round_trips_3d_and_1d(tmp_path: Path) -> None:
    warm = warm_look_table(5)
    lut = read_cube(write_cube(tmp_path / "warm.cube", warm, title="warm show look"))
    assert (lut.dims, lut.size, lut.title) == (3, 5, "warm show look")
    np.testing.assert_allclose(lut.table, warm, atol=5e-7)
    curve = np.linspace(0, 1, 7)[:, None] ** np.array([1.0, 2.0, 0.5])
    lut1 = read_cube(write_cube(tmp_path / "curve.cube", curve, domain_max=(2.0, 2.0, 2.0)))
    assert (lut1.dims, lut1.size, lut1.domain_max) == (1, 7, (2.0, 2.0, 2.0))
    np.testing.assert_allclose(lut1.table, curve, atol=5e-7)
    assert not list(tmp_path.glob(".*.tmp"))


def test_write_cube_rejects_bad_tables_and_titles(tmp_path: Path) -> None:
    with pytest.raises(LutError, match=r"a\.cube: LUT table must be \(N, 3\) or \(N, N, N, 3\), got \(4, 4\)"):
        write_cube(tmp_path / "a.cube", np.zeros((4, 4)))
    with pytest.raises(LutError, match="must be cubic"):
        write_cube(tmp_path / "a.cube", np.zeros((2, 3, 2, 3)))
    with pytest.raises(LutError, match="TITLE cannot contain quotes"):
        write_cube(tmp_path / "a.cube", identity_table(2), title='say "hi"')
    assert not (tmp_path / "a.cube").exists()


def test_lut_hash_follows_content_not_formatting(tmp_path: Path) -> None:
    table = identity_table(3)
    a = write_cube(tmp_path / "a.cube", table, title="one")
    text = a.read_text().replace('TITLE "one"', '# a comment\nTITLE "two"').replace("0.500000", "0.5")
    b = _cube(tmp_path, text, "b.cube")
    changed = table.copy()
    changed[1, 1, 1, 0] = 0.25
    c = write_cube(tmp_path / "c.cube", changed)
    assert lut_hash(a) == lut_hash(b) == read_cube(a).sha256
    assert len(lut_hash(a)) == 64 and lut_hash(c) != lut_hash(a)
    wider = write_cube(tmp_path / "d.cube", table, domain_max=(2.0, 2.0, 2.0))
    assert lut_hash(wider) != lut_hash(a)


# --------------------------------------------------------------------------------------- application


@pytest.mark.parametrize(("size", "dims"), [(2, 3), (17, 3), (33, 3), (2, 1), (1024, 1)])
def test_identity_cube_file_reproduces_frames_exactly(tmp_path: Path, size: int, dims: int) -> None:
    lut = read_cube(write_cube(tmp_path / "id.cube", identity_table(size, dims)))
    frame = _ramp_frame()
    out = apply_lut(frame, lut)
    assert out.dtype == np.uint8 and out.shape == frame.shape
    np.testing.assert_array_equal(out, frame)


def test_swap_and_invert_are_exact_everywhere(tmp_path: Path) -> None:
    # Both are linear in r, g, b, which trilinear interpolation reproduces exactly between lattice points.
    frame = _ramp_frame()
    swap = read_cube(write_cube(tmp_path / "swap.cube", table_from_function(lambda x: x[..., ::-1], 9)))
    invert = read_cube(write_cube(tmp_path / "inv.cube", table_from_function(lambda x: 1.0 - x, 9)))
    np.testing.assert_array_equal(apply_lut(frame, swap), frame[..., ::-1])
    np.testing.assert_array_equal(apply_lut(frame, invert), 255 - frame)
    colours = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], np.uint8)
    assert apply_lut(colours, swap).tolist() == [[[0, 0, 255], [0, 255, 0], [255, 0, 0], [30, 20, 10]]]


def test_interpolation_between_lattice_points_matches_hand_computation(tmp_path: Path) -> None:
    # 3-point lattice (0, 0.5, 1) holding x**2 on red and 1 - x on blue; green mixes r and b: g_out = r * b.
    table = table_from_function(lambda x: np.stack([x[..., 0] ** 2, x[..., 0] * x[..., 2], 1.0 - x[..., 2]], -1), 3)
    lut = read_cube(write_cube(tmp_path / "curve.cube", table))
    assert apply_lut(np.array([[[255, 0, 0], [0, 0, 0]]], np.uint8), lut).tolist() == [[[255, 0, 255], [0, 0, 255]]]
    # r=102/255=0.4: lattice coordinate 0.8, so red = 0 * 0.2 + 0.25 * 0.8 = 0.2 -> 51 (x**2 itself would be 41).
    # r=153/255=0.6: coordinate 1.2, red = 0.25 * 0.8 + 1 * 0.2 = 0.4 -> 102.
    # g_out = r * b is bilinear, so exact: 0.4 * 0.6 * 255 = 61.2 -> 61; b_out = 1 - 0.6 -> 102.
    px = np.array([[[102, 0, 153], [153, 0, 102], [102, 77, 102]]], np.uint8)
    assert apply_lut(px, lut).tolist() == [[[51, 61, 102], [102, 61, 153], [51, 41, 153]]]


def test_domain_stretches_the_input(tmp_path: Path) -> None:
    # Domain [0, 0.5]: input v reads the table at 2v/255, clipped at the top.
    lut = read_cube(write_cube(tmp_path / "d.cube", identity_table(5, 1), domain_max=(0.5, 0.5, 0.5)))
    frame = _ramp_frame()
    np.testing.assert_array_equal(apply_lut(frame, lut), np.minimum(2 * frame.astype(int), 255))


def test_warm_look_lut_reproduces_its_transform(tmp_path: Path) -> None:
    lut = read_cube(write_cube(tmp_path / "warm.cube", warm_look_table(9)))
    frame = _ramp_frame()
    exact = warm_look(frame / 255.0) * 255.0
    out = apply_lut(frame, lut).astype(int)
    assert np.abs(out - exact).max() <= 0.5 + 1e-3
    clear = np.abs(exact - np.floor(exact) - 0.5) > 0.01  # away from rounding ties, float32 can't flip
    np.testing.assert_array_equal(out[clear], np.rint(exact[clear]))
    assert (out[..., 0] >= frame[..., 0]).all() and (out[..., 2] <= frame[..., 2]).all()


def test_baked_lut_agrees_bit_for_bit_with_direct_lookup() -> None:
    rng = np.random.default_rng(3)
    # Values outside [0, 1] exercise clipping; an odd size and domain exercise the index tables.
    lut = Lut(table=rng.uniform(-0.2, 1.2, (5, 5, 5, 3)), domain_min=(0.1, 0.0, -0.1), domain_max=(0.9, 1.0, 1.1))
    frame = _ramp_frame()
    np.testing.assert_array_equal(BakedLut(lut)(frame), apply_lut(frame, lut))
    curve = Lut(table=rng.uniform(0, 1, (11, 3)))
    np.testing.assert_array_equal(BakedLut(curve)(frame), apply_lut(frame, curve))


def test_apply_lut_rejects_non_frames() -> None:
    lut = Lut(table=identity_table(2))
    with pytest.raises(ValueError, match="must be an HxWx3 uint8 RGB array, got float64"):
        apply_lut(np.zeros((4, 4, 3)), lut)


def test_stylizer_loads_the_lut_once_and_bakes_when_it_pays(tmp_path: Path) -> None:
    frame = _ramp_frame()
    plain = Stylizer(Stylize())
    assert plain.lut_sha256 is None and plain(frame) is frame
    path = write_cube(tmp_path / "warm.cube", warm_look_table(9))
    small = Stylizer(Stylize(lut=path), expected_pixels=frame.size)
    big = Stylizer(Stylize(lut=path), expected_pixels=Stylizer.BAKE_FROM_PIXELS)
    assert small.lut_sha256 == big.lut_sha256 == lut_hash(path)
    assert small._baked is None and big._baked is not None
    np.testing.assert_array_equal(small(frame), big(frame))
    with pytest.raises(LutError, match=r"missing\.cube: LUT file not found"):
        Stylizer(Stylize(lut=tmp_path / "missing.cube"))


# ------------------------------------------------------------------------------------- ffmpeg agrees


def _ffmpeg_filter(frame: np.ndarray, vf: str) -> np.ndarray:
    """`frame` through an ffmpeg video filter, as raw RGB in and out (ffmpeg is the independent judge)."""
    import subprocess

    import imageio_ffmpeg

    h, w = frame.shape[:2]
    run = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
         "-s", f"{w}x{h}", "-i", "pipe:", "-vf", vf, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"],
        input=frame.tobytes(), capture_output=True, check=True,
    )
    return np.frombuffer(run.stdout, np.uint8).reshape(frame.shape)


@pytest.mark.parametrize(
    ("name", "table", "interp"),
    [
        ("warm", warm_look_table(9), "trilinear"),
        ("warm", warm_look_table(9), "tetrahedral"),  # ffmpeg's default
        ("curves", table_from_function(lambda x: np.stack([x[..., 0] ** 2, np.sqrt(x[..., 1]), 0.5 * x[..., 2] + 0.4 * x[..., 0]], -1), 17), "trilinear"),
        ("gamma", table_from_function(lambda x: x**0.6, 1024, dims=1), "linear"),
    ],
)
def test_cube_matches_ffmpeg_lut_filters_within_one_level(tmp_path: Path, name: str, table: np.ndarray, interp: str) -> None:
    path = write_cube(tmp_path / f"{name}.cube", table)
    lut = read_cube(path)
    frame = _ramp_frame()
    ffmpeg = _ffmpeg_filter(frame, f"lut{lut.dims}d=file={path}:interp={interp}")
    assert np.abs(ffmpeg.astype(int) - apply_lut(frame, lut)).max() <= 1


# ---------------------------------------------------------------------------------------- OpenColorIO

def test_ocio_look_agrees_with_the_same_cube_applied_directly(tmp_path: Path) -> None:
    config = write_example_ocio(tmp_path)
    frame = _ramp_frame()
    direct = apply_lut(frame, read_cube(tmp_path / "luts" / "warm.cube"))
    look = OcioLook(OcioTransform(config=config, look="warm"))
    assert np.abs(look(frame).astype(int) - direct).max() <= 1
    view = OcioLook(OcioTransform(config=config, display="sRGB", view="Show"))  # the view carries the look
    np.testing.assert_array_equal(view(frame), look(frame))
    assert view.identity["processor"] == look.identity["processor"]  # same operations, same identity
    raw = OcioLook(OcioTransform(config=config, display="sRGB", view="Raw"))
    np.testing.assert_array_equal(raw(frame), frame)
    assert raw.identity["input"] == "srgb"  # the config's default role


def test_ocio_colour_space_conversion_decodes_srgb(tmp_path: Path) -> None:
    from tasks.palette import linear_to_srgb, srgb_to_linear

    config = write_example_ocio(tmp_path)
    to_linear = OcioLook(OcioTransform(config=config, input="srgb", output="linear"))
    frame = _ramp_frame()
    assert np.abs(to_linear(frame).astype(int) - np.rint(srgb_to_linear(frame / 255.0) * 255.0)).max() <= 1
    # With file rules saying PNGs hold linear light, an unnamed input is linear.
    rules = "file_rules:\n  - !<Rule> {name: PNG, extension: png, pattern: '*', colorspace: linear}\n"
    rules += "  - !<Rule> {name: Default, colorspace: srgb}\n\n"
    ruled = tmp_path / "rules.ocio"
    ruled.write_text((tmp_path / "show.ocio").read_text().replace("  default: srgb\n", "").replace("displays:", rules + "displays:"))
    to_srgb = OcioLook(OcioTransform(config=ruled, output="srgb"))
    assert to_srgb.identity["input"] == "linear"
    assert np.abs(to_srgb(frame).astype(int) - np.rint(linear_to_srgb(frame / 255.0) * 255.0)).max() <= 1


def test_ocio_identity_follows_the_lut_files_content(tmp_path: Path) -> None:
    config = write_example_ocio(tmp_path)
    spec = OcioTransform(config=config, look="warm")
    first = OcioLook(spec).identity["processor"]
    assert OcioLook(spec).identity["processor"] == first  # reloaded unchanged
    write_cube(tmp_path / "luts" / "warm.cube", warm_look_table(9) * 0.9)  # same config, edited LUT
    assert OcioLook(spec).identity["processor"] != first


def test_ocio_transform_needs_a_target_and_a_view_with_its_display() -> None:
    for bad, message in (
        ({}, "name a look, a display and view, or an output colour space"),
        ({"display": "sRGB"}, "display and view go together"),
        ({"display": "sRGB", "view": "Raw", "output": "linear"}, "not both"),
        ({"look": "warm", "gamma": 2}, "Extra inputs are not permitted"),
    ):
        with pytest.raises(ValidationError, match=message):
            OcioTransform(config=Path("show.ocio"), **bad)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"look": "cold"}, r"show\.ocio: cannot build the transform \(.*'cold'"),
        ({"display": "P3", "view": "Raw"}, r"show\.ocio: display: no display 'P3' \(known: sRGB\)"),
        ({"display": "sRGB", "view": "Film"}, r"show\.ocio: view: display 'sRGB' has no view 'Film' \(known: Raw, Show\)"),
        ({"input": "acescg", "look": "warm"}, r"show\.ocio: input: no colour space 'acescg' \(known: srgb, linear\)"),
        ({"output": "rec709"}, r"show\.ocio: output: no colour space 'rec709'"),
    ],
)
def test_ocio_mistakes_are_one_line_naming_the_config(tmp_path: Path, spec: dict[str, str], message: str) -> None:
    config = write_example_ocio(tmp_path)
    with pytest.raises(ColourError, match=message) as info:
        OcioLook(OcioTransform(config=config, **spec))
    assert "\n" not in str(info.value)


def test_unusable_ocio_configs_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ColourError, match=r"missing\.ocio: OCIO config not found"):
        OcioLook(OcioTransform(config=tmp_path / "missing.ocio", look="warm"))
    broken = tmp_path / "broken.ocio"
    broken.write_text("ocio_profile_version: 2\ncolorspaces: [\n")
    with pytest.raises(ColourError, match=r"broken\.ocio: not a usable OCIO config \(") as info:
        OcioLook(OcioTransform(config=broken, look="warm"))
    assert "\n" not in str(info.value)
    config = write_example_ocio(tmp_path)
    (tmp_path / "luts" / "warm.cube").unlink()
    with pytest.raises(ColourError, match=r"show\.ocio: cannot build the transform \(.*warm\.cube"):
        OcioLook(OcioTransform(config=config, look="warm"))


# -------------------------------------------------------------------------------------------- stylize


def test_stylizer_locks_the_palette_then_applies_the_lut_then_ocio(tmp_path: Path) -> None:
    from tasks.palette import key_palette, palette_lock, tone_drift
    from tasks.synthetic import draw_frame, make_character
    from tooncrafter_model.frames import write_frame

    ch = make_character(0)
    a, b = (draw_frame(s, width=128, height=80, character=ch) for s in (0.0, 1.0))
    keys = (write_frame(tmp_path / "a.png", a), write_frame(tmp_path / "b.png", b))
    inbetween = tone_drift(draw_frame(0.5, width=128, height=80, character=ch), 10.0, 0.04)
    lut_path = write_cube(tmp_path / "grade.cube", table_from_function(lambda x: x[..., ::-1], 9))  # swaps r and b
    config = write_example_ocio(tmp_path)
    cfg = Stylize(lut=lut_path, palette_lock=True, ocio=OcioTransform(config=config, look="warm"))
    stylize = Stylizer(cfg)
    locked = palette_lock(inbetween, key_palette(a, b))
    expected = OcioLook(cfg.ocio)(apply_lut(locked, read_cube(lut_path)))  # type: ignore[arg-type]
    np.testing.assert_array_equal(stylize(inbetween, keys), expected)
    np.testing.assert_array_equal(stylize(a), OcioLook(cfg.ocio)(apply_lut(a, read_cube(lut_path))))  # type: ignore[arg-type]
    plain = Stylizer(Stylize(lut=lut_path))
    np.testing.assert_array_equal(plain(inbetween, keys), apply_lut(inbetween, read_cube(lut_path)))  # lock off


def test_stylize_identity_is_empty_unless_asked_and_follows_content(tmp_path: Path) -> None:
    assert stylize_identity(Stylize(lut=tmp_path / "any.cube")) == ({}, {})  # versions made before keep their keys
    key, record = stylize_identity(Stylize(palette_lock=True))
    assert key == record and key["palette_lock"]["space"] == "oklab"
    config = write_example_ocio(tmp_path)
    key, record = stylize_identity(Stylize(ocio=OcioTransform(config=config, look="warm")))
    assert "config" not in key["ocio"] and record["ocio"]["config"] == str(config)
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "luts", moved / "luts")
    assert stylize_identity(Stylize(ocio=OcioTransform(config=write_example_ocio(moved), look="warm")))[0] == key


# ----------------------------------------------------------------------------------- shot list schema


def test_shot_list_colour_block_merges_defaults_and_resolves_the_config(tmp_path: Path) -> None:
    from tasks.shotlist import ShotListError, load_shotlist

    write_example_ocio(tmp_path / "ocio")
    (tmp_path / "shots.yaml").write_text(
        "defaults: {fps: 24, colour: {ocio: {config: ocio/show.ocio}}}\n"
        "shots:\n"
        "  - {code: sh010, source: a.mp4, colour: {palette_lock: true, ocio: {look: warm}}}\n"
        "  - {code: sh020, source: a.mp4, colour: {ocio: {display: sRGB, view: Show}}}\n"
    )
    first, second = load_shotlist(tmp_path / "shots.yaml").shots
    assert first.colour.palette_lock and not second.colour.palette_lock
    assert first.colour.ocio == OcioTransform(config=tmp_path / "ocio" / "show.ocio", look="warm")
    assert second.colour.ocio is not None and second.colour.ocio.view == "Show"
    (tmp_path / "bad.yaml").write_text(
        "shots:\n"
        "  - {code: sh010, source: a.mp4, fps: 24, colour: {ocio: {config: show.ocio, display: sRGB}}}\n"
        "  - {code: sh020, source: a.mp4, fps: 24, colour: {palette_lock: maybe}}\n"
        "  - {code: sh030, source: a.mp4, fps: 24, colour: {ocio: {config: ../show.ocio, look: warm}}}\n"
    )
    with pytest.raises(ShotListError) as info:
        load_shotlist(tmp_path / "bad.yaml")
    lines = str(info.value).splitlines()
    assert lines[0] == "bad.yaml: shots[0].colour.ocio: display and view go together: name both or neither".replace(
        "bad.yaml", str(tmp_path / "bad.yaml")
    )
    assert lines[1].startswith(f"{tmp_path / 'bad.yaml'}: shots[1].colour.palette_lock: input should be a valid boolean")
    assert lines[2].startswith(f"{tmp_path / 'bad.yaml'}: shots[2].colour.ocio: leaves the shot list's folder")
