"""The preview server: the output root's pictures and videos over HTTP, for the producer dashboard.

The Prefect UI shows a markdown artifact's image only when the browser can fetch it, and a link to a
version's video only opens when the browser can reach the file. `toonfarm server` runs this server
beside the Prefect server. It answers GET and HEAD for image and video files under the output root,
with single byte ranges (a browser seeks in a video with them), and nothing else: no listing, no shot
DB, no sidecars, no hidden or staging folders, and nothing outside the root, whatever the path says
(`..`, encoded slashes, symlinks that lead out). Why a server and not only inline pictures: ARCHITECTURE.md,
"Pictures on the dashboard".
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate
from http import HTTPStatus
from io import BufferedIOBase
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote, urlsplit

SERVED = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp", ".mp4": "video/mp4"}
_CHUNK = 256 * 1024


class NotServed(Exception):
    """The request names no file the preview server serves (answered 404, whatever the reason)."""


class RangeNotSatisfiable(Exception):
    """A byte range that starts past the end of the file (answered 416)."""


def resolve(root: Path, target: str) -> Path:
    """The file under `root` that a request target (`/show/sq/sh/v001/preview/contact.jpg?x`) names.

    Raises NotServed for anything else: a hidden or `..` component, a NUL, a file that is not an image
    or an MP4, a folder, a missing file, or a path (or symlink) that resolves outside the root.
    """
    text = unquote(urlsplit(target).path, errors="strict")
    parts = [p for p in text.split("/") if p]
    if not parts or "\x00" in text or any(p.startswith(".") for p in parts):
        raise NotServed(target)
    base = root.resolve()
    path = base.joinpath(*parts).resolve()
    if not path.is_relative_to(base) or path.suffix.lower() not in SERVED or not path.is_file():
        raise NotServed(target)
    return path


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte, inclusive, of a single `Range: bytes=...` request on a file of `size` bytes.

    None means the whole file: no header, another unit, several ranges or a malformed one (RFC 9110
    section 14.2 lets a server ignore those). Raises RangeNotSatisfiable when the range starts at or
    past the end, or asks for the last 0 bytes.
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first_text, sep, last_text = header[len("bytes="):].strip().partition("-")
    if not sep or not (first_text + last_text).isdigit():
        return None
    if not first_text:  # suffix: the last N bytes
        count = int(last_text)
        if count == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return max(0, size - count), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None
    if first >= size:
        raise RangeNotSatisfiable(header)
    return first, min(last, size - 1)


def preview_url(base_url: str, root: Path, path: Path) -> str | None:
    """The URL a browser opens for `path` through the preview server at `base_url`, or None when the
    server would not serve it (outside the root, hidden, not an image or an MP4)."""
    base = root.resolve()
    real = path.resolve()
    if not real.is_relative_to(base) or real.suffix.lower() not in SERVED:
        return None
    parts = real.relative_to(base).parts
    if any(p.startswith(".") for p in parts):
        return None
    return base_url.rstrip("/") + "/" + "/".join(quote(p) for p in parts)


class PreviewServer(ThreadingHTTPServer):
    """A threaded HTTP server of one output root's previews, bound on creation (port 0: a free one)."""

    daemon_threads = True

    def __init__(self, root: Path, host: str, port: int) -> None:
        self.root = root
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: PreviewServer
    server_version = "toonfarm-previews"
    protocol_version = "HTTP/1.1"  # keep-alive: a video's range requests reuse one connection

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, *, body: bool) -> None:
        try:
            path = resolve(self.server.root, self.path)
        except (NotServed, UnicodeDecodeError):
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        stat = path.stat()
        try:
            wanted = byte_range(self.headers.get("Range"), stat.st_size)
        except RangeNotSatisfiable:
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{stat.st_size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        first, last = wanted if wanted is not None else (0, stat.st_size - 1)
        self.send_response(HTTPStatus.PARTIAL_CONTENT if wanted is not None else HTTPStatus.OK)
        if wanted is not None:
            self.send_header("Content-Range", f"bytes {first}-{last}/{stat.st_size}")
        self.send_header("Content-Type", SERVED[path.suffix.lower()])
        self.send_header("Content-Length", str(last - first + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Last-Modified", formatdate(stat.st_mtime, usegmt=True))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if not body:
            return
        with path.open("rb") as f:
            f.seek(first)
            try:
                _copy(f, self.wfile, last - first + 1)
            except (BrokenPipeError, ConnectionResetError):  # a browser drops a video request when it seeks
                self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a dashboard page makes dozens of requests; errors show in the browser."""


def _copy(source: BinaryIO, sink: BufferedIOBase, count: int) -> None:
    while count > 0:
        chunk = source.read(min(_CHUNK, count))
        if not chunk:  # the file shrank after its size was sent: the client sees a short body
            return
        sink.write(chunk)
        count -= len(chunk)


@contextmanager
def serving(server: PreviewServer) -> Iterator[PreviewServer]:
    """Run a bound preview server from a background thread until the block ends, then close it."""
    thread = threading.Thread(target=server.serve_forever, name="toonfarm-previews", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
