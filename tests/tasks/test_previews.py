"""The preview server, over real HTTP on loopback: what it serves, byte ranges, and every way out of the
output root it must refuse."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.previews import PreviewServer, RangeNotSatisfiable, byte_range, preview_url, serving

VIDEO = bytes(range(256)) * 40  # 10240 bytes, every offset recognisable
SECRET = b"the shot DB password"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An output root with a version's previews and video, and things that must never be served."""
    tmp_path = tmp_path_factory.mktemp("previews")
    root = tmp_path / "out"
    version = root / "show" / "sq010" / "sh0010" / "v001"
    (version / "preview").mkdir(parents=True)
    (version / "preview" / "contact.jpg").write_bytes(b"\xff\xd8\xffsheet")
    (version / "sh0010_v001.mp4").write_bytes(VIDEO)
    (version / "provenance.json").write_bytes(SECRET)
    (root / "toonfarm.sqlite").write_bytes(SECRET)
    (root / "show" / ".staging-abc").mkdir()
    (root / "show" / ".staging-abc" / "frame.png").write_bytes(SECRET)
    (root / "shot with spaces ü.png").write_bytes(b"\x89PNGspaces")
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "secret.jpg").write_bytes(SECRET)
    (outside / "secret.jpg").write_bytes(SECRET)
    (root / "link.jpg").symlink_to(tmp_path / "secret.jpg")
    (root / "linked_dir").symlink_to(outside)
    (root / "inside_link.jpg").symlink_to(version / "preview" / "contact.jpg")
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[PreviewServer]:
    with serving(PreviewServer(root, "127.0.0.1", 0)) as server:
        yield server


def _get(server: PreviewServer, target: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    """One raw request (the target is sent exactly as given, not normalised by a client library)."""
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(str(host), port, timeout=10)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_serves_a_preview_with_its_type_on_loopback(server: PreviewServer) -> None:
    assert server.server_address[0] == "127.0.0.1"
    status, headers, body = _get(server, "/show/sq010/sh0010/v001/preview/contact.jpg?cache=1")
    assert (status, body) == (200, b"\xff\xd8\xffsheet")
    assert headers["content-type"] == "image/jpeg" and headers["accept-ranges"] == "bytes"
    status, headers, body = _get(server, "/show/sq010/sh0010/v001/sh0010_v001.mp4", method="HEAD")
    assert (status, body, headers["content-length"], headers["content-type"]) == (200, b"", str(len(VIDEO)), "video/mp4")
    assert _get(server, "/inside_link.jpg")[0] == 200  # a link that stays inside the root is fine


@pytest.mark.parametrize(
    "value, status, expected",
    [
        ("bytes=10-19", 206, (10, 19)),
        ("bytes=10240-", 416, None),
        ("bytes=-5", 206, (10235, 10239)),
        ("bytes=10000-", 206, (10000, 10239)),
        ("bytes=0-99999", 206, (0, 10239)),
        ("bytes=0-1,5-6", 200, None),  # several ranges: the whole file
        ("bytes=x-y", 200, None),
        ("items=0-5", 200, None),
    ],
)
def test_byte_ranges_let_a_browser_seek_in_the_video(
    server: PreviewServer, value: str, status: int, expected: tuple[int, int] | None
) -> None:
    got, headers, body = _get(server, "/show/sq010/sh0010/v001/sh0010_v001.mp4", Range=value)
    assert got == status
    if status == 206:
        assert expected is not None
        first, last = expected
        assert body == VIDEO[first : last + 1]
        assert headers["content-range"] == f"bytes {first}-{last}/{len(VIDEO)}"
    elif status == 416:
        assert headers["content-range"] == f"bytes */{len(VIDEO)}" and body == b""
    else:
        assert body == VIDEO


@pytest.mark.parametrize(
    "target",
    [
        "/../secret.jpg",
        "/%2e%2e/secret.jpg",
        "/show/%2E%2E/%2E%2E/secret.jpg",
        "/..%2fsecret.jpg",
        "/%2f..%2f..%2fsecret.jpg",
        "//../secret.jpg",
        "/show/sq010/../../../secret.jpg",
        "/link.jpg",  # a symlink inside the root that leads out
        "/linked_dir/secret.jpg",
        "/toonfarm.sqlite",
        "/show/sq010/sh0010/v001/provenance.json",
        "/show/.staging-abc/frame.png",
        "/show/%2estaging-abc/frame.png",
        "/show/sq010/sh0010/v001/",
        "/",
        "/show/sq010/sh0010/v001/preview/contact.jpg%00.png",
        "/%ff.jpg",
        "/missing.jpg",
    ],
)
def test_nothing_outside_the_previews_is_served(server: PreviewServer, target: str) -> None:
    status, _, body = _get(server, target)
    assert status == 404 and SECRET not in body


def test_only_get_and_head(server: PreviewServer) -> None:
    assert _get(server, "/show/sq010/sh0010/v001/preview/contact.jpg", method="POST")[0] == 501
    assert _get(server, "/show/sq010/sh0010/v001/preview/contact.jpg", method="PUT")[0] == 501


def test_preview_urls_open_what_they_name_and_none_for_what_is_not_served(server: PreviewServer, root: Path) -> None:
    name = root / "shot with spaces ü.png"
    url = preview_url(server.url + "/", root, name)
    assert url == f"{server.url}/shot%20with%20spaces%20%C3%BC.png"
    assert _get(server, url.removeprefix(server.url))[2] == b"\x89PNGspaces"
    contact = root / "show" / "sq010" / "sh0010" / "v001" / "preview" / "contact.jpg"
    assert preview_url("http://farmhead:4201", root, contact) == "http://farmhead:4201/show/sq010/sh0010/v001/preview/contact.jpg"
    for refused in (root.parent / "secret.jpg", root / "toonfarm.sqlite", root / "show" / ".staging-abc" / "frame.png"):
        assert preview_url(server.url, root, refused) is None


def test_byte_range_rules() -> None:
    assert byte_range(None, 100) is None
    assert byte_range("bytes=0-0", 100) == (0, 0)
    assert byte_range("bytes=-200", 100) == (0, 99)
    assert byte_range("bytes=5-3", 100) is None
    for unsatisfiable, size in (("bytes=100-", 100), ("bytes=-0", 100), ("bytes=0-", 0)):
        with pytest.raises(RangeNotSatisfiable):
            byte_range(unsatisfiable, size)
