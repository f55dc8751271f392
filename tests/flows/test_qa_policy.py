"""The per-shot quality policy through the farm, without model weights: the simulated backend spoils its
renders on purpose (a colour drift, `defect: tone`), on every seed or only on the shot's own, over small
motions where its clean output (a cross-fade) is a good in-between. A retry with another seed and a
fallback to another backend each replace a flagged pair; `flag` keeps it and shows it; a re-run renders
nothing and decides nothing again; another policy decides again from the recorded scores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

import shot_db
from flows.cli import app
from shot_db import ShotDB
from shot_db.models import QADecision, Render
from tasks.qa import retry_seed
from tasks.report import BatchReport, report_markdown
from tasks.synthetic import draw_frame, make_character
from tooncrafter_model.backend import crossfade
from tooncrafter_model.frames import read_frame, write_frame

from .conftest import settings_for

pytestmark = pytest.mark.usefixtures("prefect_harness", "ray_module")

W, H = 128, 64
KEYS = (0, 3, 6)  # three drawings, two pairs of two in-betweens
SPOILED = {"defect": "tone", "defect_strength": 8.0}


def _shot(folder: Path, code: str, seed: int, **fields: Any) -> dict[str, Any]:
    """An image-source shot whose character moves 3% of its path per pair: a cross-fade stays clean."""
    character = make_character(seed)
    images = []
    for i, frame in enumerate(KEYS):
        drawing = draw_frame(0.3 + 0.03 * i, width=W, height=H, character=character)
        path = write_frame(folder / code / f"{frame:04d}.png", drawing)
        images.append({"frame": frame, "image": str(path.relative_to(folder))})
    return {"code": code, "source": images, "end": KEYS[-1], "backend": "simulated-gpu", **fields}


@pytest.fixture
def shotlist(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    shots = [
        _shot(folder, "retried", 3, render={"params": {**SPOILED, "defect_seeds": [0]}},  # only the shot's seed
              qa={"on_fail": "retry", "retries": 2}),
        _shot(folder, "fellback", 8, render={"params": SPOILED}, qa={"on_fail": "fallback", "fallback": "crossfade"}),
        _shot(folder, "flagged", 13, render={"params": SPOILED}),  # qa: flag, the default
        _shot(folder, "hopeless", 18, render={"params": SPOILED}, qa={"on_fail": "retry", "retries": 1}),
        _shot(folder, "clean", 23),
    ]
    path = folder / "shots.yaml"
    path.write_text(yaml.safe_dump({"defaults": {"show": "qa", "sequence": "sq010", "fps": 24}, "shots": shots}))
    return path


def _inbetweens(outcome: Any) -> list[np.ndarray]:
    pngs = sorted((Path(outcome.mp4).parent / "png").glob("*.png"))
    return [read_frame(p) for i, p in enumerate(pngs) if i not in KEYS]


def _fades(shotlist: Path, code: str) -> list[np.ndarray]:
    keys = [read_frame(shotlist.parent / code / f"{f:04d}.png") for f in KEYS]
    return [crossfade(keys[k], keys[k + 1], t) for k in range(2) for t in (1 / 3, 2 / 3)]


def test_retry_fallback_and_flag_each_do_what_the_shot_asks_and_a_rerun_renders_nothing(
    shotlist: Path, tmp_path: Path
) -> None:
    from flows.render_batch import render_batch

    settings = settings_for(tmp_path, actors=1, backend_options={"simulated-gpu": {"seconds": 0}})
    batch = render_batch(str(shotlist), settings)
    assert batch.ok, batch.errors
    # 10 first tries; retried: 2 retries; fellback: 2 fallbacks; hopeless: 2 retries (spoilt too)
    assert batch.summary == "rendered 16 pairs, reused 0, failed 0"
    out = {o.shot_id.split("/")[-1]: o for o in batch.outcomes}

    # a retry with another seed and a fallback to another backend replace the flagged pairs: clean frames
    for code in ("retried", "fellback", "clean"):
        pairs = zip(_inbetweens(out[code]), _fades(shotlist, code), strict=True)
        assert all(np.array_equal(a, b) for a, b in pairs), code
    # flag keeps the spoilt frames (a colour drift of 8 ΔE is several levels on every pixel)
    for code in ("flagged", "hopeless"):
        pairs = zip(_inbetweens(out[code]), _fades(shotlist, code), strict=True)
        assert all(np.abs(a.astype(int) - b).mean() > 2 for a, b in pairs), code

    db = ShotDB.open(settings.db_url)
    with db.transaction() as s:
        history = {code: shot_db.shot_history(session=s, show="qa", sequence="sq010", code=code)[0] for code in out}
        decisions = s.scalar(select(func.count()).select_from(QADecision))
        renders = s.scalar(select(func.count()).select_from(Render))
    assert (decisions, renders) == (8, 16)  # every flagged pair decided once; every try is a render

    retried = history["retried"].renders
    for r in retried:
        qa = r.qa
        assert qa is not None and qa.outcome == "retried" and qa.reason.startswith("frame 0001 (t=0.3333): tone ")
        first, retry = qa.tries
        assert (first.backend, first.seed, retry.backend) == ("simulated-gpu", 0, "simulated-gpu")
        assert first.flags and not retry.flags and first.severity > 1 >= retry.severity
        assert retry.seed == retry_seed(first.render_key, 1) == r.seed and retry.render_key == r.render_key
        assert r.status == "finished" and r.params["defect_seeds"] == [0]  # its own render, its own key
    fellback = history["fellback"].renders
    assert [(r.backend, r.qa.outcome if r.qa else None) for r in fellback] == [("crossfade", "fell-back")] * 2
    assert [len(r.qa.tries) for r in fellback if r.qa] == [2, 2] and fellback[0].params == {"prompt": ""}
    flagged = history["flagged"].renders
    assert [(r.backend, r.seed, r.qa.outcome if r.qa else None) for r in flagged] == [
        ("simulated-gpu", 0, "flagged")
    ] * 2
    hopeless = [r.qa for r in history["hopeless"].renders]
    assert all(q is not None and q.outcome == "flagged" and len(q.tries) == 2 for q in hopeless)
    assert all(r.qa is None for r in history["clean"].renders)

    # the version's provenance says which pairs were replaced, by what, and why
    sidecar = json.loads(Path(out["retried"].sidecar or "").read_text())
    pair = sidecar["pairs"][0]
    assert pair["qa"]["outcome"] == "retried" and pair["qa"]["policy"]["on_fail"] == "retry"
    assert pair["seed"] == pair["qa"]["tries"][1]["seed"] and pair["render_key"] == pair["qa"]["tries"][1]["render_key"]
    assert sidecar["render"]["seed"] == 0  # the shot's own seed stays the shot's
    fell = json.loads(Path(out["fellback"].sidecar or "").read_text())["pairs"][1]
    assert fell["backend"]["name"] == "crossfade" and fell["qa"]["outcome"] == "fell-back"
    assert "qa" not in json.loads(Path(out["clean"].sidecar or "").read_text())["pairs"][0]

    # `toonfarm lineage` of a retried in-between says so and why
    frame = sorted((Path(out["retried"].mp4).parent / "png").glob("*.png"))[1]
    shown = CliRunner().invoke(app, ["lineage", str(frame), "--db", settings.db_url])
    assert shown.exit_code == 0, shown.output
    assert "  qa         retried (on_fail: retry): flagged frame 0001 (t=0.3333): tone " in shown.stdout
    assert "    try 1    simulated-gpu  seed 0  render " in shown.stdout and "  <- used" in shown.stdout
    fallen = sorted((Path(out["fellback"].mp4).parent / "png").glob("*.png"))[4]
    shown = CliRunner().invoke(app, ["lineage", str(fallen), "--db", settings.db_url])
    assert "  qa         fell-back (on_fail: fallback)" in shown.stdout
    assert "    try 2    crossfade  seed 0" in shown.stdout

    # the dashboard shows each shot's flagged pairs with their frames
    kept = out["flagged"].qa
    assert [(q.a, q.b, q.outcome) for q in kept] == [(0, 3, "flagged"), (3, 6, "flagged")]
    strip = read_frame(kept[0].strip)
    assert strip.shape[1] == 960 and kept[0].strip_url and kept[0].strip_url.endswith(".0.jpg")
    markdown = report_markdown(batch)
    assert "### Quality: flagged pairs" in markdown and "#### qa/sq010/flagged: 2 kept flagged, 0 replaced" in markdown
    assert f"![pair 0 -> 3]({kept[0].strip_url})" in markdown and kept[0].frames[0] in markdown
    assert "#### qa/sq010/retried: 0 kept flagged, 2 replaced" in markdown and "qa/sq010/clean" not in markdown

    again = render_batch(str(shotlist), settings)
    assert again.ok and again.summary == "rendered 0 pairs, reused 10, failed 0"
    assert {o.status for o in again.outcomes} == {"unchanged"}
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(QADecision)) == 8
        assert s.scalar(select(func.count()).select_from(Render)) == 16
    assert [q.outcome for q in next(o for o in again.outcomes if o.shot_id.endswith("/retried")).qa] == ["retried"] * 2

    # another policy: the finished tries are judged again from their recorded scores, only new tries render
    doc = yaml.safe_load(shotlist.read_text())
    doc["shots"][2]["qa"] = {"on_fail": "fallback", "fallback": "crossfade"}  # flagged: now falls back
    doc["shots"][4]["qa"] = {"thresholds": {"tone": 50, "vanish": 0.9}}  # clean: still clean
    shotlist.write_text(yaml.safe_dump(doc))
    changed = render_batch(str(shotlist), settings)
    assert changed.summary == "rendered 2 pairs, reused 8, failed 0"  # the flagged shot's two fallbacks
    status = {o.shot_id.split("/")[-1]: o.status for o in changed.outcomes}
    assert status == {"retried": "unchanged", "fellback": "unchanged", "flagged": "new-version",
                      "hopeless": "unchanged", "clean": "unchanged"}  # fmt: skip
    now = next(o for o in changed.outcomes if o.shot_id.endswith("/flagged"))
    assert all(np.array_equal(a, b) for a, b in zip(_inbetweens(now), _fades(shotlist, "flagged"), strict=True))
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(QADecision)) == 10  # the flagged pairs under the new policy
    db.close()
