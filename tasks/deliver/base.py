"""What every deliverable is: the interface the assembly writes through, and the records it passes on.

A deliverable turns a shot's stylized frames into one output of a version: an image sequence, a movie
file. The assembly decodes and stylizes each distinct drawing once (`Picture`), hands every output frame
to every deliverable of the shot in order, and collects what each wrote (`Delivered`). A deliverable
reads its output back before it reports it: what it wrote is what it claims, or the shot fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from shot_db.records import OutputFile
from tooncrafter_model.errors import UserError
from tooncrafter_model.frames import Frame, pixel_hash


class DeliveryError(UserError):
    """A deliverable that cannot be made as asked, or whose file read back wrong; one line naming the file."""


class DeliverSettings(BaseModel):
    """A deliverable's own settings, as a shot list gives them (`deliver: [{png: {first_frame: 1001}}]`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class DeliverSpec(BaseModel):
    """One entry of a shot's `deliver` list: the format's registry name and its settings, checked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    settings: dict[str, Any] = {}


@dataclass(frozen=True)
class Take:
    """What all of a version's deliverables share: the shot's file stem, its frames' size, count and rate,
    and where it starts on the timecode of the edit it came from (None: not from an edit)."""

    stem: str
    width: int
    height: int
    frame_count: int
    fps: Fraction
    timecode: str | None = None


class Picture:
    """One stylized output picture, shared by every frame that shows the same drawing: each encoding of it
    (PNG bytes, padded raw RGB...) is made once, however many frames and deliverables use it."""

    def __init__(self, pixels: Frame) -> None:
        self.pixels = pixels
        self.hash = pixel_hash(pixels)
        self._encoded: dict[object, bytes] = {}

    def encoded(self, how: object, make: Callable[[Frame], bytes]) -> bytes:
        """The picture encoded by `make`, remembered under `how` (a key naming the encoding and its settings)."""
        if how not in self._encoded:
            self._encoded[how] = make(self.pixels)
        return self._encoded[how]


@dataclass(frozen=True)
class Delivered:
    """What a deliverable wrote: its output row, and for an image sequence each output frame's file."""

    output: OutputFile
    frame_files: tuple[Path, ...] = ()


class Deliverable:
    """One output format. Subclasses declare their `kind` (the registry name), their `Settings`, and what
    they are good for, and implement `start`, `add` and `finish`; one instance writes one take.

    `version` is part of the assembly key: bump it when the same settings would write different files.
    `browser`: the file plays in a web browser (the dashboard links it). `editorial`: how much an editor's
    timeline prefers it as the shot's media (`toonfarm export` takes the highest; 0 never).
    `timecode`: it writes the take's start timecode into its file (so the timecode is in the key too).
    `versioned_name`: the output's file is renamed `<stem>_v003.<ext>` when the version gets its number.
    """

    kind: ClassVar[str]
    Settings: ClassVar[type[DeliverSettings]] = DeliverSettings
    version: ClassVar[int] = 1
    browser: ClassVar[bool] = False
    editorial: ClassVar[int] = 0
    timecode: ClassVar[bool] = False
    versioned_name: ClassVar[bool] = True

    def __init__(self, settings: DeliverSettings | None = None) -> None:
        self.settings = settings if settings is not None else self.Settings()

    def identity(self) -> dict[str, Any]:
        """What decides this deliverable's files, for the assembly key: format, its code's version, settings."""
        return {"kind": self.kind, "version": self.version, **self.settings.model_dump(mode="json")}

    def start(self, folder: Path, take: Take) -> None:
        """Begin writing into `folder` (the version's staging folder)."""
        raise NotImplementedError

    def add(self, picture: Picture) -> None:
        """The next output frame."""
        raise NotImplementedError

    def finish(self) -> Delivered:
        """Close the output, read it back and check it; DeliveryError (one line) when it is not as asked."""
        raise NotImplementedError

    def abort(self) -> None:
        """Stop writing after a failure elsewhere (the staging folder is removed by the caller)."""
