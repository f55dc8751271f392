"""The demo batch: example shots made here, from the synthetic cartoon generator, so `make demo` needs no data."""

from __future__ import annotations

from pathlib import Path

import yaml

from tasks.colour import warm_look_table, write_cube
from tasks.synthetic import animate, make_character, write_video

# 320x192: both sides multiples of 64, so RIFE needs no padding and a CPU renders the demo in seconds.
WIDTH, HEIGHT = 320, 192


def write_demo(folder: str | Path, *, width: int = WIDTH, height: int = HEIGHT) -> Path:
    """Write three rough-animation shots and a show LUT into `folder`; returns the shot list's path.

    sh0010 is animated on 2s; sh0020 on 3s with a hard cut to another scene; sh0030 on 4s, mixed with 2s
    and 3s, and graded with the show LUT. Files already there are kept, so a second demo run sees the
    same media and renders nothing new.
    """
    root = Path(folder)
    (root / "rough").mkdir(parents=True, exist_ok=True)
    shots = {
        "sq010_sh0010": animate([2] * 12, width=width, height=height, character=make_character(1)),
        "sq010_sh0020": animate([3] * 10, width=width, height=height, character=make_character(7), cut_at=15),
        "sq010_sh0030": animate([4, 4, 2, 2, 3, 3, 4, 4], width=width, height=height, character=make_character(11)),
    }
    for code, animation in shots.items():
        video = root / "rough" / f"{code}.mp4"
        if not video.exists():
            write_video(animation.frames, video, fps=24)
    if not (root / "show_look.cube").exists():
        write_cube(root / "show_look.cube", warm_look_table(17), title="demo warm look")
    shotlist = {
        "defaults": {"show": "demo", "sequence": "sq010", "fps": 24},
        "shots": [
            {"code": "sq010_sh0010", "source": "rough/sq010_sh0010.mp4"},
            {"code": "sq010_sh0020", "source": "rough/sq010_sh0020.mp4", "priority": 10},
            {"code": "sq010_sh0030", "source": "rough/sq010_sh0030.mp4", "lut": "show_look.cube"},
        ],
    }
    path = root / "shots.yaml"
    path.write_text(yaml.safe_dump(shotlist, sort_keys=False))
    return path
