"""Pictures of a published shot version for the producer dashboard: a contact sheet and a thumbnail.

The contact sheet lays the version's frames out in frame order, so each drawn keyframe sits beside the
in-betweens generated after it. Every tile is labelled with its frame number (as in the PNG sequence's
names) and marked: an amber border and "generated" for a frame the model made, a slate one and "drawn"
for a keyframe. Long shots are not shrunk into unreadable tiles: the sheet shows at most `max_rows`
rows, each a continuous strip of frames, strips spread evenly over the shot.

Sizes are chosen for the Prefect UI, whose markdown column is about 900-1000 px wide on a laptop; the
figures behind the format and the caps are in ARCHITECTURE.md ("Pictures on the dashboard").
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from tooncrafter_model.frames import Frame, read_frame

SHEET_WIDTH = 960
COLUMNS = 6
MAX_ROWS = 8  # 48 tiles: a 2 s shot at 24 fps whole; longer ones as 8 strips
THUMB_WIDTH = 160
JPEG_QUALITY = 85  # flat fills and ink lines stay clean at this quality; the sheet is a preview, not a master
SHEET_NAME = "contact.jpg"
THUMB_NAME = "thumbnail.jpg"

# RGB. Amber and slate stay distinct from each other beside the saturated fills of a cartoon.
_BACKGROUND = (32, 33, 36)
_TEXT = (235, 235, 235)
_GENERATED = (245, 158, 11)
_DRAWN = (71, 85, 105)
_MARGIN, _GAP, _BORDER, _LABEL_H, _HEADER_H, _SKIP_H = 10, 6, 3, 20, 32, 18
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class SheetFrame:
    """One frame of a version: its image, its number in the sequence (1-based) and whether a model made it."""

    path: Path
    number: int
    generated: bool


class _AssembledFrame(Protocol):
    @property
    def path(self) -> str: ...

    @property
    def render_key(self) -> str | None: ...


def sheet_frames(frames: Sequence[_AssembledFrame]) -> list[SheetFrame]:
    """A version's assembled frames (in order, as the shot DB records them) as sheet frames: a frame that
    came from a render is generated, one that came from a keyframe is drawn."""
    return [SheetFrame(Path(f.path), i, f.render_key is not None) for i, f in enumerate(frames, start=1)]


# --------------------------------------------------------------------------------------------- layout


def pick_strips(count: int, *, columns: int = COLUMNS, max_rows: int = MAX_ROWS) -> list[range]:
    """Which frames (0-based) the sheet shows, one range per row.

    Every frame when they fit; else `max_rows` strips of `columns` consecutive frames, the first at the
    shot's start, the last at its end, the others evenly between. Consecutive frames rather than every
    k-th frame: a stride can fall on the drawings only (every 2nd frame of a shot on 2s), and a strip
    shows a drawing beside its own in-betweens.
    """
    if count <= columns * max_rows:
        return [range(start, min(start + columns, count)) for start in range(0, count, columns)]
    last = count - columns
    starts = [round(row * last / (max_rows - 1)) for row in range(max_rows)] if max_rows > 1 else [0]
    return [range(s, s + columns) for s in starts]


def _fit(image: Frame, width: int, height: int) -> Frame:
    if image.shape[:2] == (height, width):
        return image
    interpolation = cv2.INTER_AREA if image.shape[1] > width else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(image, (width, height), interpolation=interpolation))


def _text(canvas: Frame, text: str, x: int, baseline: int, *, scale: float, colour: tuple[int, int, int]) -> int:
    """Draw `text` (ASCII: the Hershey fonts have no other glyphs) and return its width in pixels."""
    cv2.putText(canvas, text, (x, baseline), _FONT, scale, colour, 1, cv2.LINE_AA)
    return int(cv2.getTextSize(text, _FONT, scale, 1)[0][0])


def _tile(canvas: Frame, image: Frame, frame: SheetFrame, x: int, y: int, width: int, height: int) -> None:
    """A frame at (x, y): border and label strip in its kind's colour, the number left, the kind right."""
    colour = _GENERATED if frame.generated else _DRAWN
    ink = (20, 20, 20) if frame.generated else _TEXT
    canvas[y : y + height + 2 * _BORDER + _LABEL_H, x : x + width + 2 * _BORDER] = colour
    canvas[y + _BORDER : y + _BORDER + height, x + _BORDER : x + _BORDER + width] = _fit(image, width, height)
    baseline = y + 2 * _BORDER + height + _LABEL_H - 5
    _text(canvas, str(frame.number), x + _BORDER + 2, baseline, scale=0.5, colour=ink)
    kind = "generated" if frame.generated else "drawn"
    kind_w = int(cv2.getTextSize(kind, _FONT, 0.45, 1)[0][0])
    _text(canvas, kind, x + width + _BORDER - kind_w - 2, baseline, scale=0.45, colour=ink)


