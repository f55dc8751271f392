"""The per-shot quality policy through the farm, without model weights: the simulated backend spoils its
renders on purpose (a colour drift, `defect: tone`), on every seed or only on the shot's own, over small
motions where its clean output (a cross-fade) is a good in-between. A retry with another seed and a
fallback to another backend each replace a flagged pair; `flag` keeps it and shows it; a re-run renders
nothing and decides nothing again; another policy decides again from the recorded scores."""

from __future__ import annotations

import json
from dataclasses import dataclass
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
from shot_db.records import VersionInfo
from tasks.publish import ShotOutcome
from tasks.qa import retry_seed
from tasks.report import BatchReport, report_markdown
from tasks.settings import Settings
from tasks.synthetic import draw_frame, make_character
from tooncrafter_model.backend import crossfade
from tooncrafter_model.frames import read_frame, write_frame

from .conftest import settings_for


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


@dataclass
class Run:
    """The first batch over the shot list, and what the shot DB holds after it."""

    shotlist: Path
    settings: Settings
    batch: BatchReport
    out: dict[str, ShotOutcome]
    history: dict[str, VersionInfo]

    def count(self, model: type[QADecision] | type[Render]) -> int:
        with ShotDB.open(self.settings.db_url) as db, db.transaction() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, prefect_harness: str, ray_module: None) -> Run:
    from flows.render_batch import render_batch

    tmp = tmp_path_factory.mktemp("qa-policy")
    folder = tmp / "in"
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
    settings = settings_for(tmp, actors=1, backend_options={"simulated-gpu": {"seconds": 0}})
    batch = render_batch(str(path), settings)
    assert batch.ok, batch.errors
    out = {o.shot_id.split("/")[-1]: o for o in batch.outcomes}
    with ShotDB.open(settings.db_url) as db, db.transaction() as s:
        history = {code: shot_db.shot_history(session=s, show="qa", sequence="sq010", code=code)[0] for code in out}
    return Run(path, settings, batch, out, history)


def _inbetweens(outcome: ShotOutcome) -> list[np.ndarray]:
    pngs = sorted((Path(outcome.mp4 or "").parent / "png").glob("*.png"))
    return [read_frame(p) for i, p in enumerate(pngs) if i not in KEYS]


def _fades(shotlist: Path, code: str) -> list[np.ndarray]:
    keys = [read_frame(shotlist.parent / code / f"{f:04d}.png") for f in KEYS]
    return [crossfade(keys[k], keys[k + 1], t) for k in range(2) for t in (1 / 3, 2 / 3)]


def _clean(run: Run, code: str) -> bool:
    pairs = zip(_inbetweens(run.out[code]), _fades(run.shotlist, code), strict=True)
    return all(np.array_equal(a, b) for a, b in pairs)


def _lineage(run: Run, code: str, frame: int) -> str:
    png = sorted((Path(run.out[code].mp4 or "").parent / "png").glob("*.png"))[frame]
    shown = CliRunner().invoke(app, ["lineage", str(png), "--db", run.settings.db_url])
    assert shown.exit_code == 0, shown.output
    return shown.stdout


def test_every_try_is_a_render_and_every_flagged_pair_a_decision(run: Run) -> None:
    # 10 first tries; retried: 2 retries; fellback: 2 fallbacks; hopeless: 2 retries (spoilt too)
    assert run.batch.summary == "rendered 16 pairs, reused 0, failed 0"
    assert (run.count(QADecision), run.count(Render)) == (8, 16)
    assert _clean(run, "clean") and all(r.qa is None for r in run.history["clean"].renders)


def test_a_retry_with_another_seed_replaces_a_flagged_pair(run: Run) -> None:
    assert _clean(run, "retried")
    for r in run.history["retried"].renders:
        qa = r.qa
        assert qa is not None and qa.outcome == "retried" and qa.reason.startswith("frame 0001 (t=0.3333): tone ")
        first, retry = qa.tries
        assert (first.backend, first.seed, retry.backend) == ("simulated-gpu", 0, "simulated-gpu")
        assert first.flags and not retry.flags and first.severity > 1 >= retry.severity
        assert retry.seed == retry_seed(first.render_key, 1) == r.seed and retry.render_key == r.render_key
        assert r.status == "finished" and r.params["defect_seeds"] == [0]  # its own render, its own key
    sidecar = json.loads(Path(run.out["retried"].sidecar or "").read_text())
    pair = sidecar["pairs"][0]
    assert pair["qa"]["outcome"] == "retried" and pair["qa"]["policy"]["on_fail"] == "retry"
    assert pair["seed"] == pair["qa"]["tries"][1]["seed"] and pair["render_key"] == pair["qa"]["tries"][1]["render_key"]
    assert sidecar["render"]["seed"] == 0  # the shot's own seed stays the shot's
    shown = _lineage(run, "retried", 1)
    assert "  qa         retried (on_fail: retry): flagged frame 0001 (t=0.3333): tone " in shown
    assert "    try 1    simulated-gpu  seed 0  render " in shown and "  <- used" in shown


