"""A toy format, to show that adding one is a module plus a registry entry: a JPEG sequence for web review
(`jpeg/<shot>.0001.jpg ...`) at a settable quality, read back with OpenCV."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
from pydantic import Field

from shot_db.records import OutputFile
from tasks.deliver.base import DeliverSettings, Deliverable, Delivered, DeliveryError, Picture, Take
from tooncrafter_model.frames import Frame


class JpegSettings(DeliverSettings):
    quality: int = Field(90, ge=1, le=100, strict=True)


class JpegSequence(Deliverable):
    kind = "jpeg"
    Settings = JpegSettings
    versioned_name = False

    def start(self, folder: Path, take: Take) -> None:
        self.take, self.folder = take, folder / "jpeg"
        self.files: list[Path] = []
        self.folder.mkdir()

    def add(self, picture: Picture) -> None:
        quality = self._quality()
        path = self.folder / f"{self.take.stem}.{len(self.files) + 1:04d}.jpg"
        path.write_bytes(picture.encoded(("jpeg", quality), self._encode))
        self.files.append(path)

    def _quality(self) -> int:
        assert isinstance(self.settings, JpegSettings)
        return self.settings.quality

    def _encode(self, frame: Frame) -> bytes:
        ok, data = cv2.imencode(".jpg", np.ascontiguousarray(frame[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, self._quality()])
        assert ok
        return bytes(data.tobytes())

    def finish(self) -> Delivered:
        listing = hashlib.sha256()
        for path in self.files:
            image = cv2.imread(str(path))
            if image is None or image.shape[:2] != (self.take.height, self.take.width):
                raise DeliveryError(f"{path}: read back: not a {self.take.width}x{self.take.height} JPEG")
            listing.update(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n".encode())
        details = {"quality": self._quality(), "bytes": sum(p.stat().st_size for p in self.files)}
        return Delivered(OutputFile(self.kind, str(self.folder), listing.hexdigest(), len(self.files), details),
                         tuple(self.files))
