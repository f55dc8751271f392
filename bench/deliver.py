"""Deliverables: bytes and encode seconds per format for a typical shot, and for the three together.

    .venv/bin/python bench/deliver.py [--width 1024 --height 576 --frames 48]

The shot comes from `tasks/synthetic.py`: drawings on 2s with the true in-between drawn on every other
frame (what a perfect in-betweener would make), as PNG frames the assembly reads. One JSON line per
format alone (`png`, `h264`, `prores4444`) and one for all three in one pass, each with the output's
bytes (all its files), bytes per frame, and the wall seconds of the assembly (decode, write, read back).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from tasks.assemble import assemble_shot
from tasks.deliver import build, check_deliver
from tasks.synthetic import animate, make_character
from tooncrafter_model.frames import write_frame

RUNS = (["png"], ["h264"], ["prores4444"], ["png", "h264", "prores4444"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--height", type=int, default=576)
    parser.add_argument("--frames", type=int, default=48, help="2 s at 24 fps by default")
    parser.add_argument("--repeat", type=int, default=3, help="the fastest of this many runs is reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        anim = animate([2] * (args.frames // 2), width=args.width, height=args.height, character=make_character(5))
        drawn = set(anim.keyframes)
        sources = [
            write_frame(Path(tmp) / "src" / f"{f:04d}.png", anim.frames[f] if f in drawn else anim.truth(f))
            for f in range(len(anim.frames))
        ]
        for kinds in RUNS:
            best, out = float("inf"), None
            for i in range(args.repeat):
                t0 = time.perf_counter()
                out = assemble_shot(sources, 24, Path(tmp) / "-".join(kinds) / f"v{i:03d}", "sh0010",
                                    deliver=build(check_deliver(kinds)), timecode="01:00:00:00")  # fmt: skip
                best = min(best, time.perf_counter() - t0)
            assert out is not None
            sizes = {o.kind: int(o.details["bytes"]) for o in out.outputs}
            print(json.dumps({
                "formats": "+".join(kinds), "size": f"{args.width}x{args.height}", "frames": len(sources),
                "bytes": sizes, "kb_per_frame": {k: round(b / len(sources) / 1024, 1) for k, b in sizes.items()},
                "seconds": round(best, 2), "ms_per_frame": round(best / len(sources) * 1000, 1),
            }))  # fmt: skip


if __name__ == "__main__":
    main()
