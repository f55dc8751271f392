"""Export: the newest version of every shot of a list, as an editor's timeline (`toonfarm export`).

Each clip points at the version's editorial file (the format an editor's timeline prefers: ProRes 4444
when it was delivered, else the H.264 MP4; tasks/deliver/), with its start timecode where the file carries
one. A shot list read from a cut comes back with the same clips, order and record timing as that cut
(`Edit`); a YAML or CSV list plays its shots in list order, back to back from 01:00:00:00.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import shot_db
from shot_db import ShotDB
from shot_db.records import OutputFile, VersionInfo
from tasks.assemble import parse_fps
from tasks.deliver import editorial_output
from tasks.editorial import CUT_SUFFIXES, CutClip, cut_timeline, write_cut
from tasks.record import transaction
from tasks.shotlist import Shot, ShotList
from tooncrafter_model.errors import UserError
from tooncrafter_model.store import version_name

LIST_START = "01:00:00:00"  # where a timeline starts by convention when no cut says otherwise


class ExportError(UserError):
    """A timeline that cannot be written as asked; one line naming the file or the shot."""


@dataclass(frozen=True)
class Exported:
    """What an export wrote: the file, its clips by format, and one line per shot it could not place as cut."""

    path: Path
    formats: dict[str, int]  # format -> clips pointing at such a file
    gaps: int  # shots left as gaps (no version yet, or no video to show)
    warnings: tuple[str, ...]


def export_cut(db: ShotDB, shots: ShotList, out: Path) -> Exported:
    """Write `out` (.otio or .edl): a timeline of the newest version of every shot of `shots`."""
    if out.suffix.lower() not in CUT_SUFFIXES:
        raise ExportError(f"{out}: export writes a cut: give a .otio or .edl file")
    with transaction(db) as s:
        newest = {
            shot.id: shot_db.newest_version(session=s, show=shot.show, sequence=shot.sequence, code=shot.code)
            for shot in shots.shots
        }
    export = _Export(newest)
    if all(shot.edit is not None for shot in shots.shots):
        name, rate, start = export.as_cut(shots.shots)
    else:
        name, rate, start = export.in_list_order(shots)
    write_cut(cut_timeline(name, rate, start, export.clips), out)
    formats = Counter(o.kind for o in export.placed)
    return Exported(out, dict(formats), sum(c.media is None for c in export.clips), tuple(export.warnings))


class _Export:
    """The clips of one export, the outputs they point at, and what could not be placed as cut."""

    def __init__(self, newest: dict[str, VersionInfo | None]) -> None:
        self.newest = newest
        self.clips: list[CutClip] = []
        self.placed: list[OutputFile] = []
        self.warnings: list[str] = []

    def media(self, shot: Shot) -> tuple[VersionInfo, OutputFile] | None:
        """The newest version of `shot` and the file a clip points at; a warning when there is none."""
        version = self.newest[shot.id]
        if version is None:
            self.warnings.append(f"{shot.id}: no version yet")
            return None
        output = editorial_output(version.outputs)
        if output is None:
            kinds = ", ".join(o.kind for o in version.outputs)
            self.warnings.append(f"{shot.id}: {version_name(version.number)} delivered no video a timeline holds ({kinds})")
            return None
        return version, output

    def place(
        self, shot: Shot, name: str, found: tuple[VersionInfo, OutputFile], rate: Fraction, record_in: int, frames: int
    ) -> None:
        import opentimelineio as otio

        version, output = found
        timecode = output.details.get("timecode")
        start = otio.opentime.from_timecode(str(timecode), float(rate)).to_frames() if timecode else 0
        about = {"shot": shot.id, "version": version.number, "format": output.kind, "sha256": output.sha256}
        self.clips.append(CutClip(name, record_in, frames, Path(output.path), start, output.frame_count,
                                  {"toonfarm_version": about}))  # fmt: skip
        self.placed.append(output)

    def as_cut(self, shots: tuple[Shot, ...]) -> tuple[str, Fraction, int]:
        """Every shot where its cut had it, same record frame and length; one with nothing to show is a gap."""
        edits = [shot.edit for shot in shots if shot.edit is not None]
        rate = parse_fps(edits[0].rate)
        for shot in shots:
            edit = shot.edit
            assert edit is not None
            found = self.media(shot)
            if found is None:
                self.clips.append(CutClip(edit.name, edit.record_in, edit.duration))
                continue
            version, output = found
            if output.frame_count != edit.duration:  # a shot re-timed by `render.inbetweens`, say
                fits = "trimmed to" if output.frame_count > edit.duration else "shorter than"
                self.warnings.append(f"{shot.id}: {version_name(version.number)} has {output.frame_count} frames, "
                                     f"{fits} its {edit.duration} in the cut")  # fmt: skip
            self.place(shot, edit.name, found, rate, edit.record_in, min(edit.duration, output.frame_count))
        return edits[0].cut, rate, min([edits[0].start, *(e.record_in for e in edits)])

    def in_list_order(self, shots: ShotList) -> tuple[str, Fraction, int]:
        """The shots that have something to show, in list order, back to back from 01:00:00:00."""
        import opentimelineio as otio

        rates = {shot.id: parse_fps(shot.fps) for shot in shots.shots}
        first = shots.shots[0]
        other = next((shot for shot in shots.shots if rates[shot.id] != rates[first.id]), None)
        if other is not None:
            raise ExportError(
                f"{shots.path}: {other.id} runs at {float(rates[other.id]):g} fps and {first.id} at "
                f"{float(rates[first.id]):g}: one timeline holds one frame rate"
            )
        rate = rates[first.id]
        start = cursor = otio.opentime.from_timecode(LIST_START, float(rate)).to_frames()
        for shot in shots.shots:
            found = self.media(shot)
            if found is not None:
                self.place(shot, shot.code, found, rate, cursor, found[1].frame_count)
                cursor += found[1].frame_count
        if not self.placed:
            raise ExportError(f"{shots.path}: no shot has a version to export yet")
        return shots.path.stem, rate, start
