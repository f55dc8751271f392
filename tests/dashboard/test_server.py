"""`toonfarm server` owns what it starts: stopped with SIGTERM, it stops its Prefect server and the
preview server, and leaves no process behind."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tasks.settings import Settings

if TYPE_CHECKING:
    from tests.conftest import FarmServer, StoppedServer


def _listening(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((parts.hostname or "", parts.port or 80)) == 0


def test_sigterm_stops_the_server_and_every_child(farm_server: FarmServer, stopped_farm_server: StoppedServer) -> None:
    assert stopped_farm_server.children, "toonfarm server should have started the Prefect server"
    assert stopped_farm_server.survivors == []
    assert stopped_farm_server.exit_code == 0
    assert not _listening(farm_server.ui_url) and not _listening(farm_server.preview_url)


def test_a_busy_preview_port_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["server", "--port", "1", "--preview-port", str(port), "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"toonfarm: preview server on 127.0.0.1:{port}: Address already in use"]


def test_the_links_base_url_is_a_setting_checked_on_load(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().preview_base_url == "http://127.0.0.1:4201"
    assert Settings(preview_port=5000).preview_base_url == "http://127.0.0.1:5000"
    monkeypatch.setenv("TOONFARM_PREVIEW_URL", "http://farmhead:4201/")
    assert Settings().preview_base_url == "http://farmhead:4201"
    monkeypatch.setenv("TOONFARM_PREVIEW_URL", "farmhead:4201")
    with pytest.raises(ValueError, match="not an http"):
        Settings()
