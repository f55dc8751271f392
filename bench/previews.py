"""Dashboard pictures: bytes and time of a version's contact sheet and thumbnail, per image format.

    .venv/bin/python bench/previews.py [--keep DIR]

Shots come from `tasks/synthetic.py` at 512x320: drawings on 2s, the true in-between drawn on every
other frame (what a perfect in-betweener would make), PNG frames as a published version holds them.
One JSON line per shot length and format: the sheet's size and bytes, the thumbnail's bytes and its
`data:` URI's length, and the milliseconds to compose and encode. `--keep DIR` writes the JPEGs there.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from tasks.contact import SheetFrame, contact_sheet, data_uri, encode, thumbnail
from tasks.synthetic import animate, make_character
from tooncrafter_model.frames import write_frame

WIDTH, HEIGHT = 512, 320
SHOTS = {"typical": 24, "long": 240}  # 1 s and 10 s at 24 fps


def _shot(folder: Path, frames: int) -> list[SheetFrame]:
    anim = animate([2] * (frames // 2), width=WIDTH, height=HEIGHT, character=make_character(5))
    drawn = set(anim.keyframes)
    out = []
    for f in range(frames):
        image = anim.frames[f] if f in drawn else anim.truth(f)
        out.append(SheetFrame(write_frame(folder / f"sh.{f + 1:04d}.png", image), f + 1, f not in drawn))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write the sheets and thumbnails here")
    args = parser.parse_args()
    for name, count in SHOTS.items():
        with tempfile.TemporaryDirectory() as tmp:
            frames = _shot(Path(tmp), count)
            t0 = time.perf_counter()
            sheet = contact_sheet(frames, title=f"sq010_sh{count:04d} v001")
            compose_ms = (time.perf_counter() - t0) * 1000
            thumb = thumbnail(frames)
            for fmt in ("jpeg", "webp", "png"):
                t0 = time.perf_counter()
                data = encode(sheet, fmt)
                encode_ms = (time.perf_counter() - t0) * 1000
                thumb_data = encode(thumb, fmt)
                print(json.dumps({
                    "shot": name, "frames": count, "format": fmt, "sheet": f"{sheet.shape[1]}x{sheet.shape[0]}",
                    "sheet_bytes": len(data), "thumb": f"{thumb.shape[1]}x{thumb.shape[0]}",
                    "thumb_bytes": len(thumb_data), "thumb_uri_chars": len(data_uri(thumb_data, f"image/{fmt}")),
                    "compose_ms": round(compose_ms, 1), "encode_ms": round(encode_ms, 1),
                }))
                if args.keep and fmt == "jpeg":
                    args.keep.mkdir(parents=True, exist_ok=True)
                    (args.keep / f"contact_{name}.jpg").write_bytes(data)
                    (args.keep / f"thumbnail_{name}.jpg").write_bytes(thumb_data)


if __name__ == "__main__":
    main()