def test_a_fallback_to_another_backend_replaces_a_flagged_pair(run: Run) -> None:
    assert _clean(run, "fellback")
    renders = run.history["fellback"].renders
    assert [(r.backend, r.qa.outcome if r.qa else None) for r in renders] == [("crossfade", "fell-back")] * 2
    assert [len(r.qa.tries) for r in renders if r.qa] == [2, 2] and renders[0].params == {"prompt": ""}
    pair = json.loads(Path(run.out["fellback"].sidecar or "").read_text())["pairs"][1]
    assert pair["backend"]["name"] == "crossfade" and pair["qa"]["outcome"] == "fell-back"
    shown = _lineage(run, "fellback", 4)
    assert "  qa         fell-back (on_fail: fallback)" in shown and "    try 2    crossfade  seed 0" in shown


def test_flag_keeps_a_flagged_pair_and_the_dashboard_shows_it(run: Run) -> None:
    for code in ("flagged", "hopeless"):  # the spoilt frames: a colour drift of 8 ΔE moves every pixel
        pairs = zip(_inbetweens(run.out[code]), _fades(run.shotlist, code), strict=True)
        assert all(np.abs(a.astype(int) - b).mean() > 2 for a, b in pairs), code
    flagged = run.history["flagged"].renders
    assert [(r.backend, r.seed, r.qa.outcome if r.qa else None) for r in flagged] == [
        ("simulated-gpu", 0, "flagged")
    ] * 2
    hopeless = [r.qa for r in run.history["hopeless"].renders]  # every try flagged: the least flagged kept
    assert all(q is not None and q.outcome == "flagged" and len(q.tries) == 2 for q in hopeless)

    kept = run.out["flagged"].qa
    assert [(q.a, q.b, q.outcome) for q in kept] == [(0, 3, "flagged"), (3, 6, "flagged")]
    strip = read_frame(kept[0].strip)  # keyframes and in-betweens, titled with what was flagged
    assert strip.shape[1] == 960 and kept[0].strip_url and kept[0].strip_url.endswith(".0.jpg")
    markdown = report_markdown(run.batch)
    assert "### Quality: flagged pairs" in markdown and "#### qa/sq010/flagged: 2 kept flagged, 0 replaced" in markdown
    assert f"![pair 0 -> 3]({kept[0].strip_url})" in markdown and kept[0].frames[0] in markdown
    assert "#### qa/sq010/retried: 0 kept flagged, 2 replaced" in markdown and "qa/sq010/clean" not in markdown


def test_a_rerun_renders_nothing_and_another_policy_decides_again(run: Run) -> None:
    from flows.render_batch import render_batch

    again = render_batch(str(run.shotlist), run.settings)
    assert again.ok and again.summary == "rendered 0 pairs, reused 10, failed 0"
    assert {o.status for o in again.outcomes} == {"unchanged"}
    assert (run.count(QADecision), run.count(Render)) == (8, 16)  # nothing decided or rendered again
    assert [q.outcome for q in next(o for o in again.outcomes if o.shot_id.endswith("/retried")).qa] == ["retried"] * 2

    # another policy: the finished tries are judged again from their recorded scores, only new tries render
    doc = yaml.safe_load(run.shotlist.read_text())
    doc["shots"][2]["qa"] = {"on_fail": "fallback", "fallback": "crossfade"}  # flagged: now falls back
    doc["shots"][4]["qa"] = {"thresholds": {"tone": 50, "vanish": 0.9}}  # clean: still clean
    run.shotlist.write_text(yaml.safe_dump(doc))
    changed = render_batch(str(run.shotlist), run.settings)
    assert changed.summary == "rendered 2 pairs, reused 8, failed 0"  # the flagged shot's two fallbacks
    status = {o.shot_id.split("/")[-1]: o.status for o in changed.outcomes}
    assert status == {"retried": "unchanged", "fellback": "unchanged", "flagged": "new-version",
                      "hopeless": "unchanged", "clean": "unchanged"}  # fmt: skip
    now = next(o for o in changed.outcomes if o.shot_id.endswith("/flagged"))
    assert all(np.array_equal(a, b) for a, b in zip(_inbetweens(now), _fades(run.shotlist, "flagged"), strict=True))
    assert run.count(QADecision) == 10  # the flagged pairs under the new policy


def test_the_progress_counts_every_try_the_policy_adds(run: Run) -> None:
    """Retries and fallbacks join the queue while the batch runs: the progress waits for them too."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        (progress,) = [a for a in client.read_artifacts() if a.key == "progress-qa-sq010" and
                       str(a.flow_run_id) == run.batch.flow_run_id]  # fmt: skip
    tries = run.batch.rendered  # the first batch's renders: every try of every pair
    assert tries > 10  # ten pairs planned, and the policy added tries to them
    assert (progress.data, progress.description) == (100, f"{tries} of {tries} pairs rendered")
