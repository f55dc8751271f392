"""Headless Chromium (Debian's, driven by Playwright) against the session's `toonfarm server`."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# Off the network: only loopback is ever asked for (ENV.md). Playwright adds --headless and a temporary
# profile (--user-data-dir) itself.
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def offsite() -> list[str]:
    """Requests the page made to addresses off this machine (each was aborted); the test fails unless it
    is empty when the page closes."""
    return []


@pytest.fixture
def page(browser: Browser, offsite: list[str]) -> Iterator[Page]:
    """A laptop-sized page whose requests may only go to loopback: any other is aborted and recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def refuse(route: Route) -> None:
        offsite.append(route.request.url)
        route.abort()

    def off_machine(url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in LOOPBACK

    context.route(off_machine, refuse)
    try:
        yield context.new_page()
    finally:
        context.close()
    assert not offsite, f"the browser asked for addresses off this machine: {offsite}"


@pytest.fixture
def screenshot(tmp_path: Path, request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """Save a full-page screenshot as a test output: under the test's tmp dir, and in $TOONFARM_SCREENSHOTS
    (a folder per test) when that is set."""
    extra = os.environ.get("TOONFARM_SCREENSHOTS")

    def shoot(page: Page, name: str) -> Path:
        path = tmp_path / "screenshots" / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if extra:
            folder = Path(extra) / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / path.name).write_bytes(path.read_bytes())
        return path

    return shoot