def _legend(canvas: Frame, right: int, baseline: int) -> None:
    x = right
    for label, colour in (("generated", _GENERATED), ("drawn", _DRAWN)):
        x -= int(cv2.getTextSize(label, _FONT, 0.45, 1)[0][0])
        _text(canvas, label, x, baseline, scale=0.45, colour=_TEXT)
        x -= 16
        canvas[baseline - 10 : baseline, x : x + 10] = colour
        x -= 18


def contact_sheet(
    frames: Sequence[SheetFrame],
    *,
    title: str,
    width: int = SHEET_WIDTH,
    columns: int = COLUMNS,
    max_rows: int = MAX_ROWS,
) -> Frame:
    """The version's frames as one RGB image `width` pixels wide: a header (title, counts, legend), then
    a grid in frame order with every tile marked drawn or generated."""
    if not frames:
        raise ValueError(f"contact sheet {title!r}: no frames")
    strips = pick_strips(len(frames), columns=columns, max_rows=max_rows)
    first = read_frame(frames[strips[0][0]].path)
    cell_w = (width - 2 * _MARGIN - (columns - 1) * _GAP) // columns
    image_w = cell_w - 2 * _BORDER
    image_h = max(1, round(image_w * first.shape[0] / first.shape[1]))
    cell_h = image_h + 2 * _BORDER + _LABEL_H
    gap = _SKIP_H if sum(len(s) for s in strips) < len(frames) else _GAP  # room to say what a jump skips
    height = _HEADER_H + len(strips) * (cell_h + gap) - gap + _MARGIN
    canvas = np.full((height, width, 3), _BACKGROUND, np.uint8)

    generated = sum(f.generated for f in frames)
    counts = f"{len(frames)} frames: {len(frames) - generated} drawn, {generated} generated"
    shown = sum(len(s) for s in strips)
    if shown < len(frames):
        counts += f" (showing {shown} in {len(strips)} strips)"
    x = _MARGIN + _text(canvas, title, _MARGIN, 22, scale=0.6, colour=_TEXT) + 14
    _text(canvas, counts, x, 22, scale=0.45, colour=(170, 170, 170))
    _legend(canvas, width - _MARGIN, 22)

    for row, strip in enumerate(strips):
        y = _HEADER_H + row * (cell_h + gap)
        if row and strip[0] > strips[row - 1][-1] + 1:
            note = f"{strip[0] - strips[row - 1][-1] - 1} frames not shown"
            note_w = int(cv2.getTextSize(note, _FONT, 0.4, 1)[0][0])
            _text(canvas, note, (width - note_w) // 2, y - 4, scale=0.4, colour=(150, 150, 150))
        for col, index in enumerate(strip):
            frame = frames[index]
            image = first if index == strips[0][0] else read_frame(frame.path)
            _tile(canvas, image, frame, _MARGIN + col * (cell_w + _GAP), y, image_w, image_h)
    return canvas


def thumbnail(frames: Sequence[SheetFrame], *, width: int = THUMB_WIDTH) -> Frame:
    """The shot's middle frame, `width` pixels wide: a poster frame for the shot table."""
    if not frames:
        raise ValueError("thumbnail: no frames")
    image = read_frame(frames[(len(frames) - 1) // 2].path)
    height = max(1, round(width * image.shape[0] / image.shape[1]))
    return _fit(image, width, height)


# ------------------------------------------------------------------------------------------- encoding


def encode(image: Frame, fmt: str = "jpeg", *, quality: int = JPEG_QUALITY) -> bytes:
    """An RGB image as `jpeg`, `png` or `webp` file bytes."""
    params = {
        "jpeg": [cv2.IMWRITE_JPEG_QUALITY, quality],
        "png": [cv2.IMWRITE_PNG_COMPRESSION, 9],
        "webp": [cv2.IMWRITE_WEBP_QUALITY, quality],
    }
    if fmt not in params:
        raise ValueError(f"image format {fmt!r}: expected one of {', '.join(params)}")
    ok, data = cv2.imencode(f".{fmt}", np.ascontiguousarray(image[..., ::-1]), params[fmt])
    if not ok:
        raise ValueError(f"could not encode a {image.shape[1]}x{image.shape[0]} image as {fmt}")
    return bytes(data)


def data_uri(data: bytes, mime: str = "image/jpeg") -> str:
    """`data:` URI of file bytes: an image a markdown artifact carries inline."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


@dataclass(frozen=True)
class Previews:
    """The pictures written for a version, and the thumbnail inline (it goes into the shot table as is)."""

    sheet: Path
    thumbnail: Path
    thumbnail_uri: str


def write_previews(frames: Sequence[SheetFrame], folder: Path, *, title: str) -> Previews:
    """Write the contact sheet and the thumbnail of a version into `folder` as JPEGs."""
    folder.mkdir(parents=True, exist_ok=True)
    sheet_bytes = encode(contact_sheet(frames, title=title))
    thumb_bytes = encode(thumbnail(frames))
    (folder / SHEET_NAME).write_bytes(sheet_bytes)
    (folder / THUMB_NAME).write_bytes(thumb_bytes)
    return Previews(folder / SHEET_NAME, folder / THUMB_NAME, data_uri(thumb_bytes))
