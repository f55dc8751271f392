"""The PNG sequence: the lossless master, `png/<shot>.0001.png ...` (or from any first frame, e.g. 1001).

Its sha256 is that of the sequence's `sha256sum` listing (one "<file sha256>  <name>" line per frame, in
frame order), so `(cd png && sha256sum *.png | sha256sum)` checks a whole version's frames in one line.
Read back: every file is read again from disk, hashed, and its PNG header checked (size, 8-bit RGB).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from pydantic import Field

from shot_db.records import OutputFile
from tasks.deliver.base import DeliverSettings, Deliverable, Delivered, DeliveryError, Picture, Take
from tooncrafter_model.frames import Frame
from tooncrafter_model.store import PNG_DIR, sequence_frame

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class PngSettings(DeliverSettings):
    """PNG level 1: as fast as any zlib level on these frames, and flat cartoons still compress well.
    `first_frame`: the number in the first file's name (1, or 1001 where a pipeline counts from there)."""

    compression: int = Field(1, ge=0, le=9, strict=True)
    first_frame: int = Field(1, ge=0, le=9_999_999, strict=True)


class PngSequence(Deliverable):
    """`png/<shot>.0001.png ...`: 8-bit RGB, one file per output frame (held drawings repeat theirs)."""

    kind = "png"
    Settings = PngSettings
    versioned_name = False

    def start(self, folder: Path, take: Take) -> None:
        self.take = take
        self.folder = folder / PNG_DIR
        self.folder.mkdir()
        self.files: list[Path] = []

    def add(self, picture: Picture) -> None:
        s = self.settings
        assert isinstance(s, PngSettings)
        path = self.folder / sequence_frame(self.take.stem, s.first_frame + len(self.files))
        path.write_bytes(picture.encoded(("png", s.compression), self._encode))
        self.files.append(path)

    def _encode(self, frame: Frame) -> bytes:
        import cv2

        s = self.settings
        assert isinstance(s, PngSettings)
        ok, png = cv2.imencode(".png", np.ascontiguousarray(frame[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, s.compression])
        if not ok:
            raise DeliveryError(f"{self.folder}: PNG encoding failed")
        return bytes(png.tobytes())

    def finish(self) -> Delivered:
        on_disk = sorted(p.name for p in self.folder.iterdir())
        if on_disk != sorted(p.name for p in self.files) or len(self.files) != self.take.frame_count:
            raise DeliveryError(f"{self.folder}: read back: {len(on_disk)} files, expected {self.take.frame_count} frames")
        listing = hashlib.sha256()
        for path in self.files:
            data = path.read_bytes()
            self._check_header(path, data)
            listing.update(f"{hashlib.sha256(data).hexdigest()}  {path.name}\n".encode())
        s = self.settings
        assert isinstance(s, PngSettings)
        details = {
            "first_frame": s.first_frame, "last_frame": s.first_frame + len(self.files) - 1,
            "width": self.take.width, "height": self.take.height, "pix_fmt": "rgb24",
            "bytes": sum(p.stat().st_size for p in self.files),
        }  # fmt: skip
        output = OutputFile(self.kind, str(self.folder), listing.hexdigest(), len(self.files), details)
        return Delivered(output, tuple(self.files))

    def _check_header(self, path: Path, data: bytes) -> None:
        # IHDR: the first chunk, right after the signature: width, height, bit depth, colour type (2 = RGB).
        if data[:8] != _SIGNATURE or data[12:16] != b"IHDR":
            raise DeliveryError(f"{path}: read back: not a PNG file")
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        depth, colour = data[24], data[25]
        if (width, height, depth, colour) != (self.take.width, self.take.height, 8, 2):
            raise DeliveryError(
                f"{path}: read back: {width}x{height}, {depth}-bit colour type {colour}, "
                f"expected {self.take.width}x{self.take.height}, 8-bit RGB (colour type 2)"
            )
