"""The producer's view, in a real browser: a markdown artifact of a flow run with a shot's thumbnail (inline),
its contact sheet and its video (both from `toonfarm server`'s preview server), opened the way a producer
opens them in the Prefect UI, and checked from the page itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from uuid import UUID

import pytest
from playwright.sync_api import Page

from tasks.assemble import assemble_shot
from tasks.contact import SHEET_WIDTH, THUMB_WIDTH, SheetFrame, write_previews
from tasks.deliver import video_of
from tasks.previews import preview_url
from tasks.synthetic import animate, make_character
from tooncrafter_model.frames import write_frame

if TYPE_CHECKING:
    from tests.conftest import FarmServer

pytestmark = pytest.mark.usefixtures("prefect_server")

# Every <img> of the page: where it comes from, and whether the browser decoded it.
IMAGES = """() => [...document.images].map(i => ({src: i.currentSrc || i.src, complete: i.complete,
    width: i.naturalWidth, shown: Math.round(i.getBoundingClientRect().width)}))"""
# Plays the opened video's metadata, then seeks to its middle: a seek past what was fetched needs ranges.
SEEK = """() => new Promise((resolve) => {
    const v = document.querySelector('video');
    if (!v) return resolve({error: 'no video element'});
    const seek = () => {
        v.addEventListener('seeked', () => resolve({width: v.videoWidth, duration: v.duration, at: v.currentTime}), {once: true});
        v.currentTime = v.duration / 2;
    };
    v.addEventListener('error', () => resolve({error: v.error ? v.error.message || String(v.error.code) : 'error'}));
    if (v.readyState >= 1) seek(); else v.addEventListener('loadedmetadata', seek, {once: true});
    setTimeout(() => resolve({error: 'timed out', readyState: v.readyState}), 15000);
})"""


def _publish_like_a_version(root: Path, tmp_path: Path) -> tuple[Path, Path, str]:
    """A version folder as publish writes it (PNG sequence, H.264 MP4 by ffmpeg) plus its previews; returns
    the contact sheet, the video and the thumbnail's data URI."""
    anim = animate([2] * 12, width=256, height=160, character=make_character(4))
    sources = [
        write_frame(tmp_path / "frames" / f"{f:04d}.png", anim.frames[f] if f in anim.keyframes else anim.truth(f))
        for f in range(len(anim.frames))
    ]
    version = root / "dashboard" / "sq010" / "sh0010" / "v001"
    out = assemble_shot(sources, 24, version, "sh0010")
    video = Path(str(video_of(out.outputs))).rename(version / "sh0010_v001.mp4")  # named by its number, as published
    frames = [SheetFrame(p, i, i - 1 not in anim.keyframes) for i, p in enumerate(out.frame_files or (), start=1)]
    previews = write_previews(frames, version / "preview", title="sq010_sh0010 v001")
    return previews.sheet, video, previews.thumbnail_uri


def _artifact_in_a_flow_run(markdown: str) -> tuple[str, str]:
    from prefect import flow
    from prefect.artifacts import create_markdown_artifact
    from prefect.runtime import flow_run

    @flow(name="dashboard-pictures")
    def report() -> tuple[str, str]:
        artifact = create_markdown_artifact(markdown, key="dashboard-pictures", description="a published shot")
        return str(flow_run.id), str(artifact)

    run_id, artifact_id = report()
    UUID(artifact_id)
    return run_id, artifact_id


def _loaded_images(page: Page) -> list[dict[str, object]]:
    page.wait_for_function("() => document.images.length >= 2 && [...document.images].every(i => i.complete)")
    images: list[dict[str, object]] = page.evaluate(IMAGES)
    return images


def test_pictures_and_video_of_a_shot_open_from_the_prefect_ui(
    farm_server: FarmServer, page: Page, offsite: list[str], tmp_path: Path, screenshot: Callable[[Page, str], Path]
) -> None:
    root, base, ui = farm_server.output_root, farm_server.preview_url, farm_server.ui_url
    sheet, video, thumbnail_uri = _publish_like_a_version(root, tmp_path)
    sheet_url, video_url = preview_url(base, root, sheet), preview_url(base, root, video)
    assert sheet_url and video_url
    markdown = (
        "## Batch: 1 shot new\n\n| shot | picture | version | video |\n|---|---|---|---|\n"
        f"| sq010_sh0010 | ![sq010_sh0010 v001]({thumbnail_uri}) | v001 | [sh0010_v001.mp4]({video_url}) |\n\n"
        f"### sq010_sh0010 v001\n\n![contact sheet of sq010_sh0010 v001]({sheet_url})\n"
    )
    run_id, artifact_id = _artifact_in_a_flow_run(markdown)

    # The run's page: its Artifacts tab lists the artifact; its card opens the artifact's page.
    page.goto(f"{ui}/runs/flow-run/{run_id}", wait_until="networkidle")
    page.get_by_text("Artifacts", exact=True).click()
    card = page.locator(f"a[href$='/artifacts/artifact/{artifact_id}']")
    card.wait_for()
    assert "dashboard-pictures" in card.inner_text()
    screenshot(page, "run-artifacts")
    card.click()
    page.wait_for_url(f"**/artifacts/artifact/{artifact_id}")

    images = _loaded_images(page)
    by_src = {str(i["src"])[:40]: i for i in images}
    served = [i for i in images if i["src"] == sheet_url]
    inline = [i for i in images if str(i["src"]).startswith("data:image/jpeg;base64,")]
    assert len(served) == 1 and len(inline) == 1, by_src
    assert served[0]["width"] == SHEET_WIDTH and inline[0]["width"] == THUMB_WIDTH  # decoded, not broken icons
    assert 0 < int(str(served[0]["shown"])) <= SHEET_WIDTH  # fits the artifact's column
    screenshot(page, "artifact")

    # The video link opens in a new tab, plays and seeks.
    link = page.locator(f"a[href='{video_url}']")
    assert link.get_attribute("target") == "_blank"
    statuses: list[tuple[str | None, int]] = []
    with page.context.expect_page() as opened:
        link.click()
    player = opened.value
    player.on("response", lambda r: statuses.append((r.request.headers.get("range"), r.status)) if r.url == video_url else None)
    player.wait_for_load_state()
    played = player.evaluate(SEEK)
    assert "error" not in played, played
    assert played["width"] == 256 and played["duration"] == pytest.approx(1.0, abs=0.05)
    assert played["at"] == pytest.approx(played["duration"] / 2, abs=0.05)
    assert any(status == 206 for _, status in statuses) or player.evaluate("() => document.querySelector('video').seekable.length") > 0
    screenshot(player, "video")
    player.close()

    assert offsite == []

    # The same artifact in Prefect's V2 UI (a click away from the V1 UI that `toonfarm server` opens). It
    # asks Amplitude for its config whatever the analytics setting: aborted, and the only request allowed off.
    page.goto(f"{ui}/v2/artifacts/artifact/{artifact_id}", wait_until="networkidle")
    images = _loaded_images(page)
    assert {i["width"] for i in images if i["src"] == sheet_url or str(i["src"]).startswith("data:")} == {SHEET_WIDTH, THUMB_WIDTH}
    screenshot(page, "artifact-v2")
    offsite[:] = [url for url in offsite if urlsplit(url).hostname != "sr-client-cfg.amplitude.com"]
