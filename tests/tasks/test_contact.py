"""Contact sheets and thumbnails, read back as pictures: which tiles are there, how each is marked, in
what order, and what each shows."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np
import pytest

from shot_db.records import OutputFrame
from tasks import contact
from tasks.contact import SheetFrame, contact_sheet, data_uri, encode, pick_strips, sheet_frames, thumbnail, write_previews
from tooncrafter_model.frames import write_frame

W, H = 64, 40


def _colour(i: int) -> tuple[int, int, int]:
    """A flat colour per frame, far from the sheet's own colours (no grey, no amber)."""
    return (40 + (i * 37) % 160, 200 - (i * 23) % 120, 90 + (i * 53) % 150)


def _frames(tmp_path: Path, count: int, drawn_every: int = 3) -> list[SheetFrame]:
    """`count` flat frames; frames 1, 1 + drawn_every, ... are drawn, the rest generated."""
    out = []
    for i in range(count):
        image = np.full((H, W, 3), _colour(i), np.uint8)
        out.append(SheetFrame(write_frame(tmp_path / f"sh.{i + 1:04d}.png", image), i + 1, i % drawn_every != 0))
    return out


def _boxes(sheet: np.ndarray, colour: tuple[int, int, int]) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (x, y, w, h) of the regions painted exactly `colour`, in reading order."""
    mask = np.all(sheet == np.array(colour, np.uint8), axis=2).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    boxes = [(int(s[0]), int(s[1]), int(s[2]), int(s[3])) for s in stats[1:count] if s[cv2.CC_STAT_AREA] > 50]
    return sorted(boxes, key=lambda b: (b[1], b[0]))


def _tiles(sheet: np.ndarray) -> list[tuple[bool, tuple[int, int, int, int]]]:
    """(generated, box) of every tile in reading order; the legend's small swatches are left out."""
    tiles = [(True, b) for b in _boxes(sheet, contact._GENERATED)] + [(False, b) for b in _boxes(sheet, contact._DRAWN)]
    tiles = [t for t in tiles if t[1][2] > 40]
    return sorted(tiles, key=lambda t: (t[1][1], t[1][0]))


def _shows(sheet: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int, int]:
    x, y, w, h = box
    centre = sheet[y + h // 3, x + w // 2]
    return int(centre[0]), int(centre[1]), int(centre[2])


def test_every_frame_is_a_tile_in_frame_order_marked_drawn_or_generated(tmp_path: Path) -> None:
    frames = _frames(tmp_path, 14)
    sheet = contact_sheet(frames, title="sq010_sh0010 v003")
    assert sheet.shape[1] == contact.SHEET_WIDTH and sheet.dtype == np.uint8

    tiles = _tiles(sheet)
    assert [generated for generated, _ in tiles] == [f.generated for f in frames]
    for frame, (_, box) in zip(frames, tiles, strict=True):
        assert np.abs(np.subtract(_shows(sheet, box), _colour(frame.number - 1))).max() <= 2
    rows = sorted({box[1] for _, box in tiles})
    assert len(rows) == 3  # 14 frames in rows of 6
    x_of_row = [sorted(box[0] for _, box in tiles if box[1] == y) for y in rows]
    assert len(x_of_row[0]) == contact.COLUMNS and x_of_row[0] == x_of_row[1]


def test_a_long_shot_is_capped_to_strips_of_consecutive_frames(tmp_path: Path) -> None:
    frames = _frames(tmp_path, 200, drawn_every=2)  # a shot on 2s: every other frame drawn
    sheet = contact_sheet(frames, title="long")
    strips = pick_strips(200)
    shown = [i for s in strips for i in s]
    tiles = _tiles(sheet)
    assert len(tiles) == len(shown) == contact.COLUMNS * contact.MAX_ROWS
    assert [g for g, _ in tiles] == [frames[i].generated for i in shown]
    assert {g for g, _ in tiles} == {True, False}  # both kinds on the sheet, not only the drawings
    for i, (_, box) in zip(shown, tiles, strict=True):
        assert np.abs(np.subtract(_shows(sheet, box), _colour(i))).max() <= 2
    assert sheet.shape[0] < 1200  # the cap holds the height, whatever the shot's length


def test_strips_cover_the_shot_from_its_first_to_its_last_frame() -> None:
    assert pick_strips(5) == [range(0, 5)]
    assert pick_strips(13) == [range(0, 6), range(6, 12), range(12, 13)]
    assert [len(s) for s in pick_strips(48)] == [6] * 8
    long = pick_strips(1000)
    assert len(long) == contact.MAX_ROWS and all(len(s) == contact.COLUMNS for s in long)
    assert long[0][0] == 0 and long[-1][-1] == 999
    starts = [s[0] for s in long]
    assert starts == sorted(starts) and len(set(np.diff(starts)) - {141, 142}) == 0  # evenly spread


def test_the_thumbnail_is_the_middle_frame_at_the_table_width(tmp_path: Path) -> None:
    frames = _frames(tmp_path, 9)
    thumb = thumbnail(frames)
    assert thumb.shape == (round(contact.THUMB_WIDTH * H / W), contact.THUMB_WIDTH, 3)
    assert np.abs(thumb.astype(int) - np.array(_colour(4))).max() <= 1


def test_previews_are_written_as_jpegs_and_the_thumbnail_also_inline(tmp_path: Path) -> None:
    frames = _frames(tmp_path / "png", 24)
    previews = write_previews(frames, tmp_path / "preview", title="sq010_sh0010 v001")
    assert previews.sheet == tmp_path / "preview" / contact.SHEET_NAME
    sheet = cv2.imread(str(previews.sheet))
    assert sheet is not None and sheet.shape[1] == contact.SHEET_WIDTH
    head, _, payload = previews.thumbnail_uri.partition(",")
    assert head == "data:image/jpeg;base64"
    assert base64.b64decode(payload) == previews.thumbnail.read_bytes()
    assert previews.thumbnail.read_bytes()[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize("fmt, magic", [("jpeg", b"\xff\xd8\xff"), ("png", b"\x89PNG"), ("webp", b"RIFF")])
def test_encode_gives_each_format_that_decodes_to_the_same_size(fmt: str, magic: bytes) -> None:
    image = np.zeros((30, 50, 3), np.uint8)
    image[:, :25] = (255, 0, 0)
    data = encode(image, fmt)
    assert data.startswith(magic)
    back = np.asarray(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))[..., ::-1]
    assert back.shape == image.shape
    assert np.abs(back[15, 5].astype(int) - (255, 0, 0)).max() <= 8  # red stays red: RGB order kept
    assert np.abs(back[15, 45].astype(int)).max() <= 8
    assert data_uri(data, f"image/{fmt}").startswith(f"data:image/{fmt};base64,")


def test_recorded_frames_become_sheet_frames_by_their_source() -> None:
    recorded = [OutputFrame("/v/sh.0001.png", "h1", keyframe_hash="k"), OutputFrame("/v/sh.0002.png", "h2", "r", 1)]
    assert sheet_frames(recorded) == [SheetFrame(Path("/v/sh.0001.png"), 1, False), SheetFrame(Path("/v/sh.0002.png"), 2, True)]


def test_bad_inputs_name_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sh0010 v001.*no frames"):
        contact_sheet([], title="sh0010 v001")
    with pytest.raises(ValueError, match="missing.png"):
        contact_sheet([SheetFrame(tmp_path / "missing.png", 1, True)], title="x")
    with pytest.raises(ValueError, match="'tiff'"):
        encode(np.zeros((4, 4, 3), np.uint8), "tiff")
