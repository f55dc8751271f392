"""Deliverables: each format read back by an independent reader (Debian's ffprobe, as README.md's
"Deliverables" shows), a read-back mismatch failing in one line, the shot list's `deliver` key, and what
the formats put in the assembly key."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tasks.assemble import ShotOutputs, assemble_shot
from tasks.deliver import DeliverSpec, DeliveryError, assembly_output, build, check_deliver, editorial_output, video_of
from tasks.deliver.h264 import H264
from tasks.deliver.prores import ProRes4444
from tasks.shotlist import ShotListError, load_shotlist
from tests.media import probe_video
from tooncrafter_model.frames import pixel_hash, read_frame, write_frame

FFPROBE = Path("/usr/bin/ffprobe")


def ffprobe(path: Path) -> dict[str, Any]:
    """The first video stream as Debian's ffprobe reports it (packets counted: every frame is one), with
    its start timecode (None when it has none)."""
    if not FFPROBE.is_file():
        pytest.fail(f"{FFPROBE} is missing: apt-get install -y ffmpeg (.ci/run installs it)")
    run = subprocess.run(
        [str(FFPROBE), "-v", "error", "-count_packets", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,profile,codec_tag_string,pix_fmt,width,height,r_frame_rate,avg_frame_rate,"
         "nb_read_packets,color_range,color_space,color_transfer,color_primaries:stream_tags=timecode",
         "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    (stream,) = json.loads(run.stdout)["streams"]
    tags = stream.pop("tags", {})
    return {**stream, "timecode": tags.get("timecode")}


def _drawings(folder: Path, count: int, width: int, height: int) -> list[Path]:
    """`count` flat drawings: a pale background and an orange block that moves."""
    paths = []
    for i in range(count):
        frame = np.empty((height, width, 3), np.uint8)
        frame[:] = (200, 220, 240)
        frame[height // 4 : height // 4 + 12, 2 + 3 * i : 14 + 3 * i] = (230, 90, 40)
        paths.append(write_frame(folder / f"d{i}.png", frame))
    return paths


def _out(out: ShotOutputs, kind: str) -> Path:
    (path,) = [Path(o.path) for o in out.outputs if o.kind == kind]
    return path


def _assemble(tmp_path: Path, deliver: list[Any], *, size: tuple[int, int] = (48, 32), fps: Any = 24,
              timecode: str | None = None, frames: int = 5) -> ShotOutputs:  # fmt: skip
    a, b, c = _drawings(tmp_path / "src", 3, *size)
    order = [a, a, b, c, c, a, b][:frames]
    return assemble_shot(order, fps, tmp_path / "sh010" / "v001", "sh010", deliver=build(check_deliver(deliver)),
                         timecode=timecode)  # fmt: skip


# ---------------------------------------------------------------------------------------- each format


@pytest.mark.parametrize(("size", "fps", "rate"), [((48, 32), 24, "24/1"), ((47, 31), "24000/1001", "24000/1001")])
def test_h264_reads_back_as_a_browser_plays_it(tmp_path: Path, size: tuple[int, int], fps: Any, rate: str) -> None:
    out = _assemble(tmp_path, ["h264"], size=size, fps=fps)
    mp4 = _out(out, "h264")
    even = (size[0] + size[0] % 2, size[1] + size[1] % 2)
    assert ffprobe(mp4) == {
        "codec_name": "h264", "profile": "High", "codec_tag_string": "avc1", "pix_fmt": "yuv420p",
        "width": even[0], "height": even[1], "color_range": "tv", "color_space": "bt709",
        "color_transfer": "bt709", "color_primaries": "bt709", "r_frame_rate": rate, "avg_frame_rate": rate,
        "nb_read_packets": "5", "timecode": None,
    }  # fmt: skip
    data = mp4.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # fast start: the index before the frames
    (row,) = out.outputs
    assert (row.kind, row.frame_count, row.sha256) == ("h264", 5, hashlib.sha256(data).hexdigest())
    assert row.details == {
        "codec": "h264", "profile": "High", "pix_fmt": "yuv420p", "range": "tv", "colour": "bt709/bt709/bt709",
        "width": even[0], "height": even[1], "fps": str(Fraction(rate)), "timecode": None, "bytes": len(data),
        "padded": size != even,
    }  # fmt: skip
    assert out.frame_files is None  # no image sequence was asked for: frames have no file of their own
    assert video_of(out.outputs) == str(mp4)


def test_prores4444_carries_the_edit_timecode_at_full_chroma(tmp_path: Path) -> None:
    out = _assemble(tmp_path, ["prores4444"], size=(47, 31), fps="24000/1001", timecode="01:00:10:05", frames=7)
    mov = _out(out, "prores4444")
    assert mov.name == "sh010.mov"
    probe = ffprobe(mov)
    assert probe.pop("pix_fmt") in ("yuv444p10le", "yuv444p12le")  # the decoder's depth for any 4444 stream
    assert probe == {
        "codec_name": "prores", "profile": "4444", "codec_tag_string": "ap4h", "width": 47, "height": 31,
        "color_range": "tv", "color_space": "bt709", "color_transfer": "bt709", "color_primaries": "bt709",
        "r_frame_rate": "24000/1001", "avg_frame_rate": "24000/1001", "nb_read_packets": "7",
        "timecode": "01:00:10:05",
    }  # fmt: skip
    assert out.outputs[0].details["timecode"] == "01:00:10:05" and not out.outputs[0].details["padded"]
    # 4:4:4 at 10 bits keeps a colour edge: its worst pixel here is off by 10 levels at most, where 4:2:0
    # H.264 smears the same edge by 71.
    decoded = _decode(mov, 47, 31).astype(int)
    for got, src in ((decoded[0], "d0.png"), (decoded[2], "d1.png")):
        error = np.abs(got - read_frame(tmp_path / "src" / src))
        assert error.mean() < 0.25 and error.max() <= 16
    assert video_of(out.outputs) is None and editorial_output(out.outputs) == out.outputs[0]


def test_prores4444_without_an_edit_has_no_timecode(tmp_path: Path) -> None:
    out = _assemble(tmp_path, ["prores4444"])
    assert ffprobe(_out(out, "prores4444"))["timecode"] is None and out.outputs[0].details["timecode"] is None


def test_png_sequence_from_a_first_frame_with_a_checkable_hash(tmp_path: Path) -> None:
    out = _assemble(tmp_path, [{"png": {"first_frame": 1001}}, "h264"])
    assert out.frame_files is not None
    assert [p.name for p in out.frame_files] == [f"sh010.{n}.png" for n in range(1001, 1006)]
    assert [pixel_hash(read_frame(p)) for p in out.frame_files] == list(out.frame_hashes)
    png = out.outputs[0]
    listing = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in out.frame_files)
    assert png.sha256 == hashlib.sha256(listing.encode()).hexdigest()  # what `sha256sum *.png | sha256sum` says
    assert (png.path, png.frame_count) == (str(out.dir / "png"), 5)
    assert dict(png.details) == {
        "first_frame": 1001, "last_frame": 1005, "width": 48, "height": 32, "pix_fmt": "rgb24",
        "bytes": sum(p.stat().st_size for p in out.frame_files),
    }  # fmt: skip
    assert probe_video(_out(out, "h264")).frame_count == 5
    assert editorial_output(out.outputs) == out.outputs[1]  # the H.264 when no ProRes was delivered


def _decode(path: Path, width: int, height: int) -> np.ndarray:
    import imageio_ffmpeg

    run = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    )  # fmt: skip
    return np.frombuffer(run.stdout, np.uint8).reshape(-1, height, width, 3)


# ------------------------------------------------------------------------------------- the read-back


class _Yuv444H264(H264):
    """An H.264 deliverable whose encoder options disagree with what it promises (4:4:4, not 4:2:0)."""

    def output_options(self, take: Any) -> dict[str, Any]:
        return {**super().output_options(take), "pix_fmt": "yuv444p"}


class _UntaggedProRes(ProRes4444):
    """A ProRes deliverable that forgets the timecode it promises."""

    def output_options(self, take: Any) -> dict[str, Any]:
        return {k: v for k, v in super().output_options(take).items() if k != "timecode"}


@pytest.mark.parametrize(
    ("deliverable", "file", "why"),
    [
        (_Yuv444H264(), "sh010.mp4", "pix_fmt 'yuv444p', expected 'yuv420p'"),
        (_UntaggedProRes(), "sh010.mov", "timecode None, expected '01:00:00:00'"),
    ],
)
def test_a_file_that_reads_back_wrong_fails_the_shot_in_one_line(
    tmp_path: Path, deliverable: Any, file: str, why: str
) -> None:
    a, b = _drawings(tmp_path / "src", 2, 16, 16)
    version = tmp_path / "sh010" / "v001"
    deliver = [*build([DeliverSpec(kind="png")]), deliverable]
    message = rf"^{re.escape(str(version / file))}: read back: {re.escape(why)}$"
    with pytest.raises(DeliveryError, match=message):
        assemble_shot([a, b, b], 24, version, "sh010", deliver=deliver, timecode="01:00:00:00")
    assert not (tmp_path / "sh010").exists()  # nothing half-made is left, the PNGs neither


def test_a_file_that_is_not_a_video_is_one_line(tmp_path: Path) -> None:
    from tasks.deliver._ffmpeg import read_back

    junk = tmp_path / "x.mp4"
    junk.write_bytes(b"\0" * 100)
    with pytest.raises(DeliveryError, match=rf"^{re.escape(str(junk))}: read back: not a readable video \(.+\)$"):
        read_back(junk)


# --------------------------------------------------------------------------------- the shot list's key


def _shots(tmp_path: Path, text: str, name: str = "shots.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_deliver_defaults_to_png_and_h264_and_takes_settings(tmp_path: Path) -> None:
    text = (
        "defaults: {fps: 24, deliver: [png, {h264: {crf: 20}}]}\n"
        "shots:\n"
        "  - {code: a, source: a.mp4}\n"
        "  - {code: b, source: b.mp4, deliver: [{png: {first_frame: 1001}}, prores4444]}\n"
        "  - {code: c, source: c.mp4, deliver: prores4444}\n"
    )
    a, b, c = load_shotlist(_shots(tmp_path, text)).shots
    assert [(d.kind, d.settings) for d in a.deliver] == [("png", {}), ("h264", {"crf": 20})]
    assert [(d.kind, d.settings) for d in b.deliver] == [("png", {"first_frame": 1001}), ("prores4444", {})]
    assert [d.kind for d in c.deliver] == ["prores4444"]
    (plain,) = load_shotlist(_shots(tmp_path, "shots: [{code: a, source: a.mp4, fps: 24}]\n", "plain.yaml")).shots
    assert [(d.kind, d.settings) for d in plain.deliver] == [("png", {}), ("h264", {})]
    csv = _shots(tmp_path, "code,source,fps,deliver\na,a.mp4,24,png prores4444\nb,b.mp4,24,\n", "shots.csv")
    assert [[d.kind for d in s.deliver] for s in load_shotlist(csv).shots] == [["png", "prores4444"], ["png", "h264"]]


@pytest.mark.parametrize(
    ("deliver", "message"),
    [
        ("[png, prores]", "prores: unknown format; choose from h264, png, prores4444"),
        ("[]", "must list at least one format, e.g. [png, h264]"),
        ("[png, h264, png]", "png: listed twice"),
        ("[{png: {first_frame: -1}}]", "png.first_frame: input should be greater than or equal to 0 (got -1)"),
        ("[{h264: {crf: 16.5}}]", "h264.crf: input should be a valid integer (got 16.5)"),
        ("[{h264: {crf: 52}}]", "h264.crf: input should be less than or equal to 51 (got 52)"),
        ("[{h264: {bitrate: 8M}}]", "h264.bitrate: unknown setting"),
        ("[{h264: 16}]", "h264: its settings must be a mapping (got 16)"),
        ("[{png: {}, h264: {}}]", "give a format's name, or one format's name mapped to its settings"),
    ],
)
def test_bad_deliver_entries_name_the_shot_and_the_entry(tmp_path: Path, deliver: str, message: str) -> None:
    path = _shots(tmp_path, f"shots:\n  - {{code: a, source: a.mp4, fps: 24, deliver: {deliver}}}\n")
    with pytest.raises(ShotListError) as err:
        load_shotlist(path)
    assert str(err.value).startswith(f"{path}: shots[0].deliver: ")
    assert message in str(err.value) and "\n" not in str(err.value)


# -------------------------------------------------------------------------------- the assembly key


def _key(specs: list[Any], timecode: str | None = None) -> Mapping[str, Any]:
    return assembly_output(build(check_deliver(specs)), timecode)


def test_formats_and_their_settings_are_in_the_assembly_key() -> None:
    # png + h264 at their defaults: the output key versions had before deliverables, so they still hold.
    assert _key(["png", "h264"]) == _key(["h264", "png"]) == {"crf": 16, "preset": "medium", "tune": "animation",
                                                               "png_compression": 1}  # fmt: skip
    keys = [_key(s) for s in (["png", "h264"], ["png"], [{"png": {"first_frame": 1001}}, "h264"],
                              ["png", {"h264": {"crf": 18}}], ["png", "h264", "prores4444"])]  # fmt: skip
    assert len({json.dumps(k, sort_keys=True) for k in keys}) == len(keys)
    assert _key(["png", "h264"], "01:00:00:00") == _key(["png", "h264"])  # neither writes a timecode
    with_tc = _key(["prores4444"], "01:00:00:00")
    assert with_tc["timecode"] == "01:00:00:00" and with_tc != _key(["prores4444"], "01:00:01:00")


def test_ffprobe_and_our_read_back_agree(tmp_path: Path) -> None:
    """The read-back (ffmpeg's own description of the file) says what Debian's ffprobe says."""
    out = _assemble(tmp_path, ["h264", "prores4444"], timecode="00:59:59:00")
    for row in out.outputs:
        probe = ffprobe(Path(row.path))
        d = row.details
        assert (d["codec"], d["profile"], d["pix_fmt"], d["range"]) == (
            probe["codec_name"], probe["profile"], probe["pix_fmt"], probe["color_range"]
        )
        colour = f"{probe['color_space']}/{probe['color_primaries']}/{probe['color_transfer']}"
        assert (d["colour"], d["width"], d["height"], row.frame_count) == (
            colour, probe["width"], probe["height"], int(probe["nb_read_packets"])
        )
        assert d["fps"] == str(Fraction(probe["avg_frame_rate"])) and d["timecode"] == probe["timecode"]
