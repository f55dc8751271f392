"""The whole path through Prefect and Ray: shot list -> keyframe pairs -> RIFE on actors -> versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

import shot_db
from shot_db import ShotDB
from shot_db.models import Render, RenderAttempt
from tasks.colour import apply_lut, read_cube, warm_look_table, write_cube
from tests.media import probe_video
from tooncrafter_model.frames import read_frame

from .conftest import make_shots, settings_for

pytestmark = pytest.mark.usefixtures("prefect_harness", "ray_module")


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def test_batch_renders_every_shot_with_full_provenance(tmp_path: Path) -> None:
    from flows.render_batch import render_batch

    write_cube(tmp_path / "in" / "look.cube", warm_look_table(9))
    shots = make_shots(
        tmp_path / "in",
        {
            "sh0010": {"timing": [2] * 6},  # on 2s: 5 pairs of 1 in-between
            "sh0020": {"timing": [3] * 6, "cut_at": 9},  # on 3s, a hard cut at 9: 2 + 2 pairs, none across it
            "sh0030": {"timing": [4, 2, 3, 4], "shot": {"lut": "look.cube"}},  # mixed timing, graded
        },
    )
    settings = settings_for(tmp_path)
    batch = render_batch(str(shots.path), settings)

    assert batch.ok, batch.errors
    assert batch.summary == "rendered 12 pairs, reused 0, failed 0"
    lut = read_cube(tmp_path / "in" / "look.cube")
    db = ShotDB.open(settings.db_url)
    for outcome in batch.outcomes:
        code = outcome.shot_id.split("/")[-1]
        anim = shots.animations[code]
        graded = (lambda f: apply_lut(f, lut)) if code == "sh0030" else (lambda f: f)
        assert outcome.status == "new-version" and outcome.version == 1
        probe = probe_video(outcome.mp4)
        assert (probe.frame_count, probe.fps, probe.width, probe.height) == (len(anim.frames), 24, 128, 64)
        pngs = sorted((Path(outcome.mp4).parent / "png").glob("*.png"))
        assert len(pngs) == len(anim.frames)
        out = [read_frame(p) for p in pngs]
        for k in anim.keyframes:  # every drawing appears at its own frame, untouched (or only graded)
            assert np.array_equal(out[k], graded(anim.frames[k])), (code, k)
        # in-betweens: closer to the true on-1s drawing than a cross-fade of the two keyframes
        starts = anim.keyframes + [len(anim.frames)]
        rife, fade = [], []
        for a, b in zip(starts, starts[1:]):
            if b in anim.cuts or b == len(anim.frames):
                continue
            for f in range(a + 1, b):
                t = (f - a) / (b - a)
                cross = ((1 - t) * anim.frames[a].astype(np.float64) + t * anim.frames[b] + 0.5).astype(np.uint8)
                truth = graded(anim.truth(f))
                rife.append(_mae(out[f], truth))
                fade.append(_mae(graded(cross), truth))
        assert np.mean(rife) < 0.7 * np.mean(fade), (code, np.mean(rife), np.mean(fade))

        with db.transaction() as s:
            (version,) = shot_db.shot_history(session=s, show="test", sequence="sq010", code=code)
        assert version.frame_count == len(anim.frames) and [o.kind for o in version.outputs] == ["png", "h264"]
        assert version.outputs[1].path == outcome.mp4 and version.outputs == outcome.outputs
        pairs = {(r.frame_a, r.frame_b) for r in version.renders}
        expected = {(a, b) for a, b in zip(anim.keyframes, anim.keyframes[1:]) if b not in anim.cuts}
        assert pairs == expected
        for r in version.renders:
            assert r.status == "finished" and r.backend == "rife" and len(r.weights_sha256) == 64
            assert [a.ok for a in r.attempts] == [True] and r.worker and r.node and r.seconds is not None
            assert r.flow_run_id == batch.flow_run_id and len(r.frame_hashes) == r.frame_b - r.frame_a - 1
        sidecar = json.loads(Path(outcome.sidecar).read_text())
        assert sidecar["version"] == 1 and sidecar["frame_count"] == len(anim.frames)
        assert [k["frame"] for k in sidecar["keyframes"]] == anim.keyframes
        assert sidecar["keyframes"][1]["source"].endswith(f"rough/{code}.mkv#frame={anim.keyframes[1]}")
        assert sidecar["ingest"]["background"] == [255, 255, 255] and sidecar["ingest"]["margin"]["hold"] == 0.0
        assert sidecar["backend"]["name"] == "rife" and sidecar["flow_run_id"] == batch.flow_run_id
        assert all(p["worker"] for p in sidecar["pairs"])
    db.close()


def test_bad_media_fails_its_shot_only(tmp_path: Path) -> None:
    from flows.render_batch import render_batch

    shots = make_shots(tmp_path / "in", {"good": {"timing": [2] * 3}, "gone": {"timing": [2] * 3}, "ungraded": {"timing": [2] * 3}})
    (tmp_path / "in" / "rough" / "gone.mkv").unlink()
    shots.doc["shots"][2]["lut"] = "missing.cube"
    shots.write()
    batch = render_batch(str(shots.path), settings_for(tmp_path, allow_outside_root=False))

    assert not batch.ok
    status = {o.shot_id: o.status for o in batch.outcomes}
    assert status == {"test/sq010/good": "new-version", "test/sq010/ungraded": "failed"}
    assert batch.unplanned[0][0] == "test/sq010/gone"
    assert batch.unplanned[0][1].startswith(f"{shots.path}: shots[1].source: rough/gone.mkv")
    assert any("missing.cube" in e for e in batch.errors)
    assert batch.summary == "rendered 4 pairs, reused 0, failed 0"  # the graded shot's pairs rendered; kept for the fix


def test_a_pair_that_keeps_failing_fails_its_shot_only(tmp_path: Path) -> None:
    from flows.render_batch import render_batch

    shots = make_shots(tmp_path / "in", {"sh0010": {"timing": [2] * 4}, "sh0020": {"timing": [2] * 4}})
    settings = settings_for(tmp_path, max_attempts=2)
    first = render_batch(str(shots.path), settings)
    assert first.ok
    v1 = {o.shot_id: Path(o.mp4).read_bytes() for o in first.outcomes}
    db = ShotDB.open(settings.db_url)
    with db.transaction() as s:
        (version,) = shot_db.shot_history(session=s, show="test", sequence="sq010", code="sh0010")
    db.close()
    broken = Path(version.renders[1].keyframe_b.path)  # the stored keyframe shared by pairs 2->4 and 4->6
    broken.write_bytes(b"\x89PNG not really")  # storage corrupted under the farm
    shots.doc["shots"][0]["render"] = {"seed": 1}  # new render keys for sh0010: its pairs render again
    shots.write()

    batch = render_batch(str(shots.path), settings)
    assert not batch.ok
    assert batch.summary == "rendered 1 pairs, reused 3, failed 2"
    status = {o.shot_id: o.status for o in batch.outcomes}
    assert status == {"test/sq010/sh0010": "failed", "test/sq010/sh0020": "unchanged"}
    (error,) = {e.split(": ", 1)[1] for e in batch.errors if "2->4" in e}
    assert str(broken) in error and "not a readable image" in error
    assert {o.shot_id: Path(o.mp4).read_bytes() for o in first.outcomes} == v1  # nothing rendered is lost
    with ShotDB.open(settings.db_url) as db, db.transaction() as s:
        versions = shot_db.shot_history(session=s, show="test", sequence="sq010", code="sh0010")
        tries = s.scalars(select(RenderAttempt).join(Render).where(Render.status == "failed")).all()
    assert len(versions) == 1  # no new version of the failed shot
    assert len(tries) == 4 and all(t.error and "not a readable image" in t.error for t in tries)  # 2 pairs x 2 tries
