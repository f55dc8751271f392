"""End-to-end helpers: shot lists of synthetic cartoons written by the test, one local Ray per module,
and the session's Prefect API."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import shot_db
from shot_db import ShotDB
from cluster import connect
from tasks.settings import Settings
from tasks.synthetic import Animation, animate, make_character, write_video

W, H = 128, 64  # small frames keep RIFE at a few ms per in-between on CPU


@pytest.fixture(scope="module")
def ray_module() -> Iterator[None]:
    """One local Ray for the module: every flow run in it reuses the connection (start-up is 3-7 s)."""
    temp_dir = tempfile.mkdtemp(prefix="tff-", dir="/tmp")
    try:
        with connect(num_cpus=2, temp_dir=temp_dir):
            yield
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


@dataclass
class Shots:
    """A shot list on disk and the ground truth of each shot's animation."""

    path: Path
    animations: dict[str, Animation]
    doc: dict[str, Any]

    def write(self) -> None:
        self.path.write_text(yaml.safe_dump(self.doc, sort_keys=False))


def make_shots(folder: Path, timings: dict[str, dict[str, Any]], **defaults: Any) -> Shots:
    """Write a lossless rough-animation video per shot (`timings[code]` = animate() kwargs) and a shot list."""
    folder.mkdir(parents=True, exist_ok=True)
    animations = {}
    shots = []
    for i, (code, spec) in enumerate(timings.items()):
        spec = dict(spec)
        extra = spec.pop("shot", {})
        anim = animate(spec.pop("timing"), width=W, height=H, character=make_character(3 + 5 * i), **spec)
        write_video(anim.frames, folder / "rough" / f"{code}.mkv", fps=24, lossless=True)
        animations[code] = anim
        shots.append({"code": code, "source": f"rough/{code}.mkv", **extra})
    doc = {"defaults": {"show": "test", "sequence": "sq010", "fps": 24, **defaults}, "shots": shots}
    result = Shots(folder / "shots.yaml", animations, doc)
    result.write()
    return result


def redraw(shots: Shots, code: str, drawing: int) -> None:
    """Change one drawing of a shot (a dot on it) and rewrite its video; every other frame keeps its pixels."""
    anim = shots.animations[code]
    start = anim.keyframes[drawing]
    end = anim.keyframes[drawing + 1] if drawing + 1 < len(anim.keyframes) else len(anim.frames)
    frames = [f.copy() for f in anim.frames]
    for f in frames[start:end]:
        f[20:26, 60:66] = (255, 0, 255)
    write_video(frames, shots.path.parent / "rough" / f"{code}.mkv", fps=24, lossless=True)


def versions(settings: Settings, code: str, show: str = "test", sequence: str = "sq010") -> list[int]:
    """The version numbers the shot DB holds for a shot."""
    with ShotDB.open(settings.db_url) as db, db.transaction() as s:
        return [v.number for v in shot_db.shot_history(session=s, show=show, sequence=sequence, code=code)]


def settings_for(folder: Path, **overrides: Any) -> Settings:
    return Settings(**{"output_root": folder / "out", "actors": 2, "actor_cpus": 1, **overrides})
