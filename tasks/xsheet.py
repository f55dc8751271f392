"""Exposure sheets: the animator's timing, frame by frame, as a CSV with the columns `frame` and `drawing`.

    frame,drawing,action
    1001,A,walk starts
    1002,,                <- an empty drawing cell holds the drawing above, as a line drawn down a sheet does
    1003,B,
    1005,B                <- the same drawing again is still a hold
    1007,C

Frames are the source's own numbers (those of `start` and `end`: 0-based for a video, the file names' for an
image sequence). A frame the sheet does not list holds the drawing before it. Other columns are ignored. A
sheet overrides detection for its shot: its drawings are the keyframes; `plan` shows where they disagree.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tasks.media import MediaError
from tasks.shotlist import Shot


def read_xsheet(shot: Shot, path: Path) -> dict[int, str]:
    """The frames where a new drawing starts, with the drawing's name, in frame order."""
    where, shown = shot.where("xsheet"), shot.shown(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's CSV starts with a byte-order mark
    except FileNotFoundError:
        raise MediaError(f"{where}: {shown}: exposure sheet not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MediaError(f"{where}: {shown}: cannot read exposure sheet: {exc}") from None
    rows = csv.reader(io.StringIO(text, newline=""))
    header = [cell.strip().lower() for cell in next(rows, [])]
    if "frame" not in header or "drawing" not in header:
        raise MediaError(f"{where}: {shown}: line 1: needs the columns frame and drawing (got {', '.join(header)})")
    at_frame, at_drawing = header.index("frame"), header.index("drawing")
    changes: dict[int, str] = {}
    current: str | None = None
    last = -1
    highest = shot.limits.max_frame
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = row + [""] * (len(header) - len(row))
        raw, drawing = cells[at_frame].strip(), cells[at_drawing].strip()
        try:
            frame = int(raw)
        except ValueError:
            raise MediaError(f"{where}: {shown}: line {line}: frame {raw!r} is not a whole number") from None
        if not 0 <= frame <= highest:
            raise MediaError(f"{where}: {shown}: line {line}: frame {frame} is outside 0-{highest} (setting limits.max_frame)")
        if frame <= last:
            raise MediaError(f"{where}: {shown}: line {line}: frame {frame} does not come after frame {last}")
        last = frame
        if not drawing:
            if current is None:
                raise MediaError(f"{where}: {shown}: line {line}: the first frame needs a drawing")
            continue
        if drawing != current:
            changes[frame] = current = drawing
    if not changes:
        raise MediaError(f"{where}: {shown}: lists no drawings")
    return changes
