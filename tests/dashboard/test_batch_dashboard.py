"""A producer's morning, in a real browser: `toonfarm render` of a small batch with one failing shot against
the session's `toonfarm server`, then the run page and its artifacts opened in headless Chromium and checked
from the page itself: the run is Failed naming the shot, the shot table and the progress are there, every
picture has loaded, and the Logs tab tells the story."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page

from tests.flows.conftest import make_shots

if TYPE_CHECKING:
    from tests.conftest import FarmServer

pytestmark = pytest.mark.usefixtures("prefect_server")

IMAGES = """() => [...document.images].map(i => ({src: i.currentSrc || i.src, complete: i.complete,
    width: i.naturalWidth, alt: i.alt}))"""


def _render(server: FarmServer, shotlist: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_API_URL": server.api_url, "TOONFARM_PREVIEW_URL": server.preview_url}
    env.pop("PREFECT_LOGGING_LEVEL", None)  # as a wrangler's shell has it: the CLI chooses its own
    toonfarm = str(Path(sys.executable).with_name("toonfarm"))
    return subprocess.run([toonfarm, "render", str(shotlist), "-o", str(server.output_root), "--actors", "1"],
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip


def _wait_images(page: Page, count: int) -> list[dict[str, object]]:
    page.wait_for_function(f"() => document.images.length >= {count} && [...document.images].every(i => i.complete)")
    images: list[dict[str, object]] = page.evaluate(IMAGES)
    return images


def test_a_batch_with_a_failed_shot_as_the_producer_sees_it(
    farm_server: FarmServer, page: Page, tmp_path: Path, screenshot: Callable[[Page, str], Path]
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    shots = make_shots(tmp_path / "in", {"sh0010": {"timing": [2] * 4}, "sh0020": {"timing": [3] * 3}},
                       show="dash", sequence="sq020")  # fmt: skip
    shots.doc["shots"].append({"code": "sh0030", "source": "rough/sh0030.mkv"})  # never delivered
    shots.write()
    run = _render(farm_server, shots.path)

    # The terminal: exit 1, one line for the failed shot, no traceback, the summary counting shots.
    assert run.returncode == 1, run.stderr[-3000:]
    assert [line for line in run.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {shots.path}: shots[2].source: rough/sh0030.mkv: video file not found"]
    assert "Traceback" not in run.stderr
    assert re.fullmatch(r"2 shots new, 0 unchanged, 1 failed; rendered 5 pairs, reused 0, failed 0; [0-9.]+ worker-s",
                        run.stdout.strip().splitlines()[-1]), run.stdout  # fmt: skip

    # The API: named after the batch and its date, tagged by show, sequence and trigger, Failed naming the shot.
    with get_client(sync_client=True) as client:
        # both tags: other tests of the session render other shows' sq020
        tagged = FlowRunFilter(tags=FlowRunFilterTags(all_=["show:dash", "sequence:sq020"]))
        (flow_run,) = client.read_flow_runs(flow_run_filter=tagged)
        artifacts = client.read_artifacts()
    assert re.fullmatch(r"shots\.yaml \d{4}-\d\d-\d\d \d\d:\d\d", flow_run.name), flow_run.name
    assert {"show:dash", "sequence:sq020", "trigger:cli"} <= set(flow_run.tags)
    assert flow_run.state is not None and flow_run.state.is_failed()
    message = (flow_run.state.message or "").splitlines()
    assert message[0].startswith("2 shots new, 0 unchanged, 1 failed;")
    assert message[1:] == [f"- dash/sq020/sh0030: {shots.path}: shots[2].source: rough/sh0030.mkv: video file not found"]
    mine = {a.key: a for a in artifacts if a.flow_run_id == flow_run.id}
    assert {"shots-dash-sq020", "progress-dash-sq020", "summary-dash-sq020"} <= set(mine)
    assert (mine["progress-dash-sq020"].data, mine["progress-dash-sq020"].description) == (100, "5 of 5 pairs rendered")

    # The run page: Failed, with the state message naming the shot.
    ui = farm_server.ui_url
    page.goto(f"{ui}/runs/flow-run/{flow_run.id}", wait_until="networkidle")
    page.get_by_text(flow_run.name).first.wait_for()
    page.get_by_text("Failed").first.wait_for()
    screenshot(page, "run")
    page.get_by_text("Details", exact=True).first.click()  # the state message, as the UI shows it
    page.get_by_text("State Message").first.wait_for()
    page.get_by_text("See More").first.click()  # the UI folds a long message
    details = page.inner_text("body")
    assert "2 shots new, 0 unchanged, 1 failed;" in details
    assert "dash/sq020/sh0030: " in details and "rough/sh0030.mkv: video file not found" in details
    page.get_by_text("State Message").first.scroll_into_view_if_needed()
    screenshot(page, "run-details")

    # Its Logs tab tells the story at INFO.
    page.get_by_text("Logs", exact=True).first.click()
    for line in ("planned 2 shots: 5 pairs to render", "dash/sq020/sh0010 published v001", "dash/sq020/sh0030 failed"):
        page.get_by_text(line, exact=False).first.wait_for()
    page.get_by_text("dash/sq020/sh0030 failed", exact=False).first.scroll_into_view_if_needed()
    screenshot(page, "run-logs")

    # Its Artifacts tab lists the shot table and the progress (the summary is its report task's).
    page.get_by_text("Artifacts", exact=True).first.click()
    page.wait_for_load_state("networkidle")
    page.get_by_text("shots-dash-sq020").first.wait_for()  # the run's own, then its report task's
    page.get_by_text("progress-dash-sq020").first.wait_for()
    page.get_by_text("5 of 5 pairs rendered").first.wait_for()
    screenshot(page, "run-artifacts")

    # The shot table: a row per shot (the failed one with its reason), each published shot's thumbnail and
    # contact sheet, decoded by the browser, and links to the new versions' videos.
    page.goto(f"{ui}/artifacts/artifact/{mine['shots-dash-sq020'].id}", wait_until="networkidle")
    images = _wait_images(page, 4)
    sheets = [i for i in images if str(i["alt"]).startswith("contact sheet of")]
    thumbs = [i for i in images if str(i["alt"]).startswith("dash/sq020/")]
    assert sorted(str(i["alt"]) for i in sheets) == ["contact sheet of sh0010 v001", "contact sheet of sh0020 v001"]
    assert len(thumbs) == 2 and all(int(str(i["width"])) > 0 for i in sheets + thumbs), images
    assert all(str(i["src"]).startswith(farm_server.preview_url) for i in sheets + thumbs)
    text = page.inner_text("body")
    assert "sh0030" in text and "video file not found" in text
    status = [page.get_by_role("cell", name=word, exact=True).count() for word in ("new-version", "failed")]
    assert status == [2, 1], status
    for code in ("sh0010", "sh0020"):
        link = page.locator(f"a[href^='{farm_server.preview_url}'][href$='{code}_v001.mp4']")
        assert link.count() == 1
    screenshot(page, "shot-table")

    page.goto(f"{ui}/artifacts/artifact/{mine['progress-dash-sq020'].id}", wait_until="networkidle")
    page.get_by_text("5 of 5 pairs rendered").first.wait_for()
    screenshot(page, "progress")

    # The Artifacts page lists the latest state of each key.
    page.goto(f"{ui}/artifacts", wait_until="networkidle")
    page.get_by_text("shots-dash-sq020").first.wait_for()
    screenshot(page, "artifacts")
